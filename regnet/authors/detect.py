"""Let any verb that takes a checkpoint path take the authors' files as they are.

``maybe_import(path)`` returns ``path`` itself for anything that is not an authors' file (ours, or
a name like 'griffin-lim'), and otherwise the path of a converted regnet-bench checkpoint. The
conversion is cached beside the source (or in the temp dir when that folder is read-only) and
redone when the source is newer or the config that fills in the gaps changed.
"""

from __future__ import annotations

import hashlib
import logging
import tempfile
from pathlib import Path

from regnet.config import Config

log = logging.getLogger(__name__)


def _cache_path(source: Path, base: Config) -> Path:
    # Only the sections import reads from the base config matter for the converted file.
    d = base.to_dict()
    tag = hashlib.sha256(repr((d["data"], d["model"], d["vocoder"])).encode()).hexdigest()[:8]
    name = f"{source.name}.{tag}.regnet-bench.pt"
    if source.parent.exists() and _writable(source.parent):
        return source.parent / name
    key = hashlib.sha256(str(source.resolve()).encode()).hexdigest()[:12]
    return Path(tempfile.gettempdir()) / "regnet-bench-imported" / f"{key}-{name}"


def _writable(folder: Path) -> bool:
    try:
        with tempfile.TemporaryFile(dir=folder):
            return True
    except OSError:
        return False


def maybe_import(path: str | Path, base: Config | None = None) -> str | Path:
    """``path``, or a regnet-bench checkpoint converted from the authors' file at ``path``."""
    from regnet.authors.checkpoints import import_checkpoint, kind_of, regnet_pair

    if not isinstance(path, (str, Path)) or str(path) in ("", "griffin-lim"):
        return path
    kind = kind_of(path)
    if kind not in ("regnet", "wavenet"):
        return path
    base = base or Config()
    source = regnet_pair(Path(path))[0] if kind == "regnet" else Path(path)
    out = _cache_path(source, base)
    newest = max(p.stat().st_mtime for p in (regnet_pair(source) if kind == "regnet" else (source,))
                 if p.is_file())
    if out.is_file() and out.stat().st_mtime >= newest:
        log.info("%s: the authors' %s checkpoint, using its conversion %s", path, kind, out)
        return out
    log.info("%s: the authors' %s checkpoint, converting to %s", path, kind, out)
    import_checkpoint(path, out, base)
    return out
