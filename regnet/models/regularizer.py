"""Audio forwarding regularizer: a 2-layer BiLSTM over the true mel whose output, a narrow (D) and
temporally coarse (one vector every S mel frames) code, is concatenated to the visual features.

Two forms, picked by S against the clip's mel length (authors' names in brackets):

- S >= mel_frames ('lstm_last'): BiLSTM with hidden D; the final hidden state of the last layer's
  backward direction (their ``h[-1]``), through Linear D -> D, repeated over every visual step.
- S < mel_frames ('lstm_sample'): BiLSTM with hidden D/2; forward outputs at frames 0, S, 2S, ...
  and backward outputs one frame later, concatenated (D), each held for S/4 visual steps, cut to
  the visual length.

The VS variant feeds the visual features too (each step repeated over its 4 mel frames).
"""

from __future__ import annotations

import torch
from torch import nn

from regnet.config import MEL_FRAMES_PER_STEP as MEL_PER_STEP, Config
from regnet.errors import UserError


class AudioRegularizer(nn.Module):
    def __init__(self, cfg: Config):
        super().__init__()
        m, d = cfg.model, cfg.data
        self.n_steps = d.n_steps
        self.sees_visual = m.regularizer == "vs"
        self.sample = m.aux_sample
        self.last = m.aux_sample >= d.mel_frames
        if not self.last and (m.aux_sample % MEL_PER_STEP or m.aux_sample <= 0):
            raise UserError(f"model.aux_sample: S={m.aux_sample} must be a positive multiple of "
                            f"{MEL_PER_STEP} (mel frames per visual step)")
        if not self.last and m.aux_dim % 2:
            raise UserError(f"model.aux_dim: D={m.aux_dim} must be even when S < mel_frames "
                            "(half forward, half backward)")
        in_dim = d.n_mels + (m.visual_dim if self.sees_visual else 0)
        hidden = m.aux_dim if self.last else m.aux_dim // 2
        self.BiLSTM = nn.LSTM(in_dim, hidden, num_layers=2, batch_first=True, bidirectional=True)
        if self.last:
            self.BiLSTM_proj = nn.Linear(m.aux_dim, m.aux_dim)

    def forward(self, mel: torch.Tensor, visual: torch.Tensor | None = None) -> torch.Tensor:
        """mel [B, n_mels, M] (+ visual [B, T, Dv] for VS) -> [B, n_steps, D]."""
        x = mel.transpose(1, 2)
        if self.sees_visual:
            x = torch.cat([x, visual.to(x.dtype).repeat_interleave(MEL_PER_STEP, dim=1)], dim=2)
        out, (h, _) = self.BiLSTM(x)
        if self.last:
            code = self.BiLSTM_proj(h[-1])
            return code[:, None, :].expand(-1, self.n_steps, -1)
        frames = out.shape[1]
        half = out.shape[2] // 2
        idx = torch.arange(0, frames, self.sample, device=out.device)
        fwd = out[:, idx, :half]
        # Backward state one frame later has seen the frame at idx too; clamp for the clip's end.
        bwd = out[:, (idx + 1).clamp(max=frames - 1), half:]
        code = torch.cat([fwd, bwd], dim=2)
        code = code.repeat_interleave(self.sample // MEL_PER_STEP, dim=1)
        return code[:, : self.n_steps]
