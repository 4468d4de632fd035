"""The synthetic benchmark (docs/paper.md): videos whose sound-making events are known exactly.

Classes (each a visible event with its own sound at that instant):

- ``strike``: a block falls and hits the floor -> a thump (low decaying sine + noise burst + ring);
- ``flash``: a lamp flashes and fades, the frame brightens -> a short downward chirp ("zap");
- ``mouth``: a face opens its mouth -> a voiced vowel (harmonics shaped by formants) while open.

Irrelevant sound the picture cannot explain is mixed on top: ``gauss`` (white noise σ=0.1, as in
Dog-gauss), ``other-class`` (another class's sounds at unrelated times, as in Dog-fireworks),
``speech`` (off-screen babble: formant-filtered voiced syllables with random pitch contours,
synthesised here, no TTS) or ``none``.

Layout (docs/architecture.md): ``DIR/videos/<id>.mp4`` (picture + mixed sound), ``DIR/clean/<id>.wav``
(the relevant track alone, float32 at ``sample_rate``), ``DIR/events/<id>.json`` and
``DIR/manifest.csv`` with train/test splits, plus ``DIR/synth.json`` (the parameters used).
Every video draws from its own RNG seeded by (seed, class, index), so the output is identical for
the same seed, and a video does not change when other classes are added or removed. Every
``short_every``-th video is shorter than ``seconds`` so padding gets exercised.
"""

from __future__ import annotations

import dataclasses
import json
import logging
from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np
from scipy.io import wavfile
from tqdm import tqdm

from regnet.data.manifest import ManifestRow, write_manifest
from regnet.data.video import write_video
from regnet.errors import UserError

log = logging.getLogger(__name__)

SYNTH_CLASSES = ("strike", "flash", "mouth")
IRRELEVANT_KINDS = ("gauss", "other-class", "speech", "none")
MIN_GAP_S = 0.6  # between events: the block needs time to be lifted again


@dataclass
class SynthConfig:
    seed: int = 0
    classes: tuple[str, ...] = SYNTH_CLASSES
    n_per_class: int = 4
    seconds: float = 2.0
    irrelevant: str = "gauss"
    size: tuple[int, int] = (112, 112)  # (width, height)
    fps: float = 24.0  # the source rate; extraction resamples to data.fps (21.5)
    sample_rate: int = 22050
    test_fraction: float = 0.25
    short_every: int = 4
    gauss_sigma: float = 0.1

    def validate(self) -> None:
        bad = [c for c in self.classes if c not in SYNTH_CLASSES]
        if bad or not self.classes:
            raise UserError(f"--classes: unknown class {bad[0] if bad else '(none)'} "
                            f"(choose from {', '.join(SYNTH_CLASSES)})")
        if self.irrelevant not in IRRELEVANT_KINDS:
            raise UserError(f"--irrelevant: '{self.irrelevant}' is not one of {', '.join(IRRELEVANT_KINDS)}")
        if self.n_per_class < 1:
            raise UserError("--n-per-class: must be at least 1")
        if not 0.5 <= self.seconds <= 60:
            raise UserError(f"--seconds: {self.seconds} is outside 0.5..60")
        w, h = self.size
        if not (32 <= w <= 1920 and 32 <= h <= 1080) or w % 2 or h % 2:
            raise UserError(f"--size: {w}x{h} must be even numbers between 32x32 and 1920x1080")
        if not 1 <= self.fps <= 120:
            raise UserError(f"--fps: {self.fps} is outside 1..120")


@dataclass
class SynthVideo:
    frames: np.ndarray  # [N, H, W, 3] uint8
    clean: np.ndarray  # relevant track [S] float32
    mixed: np.ndarray  # clean + irrelevant, clipped to [-1, 1]
    events: list[dict]
    irrelevant: dict
    duration_s: float


# ---------------------------------------------------------------------------------------------
# Sounds
# ---------------------------------------------------------------------------------------------
def _t(n: int, sr: int) -> np.ndarray:
    return np.arange(n, dtype=np.float64) / sr


def strike_sound(rng: np.random.Generator, sr: int) -> np.ndarray:
    n = int(0.35 * sr)
    t = _t(n, sr)
    f_body = rng.uniform(90, 170)
    f_ring = rng.uniform(800, 1400)
    body = np.exp(-t / 0.06) * np.sin(2 * np.pi * f_body * t)
    burst = np.exp(-t / 0.008) * rng.standard_normal(n)
    ring = np.exp(-t / 0.09) * np.sin(2 * np.pi * f_ring * t)
    return (0.45 * body + 0.25 * burst + 0.15 * ring).astype(np.float32)


