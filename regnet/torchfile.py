"""Reading PyTorch files in one place, so a file that is not one gets one clear line.

``torch.load`` on a text file (a common slip: a config or a notes file given as ``--checkpoint``)
fails inside its pickle reader with a long "Weights only load failed…" message that says nothing
about the file. A PyTorch file starts with a zip header (torch >= 1.6) or a pickle protocol byte
(the legacy format), so anything else is named for what it is before torch sees it.
"""

from __future__ import annotations

import pickle
from pathlib import Path
from typing import Any

from regnet.errors import UserError

_ZIP = b"PK\x03\x04"
_PICKLE = b"\x80"


def _looks_like(head: bytes) -> str:
    if not head:
        return "an empty file"
    try:
        head.decode("utf-8")
        return "a text file"
    except UnicodeDecodeError:
        return "not a zip or pickle file"


def load_torch(path: str | Path, *, what: str = "PyTorch checkpoint", map_location: Any = "cpu",
               **kwargs: Any) -> Any:
    """``torch.load(path, weights_only=True)``; a missing, foreign or unsafe file is a `UserError`
    naming it. ``what`` names the file's role in the messages (e.g. "vocoder checkpoint")."""
    import torch

    path = Path(path)
    if not path.is_file():
        raise UserError(f"{path}: {what} not found")
    with path.open("rb") as fh:
        head = fh.read(64)
    if not (head.startswith(_ZIP) or head.startswith(_PICKLE)):
        raise UserError(f"{path}: not a PyTorch checkpoint ({_looks_like(head)}); give the .pt/.pth file "
                        f"the {what} was saved as")
    try:
        # weights_only: checkpoints hold dicts, numbers and tensors; nothing needs code to load.
        return torch.load(path, map_location=map_location, weights_only=True, **kwargs)
    except pickle.UnpicklingError:
        raise UserError(f"{path}: a PyTorch file that holds Python objects other than tensors, numbers "
                        f"and containers; not loaded, since that would run code from it") from None
    except Exception as e:  # torch raises many types for a truncated or foreign file
        first = (str(e).splitlines() or [type(e).__name__])[0][:120]
        raise UserError(f"{path}: not a readable {what} ({type(e).__name__}: {first})") from None
