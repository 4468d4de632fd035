"""Loudness of a study's stimuli: measure every clip's sound (ITU-R BS.1770-4 integrated loudness,
pyloudnorm), refuse silent or clipped clips, and normalise the rest to one target with a true-peak
limit, so that a real-or-fake or a paired judgement is about the sound and not about its level.

Gain only: each clip gets one gain (target − measured loudness), lowered where the clip's true
peak would pass the limit (it then stays below the target and is marked ``peak-limited``); no
compressor or limiter touches the waveform. The loudness after normalisation is measured again on
the mp4 a rater receives (after AAC encoding), and both figures go into ``study.json``.
"""

from __future__ import annotations

import logging
import math
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np
import soundfile as sf

from regnet.data.audio import decode_audio
from regnet.errors import UserError

log = logging.getLogger(__name__)

METHOD = ("ITU-R BS.1770-4 integrated loudness (pyloudnorm); true peak from 4x oversampling; "
          "one gain per clip, lowered to keep the true peak under the limit")
# BS.1770 gates over 400 ms blocks: a shorter clip is measured over the clip repeated to one block
# (the integrated loudness of a repeated signal is that of the signal).
BLOCK_S = 0.4
# A sample at or above this share of full scale counts as clipped; more than CLIPPED_SHARE of
# such samples marks the clip clipped. (A clean master touches full scale in a few samples at most.)
FULL_SCALE = 0.999
CLIPPED_SHARE = 1e-3


@dataclass
class LoudnessOptions:
    target_lufs: float | None = -23.0  # None: measure and check, leave the level as it is
    peak_limit_dbtp: float = -1.0  # true-peak ceiling after the gain
    silence_floor_lufs: float = -70.0  # below this (or no audio) a clip is silent
    allow_silent: bool = False  # keep silent clips (unchanged) with a warning
    allow_clipped: bool = False  # keep clipped clips (normalised) with a warning


@dataclass
class Measurement:
    lufs: float  # -inf for digital silence
    true_peak_dbtp: float
    clipped_share: float  # share of samples at full scale
    seconds: float
    has_audio: bool = True


@dataclass
class ClipLoudness:
    system: str
    video_id: str
    clip: str
    lufs_before: float | None
    true_peak_before_dbtp: float | None
    clipped_share: float
    status: str  # ok | peak-limited | silent | clipped | measured (no target)
    gain_db: float = 0.0
    lufs_after: float | None = None  # filled from the study's media once written
    true_peak_after_dbtp: float | None = None


@dataclass
class LoudnessPlan:
    options: LoudnessOptions
    clips: dict[str, ClipLoudness] = field(default_factory=dict)  # by source clip path

    def gain_for(self, path: str | Path) -> float | None:
        """The gain to apply to this clip's sound; None: copy it as it is."""
        c = self.clips.get(str(path))
        if c is None or self.options.target_lufs is None or c.status == "silent":
            return None
        return c.gain_db

    def summary(self) -> dict:
        """The ``loudness`` section of study.json: settings, every clip, and per-system figures."""
        systems: dict[str, dict] = {}
        for c in self.clips.values():
            systems.setdefault(c.system, {"before": [], "after": [], "statuses": []})
            systems[c.system]["before"].append(c.lufs_before)
            systems[c.system]["after"].append(c.lufs_after)
            systems[c.system]["statuses"].append(c.status)
        per_system = {s: {"clips": len(d["before"]), **_stats("lufs_before", d["before"]),
                          **_stats("lufs_after", d["after"]),
                          "peak_limited": d["statuses"].count("peak-limited"),
                          "silent": d["statuses"].count("silent"), "clipped": d["statuses"].count("clipped")}
                      for s, d in systems.items()}
        o = self.options
        return {"method": METHOD, "target_lufs": o.target_lufs, "peak_limit_dbtp": o.peak_limit_dbtp,
                "silence_floor_lufs": o.silence_floor_lufs, "normalised": o.target_lufs is not None,
                "systems": per_system, "clips": [_json_clip(c) for c in self.clips.values()]}


def _finite(x: float | None) -> float | None:
    return None if x is None or not math.isfinite(x) else round(float(x), 2)


def _json_clip(c: ClipLoudness) -> dict:
    d = asdict(c)
    for k in ("lufs_before", "true_peak_before_dbtp", "lufs_after", "true_peak_after_dbtp", "gain_db"):
        d[k] = _finite(d[k])
    d["clipped_share"] = round(float(c.clipped_share), 5)
    return d


def _stats(prefix: str, values: list[float | None]) -> dict:
    v = [x for x in values if x is not None and math.isfinite(x)]
    if not v:
        return {f"{prefix}_mean": None, f"{prefix}_min": None, f"{prefix}_max": None}
    return {f"{prefix}_mean": round(float(np.mean(v)), 2), f"{prefix}_min": round(min(v), 2),
            f"{prefix}_max": round(max(v), 2)}


