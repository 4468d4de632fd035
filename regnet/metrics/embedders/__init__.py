"""The field's audio embedders, loaded from the released weight files the user downloaded once.

Nothing is downloaded here, ever. Each embedder's architecture is written out in this package in
the released file's key layout (one file per model), so the real file loads with ``strict=True``:

- ``panns-cnn14`` (`regnet.metrics.embedders.panns`): PANNs CNN14, ``Cnn14_mAP=0.431.pth``
  (32 kHz) or ``Cnn14_16k_mAP=0.438.pth`` (16 kHz, the one av-benchmark uses); the variant is read
  from the file's STFT kernel size. Gives a 2048-d embedding and 527 AudioSet logits per clip.
- ``vggish`` (`regnet.metrics.embedders.vggish`): VGGish, torchvggish's ``vggish-10086976.pth``
  (16 kHz, one 128-d embedding per 0.96 s frame), optionally with ``vggish_pca_params-970ea276.pth``.
- ``passt`` (`regnet.metrics.embedders.passt`): PaSST-S, ``passt-s-f128-p16-s10-ap.476-swa.pt``
  (32 kHz): a 768-d embedding and 527 AudioSet logits per clip.
- ``synchformer`` (`regnet.metrics.embedders.synchformer`): Synchformer, ``synchformer_state_dict.pth``
  (video 25 fps at 224x224 with audio at 16 kHz): the audio-visual offset of a clip's first and last
  4.8 s, for DeSync. It is not an audio embedder: `load_released` returns its `SyncModel`.
- ``clap`` (`regnet.metrics.embedders.clap`): LAION-CLAP HTSAT-tiny, ``630k-audioset-best.pt`` or
  ``630k-best.pt`` (48 kHz): a unit-length 512-d audio embedding per clip; with roberta-base's
  tokenizer files (``tokenizer_dir``) and transformers installed, also its text side
  (``ReleasedEmbedder.embed_text``), for the CLAP score.
- ``imagebind`` (`regnet.metrics.embedders.imagebind`): ImageBind-huge's vision and audio towers,
  ``imagebind_huge.pth`` (frames every 2 s at 224 px with audio at 16 kHz): the cosine of a clip's
  audio and video embeddings, for the IB-score. Like Synchformer it is not an audio embedder:
  `load_released` returns its `IBModel`.

`load_released` checks the file against the architecture first and names the first missing,
unexpected or wrong-shaped tensor in a one-line `UserError`.
"""

from __future__ import annotations

import hashlib
import logging
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

import numpy as np

from regnet.errors import UserError

log = logging.getLogger(__name__)


@dataclass
class EmbedOutput:
    """One clip through an embedder: embedding rows [m, D] (m = 1 for a clip-level embedder, one
    per frame for VGGish) and class logits [C] (None for an embedder without a classifier)."""

    embeddings: np.ndarray
    logits: np.ndarray | None


@dataclass
class ReleasedEmbedder:
    name: str
    path: Path
    sha256: str
    sample_rate: int
    model: object
    embed_fn: Callable[[object, list[np.ndarray]], list[EmbedOutput]]
    has_logits: bool
    window_note: str  # how clips shorter than the model's window are handled
    # an audio-text model's (CLAP's) text side: (model, prompts) -> unit rows [n, D] in the audio
    # embedding's space; None for audio-only embedders
    text_fn: Callable[[object, list[str]], np.ndarray] | None = None

    def embed(self, wavs: list[np.ndarray]) -> list[EmbedOutput]:
        """Embed mono float waveforms already at ``sample_rate``."""
        return self.embed_fn(self.model, wavs)

    def embed_text(self, prompts: list[str]) -> np.ndarray:
        return self.text_fn(self.model, prompts)


