"""Visual feature backbones behind one interface: per-step RGB and flow feature vectors.

- ``simple`` (default, weight-free): RGB 1024-d = a 16x16 colour thumbnail (768) + a 4x4x4 joint
  colour histogram (64) + three 64-bin channel histograms (192); flow 1024-d = the mean flow on a
  16x16 grid (512, in units of the bound) + per cell of a 4x4 grid a 16-bin orientation histogram
  weighted by magnitude and a 16-bin magnitude histogram (512). 1024 + 1024 = 2048 =
  ``model.visual_dim``, the same layout as the paper's BN-Inception features.
- ``bninception``: TSN's BN-Inception (Ioffe & Szegedy 2015, Table 1), 1024-d per stream. Weights
  from a local file in the Cadene/TSN layout (``conv1_7x7_s2.weight``, ``inception_3a_1x1_bn...``;
  ``module.`` / ``base_model.`` prefixes and a ``state_dict`` wrapper are accepted).
- ``resnet``: the torchvision ResNet architecture (depth read from the weights: 18/34/50/101/152),
  weights in torchvision's key layout (``conv1.weight``, ``layer1.0.bn1...``); 512-d (18/34) or
  2048-d (50+) per stream, so set ``model.visual_dim`` to twice that.

CNN streams see frames resized to a short side of ``backbone_size * 256/224`` and centre-cropped to
``backbone_size`` (TSN's test crop). The flow stream takes 5 consecutive flows stacked as 10
channels (TSN ``new_length=5``), each mapped to an 8-bit-like image ``(f + bound) * 255 / (2 bound)``.
Without ``backbone_flow_weights`` the flow stream starts from the RGB weights with TSN's
cross-modality initialisation (first conv averaged over colour and repeated over 10 channels).
"""

from __future__ import annotations

import abc
import logging
from pathlib import Path

import cv2
import numpy as np
import torch
from torch import nn

from regnet.config import DataConfig
from regnet.errors import UserError

log = logging.getLogger(__name__)

BACKBONES = ("simple", "bninception", "resnet")
FLOW_STACK = 5  # consecutive flows per flow-stream input (TSN new_length)
# Keys of classifier heads in published checkpoints; features stop before them.
_HEAD_PREFIXES = ("fc.", "last_linear.", "new_fc.", "classifier.", "consensus.")


class Backbone(abc.ABC):
    """Per-step features. ``rgb``: frames [N, H, W, 3] uint8 -> [N, rgb_dim] float32;
    ``flow``: flows [N, H, W, 2] (pixels, within ±bound) -> [N, flow_dim] float32."""

    name: str = ""
    rgb_dim: int = 0
    flow_dim: int = 0

    @abc.abstractmethod
    def rgb(self, frames: np.ndarray) -> np.ndarray: ...

    @abc.abstractmethod
    def flow(self, flows: np.ndarray) -> np.ndarray: ...


