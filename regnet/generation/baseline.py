"""The paper's simple baseline (§V-E): detect visual events, paste the class's sound at each.

* Visual events: the motion energy of the picture (mean absolute difference of consecutive
  grayscale frames at ``data.fps``) and its step-to-step change; an event is a peak of that change
  above ``mean + k * std`` of the clip, at least ``min_gap_s`` apart, at the frame where it shows.
  Whether a class's sound goes with motion starting ('rise': a flash, a mouth opening) or stopping
  ('drop': a falling block hitting the floor) is chosen per class on its training clips: the
  polarity whose events best match the onsets detected in their recorded sound (F1 within ±0.1 s).
* The class's sound: from the class's *training* clips only, the snippet of ``snippet_s`` seconds
  that starts at the strongest audio onset (librosa onset strength) among them, faded out with a
  half Hann window. Real data has no clean track, so the recorded sound is used, as the paper does.
* Each test video gets silence with the snippet added at every event, cut to the video's length
  (at most ``data.clip_seconds``), and goes through `import_clips` as system 'baseline', so it can
  enter `evaluate` and every study like any other system.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from regnet.config import DataConfig, seconds_to_samples
from regnet.data.audio import load_audio
from regnet.data.manifest import ManifestRow, read_manifest
from regnet.data.video import read_video
from regnet.errors import UserError

log = logging.getLogger(__name__)


@dataclass
class BaselineConfig:
    threshold_std: float = 2.0  # k in mean + k * std of the clip's motion energy
    min_gap_s: float = 0.15
    snippet_s: float = 0.35
    pre_s: float = 0.01  # the snippet starts this long before the audio onset it is cut at


def motion_energy(frames: np.ndarray) -> np.ndarray:
    """``[N, H, W, 3]`` uint8 -> ``[N]``: mean |gray_i - gray_{i-1}| (0 for the first frame)."""
    gray = frames.astype(np.float32).mean(axis=3)
    e = np.zeros(len(frames), dtype=np.float64)
    if len(frames) > 1:
        e[1:] = np.abs(np.diff(gray, axis=0)).mean(axis=(1, 2))
    return e


POLARITIES = ("rise", "drop")


def event_steps(energy: np.ndarray, fps: float, bc: BaselineConfig, polarity: str = "rise") -> np.ndarray:
    """Steps i where the motion energy jumps up ('rise') or falls ('drop') from step i-1 to i."""
    from scipy.signal import find_peaks

    if len(energy) < 3 or not np.any(energy > 0):
        return np.zeros(0, dtype=int)
    change = np.diff(energy) * (1.0 if polarity == "rise" else -1.0)  # change[i-1]: step i-1 -> i
    change = np.clip(change, 0.0, None)
    height = change.mean() + bc.threshold_std * change.std()
    peaks, _ = find_peaks(np.concatenate([[0.0], change, [0.0]]), height=max(height, 1e-9),
                          distance=max(1, int(round(bc.min_gap_s * fps))))
    return peaks  # padded by one in front, so a peak's index is the step where the change shows


def _energy(video: str | Path, cfg: DataConfig) -> np.ndarray:
    return motion_energy(read_video(video, cfg.fps, cfg.clip_seconds, cfg.flow_size).frames)


def detect_visual_events(video: str | Path, cfg: DataConfig, bc: BaselineConfig | None = None,
                         polarity: str = "rise") -> np.ndarray:
    """Event times (seconds) in the first ``cfg.clip_seconds`` of ``video``."""
    return event_steps(_energy(video, cfg), cfg.fps, bc or BaselineConfig(), polarity) / cfg.fps


def _f1(found: np.ndarray, truth: np.ndarray, tol: float = 0.1) -> float:
    if len(found) == 0 or len(truth) == 0:
        return 0.0
    hit_f = sum(np.min(np.abs(truth - t)) <= tol for t in found)
    hit_t = sum(np.min(np.abs(found - t)) <= tol for t in truth)
    p, r = hit_f / len(found), hit_t / len(truth)
    return 0.0 if p + r == 0 else 2 * p * r / (p + r)


def _sound(r: ManifestRow, cfg: DataConfig) -> np.ndarray | None:
    """A training clip's recorded sound, or None (logged) when it has none: the others still serve."""
    try:
        return load_audio(r.audio_path or r.video_path, cfg.sample_rate, max_seconds=cfg.clip_seconds)
    except UserError as e:
        log.info("baseline: %s has no usable sound (%s)", r.video_id, e)
        return None