def sha256_of(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


def torch_load(path: Path):
    """``torch.load`` of a released checkpoint. The tensors-only loader is tried first; the PANNs
    training checkpoints also pickle numpy state next to the weights, which it refuses, and those are
    then read with the full unpickler (as the reference code does) after a warning: only load
    files you downloaded from the source the README names."""
    import pickle

    import torch

    try:
        return torch.load(str(path), map_location="cpu", weights_only=True)
    except pickle.UnpicklingError:
        log.warning("%s: holds more than tensors; loading it with the full unpickler "
                    "(use only files from the source named in the README)", path)
    except Exception as e:  # noqa: BLE001 - torch raises many types for a foreign file
        raise UserError(f"{path}: not a torch file ({str(e).splitlines()[0][:120]})") from None
    try:
        return torch.load(str(path), map_location="cpu", weights_only=False)
    except Exception as e:  # noqa: BLE001
        raise UserError(f"{path}: not a torch file ({str(e).splitlines()[0][:120]})") from None


def check_state_dict(path: Path, model, state: dict, optional_suffixes: tuple[str, ...] = ()) -> dict:
    """The state dict ready for ``model.load_state_dict(strict=True)``, or a one-line UserError
    naming the first missing, unexpected or wrong-shaped tensor. Keys ending in one of
    ``optional_suffixes`` (BatchNorm's ``num_batches_tracked``, unused in inference) may be
    absent and are then taken from the model."""
    import torch

    if not isinstance(state, dict) or not all(isinstance(k, str) for k in state):
        raise UserError(f"{path}: not a state dict of tensors")
    expected = model.state_dict()
    missing = [k for k in expected if k not in state and not k.endswith(optional_suffixes)]
    extra = [k for k in state if k not in expected]
    if missing:
        more = f" (and {len(missing) - 1} more)" if len(missing) > 1 else ""
        raise UserError(f"{path}: missing tensor '{missing[0]}'{more}")
    if extra:
        more = f" (and {len(extra) - 1} more)" if len(extra) > 1 else ""
        raise UserError(f"{path}: unexpected tensor '{extra[0]}'{more}")
    out = {}
    for k, want in expected.items():
        got = state.get(k, want)
        if not isinstance(got, torch.Tensor):
            raise UserError(f"{path}: '{k}' is not a tensor")
        if tuple(got.shape) != tuple(want.shape):
            raise UserError(f"{path}: tensor '{k}' has shape {tuple(got.shape)}, expected {tuple(want.shape)}")
        out[k] = got
    return out


def state_tensor(path: Path, state: dict, key: str, ndim: int, model: str):
    """``state[key]``, which a config is read from: a one-line UserError if it is absent or does not
    have ``ndim`` dimensions (``model`` names what the file should have been, e.g. "a Synchformer
    state dict")."""
    t = state.get(key)
    if t is None:
        raise UserError(f"{path}: missing tensor '{key}' (is it {model}?)")
    if getattr(t, "ndim", None) != ndim:
        raise UserError(f"{path}: tensor '{key}' has shape {tuple(getattr(t, 'shape', ()))}, "
                        f"expected {ndim} dimensions")
    return t


def block_count(state: dict, prefix: str) -> int:
    """How many numbered blocks ``prefix0.``, ``prefix1.``, ... the state dict holds."""
    return len({k[len(prefix):].split(".", 1)[0] for k in state if k.startswith(prefix)})


# name -> loader(path, **options) -> ReleasedEmbedder; filled lazily so importing this package
# does not import torch.
def _loaders() -> dict[str, Callable[..., ReleasedEmbedder]]:
    from regnet.metrics.embedders import clap, imagebind, panns, passt, synchformer, vggish

    return {"panns-cnn14": panns.load, "vggish": vggish.load, "passt": passt.load,
            "synchformer": synchformer.load, "clap": clap.load, "imagebind": imagebind.load}


EMBEDDER_NAMES = ("panns-cnn14", "vggish", "passt", "synchformer", "clap", "imagebind")


@dataclass(frozen=True)
class EmbedderSpec:
    name: str
    path: Path


def parse_spec(text: str) -> EmbedderSpec | None:
    """``NAME=PATH`` for a released embedder; None for anything else (a plain path: the project's
    own fit-embedder file)."""
    name, sep, rest = text.partition("=")
    if not sep:
        return None
    if name not in EMBEDDER_NAMES:
        if Path(text).exists():
            return None  # a file whose name has '=' in it
        raise UserError(f"--embedding: unknown embedder '{name}' (known: {', '.join(EMBEDDER_NAMES)}; "
                        "or give a plain path to a fit-embedder file)")
    if not rest:
        raise UserError(f"--embedding: {name}= needs the path of the weight file")
    return EmbedderSpec(name, Path(rest))


def load_released(spec: EmbedderSpec, **options):
    """The loaded model: a `ReleasedEmbedder`, or for ``synchformer`` its `SyncModel`, for
    ``imagebind`` its `IBModel`."""
    if not spec.path.is_file():
        raise UserError(f"{spec.path}: {spec.name} weights not found (download them once; see the "
                        "README's metrics table)")
    return _loaders()[spec.name](spec.path, **options)
