"""The torch device a run uses: CUDA when present unless asked otherwise, with a one-line error for a
device this machine does not have."""

from __future__ import annotations

from regnet.errors import UserError


def resolve_device(name: str | None = None) -> "torch.device":  # noqa: F821
    """'auto' (default) picks CUDA when present, else CPU."""
    import torch

    if name in (None, "", "auto"):
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    try:
        device = torch.device(name)
    except (RuntimeError, ValueError):
        raise UserError(f"--device: '{name}' is not a device (auto, cpu, cuda, cuda:1 ...)") from None
    if device.type == "cuda":
        if not torch.cuda.is_available():
            raise UserError(f"--device {name}: CUDA is not available on this machine (use cpu or auto)")
        if device.index is not None and device.index >= torch.cuda.device_count():
            raise UserError(f"--device {name}: this machine has {torch.cuda.device_count()} CUDA device(s)")
    return device