# ---- measuring ----------------------------------------------------------------------------------

def decode(path: str | Path) -> tuple[np.ndarray, int] | None:
    """The sound of any file ffmpeg reads, as float32 [samples, channels] at its own rate; None
    when it has no audio stream."""
    return decode_audio(path)


def measure_samples(x: np.ndarray, sr: int) -> Measurement:
    import pyloudnorm
    from scipy.signal import resample_poly

    x = np.asarray(x, dtype=np.float64)
    if x.ndim == 1:
        x = x[:, None]
    seconds = len(x) / sr
    if len(x) == 0:
        return Measurement(-math.inf, -math.inf, 0.0, 0.0)
    block = int(math.ceil(BLOCK_S * sr))
    y = np.tile(x, (int(math.ceil(block / len(x))), 1)) if len(x) < block else x
    lufs = float(pyloudnorm.Meter(sr).integrated_loudness(y if y.shape[1] > 1 else y[:, 0]))
    peak = float(np.max(np.abs(resample_poly(x, 4, 1, axis=0)))) if len(x) > 1 else float(np.max(np.abs(x)))
    peak = max(peak, float(np.max(np.abs(x))))
    clipped = float(np.mean(np.abs(x) >= FULL_SCALE))
    return Measurement(lufs, 20 * math.log10(peak) if peak > 0 else -math.inf, clipped, seconds)


def measure(path: str | Path) -> Measurement:
    got = decode(path)
    if got is None:
        return Measurement(-math.inf, -math.inf, 0.0, 0.0, has_audio=False)
    return measure_samples(*got)


# ---- planning -------------------------------------------------------------------------------------

def plan(sources: dict[str, tuple[str, str]], opts: LoudnessOptions,
         measurements: dict[str, Measurement]) -> LoudnessPlan:
    """``sources``: clip path -> (system, video id). Refuses (UserError naming the clip) a silent
    or clipped clip unless the matching allow flag is set; then it warns loudly."""
    out = LoudnessPlan(opts)
    for path, (system, video) in sources.items():
        m = measurements[path]
        silent = not m.has_audio or not math.isfinite(m.lufs) or m.lufs < opts.silence_floor_lufs
        clipped = m.clipped_share > CLIPPED_SHARE
        if silent:
            why = "no audio track" if not m.has_audio else (
                f"integrated loudness {m.lufs:.1f} LUFS is below the floor of {opts.silence_floor_lufs:g} LUFS")
            if not opts.allow_silent:
                raise UserError(f"{path} (system {system}, video {video}): silent clip, {why}; fix the clip, "
                                "or add --allow-silent to show it as it is")
            log.warning("!!! LOUDNESS: %s (system %s, video %s) is silent (%s); kept unchanged because of "
                        "--allow-silent: raters will hear nothing", path, system, video, why)
        elif clipped:
            why = f"{100 * m.clipped_share:.2f}% of its samples sit at full scale"
            if not opts.allow_clipped:
                raise UserError(f"{path} (system {system}, video {video}): clipped clip, {why}; fix the clip, "
                                "or add --allow-clipped to use it anyway")
            log.warning("!!! LOUDNESS: %s (system %s, video %s) is clipped (%s); used anyway because of "
                        "--allow-clipped", path, system, video, why)
        status = "silent" if silent else "clipped" if clipped else "ok"
        gain = 0.0
        if opts.target_lufs is None:
            status = "measured" if status == "ok" else status
        elif not silent:
            gain = opts.target_lufs - m.lufs
            if m.true_peak_dbtp + gain > opts.peak_limit_dbtp:
                gain = opts.peak_limit_dbtp - m.true_peak_dbtp
                status = "peak-limited" if status == "ok" else status
        out.clips[path] = ClipLoudness(system, video, path, m.lufs if m.has_audio else None,
                                       m.true_peak_dbtp if m.has_audio else None, m.clipped_share, status, gain)
    n_limited = sum(c.status == "peak-limited" for c in out.clips.values())
    if n_limited:
        log.warning("loudness: %d clip(s) stay below %s LUFS to keep their true peak under %s dBTP",
                    n_limited, opts.target_lufs, opts.peak_limit_dbtp)
    return out


def apply_gain(source: Path, gain_db: float, wav_out: Path) -> float:
    """Write ``source``'s sound times the gain to a float wav; returns its length in seconds."""
    got = decode(source)
    if got is None:
        raise UserError(f"{source}: has no sound to normalise")
    x, sr = got
    y = x * (10.0 ** (gain_db / 20.0))
    sf.write(str(wav_out), y.astype(np.float32), sr, subtype="FLOAT", format="WAV")
    return len(x) / sr