def flash_sound(rng: np.random.Generator, sr: int) -> np.ndarray:
    dur = rng.uniform(0.08, 0.12)
    n = int(dur * sr)
    t = _t(n, sr)
    f0, f1 = rng.uniform(2800, 3600), rng.uniform(600, 1000)
    # Exponential sweep: the phase is the integral of f0 * (f1/f0)^(t/dur).
    k = np.log(f1 / f0) / dur
    phase = 2 * np.pi * f0 * (np.exp(k * t) - 1) / k
    env = np.minimum(1.0, t / 0.002) * np.exp(-t / (dur / 3))
    return (0.45 * env * np.sin(phase)).astype(np.float32)


FORMANTS = {"a": (730, 1090, 2440), "e": (530, 1840, 2480), "i": (270, 2290, 3010),
            "o": (570, 840, 2410), "u": (300, 870, 2240)}


def vowel(f0: np.ndarray, formants: tuple[float, ...], sr: int) -> np.ndarray:
    """Voiced sound with pitch track ``f0`` [S]: harmonics weighted by formant resonances."""
    phase = 2 * np.pi * np.cumsum(f0) / sr
    out = np.zeros(len(f0))
    f_mean = float(np.mean(f0))
    for h in range(1, int(4000 // f_mean) + 1):
        fh = h * f_mean
        gain = sum(1.0 / (1.0 + ((fh - fm) / (0.08 * fm + 50)) ** 2) for fm in formants)
        out += gain / h**0.5 * np.sin(h * phase)
    return out / (np.max(np.abs(out)) + 1e-9)


def mouth_envelope(t: np.ndarray, events: list[float]) -> np.ndarray:
    """Opening of the mouth in [0, 1]: 40 ms attack, 160 ms open, 60 ms release per event."""
    env = np.zeros_like(t)
    for te in events:
        u = t - te
        e = np.where(u < 0, 0.0, np.where(u < 0.04, u / 0.04, np.where(
            u < 0.2, 1.0, np.where(u < 0.26, 1.0 - (u - 0.2) / 0.06, 0.0))))
        env = np.maximum(env, e)
    return env


def babble(rng: np.random.Generator, n: int, sr: int) -> np.ndarray:
    """Off-screen speech-like babble: syllables of random vowels, pitch contours and lengths."""
    out = np.zeros(n)
    pos = int(rng.uniform(0, 0.15) * sr)
    base_f0 = rng.uniform(100, 220)
    while pos < n:
        syl = int(rng.uniform(0.1, 0.25) * sr)
        f0 = base_f0 * (1 + 0.15 * np.sin(np.linspace(0, rng.uniform(1, 3), syl)) + rng.uniform(-0.1, 0.1))
        v = vowel(f0, FORMANTS[rng.choice(list(FORMANTS))], sr) * np.hanning(syl)
        end = min(n, pos + syl)
        out[pos:end] += v[: end - pos]
        pos = end + int(rng.uniform(0.02, 0.2) * sr)
    return (0.15 * out).astype(np.float32)


def class_sound(cls: str, rng: np.random.Generator, sr: int) -> np.ndarray:
    """One event's sound for the impulsive classes (mouth is rendered over the whole track)."""
    return strike_sound(rng, sr) if cls == "strike" else flash_sound(rng, sr)


def render_track(cls: str, events: list[float], n: int, sr: int, rng: np.random.Generator) -> np.ndarray:
    track = np.zeros(n, dtype=np.float64)
    if cls == "mouth":
        t = _t(n, sr)
        f0 = rng.uniform(110, 180) * (1 + 0.03 * np.sin(2 * np.pi * 5 * t))
        track = 0.45 * mouth_envelope(t, events) * vowel(f0, FORMANTS[rng.choice(["a", "o", "e"])], sr)
    else:
        for te in events:
            s = class_sound(cls, rng, sr)
            i = int(round(te * sr))
            m = min(len(s), n - i)
            if m > 0:
                track[i:i + m] += s[:m]
    return track.astype(np.float32)


# ---------------------------------------------------------------------------------------------
# Pictures
# ---------------------------------------------------------------------------------------------
def _background(rng: np.random.Generator, w: int, h: int) -> np.ndarray:
    base = rng.uniform(30, 110, size=3)
    texture = cv2.GaussianBlur(rng.normal(0, 18, size=(h, w)).astype(np.float32), (0, 0), 2.0)[..., None]
    ramp = np.linspace(-12, 12, h, dtype=np.float32)[:, None, None]
    return np.clip(base[None, None, :] + texture + ramp, 0, 255).astype(np.uint8)


def _block_height(t: float, events: list[float]) -> float:
    """Height of the block above the floor in [0, 1]: falls in 0.2 s onto each event, rests
    0.1 s, then is lifted back over 0.25 s (silently)."""
    fall, rest, lift = 0.2, 0.1, 0.25
    for te in events:
        if te - fall <= t <= te:
            u = (t - (te - fall)) / fall
            return 1.0 - u * u
    prev = [te for te in events if te < t]
    if prev:
        d = t - prev[-1]
        if d < rest:
            return 0.0
        if d < rest + lift:
            return (d - rest) / lift
    return 1.0


def render_frames(cls: str, events: list[float], n_frames: int, fps: float, size: tuple[int, int],
                  rng: np.random.Generator) -> np.ndarray:
    w, h = size
    bg = _background(rng, w, h)
    frames = np.empty((n_frames, h, w, 3), dtype=np.uint8)
    colour = tuple(int(c) for c in rng.uniform(150, 255, size=3))
    if cls == "strike":
        floor = int(0.82 * h)
        bw = int(rng.uniform(0.14, 0.22) * w)
        x0 = int(rng.uniform(0.1 * w, 0.9 * w - bw))
        top = int(0.08 * h)
        for i in range(n_frames):
            f = bg.copy()
            cv2.rectangle(f, (0, floor), (w - 1, h - 1), (90, 70, 50), -1)
            y_bottom = floor - int(round(_block_height(i / fps, events) * (floor - top - bw)))
            cv2.rectangle(f, (x0, y_bottom - bw), (x0 + bw, y_bottom), colour, -1)
            frames[i] = f
    elif cls == "flash":
        r = int(rng.uniform(0.1, 0.16) * min(w, h))
        cx, cy = int(rng.uniform(r + 2, w - r - 2)), int(rng.uniform(r + 2, h - r - 2))
        for i in range(n_frames):
            t = i / fps
            past = [t - te for te in events if t >= te]
            glow = float(np.exp(-past[-1] / 0.08)) if past else 0.0
            f = np.clip(bg.astype(np.float32) + 70 * glow, 0, 255).astype(np.uint8)
            lamp = tuple(int(60 + (c - 60) * glow) for c in (255, 240, 150))
            cv2.circle(f, (cx, cy), r, lamp, -1, cv2.LINE_AA)
            cv2.circle(f, (cx, cy), r, (40, 40, 40), 1, cv2.LINE_AA)
            frames[i] = f
    elif cls == "mouth":
        r = int(rng.uniform(0.28, 0.36) * min(w, h))
        cx = int(rng.uniform(r + 2, w - r - 2))
        cy = int(rng.uniform(r + 2, h - r - 2))
        skin = tuple(int(c) for c in rng.uniform([180, 130, 100], [240, 190, 160]))
        t_all = np.arange(n_frames) / fps
        opening = mouth_envelope(t_all, events)
        for i in range(n_frames):
            f = bg.copy()
            cv2.circle(f, (cx, cy), r, skin, -1, cv2.LINE_AA)
            for ex in (-1, 1):
                cv2.circle(f, (cx + ex * r // 3, cy - r // 3), max(2, r // 9), (30, 30, 30), -1, cv2.LINE_AA)
            mh = max(1, int(round(1 + opening[i] * 0.3 * r)))
            cv2.ellipse(f, (cx, cy + r // 2), (r // 3, mh), 0, 0, 360, (90, 20, 30), -1, cv2.LINE_AA)
            frames[i] = f
    else:
        raise UserError(f"--classes: unknown class {cls}")
    return frames


# ---------------------------------------------------------------------------------------------
# One video, the whole set
# ---------------------------------------------------------------------------------------------
def _free_times(rng: np.random.Generator, duration: float, busy: list[float], k: int) -> list[float]:
    """Up to k times at least 0.3 s from ``busy`` and from each other (bounded tries)."""
    out: list[float] = []
    for _ in range(200):
        if len(out) == k:
            break
        t = float(rng.uniform(0.1, max(0.11, duration - 0.3)))
        if all(abs(t - b) > 0.3 for b in busy + out):
            out.append(round(t, 6))
    return sorted(out)


def _event_times(rng: np.random.Generator, duration: float, fps: float) -> list[float]:
    """Event times snapped to frames, at least MIN_GAP_S apart, inside [0.3, duration - 0.3]."""
    lo, hi = 0.3, duration - 0.3
    k = max(1, int((hi - lo) // MIN_GAP_S) + 1)
    k = int(rng.integers(max(1, k - 1), k + 1))
    slack = (hi - lo) - (k - 1) * MIN_GAP_S
    if slack < 0:
        return [round(round(max(lo, duration / 2) * fps) / fps, 6)]
    # Sorted uniform offsets spread the slack, keeping every gap >= MIN_GAP_S.
    offs = np.sort(rng.uniform(0, slack, size=k))
    times = lo + offs + MIN_GAP_S * np.arange(k)
    return [round(round(t * fps) / fps, 6) for t in times]


def make_video(cls: str, rng: np.random.Generator, scfg: SynthConfig, duration: float) -> SynthVideo:
    sr = scfg.sample_rate
    n_frames = int(round(duration * scfg.fps))
    duration = n_frames / scfg.fps
    n = int(round(duration * sr))
    events = _event_times(rng, duration, scfg.fps)
    frames = render_frames(cls, events, n_frames, scfg.fps, scfg.size, rng)
    clean = render_track(cls, events, n, sr, rng)
    irr: dict = {"kind": scfg.irrelevant}
    if scfg.irrelevant == "gauss":
        noise = rng.normal(0, scfg.gauss_sigma, size=n).astype(np.float32)
        irr["sigma"] = scfg.gauss_sigma
    elif scfg.irrelevant == "other-class":
        other = str(rng.choice([c for c in SYNTH_CLASSES if c != cls]))
        # Sounds at times the picture does not show: away from every visible event.
        cand = _free_times(rng, duration, events, max(1, int(duration / 1.0)))
        noise = 0.8 * render_track(other, cand, n, sr, rng)
        irr.update({"class": other, "events": [{"time_s": t} for t in cand]})
    elif scfg.irrelevant == "speech":
        noise = babble(rng, n, sr)
    else:
        noise = np.zeros(n, dtype=np.float32)
    mixed = np.clip(clean + noise, -1.0, 1.0).astype(np.float32)
    ev = [{"time_s": t, "class": cls, "frame": int(round(t * scfg.fps))} for t in events]
    return SynthVideo(frames=frames, clean=clean, mixed=mixed, events=ev, irrelevant=irr,
                      duration_s=duration)


def make_synth(out_dir: str | Path, scfg: SynthConfig) -> list[ManifestRow]:
    """Write the benchmark under ``out_dir``; returns the manifest rows (also in manifest.csv)."""
    scfg.validate()
    out = Path(out_dir)
    for sub in ("videos", "clean", "events"):
        (out / sub).mkdir(parents=True, exist_ok=True)
    n_test = 0 if scfg.n_per_class < 2 else max(1, int(round(scfg.n_per_class * scfg.test_fraction)))
    jobs = [(cls, j) for cls in scfg.classes for j in range(scfg.n_per_class)]
    rows = []
    for cls, j in tqdm(jobs, desc="synth", unit="video", disable=None):
        rng = np.random.default_rng([scfg.seed, SYNTH_CLASSES.index(cls), j])
        short = scfg.short_every > 0 and j % scfg.short_every == 1
        duration = scfg.seconds * (rng.uniform(0.5, 0.8) if short else 1.0)
        v = make_video(cls, rng, scfg, duration)
        vid = f"{cls}_{j:03d}"
        video_path = write_video(out / "videos" / f"{vid}.mp4", v.frames, scfg.fps, v.mixed,
                                 scfg.sample_rate)
        clean_path = out / "clean" / f"{vid}.wav"
        # scipy, not soundfile: libsndfile stamps float wavs with the time (PEAK chunk), which
        # would break byte-for-byte reproducibility.
        wavfile.write(clean_path, scfg.sample_rate, v.clean.astype(np.float32))
        events_path = out / "events" / f"{vid}.json"
        events_path.write_text(json.dumps({
            "video_id": vid, "class": cls, "duration_s": round(v.duration_s, 6), "fps": scfg.fps,
            "sample_rate": scfg.sample_rate, "events": v.events, "irrelevant": v.irrelevant},
            indent=1))
        split = "test" if j >= scfg.n_per_class - n_test else "train"
        rows.append(ManifestRow(video_id=vid, class_name=cls, split=split, video_path=video_path,
                                audio_path=None, duration_s=v.duration_s, clean_path=clean_path,
                                events_path=events_path))
    write_manifest(out / "manifest.csv", rows)
    params = dataclasses.asdict(scfg)
    (out / "synth.json").write_text(json.dumps(params, indent=1))
    log.info("synth: %d videos in %s", len(rows), out)
    return rows