# ---------------------------------------------------------------------------------------------
# simple: weight-free
# ---------------------------------------------------------------------------------------------
class SimpleBackbone(Backbone):
    name = "simple"
    rgb_dim = 1024
    flow_dim = 1024
    THUMB = 16
    GRID = 4
    BINS = 16

    def __init__(self, bound: float):
        self.bound = float(bound)
        # Log-spaced magnitude edges: small motions matter as much as large ones.
        self._mag_edges = np.concatenate([[0.0], np.geomspace(0.05, self.bound, self.BINS - 1)])

    def rgb(self, frames: np.ndarray) -> np.ndarray:
        out = np.empty((len(frames), self.rgb_dim), dtype=np.float32)
        for i, f in enumerate(frames):
            thumb = cv2.resize(f, (self.THUMB, self.THUMB), interpolation=cv2.INTER_AREA)
            q = (f >> 6).reshape(-1, 3).astype(np.int64)  # 4 levels per channel
            joint = np.bincount(q[:, 0] * 16 + q[:, 1] * 4 + q[:, 2], minlength=64)
            chans = [np.bincount((f[..., c] >> 2).ravel(), minlength=64) for c in range(3)]
            hist = np.concatenate([joint] + chans).astype(np.float32) / (f.shape[0] * f.shape[1])
            # sqrt (Hellinger) keeps small but present colours visible next to the background.
            out[i] = np.concatenate([thumb.reshape(-1).astype(np.float32) / 255.0, np.sqrt(hist)])
        return out

    def flow(self, flows: np.ndarray) -> np.ndarray:
        out = np.empty((len(flows), self.flow_dim), dtype=np.float32)
        g, b = self.GRID, self.BINS
        for i, fl in enumerate(flows):
            fl = np.asarray(fl, dtype=np.float32)
            h, w = fl.shape[:2]
            mean = cv2.resize(fl, (self.THUMB, self.THUMB), interpolation=cv2.INTER_AREA) / self.bound
            dx, dy = fl[..., 0], fl[..., 1]
            mag = np.sqrt(dx * dx + dy * dy)
            ang = np.arctan2(dy, dx)  # (-pi, pi]
            ori_bin = np.minimum(((ang + np.pi) / (2 * np.pi) * b).astype(np.int64), b - 1)
            mag_bin = np.clip(np.searchsorted(self._mag_edges, mag, side="right") - 1, 0, b - 1)
            cy = np.minimum(np.arange(h) * g // h, g - 1)
            cx = np.minimum(np.arange(w) * g // w, g - 1)
            cell = (cy[:, None] * g + cx[None, :])
            per_cell = (h * w) / (g * g)
            ori = np.bincount((cell * b + ori_bin).ravel(), weights=(mag / self.bound).ravel(),
                              minlength=g * g * b) / per_cell
            mags = np.sqrt(np.bincount((cell * b + mag_bin).ravel(), minlength=g * g * b) / per_cell)
            out[i] = np.concatenate([mean.reshape(-1), ori, mags])
        return out


# ---------------------------------------------------------------------------------------------
# BN-Inception (TSN)
# ---------------------------------------------------------------------------------------------
# name, 1x1, 3x3 reduce, 3x3, double 3x3 reduce, double 3x3, pool ('avg'|'max'|'pass'), pool proj
_BNI_BLOCKS = (
    ("3a", 64, 64, 64, 64, 96, "avg", 32),
    ("3b", 64, 64, 96, 64, 96, "avg", 64),
    ("3c", 0, 128, 160, 64, 96, "pass", 0),
    ("4a", 224, 64, 96, 96, 128, "avg", 128),
    ("4b", 192, 96, 128, 96, 128, "avg", 128),
    ("4c", 160, 128, 160, 128, 160, "avg", 128),
    ("4d", 96, 128, 192, 160, 192, "avg", 128),
    ("4e", 0, 128, 192, 192, 256, "pass", 0),
    ("5a", 352, 192, 320, 160, 224, "avg", 128),
    ("5b", 352, 192, 320, 192, 224, "max", 128),
)


class BNInception(nn.Module):
    """BN-Inception trunk up to global average pooling (1024-d), Cadene/TSN parameter names."""

    out_dim = 1024

    def __init__(self, in_channels: int = 3):
        super().__init__()
        self._cbr("conv1_7x7_s2", in_channels, 64, 7, 2, 3)
        self._cbr("conv2_3x3_reduce", 64, 64, 1)
        self._cbr("conv2_3x3", 64, 192, 3, 1, 1)
        ch = 192
        self._blocks = []
        for name, n1, n3r, n3, ndr, nd, pool, proj in _BNI_BLOCKS:
            p = f"inception_{name}"
            stride = 2 if pool == "pass" else 1
            if n1:
                self._cbr(f"{p}_1x1", ch, n1, 1)
            self._cbr(f"{p}_3x3_reduce", ch, n3r, 1)
            self._cbr(f"{p}_3x3", n3r, n3, 3, stride, 1)
            self._cbr(f"{p}_double_3x3_reduce", ch, ndr, 1)
            self._cbr(f"{p}_double_3x3_1", ndr, nd, 3, 1, 1)
            self._cbr(f"{p}_double_3x3_2", nd, nd, 3, stride, 1)
            if proj:
                self._cbr(f"{p}_pool_proj", ch, proj, 1)
            self._blocks.append((p, n1, pool, proj))
            ch = n1 + n3 + nd + (proj if proj else ch)
        assert ch == self.out_dim

    def _cbr(self, name: str, cin: int, cout: int, k: int, s: int = 1, pad: int = 0) -> None:
        setattr(self, name, nn.Conv2d(cin, cout, k, s, pad))  # caffe-converted convs have biases
        setattr(self, f"{name}_bn", nn.BatchNorm2d(cout))

    def _run(self, name: str, x: torch.Tensor) -> torch.Tensor:
        return torch.relu(getattr(self, f"{name}_bn")(getattr(self, name)(x)))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self._run("conv1_7x7_s2", x)
        x = nn.functional.max_pool2d(x, 3, 2, ceil_mode=True)
        x = self._run("conv2_3x3", self._run("conv2_3x3_reduce", x))
        x = nn.functional.max_pool2d(x, 3, 2, ceil_mode=True)
        for p, n1, pool, proj in self._blocks:
            parts = []
            if n1:
                parts.append(self._run(f"{p}_1x1", x))
            parts.append(self._run(f"{p}_3x3", self._run(f"{p}_3x3_reduce", x)))
            d = self._run(f"{p}_double_3x3_reduce", x)
            parts.append(self._run(f"{p}_double_3x3_2", self._run(f"{p}_double_3x3_1", d)))
            if pool == "avg":
                parts.append(self._run(f"{p}_pool_proj", nn.functional.avg_pool2d(
                    x, 3, 1, 1, ceil_mode=True, count_include_pad=True)))
            elif pool == "max":
                parts.append(self._run(f"{p}_pool_proj", nn.functional.max_pool2d(
                    x, 3, 1, 1, ceil_mode=True)))
            else:  # stride-2 block: max-pooled pass-through
                parts.append(nn.functional.max_pool2d(x, 3, 2, ceil_mode=True))
            x = torch.cat(parts, dim=1)
        return torch.flatten(nn.functional.adaptive_avg_pool2d(x, 1), 1)

    first_conv = "conv1_7x7_s2.weight"


# ---------------------------------------------------------------------------------------------
# ResNet (torchvision architecture and key layout, written here: torchvision is not a dependency)
# ---------------------------------------------------------------------------------------------
class _Basic(nn.Module):
    expansion = 1

    def __init__(self, cin: int, width: int, stride: int):
        super().__init__()
        cout = width * self.expansion
        self.conv1 = nn.Conv2d(cin, width, 3, stride, 1, bias=False)
        self.bn1 = nn.BatchNorm2d(width)
        self.conv2 = nn.Conv2d(width, width, 3, 1, 1, bias=False)
        self.bn2 = nn.BatchNorm2d(width)
        self.downsample = _downsample(cin, cout, stride)

    def forward(self, x):
        y = torch.relu(self.bn1(self.conv1(x)))
        y = self.bn2(self.conv2(y))
        return torch.relu(y + (self.downsample(x) if self.downsample is not None else x))


class _Bottleneck(nn.Module):
    expansion = 4

    def __init__(self, cin: int, width: int, stride: int):
        super().__init__()
        cout = width * self.expansion
        self.conv1 = nn.Conv2d(cin, width, 1, bias=False)
        self.bn1 = nn.BatchNorm2d(width)
        self.conv2 = nn.Conv2d(width, width, 3, stride, 1, bias=False)  # torchvision v1.5
        self.bn2 = nn.BatchNorm2d(width)
        self.conv3 = nn.Conv2d(width, cout, 1, bias=False)
        self.bn3 = nn.BatchNorm2d(cout)
        self.downsample = _downsample(cin, cout, stride)

    def forward(self, x):
        y = torch.relu(self.bn1(self.conv1(x)))
        y = torch.relu(self.bn2(self.conv2(y)))
        y = self.bn3(self.conv3(y))
        return torch.relu(y + (self.downsample(x) if self.downsample is not None else x))


def _downsample(cin: int, cout: int, stride: int) -> nn.Module | None:
    if stride == 1 and cin == cout:
        return None
    return nn.Sequential(nn.Conv2d(cin, cout, 1, stride, bias=False), nn.BatchNorm2d(cout))


RESNET_LAYOUTS = {18: ("basic", (2, 2, 2, 2)), 34: ("basic", (3, 4, 6, 3)),
                  50: ("bottleneck", (3, 4, 6, 3)), 101: ("bottleneck", (3, 4, 23, 3)),
                  152: ("bottleneck", (3, 8, 36, 3))}


class ResNet(nn.Module):
    """torchvision-compatible ResNet trunk up to global average pooling."""

    first_conv = "conv1.weight"

    def __init__(self, depth: int = 50, in_channels: int = 3):
        super().__init__()
        if depth not in RESNET_LAYOUTS:
            raise ValueError(f"unsupported ResNet depth {depth}")
        kind, counts = RESNET_LAYOUTS[depth]
        block = _Basic if kind == "basic" else _Bottleneck
        self.depth = depth
        self.conv1 = nn.Conv2d(in_channels, 64, 7, 2, 3, bias=False)
        self.bn1 = nn.BatchNorm2d(64)
        ch = 64
        for i, (n, width) in enumerate(zip(counts, (64, 128, 256, 512))):
            blocks = []
            for j in range(n):
                blocks.append(block(ch, width, 2 if (j == 0 and i > 0) else 1))
                ch = width * block.expansion
            setattr(self, f"layer{i + 1}", nn.Sequential(*blocks))
        self.out_dim = ch

    def forward(self, x):
        x = nn.functional.max_pool2d(torch.relu(self.bn1(self.conv1(x))), 3, 2, 1)
        for i in range(1, 5):
            x = getattr(self, f"layer{i}")(x)
        return torch.flatten(nn.functional.adaptive_avg_pool2d(x, 1), 1)


def resnet_depth_from_state(state: dict[str, torch.Tensor]) -> int:
    """Read the depth off a torchvision-layout state dict (block type and blocks per stage)."""
    bottleneck = any(k.startswith("layer1.0.conv3.") for k in state)
    counts = []
    for i in range(1, 5):
        idx = {int(k.split(".")[1]) for k in state if k.startswith(f"layer{i}.")}
        counts.append(len(idx))
    for depth, (kind, c) in RESNET_LAYOUTS.items():
        if tuple(counts) == c and (kind == "bottleneck") == bottleneck:
            return depth
    raise ValueError(f"layer counts {counts} match no ResNet depth")


# ---------------------------------------------------------------------------------------------
# Weight loading
# ---------------------------------------------------------------------------------------------
def read_state_dict(path: str | Path, field: str = "data.backbone_weights") -> dict[str, torch.Tensor]:
    """A state dict from a local file: raw, or wrapped (``state_dict``/``model``), prefixes stripped."""
    path = Path(path)
    if not path.is_file():
        raise UserError(f"{field}: weights file {path} not found")
    try:
        obj = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as e:  # torch raises many types for a bad file
        raise UserError(f"{path}: not a readable torch weights file ({str(e).splitlines()[0][:150]})") \
            from None
    if isinstance(obj, dict):
        for key in ("state_dict", "model"):
            if isinstance(obj.get(key), dict):
                obj = obj[key]
                break
    if not isinstance(obj, dict) or not obj or not all(isinstance(v, torch.Tensor) for v in obj.values()):
        raise UserError(f"{path}: expected a state dict of tensors")
    out = {}
    for k, v in obj.items():
        for prefix in ("module.", "base_model."):
            if k.startswith(prefix):
                k = k[len(prefix):]
        out[k] = v
    return out


def _load_into(model: nn.Module, state: dict[str, torch.Tensor], path: Path, in_channels: int) -> None:
    state = {k: v for k, v in state.items() if not k.startswith(_HEAD_PREFIXES)}
    first = model.first_conv
    if first in state and state[first].shape[1] != in_channels:
        w = state[first]
        if w.shape[1] == 3:
            # TSN cross-modality initialisation: RGB filters averaged, repeated per flow channel.
            log.info("%s: flow stream initialised from RGB weights (cross-modality)", path)
            state[first] = w.mean(dim=1, keepdim=True).repeat(1, in_channels, 1, 1)
        else:
            raise UserError(f"{path}: first conv takes {w.shape[1]} channels, expected 3 or {in_channels}")
    result = model.load_state_dict(state, strict=False)
    missing = [k for k in result.missing_keys if not k.endswith("num_batches_tracked")]
    if missing or result.unexpected_keys:
        what = (f"missing {', '.join(missing[:3])}" if missing
                else f"unexpected {', '.join(result.unexpected_keys[:3])}")
        raise UserError(f"{path}: weights do not fit {type(model).__name__} ({what}"
                        f"{' ...' if len(missing) + len(result.unexpected_keys) > 3 else ''})")


class TorchBackbone(Backbone):
    """Two CNN streams (RGB, stacked flow) of one architecture."""

    def __init__(self, name: str, rgb_net: nn.Module, flow_net: nn.Module, size: int, bound: float,
                 device: torch.device, batch: int = 16):
        self.name = name
        self.rgb_net = rgb_net.eval().to(device)
        self.flow_net = flow_net.eval().to(device)
        self.rgb_dim = rgb_net.out_dim
        self.flow_dim = flow_net.out_dim
        self.size = int(size)
        self.bound = float(bound)
        self.device = device
        self.batch = batch
        if name == "bninception":  # Caffe convention: BGR, 0..255, mean subtracted, no scaling
            self._mean, self._std, self._bgr = (104.0, 117.0, 128.0), (1.0,) * 3, True
            self._flow_mean, self._flow_std = 128.0, 1.0
        else:  # torchvision convention
            self._mean = (0.485 * 255, 0.456 * 255, 0.406 * 255)
            self._std = (0.229 * 255, 0.224 * 255, 0.225 * 255)
            self._bgr = False
            self._flow_mean, self._flow_std = 0.5 * 255, 0.226 * 255

    def _crop(self, img: np.ndarray) -> np.ndarray:
        """Resize to short side size*256/224, centre crop size x size (TSN test crop)."""
        h, w = img.shape[:2]
        short = int(round(self.size * 256 / 224))
        scale = short / min(h, w)
        nh, nw = max(self.size, int(round(h * scale))), max(self.size, int(round(w * scale)))
        if (nh, nw) != (h, w):
            img = cv2.resize(img, (nw, nh), interpolation=cv2.INTER_LINEAR)
        y0, x0 = (nh - self.size) // 2, (nw - self.size) // 2
        return img[y0:y0 + self.size, x0:x0 + self.size]

    @torch.no_grad()
    def _run(self, net: nn.Module, arrays: list[np.ndarray]) -> np.ndarray:
        outs = []
        for i in range(0, len(arrays), self.batch):
            x = torch.from_numpy(np.stack(arrays[i:i + self.batch])).permute(0, 3, 1, 2)
            outs.append(net(x.to(self.device, torch.float32)).float().cpu().numpy())
        return np.concatenate(outs).astype(np.float32)

    def rgb(self, frames: np.ndarray) -> np.ndarray:
        mean, std = np.array(self._mean, np.float32), np.array(self._std, np.float32)
        imgs = []
        for f in frames:
            c = self._crop(f).astype(np.float32)
            if self._bgr:
                c = c[..., ::-1]
            imgs.append((c - mean) / std)
        return self._run(self.rgb_net, imgs)

    def flow(self, flows: np.ndarray) -> np.ndarray:
        n = len(flows)
        as_img = [(self._crop(np.asarray(f, np.float32)) + self.bound) * (255.0 / (2 * self.bound))
                  for f in flows]
        stacks = []
        for k in range(n):
            # Flows k..k+4, the last ones repeated at the end of the sequence.
            chans = [as_img[min(k + j, n - 1)] for j in range(FLOW_STACK)]
            stacks.append((np.concatenate(chans, axis=2) - self._flow_mean) / self._flow_std)
        return self._run(self.flow_net, stacks)


def _weights_paths(cfg: DataConfig) -> tuple[Path, Path]:
    if not cfg.backbone_weights:
        raise UserError(f"data.backbone_weights: the '{cfg.backbone}' backbone needs a local weights "
                        "file (--set data.backbone_weights=PATH); 'simple' needs none")
    rgb = Path(cfg.backbone_weights)
    return rgb, Path(cfg.backbone_flow_weights) if cfg.backbone_flow_weights else rgb


def load_backbone(cfg: DataConfig, device: torch.device | str = "cpu") -> Backbone:
    """The backbone ``cfg.backbone`` names, with its weights loaded from local files."""
    device = torch.device(device)
    if cfg.backbone == "simple":
        return SimpleBackbone(cfg.flow_bound)
    if cfg.backbone not in BACKBONES:
        raise UserError(f"data.backbone: '{cfg.backbone}' is not one of {', '.join(BACKBONES)}")
    rgb_path, flow_path = _weights_paths(cfg)
    rgb_state = read_state_dict(rgb_path)
    flow_state = rgb_state if flow_path == rgb_path else read_state_dict(
        flow_path, "data.backbone_flow_weights")
    nets = []
    for state, path, chans in ((rgb_state, rgb_path, 3), (flow_state, flow_path, 2 * FLOW_STACK)):
        if cfg.backbone == "bninception":
            net = BNInception(in_channels=chans)
        else:
            try:
                depth = resnet_depth_from_state(state)
            except ValueError as e:
                raise UserError(f"{path}: not torchvision ResNet weights ({e})") from None
            net = ResNet(depth, in_channels=chans)
        _load_into(net, dict(state), path, chans)
        nets.append(net)
    log.info("backbone %s: rgb %d-d, flow %d-d", cfg.backbone, nets[0].out_dim, nets[1].out_dim)
    return TorchBackbone(cfg.backbone, nets[0], nets[1], cfg.backbone_size, cfg.flow_bound, device)


def backbone_dims(cfg: DataConfig) -> tuple[int, int]:
    """(rgb_dim, flow_dim) the configured backbone produces (loads weights for CNN backbones)."""
    b = load_backbone(cfg)
    return b.rgb_dim, b.flow_dim

