"""VGGish (Hershey et al. 2017, "CNN Architectures for Large-Scale Audio Classification"), as
torchvggish's port of the TensorFlow release, in the layout of its released files:

- ``vggish-10086976.pth``: the network's state dict: ``features.{0,3,6,8,11,13}`` (3x3 convs
  64-128-256-256-512-512 with ReLU, 2x2 max pools after the 1st, 2nd, 4th and 6th) and
  ``embeddings.{0,2,4}`` (12288 -> 4096 -> 4096 -> 128, each followed by ReLU);
- ``vggish_pca_params-970ea276.pth`` (optional): ``pca_eigen_vectors`` [128, 128] and
  ``pca_means`` [128], the PCA/whitening + 8-bit quantisation of the AudioSet release
  (torchvggish's ``Postprocessor``). av-benchmark's FD-VGG uses ``VGGish(postprocess=False)``: the
  raw 128-d ReLU output, which is what you get without the PCA file.

Input (vggish_input.waveform_to_examples with mel_features, ported here): 16 kHz mono; 25 ms
periodic-Hann frames every 10 ms, |rfft| with 512 points, 64 HTK-mel bands 125-7500 Hz (DC row
zeroed), ``log(mel + 0.01)``; cut into non-overlapping 0.96 s examples of 96 frames x 64 bands.
The incomplete remainder is dropped, as in the reference; so a clip shorter than 0.975 s has no
example at all and adds nothing to the Fréchet distance (evaluate warns with their count).
av-benchmark stacks every example of every clip before the FD, as done here.
"""

from __future__ import annotations

import logging
from pathlib import Path

import numpy as np

from regnet.errors import UserError
from regnet.metrics.embedders import EmbedOutput, ReleasedEmbedder, check_state_dict, sha256_of, torch_load

log = logging.getLogger(__name__)

NAME = "vggish"
# torch.hub file names carry the first 8 hex digits of the file's sha256
RELEASED_PREFIX = "10086976"  # vggish-10086976.pth
RELEASED_PCA_PREFIX = "970ea276"  # vggish_pca_params-970ea276.pth
SAMPLE_RATE = 16000
WINDOW_S, HOP_S = 0.025, 0.010
MEL_BANDS, MEL_MIN_HZ, MEL_MAX_HZ = 64, 125.0, 7500.0
LOG_OFFSET = 0.01
EXAMPLE_FRAMES = 96  # 0.96 s
EMBEDDING_SIZE = 128
QUANTIZE_MIN, QUANTIZE_MAX = -2.0, 2.0


def build():
    import torch
    import torch.nn as nn

    class VGGish(nn.Module):
        """log-mel examples [N, 1, 96, 64] -> embeddings [N, 128]."""

        def __init__(self):
            super().__init__()
            layers, cin = [], 1
            for v in (64, "M", 128, "M", 256, 256, "M", 512, 512, "M"):
                if v == "M":
                    layers.append(nn.MaxPool2d(kernel_size=2, stride=2))
                else:
                    layers += [nn.Conv2d(cin, v, kernel_size=3, padding=1), nn.ReLU(inplace=True)]
                    cin = v
            self.features = nn.Sequential(*layers)
            self.embeddings = nn.Sequential(
                nn.Linear(512 * 4 * 6, 4096), nn.ReLU(True), nn.Linear(4096, 4096), nn.ReLU(True),
                nn.Linear(4096, EMBEDDING_SIZE), nn.ReLU(True))
            self.pca_matrix: torch.Tensor | None = None
            self.pca_means: torch.Tensor | None = None

        def forward(self, x):
            x = self.features(x)  # [N, 512, 6, 4]
            # channels last before flattening, as the TensorFlow original (torchvggish does the same)
            x = x.permute(0, 2, 3, 1).reshape(x.shape[0], -1)
            x = self.embeddings(x)
            if self.pca_matrix is not None:
                x = (self.pca_matrix @ (x.T - self.pca_means[:, None])).T
                x = torch.round((torch.clamp(x, QUANTIZE_MIN, QUANTIZE_MAX) - QUANTIZE_MIN)
                                * (255.0 / (QUANTIZE_MAX - QUANTIZE_MIN)))
            return x

    torch.manual_seed(0)
    return VGGish()


def _frame(data: np.ndarray, window: int, hop: int) -> np.ndarray:
    """Complete frames only ([n_frames, window, ...]); none when the data is shorter than a window."""
    n = 0 if len(data) < window else 1 + (len(data) - window) // hop
    if n == 0:
        return np.zeros((0, window) + data.shape[1:], dtype=data.dtype)
    idx = np.arange(window)[None, :] + hop * np.arange(n)[:, None]
    return data[idx]


