"""Autoregressive sampling from a `WaveNet`: naive, reference (cached queues) and fast.

* `naive_sample` re-runs the network over the last receptive field for every sample: the cost the
  "fast WaveNet" scheme (Paine et al. 2016) removes; kept only as the benchmark baseline.
* `ReferenceSampler` is the plain PyTorch cached sampler: each layer keeps a queue of its last
  ``(k - 1) * d + 1`` inputs (shifted with ``torch.cat``, as r9y9 does), so a step costs one
  matrix-vector product per layer. It is the CPU path and the yardstick for the fast one.
* `FastSampler` runs the same step over static buffers: one ring buffer for all layers (shared
  write position, power-of-two length), conditioning projected for a whole chunk of steps at once
  (one GEMM instead of one GEMV per layer and step), uniforms pre-drawn per chunk, and every index
  held in device tensors, so on CUDA the step is captured once in a CUDA graph and replayed;
  weights may be bf16/fp16 there.

All three consume one `UniformStream`, so under the same seed they draw the same numbers for the
same (step, clip) and can be compared sample for sample. Clips of different lengths share a batch:
each is padded with zero mel frames to the longest and its samples are cut back afterwards.
"""

from __future__ import annotations

import logging
import math
from dataclasses import dataclass

import torch
import torch.nn.functional as F

from regnet.vocoder.mixture import draw_uniforms, sample_mol
from regnet.vocoder.wavenet import WaveNet, add_skip, effective_weight, finish_skips

log = logging.getLogger(__name__)

_SQRT_HALF = math.sqrt(0.5)


class UniformStream:
    """A reproducible stream of per-step uniforms ``[B, n_mix + 1]``, drawn in fixed blocks so the
    numbers do not depend on how a consumer slices them."""

    BLOCK = 512

    def __init__(self, batch: int, n_mix: int, seed: int, device: torch.device | str = "cpu"):
        self.batch, self.width = batch, n_mix + 1
        self.device = torch.device(device)
        self.gen = torch.Generator(device=self.device)
        self.gen.manual_seed(seed)
        self._buf = torch.empty(0, batch, self.width, device=self.device)
        self._pos = 0

    def take(self, n: int) -> torch.Tensor:
        parts = []
        while n > 0:
            if self._pos >= self._buf.shape[0]:
                self._buf = draw_uniforms((self.BLOCK, self.batch, self.width), self.gen, self.device)
                self._pos = 0
            k = min(n, self._buf.shape[0] - self._pos)
            parts.append(self._buf[self._pos:self._pos + k])
            self._pos += k
            n -= k
        return parts[0] if len(parts) == 1 else torch.cat(parts)