def choose_polarity(rows: list[ManifestRow], cfg: DataConfig, bc: BaselineConfig | None = None) -> str:
    """'rise' or 'drop', whichever matches the audio onsets of these (training) clips better."""
    import librosa

    bc = bc or BaselineConfig()
    score = dict.fromkeys(POLARITIES, 0.0)
    for r in rows:
        wav = _sound(r, cfg)
        if wav is None:
            continue
        onsets = librosa.onset.onset_detect(y=wav, sr=cfg.sample_rate, hop_length=cfg.hop_length, units="time")
        energy = _energy(r.video_path, cfg)
        for pol in POLARITIES:
            score[pol] += _f1(event_steps(energy, cfg.fps, bc, pol) / cfg.fps, np.asarray(onsets))
    return max(POLARITIES, key=lambda p: score[p])


def class_sound(rows: list[ManifestRow], cfg: DataConfig, bc: BaselineConfig | None = None) -> np.ndarray:
    """The snippet at the strongest audio onset among ``rows`` (one class's training clips)."""
    import librosa

    bc = bc or BaselineConfig()
    sr, n = cfg.sample_rate, int(round(bc.snippet_s * cfg.sample_rate))
    best, best_strength = None, -np.inf
    for r in rows:
        wav = _sound(r, cfg)
        if wav is None or len(wav) < n:
            continue
        env = librosa.onset.onset_strength(y=wav, sr=sr, hop_length=cfg.hop_length)
        i = int(np.argmax(env))
        if env[i] > best_strength:
            start = max(0, min(len(wav) - n, int(librosa.frames_to_samples(i, hop_length=cfg.hop_length))
                               - int(round(bc.pre_s * sr))))
            best, best_strength = wav[start:start + n].astype(np.float32), float(env[i])
    if best is None:
        raise UserError(f"no training clip of {bc.snippet_s:g} s or more with sound for this class")
    fade = np.ones(n, dtype=np.float32)
    half = n // 2
    fade[half:] = np.hanning(2 * (n - half))[n - half:]
    return best * fade


def paste(snippet: np.ndarray, times_s: np.ndarray, n_samples: int, sr: int) -> np.ndarray:
    """Silence of ``n_samples`` with ``snippet`` added at each time, clipped to [-1, 1]."""
    out = np.zeros(n_samples, dtype=np.float32)
    for t in times_s:
        a = int(round(t * sr))
        if 0 <= a < n_samples:
            k = min(len(snippet), n_samples - a)
            out[a:a + k] += snippet[:k]
    return np.clip(out, -1.0, 1.0)


def run_baseline(manifest: str | Path, out_dir: str | Path, cfg: DataConfig, split: str = "test",
                 system: str = "baseline", bc: BaselineConfig | None = None):
    """Baseline sound for every ``split`` video of the manifest -> ``out_dir`` with clips.csv."""
    import soundfile as sf

    from regnet.generation.importing import import_clips

    bc = bc or BaselineConfig()
    rows = read_manifest(manifest)
    todo = [r for r in rows if r.split == split]
    if not todo:
        raise UserError(f"{manifest}: no clips in split '{split}'")
    out_dir = Path(out_dir)
    src = out_dir / "baseline_wav"
    src.mkdir(parents=True, exist_ok=True)
    sounds: dict[str, tuple[np.ndarray, str]] = {}
    for r in todo:
        if r.class_name not in sounds:
            train = [t for t in rows if t.split == "train" and t.class_name == r.class_name]
            if not train:
                raise UserError(f"{manifest}: class '{r.class_name}' has no training clip to take its sound from")
            sounds[r.class_name] = class_sound(train, cfg, bc), choose_polarity(train, cfg, bc)
            log.info("baseline class %s: events where motion %ss", r.class_name, sounds[r.class_name][1])
        snippet, polarity = sounds[r.class_name]
        times = detect_visual_events(r.video_path, cfg, bc, polarity)
        seconds = min(cfg.clip_seconds, r.duration_s) if np.isfinite(r.duration_s) else cfg.clip_seconds
        wav = paste(snippet, times, seconds_to_samples(seconds, cfg.sample_rate), cfg.sample_rate)
        sf.write(str(src / f"{r.video_id}.wav"), wav, cfg.sample_rate)
        log.info("baseline %s: %d visual event(s)", r.video_id, len(times))
    return import_clips(src, out_dir, system, cfg, manifest=manifest)