def mel_matrix(n_spectrogram_bins: int, sample_rate: int = SAMPLE_RATE) -> np.ndarray:
    """HTK-mel triangular weights [n_bins, 64] with the DC row zeroed (mel_features)."""

    def hz_to_mel(f):
        return 1127.0 * np.log(1.0 + np.asarray(f, dtype=np.float64) / 700.0)

    bins_mel = hz_to_mel(np.linspace(0.0, sample_rate / 2.0, n_spectrogram_bins))
    edges = np.linspace(hz_to_mel(MEL_MIN_HZ), hz_to_mel(MEL_MAX_HZ), MEL_BANDS + 2)
    w = np.empty((n_spectrogram_bins, MEL_BANDS))
    for i in range(MEL_BANDS):
        lo, c, hi = edges[i:i + 3]
        w[:, i] = np.maximum(0.0, np.minimum((bins_mel - lo) / (c - lo), (hi - bins_mel) / (hi - c)))
    w[0, :] = 0.0
    return w


def log_mel(wav: np.ndarray, sample_rate: int = SAMPLE_RATE) -> np.ndarray:
    """[frames, 64] log-mel magnitude spectrogram of a 16 kHz waveform."""
    win = int(round(sample_rate * WINDOW_S))
    hop = int(round(sample_rate * HOP_S))
    n_fft = 2 ** int(np.ceil(np.log2(win)))
    frames = _frame(np.asarray(wav, dtype=np.float64), win, hop)
    hann = 0.5 - 0.5 * np.cos(2 * np.pi / win * np.arange(win))  # periodic
    mag = np.abs(np.fft.rfft(frames * hann, n_fft))
    return np.log(mag @ mel_matrix(n_fft // 2 + 1, sample_rate) + LOG_OFFSET)


def examples(wav: np.ndarray) -> np.ndarray:
    """Non-overlapping 0.96 s log-mel examples [n, 96, 64] of a 16 kHz waveform (n may be 0)."""
    return _frame(log_mel(wav), EXAMPLE_FRAMES, EXAMPLE_FRAMES)


def load(path: Path, pca_path: Path | None = None) -> ReleasedEmbedder:

    state = torch_load(path)
    if not isinstance(state, dict):
        raise UserError(f"{path}: not a VGGish state dict")
    model = build()
    model.load_state_dict(check_state_dict(path, model, state), strict=True)
    sha = sha256_of(path)
    _check_release(path, sha, RELEASED_PREFIX)
    if pca_path is not None:
        model.pca_matrix, model.pca_means = load_pca(pca_path)
        pca_sha = sha256_of(pca_path)
        _check_release(pca_path, pca_sha, RELEASED_PCA_PREFIX)
        sha = f"{sha}+pca:{pca_sha}"
    model.eval()
    return ReleasedEmbedder(
        name=NAME, path=path, sha256=sha, sample_rate=SAMPLE_RATE, model=model, embed_fn=embed,
        has_logits=False,
        window_note="0.96 s frames, incomplete remainder dropped (no frame under 0.975 s)"
                    + ("; PCA + quantisation applied" if pca_path is not None else "; raw embeddings (no PCA)"))


def _check_release(path: Path, sha: str, prefix: str) -> None:
    """torch.hub names a released file by the first 8 hex digits of its sha256 (vggish-10086976.pth):
    a file whose hash does not start so is not the released one; say so (it still loads)."""
    if not sha.startswith(prefix):
        log.warning("%s: sha256 %s... does not start with %s, so it is not torchvggish's released "
                    "file; numbers from it are not comparable with published ones", path, sha[:12], prefix)


def load_pca(path: Path):
    import torch

    if not Path(path).is_file():
        raise UserError(f"{path}: VGGish PCA parameters not found")
    blob = torch_load(Path(path))
    if not isinstance(blob, dict):
        raise UserError(f"{path}: not the VGGish PCA file (expected pca_eigen_vectors, pca_means)")
    out = []
    for key, shape in (("pca_eigen_vectors", (EMBEDDING_SIZE, EMBEDDING_SIZE)), ("pca_means", (EMBEDDING_SIZE,))):
        if key not in blob:
            raise UserError(f"{path}: missing tensor '{key}'")
        t = torch.as_tensor(np.asarray(blob[key]), dtype=torch.float32).reshape(-1)
        if t.numel() != int(np.prod(shape)):
            raise UserError(f"{path}: tensor '{key}' has {t.numel()} values, expected shape {shape}")
        out.append(t.reshape(shape))
    extra = sorted(set(blob) - {"pca_eigen_vectors", "pca_means"})
    if extra:
        raise UserError(f"{path}: unexpected tensor '{extra[0]}'")
    return out[0], out[1]


def embed(model, wavs: list[np.ndarray], batch: int = 64) -> list[EmbedOutput]:
    import torch

    out = []
    with torch.inference_mode():
        for w in wavs:
            ex = examples(w)
            rows = []
            for i in range(0, len(ex), batch):
                x = torch.from_numpy(ex[i:i + batch].astype(np.float32))[:, None]
                rows.append(model(x).double().numpy())
            emb = np.concatenate(rows) if rows else np.zeros((0, EMBEDDING_SIZE))
            out.append(EmbedOutput(emb, None))
    return out