@dataclass
class PackedWaveNet:
    """Weights as the incremental step uses them: weight norm resolved, the k taps of each dilated
    conv laid side by side (``[G, k * R]``, oldest tap first), the gate conv's bias folded into the
    conditioning projection, and the residual/skip 1x1 convs stacked into one matrix."""

    first_w: torch.Tensor  # [1, R]
    first_b: torch.Tensor  # [R]
    taps_w: list[torch.Tensor]  # L x [G, k * R]
    cond_w: torch.Tensor  # [L * G, cin]
    cond_b: torch.Tensor  # [L * G]
    os_w: list[torch.Tensor]  # L x [R + S, G / 2]
    os_b: list[torch.Tensor]  # L x [R + S]
    head_w1: torch.Tensor
    head_b1: torch.Tensor
    head_w2: torch.Tensor
    head_b2: torch.Tensor
    dilations: list[int]
    kernel: int
    residual: int
    gate: int
    skip: int
    skip_rule: str  # vocoder.skip_rule: how the layers' skips combine (regnet.vocoder.wavenet)

    @classmethod
    def from_model(cls, model: WaveNet, dtype: torch.dtype = torch.float32) -> "PackedWaveNet":
        cfg = model.cfg

        def cast(t: torch.Tensor) -> torch.Tensor:
            return t.detach().to(dtype).contiguous()

        taps, os_w, os_b, cw, cb = [], [], [], [], []
        for layer in model.conv_layers:
            w = effective_weight(layer.conv)  # [G, R, k]
            taps.append(cast(w.permute(0, 2, 1).reshape(w.shape[0], -1)))
            cw.append(effective_weight(layer.conv1x1c)[:, :, 0])
            cb.append(layer.conv1x1c.bias.detach() + layer.conv.bias.detach())
            os_w.append(cast(torch.cat([effective_weight(layer.conv1x1_out)[:, :, 0],
                                        effective_weight(layer.conv1x1_skip)[:, :, 0]])))
            os_b.append(cast(torch.cat([layer.conv1x1_out.bias, layer.conv1x1_skip.bias])))
        h1, h2 = model.last_conv_layers[1], model.last_conv_layers[3]
        return cls(
            first_w=cast(effective_weight(model.first_conv)[:, :, 0].T),
            first_b=cast(model.first_conv.bias),
            taps_w=taps, cond_w=cast(torch.cat(cw)), cond_b=cast(torch.cat(cb)), os_w=os_w, os_b=os_b,
            head_w1=cast(effective_weight(h1)[:, :, 0]), head_b1=cast(h1.bias),
            head_w2=cast(effective_weight(h2)[:, :, 0]), head_b2=cast(h2.bias),
            dilations=[layer.dilation for layer in model.conv_layers], kernel=cfg.kernel_size,
            residual=cfg.residual_channels, gate=cfg.gate_channels, skip=cfg.skip_channels,
            skip_rule=model.skip_rule)

    @property
    def n_layers(self) -> int:
        return len(self.taps_w)

    def project_cond(self, c: torch.Tensor) -> torch.Tensor:
        """Upsampled conditioning ``[B, cin, n]`` -> every layer's gate input ``[n, B, L * G]``."""
        return F.linear(c.permute(2, 0, 1).to(self.cond_w.dtype), self.cond_w, self.cond_b)

    def layer(self, i: int, taps: torch.Tensor, cond: torch.Tensor, x: torch.Tensor,
              skips: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """One gated residual layer for one step. ``taps [B, k * R]``, ``cond [B, G]``."""
        h = torch.addmm(cond, taps, self.taps_w[i].T)
        a, b = h.chunk(2, dim=1)
        z = torch.tanh(a) * torch.sigmoid(b)
        os = torch.addmm(self.os_b[i], z, self.os_w[i].T)
        x = (os[:, : self.residual] + x) * _SQRT_HALF
        # The same rule as the full forward (one function), so CPU tests of the reference and
        # fast samplers also cover the CUDA-graph path, which replays these very ops.
        return x, add_skip(skips, os[:, self.residual:], i, self.skip_rule)

    def head(self, skips: torch.Tensor) -> torch.Tensor:
        y = torch.relu(finish_skips(skips, self.n_layers, self.skip_rule))
        y = torch.relu(torch.addmm(self.head_b1, y, self.head_w1.T))
        return torch.addmm(self.head_b2, y, self.head_w2.T).float()


def upsample_window(model: WaveNet, mel: torch.Tensor, f0: int, f1: int) -> torch.Tensor:
    """Upsampled conditioning for mel frames [f0, f1) only, with enough neighbouring frames that
    the result equals the same slice of upsampling the whole mel; steps past the mel's end are
    zeros (they are never kept)."""
    ctx = model.upsample_net.context_frames
    lo, hi = max(0, f0 - ctx), min(mel.shape[-1], f1 + ctx)
    hop = model.hop
    c = model.upsample_net(mel[:, :, lo:hi])[:, :, (f0 - lo) * hop:(f1 - lo) * hop]
    return F.pad(c, (0, (f1 - f0) * hop - c.shape[-1]))


@torch.no_grad()
def naive_sample(model: WaveNet, mel: torch.Tensor, n_samples: int, stream: UniformStream) -> torch.Tensor:
    """The baseline: the full network over the last receptive field, once per sample. ``[B, T]``."""
    model.eval()
    B = mel.shape[0]
    rf = model.receptive_field
    c = model.upsample_net(mel)[:, :, :n_samples]
    x = torch.zeros(B, rf + n_samples, device=mel.device)  # rf zeros of history, then the samples
    for t in range(n_samples):
        # Window of the last rf steps, never reaching before step 0: the convs' own causal zero
        # padding then matches the full-sequence pass exactly.
        lo = max(0, t - rf + 1)
        x_prev = x[:, rf + lo - 1:rf + t].unsqueeze(1)  # the sample before each window step
        y = model.forward_upsampled(x_prev, c[:, :, lo:t + 1])[:, :, -1]
        x[:, rf + t] = sample_mol(y, stream.take(1)[0], model.cfg.log_scale_min)
    return x[:, rf:]


class ReferenceSampler:
    """Plain PyTorch cached sampling (per-layer queues). The CPU path and the fast path's yardstick."""

    def __init__(self, model: WaveNet, dtype: torch.dtype = torch.float32):
        model.eval()
        self.model = model
        self.packed = PackedWaveNet.from_model(model, dtype)
        self.lsm = model.cfg.log_scale_min

    @torch.no_grad()
    def run(self, mel: torch.Tensor, n_samples: int, stream: UniformStream,
            teacher: torch.Tensor | None = None, record: bool = False,
            progress=None) -> tuple[torch.Tensor, torch.Tensor | None]:
        """Sample ``n_samples`` per clip. With ``teacher [B, T]`` the true previous sample is fed
        instead of the drawn one (for checking against the full forward pass). Returns samples
        ``[B, T]`` and, with ``record``, the mixture params ``[B, T, 3 * n_mix]``."""
        p = self.packed
        B, dev, dt = mel.shape[0], mel.device, p.first_w.dtype
        c = self.model.upsample_net(mel)[:, :, :n_samples]
        cond = p.project_cond(c)  # [T, B, L*G]
        k = p.kernel
        queues = [torch.zeros(B, (k - 1) * d + 1, p.residual, device=dev, dtype=dt) for d in p.dilations]
        x_prev = torch.zeros(B, 1, device=dev, dtype=dt)
        out = torch.empty(B, n_samples, device=dev)
        params = torch.empty(B, n_samples, 3 * self.model.cfg.n_mix, device=dev) if record else None
        G = p.gate
        for t in range(n_samples):
            x = torch.addmm(p.first_b, x_prev, p.first_w)
            skips = torch.zeros(B, p.skip, device=dev, dtype=dt)
            for i, d in enumerate(p.dilations):
                queues[i] = torch.cat([queues[i][:, 1:], x.unsqueeze(1)], dim=1)
                taps = queues[i][:, ::d].reshape(B, -1)  # oldest tap first, as packed
                x, skips = p.layer(i, taps, cond[t, :, i * G:(i + 1) * G], x, skips)
            y = p.head(skips)
            s = sample_mol(y, stream.take(1)[0], self.lsm)
            out[:, t] = s
            if record:
                params[:, t] = y
            x_prev = (teacher[:, t:t + 1] if teacher is not None else s.unsqueeze(1)).to(dt)
            if progress is not None:
                progress.update(B)
        return out, params


class FastSampler:
    """Cached sampling over static buffers; on CUDA the step is one CUDA-graph replay.

    ``chunk_frames`` mel frames are upsampled and projected at a time (default: as many as fit in
    ``cond_budget_bytes``); ``dtype`` sets the weights and queues (fp32, or bf16/fp16 on CUDA);
    ``use_graph`` None = on CUDA only.
    """

    def __init__(self, model: WaveNet, dtype: torch.dtype = torch.float32, use_graph: bool | None = None,
                 chunk_frames: int | None = None, cond_budget_bytes: int = 256 << 20, steps_per_graph: int = 8):
        model.eval()
        self.model = model
        self.packed = PackedWaveNet.from_model(model, dtype)
        self.dtype = dtype
        self.lsm = model.cfg.log_scale_min
        self.use_graph = use_graph
        self.chunk_frames = chunk_frames
        self.cond_budget = cond_budget_bytes
        self.steps_per_graph = steps_per_graph
        p = self.packed
        span = max((p.kernel - 1) * d + 1 for d in p.dilations)
        self.ring = 1 << (span - 1).bit_length()  # power of two >= the longest queue
        delays = torch.tensor([[(p.kernel - 1 - j) * d for j in range(p.kernel)] for d in p.dilations])
        self._delays = delays  # [L, k]
        self._graph_key = None

    MAX_CHUNK_FRAMES = 32

    def _frames_per_chunk(self, B: int, n_frames: int) -> int:
        if self.chunk_frames:
            return min(self.chunk_frames, n_frames)
        p = self.packed
        per_frame = self.model.hop * B * p.n_layers * p.gate * p.cond_w.element_size()
        # Bounded by memory, and by a cap: past a few thousand steps a larger GEMM gains nothing.
        return max(1, min(self.cond_budget // max(1, per_frame), self.MAX_CHUNK_FRAMES, n_frames))

    def _alloc(self, B: int, n: int, dev: torch.device, record: bool) -> None:
        p = self.packed
        dt = self.dtype
        self.buf = torch.zeros(p.n_layers, self.ring, B, p.residual, device=dev, dtype=dt)
        self.pos = torch.zeros((), dtype=torch.long, device=dev)
        self.tc = torch.zeros((), dtype=torch.long, device=dev)
        self.x_prev = torch.zeros(B, 1, device=dev, dtype=dt)
        self.cond = torch.zeros(n, B, p.n_layers * p.gate, device=dev, dtype=dt)
        self.u = torch.zeros(n, B, self.model.cfg.n_mix + 1, device=dev)
        self.out = torch.zeros(n, B, device=dev)
        self.params = torch.zeros(n, B, 3 * self.model.cfg.n_mix, device=dev) if record else None
        self.delays = self._delays.to(dev)

    def _step(self) -> None:
        """One sample for the whole batch; only in-place updates of static tensors (graph-safe)."""
        p = self.packed
        B, G = self.x_prev.shape[0], p.gate
        wpos = torch.remainder(self.pos, self.ring).view(1)
        idx = torch.remainder(self.pos - self.delays, self.ring)  # [L, k]
        cond = self.cond.index_select(0, self.tc.view(1))[0]
        x = torch.addmm(p.first_b, self.x_prev, p.first_w)
        skips = torch.zeros(B, p.skip, device=x.device, dtype=x.dtype)
        for i in range(p.n_layers):
            ring = self.buf[i]
            ring.index_copy_(0, wpos, x.unsqueeze(0))
            taps = ring.index_select(0, idx[i]).transpose(0, 1).reshape(B, -1)
            x, skips = p.layer(i, taps, cond[:, i * G:(i + 1) * G], x, skips)
        y = p.head(skips)
        s = sample_mol(y, self.u.index_select(0, self.tc.view(1))[0], self.lsm)
        self.out.index_copy_(0, self.tc.view(1), s.unsqueeze(0))
        if self.params is not None:
            self.params.index_copy_(0, self.tc.view(1), y.unsqueeze(0))
        self.x_prev.copy_(s.unsqueeze(1))
        self.pos.add_(1)
        self.tc.add_(1)

    def _capture(self) -> None:
        """Record ``steps_per_graph`` steps in one CUDA graph (after a warm-up on a side stream)."""
        state = [t.clone() for t in (self.buf, self.pos, self.tc, self.x_prev, self.out)]
        side = torch.cuda.Stream()
        side.wait_stream(torch.cuda.current_stream())
        with torch.cuda.stream(side):
            for _ in range(2):
                self._step()
        torch.cuda.current_stream().wait_stream(side)
        for dst, src in zip((self.buf, self.pos, self.tc, self.x_prev, self.out), state):
            dst.copy_(src)
        self.graph = torch.cuda.CUDAGraph()
        with torch.cuda.graph(self.graph):
            for _ in range(self.steps_per_graph):
                self._step()

    @torch.no_grad()
    def run(self, mel: torch.Tensor, n_samples: int, stream: UniformStream,
            teacher: torch.Tensor | None = None, record: bool = False,
            progress=None) -> tuple[torch.Tensor, torch.Tensor | None]:
        """Same contract as `ReferenceSampler.run`."""
        B, dev = mel.shape[0], mel.device
        hop = self.model.hop
        n_frames = math.ceil(n_samples / hop)
        fpc = self._frames_per_chunk(B, n_frames)
        n_chunk = fpc * hop
        graph = (self.use_graph if self.use_graph is not None else dev.type == "cuda") and teacher is None \
            and not record and dev.type == "cuda"
        if graph and n_chunk % self.steps_per_graph:
            graph = False  # a replay must never run past the chunk's buffers
        key = (B, n_chunk, str(dev), record)
        if self._graph_key != key:
            self._alloc(B, n_chunk, dev, record)
            self.graph = None
            self._graph_key = key
        else:
            for t in (self.buf, self.pos, self.x_prev):
                t.zero_()
        if graph and self.graph is None:
            self._capture()
        outs, params = [], []
        for f0 in range(0, n_frames, fpc):
            f1 = f0 + fpc
            c = upsample_window(self.model, mel, f0, f1)
            self.cond.copy_(self.packed.project_cond(c))
            n = min(n_chunk, n_samples - f0 * hop)
            self.u[:n].copy_(stream.take(n))
            self.tc.zero_()
            if graph:
                for _ in range(math.ceil(n / self.steps_per_graph)):
                    self.graph.replay()
            else:
                for j in range(n):
                    self._step()
                    if teacher is not None:
                        t = f0 * hop + j
                        self.x_prev.copy_(teacher[:, t:t + 1])
            outs.append(self.out[:n].T.clone())
            if record:
                params.append(self.params[:n].transpose(0, 1).clone())
            if progress is not None:
                progress.update(n * B)
        if graph:
            torch.cuda.synchronize(dev)
        return torch.cat(outs, dim=1), (torch.cat(params, dim=1) if record else None)
