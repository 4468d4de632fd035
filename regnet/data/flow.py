"""Dense optical flow between consecutive resampled frames (OpenCV).

Methods: ``tvl1`` (TV-L1, what the authors use; needs opencv-contrib's ``cv2.optflow``),
``farneback`` (in every OpenCV build, ~30x faster on CPU) and ``auto`` = TV-L1 where the installed
OpenCV has it, Farneback otherwise. Measured on this project's 2-core CPU at 340x256: TV-L1 about
0.6 s per frame pair (~2 min per 10 s clip), Farneback about 0.02 s; hence the ``small`` and
``tiny`` presets choose Farneback at half size, while the paper preset keeps ``auto``.

Flow is clipped to ``±bound`` pixels (20, as the authors). Step ``k`` holds the flow from frame
``k`` to frame ``k + 1``; the last step repeats the last flow so there is one flow per frame.
"""

from __future__ import annotations

import logging

import cv2
import numpy as np

# The method names and their resolution live in the config (the feature-cache hash needs them).
from regnet.config import FLOW_METHODS, resolve_flow_method, tvl1_available  # noqa: F401

log = logging.getLogger(__name__)

class FlowComputer:
    """Holds the (reusable) solver for one method. TV-L1 on a CUDA device runs the batched torch
    port of OpenCV's solver (`regnet.data.tvl1_torch`: the same scheme and parameters, equal to
    float rounding), all pairs of a clip in one solve; elsewhere OpenCV's."""

    def __init__(self, method: str, bound: float, device: str = "cpu"):
        self.method = resolve_flow_method(method)
        self.bound = float(bound)
        self.torch_device = device if (self.method == "tvl1" and str(device).startswith("cuda")) else None
        self._tvl1 = cv2.optflow.DualTVL1OpticalFlow_create() \
            if self.method == "tvl1" and self.torch_device is None else None

    def pair(self, prev_gray: np.ndarray, next_gray: np.ndarray) -> np.ndarray:
        """Flow [H, W, 2] (dx, dy in pixels) from ``prev_gray`` to ``next_gray``, clipped."""
        if self._tvl1 is not None:
            flow = self._tvl1.calc(prev_gray, next_gray, None)
        else:
            flow = cv2.calcOpticalFlowFarneback(prev_gray, next_gray, None, pyr_scale=0.5, levels=3,
                                                winsize=15, iterations=3, poly_n=5, poly_sigma=1.2,
                                                flags=0)
        return np.clip(flow, -self.bound, self.bound)

    def frames(self, frames: np.ndarray) -> np.ndarray:
        """Flow per step for RGB frames [N, H, W, 3] uint8 -> [N, H, W, 2] float16 (N >= 2)."""
        if len(frames) < 2:
            raise ValueError("optical flow needs at least 2 frames")
        gray = [cv2.cvtColor(f, cv2.COLOR_RGB2GRAY) for f in frames]
        n, h, w = len(frames), gray[0].shape[0], gray[0].shape[1]
        # float16 halves memory (215 x 256 x 340 x 2); its 0.01 px resolution at +-20 is plenty.
        out = np.empty((n, h, w, 2), dtype=np.float16)
        if self.torch_device is not None:
            from regnet.data.tvl1_torch import tvl1_frames

            out[: n - 1] = np.clip(tvl1_frames(np.stack(gray), self.torch_device), -self.bound, self.bound)
        else:
            for k in range(n - 1):
                out[k] = self.pair(gray[k], gray[k + 1])
        out[n - 1] = out[n - 2]
        return out


def compute_flow(frames: np.ndarray, method: str = "auto", bound: float = 20.0) -> np.ndarray:
    return FlowComputer(method, bound).frames(frames)
