"""`evaluate`: join clips with their references, measure every clip, summarise per system and class.

Writes ``objective.md`` (table, mean ± half-width of the t-based 95% interval), ``objective.csv``
(long: system, class, metric, n, mean, ci95_low, ci95_high, ci_method, embedder, weights_sha256,
sample_rate_hz) and ``objective_clips.csv`` (one row per clip; the simulated raters read it).
Clips without a usable reference or file are skipped and listed, the rest go on.

With released embedders (``EvaluateOptions.released``: PANNs CNN14, VGGish, PaSST; see
`regnet.metrics.embedders`) it adds FD per system and class against the references, per-clip KL
(softmax and sigmoid) and the Inception Score, each with a bootstrap interval over
clips, and ``objective_clips_embedders.csv`` (long: one row per clip and metric). Every such number
carries the embedder's name, its weight file's sha256 and its input sample rate. Each embedder
reads the clip and reference files again at its own rate through `regnet.data.audio.load_audio`
(the project's one resampler), cut or zero-padded to the clip length.

With ``synchformer`` among them it adds each clip's predicted audio-visual offset (s) of its first
and last 4.8 s and DeSync (their mean absolute value, av-benchmark's definition) per system and
class with a bootstrap interval: the clip's audio against the video it was made for (the
manifest's video, else the clips.csv source_video, else the clip file), read through
`regnet.data.video.read_video` at 25 fps and `load_audio` at 16 kHz, uncut and unpadded. Clips
shorter than 4.8 s are skipped for DeSync, as av-benchmark's loaders drop them, and named.

With ``imagebind`` it adds each clip's IB-score, the cosine of ImageBind's embedding of the clip's
audio (16 kHz through `load_audio`, up to the clip length) and of the same video Synchformer uses
(a frame every 2 s, `_ib_frames`), and its mean per system and class with a bootstrap interval
(`ib_metrics`; av-benchmark's IB-Score, see `regnet.metrics.embedders.imagebind`).

With ``clap`` (LAION-CLAP, 48 kHz) it adds FD of the CLAP audio embeddings like the other
embedders (``fd_clap``), and with ``clap_tokenizer`` (roberta-base's vocab.json + merges.txt) each
clip's CLAP score, the cosine of its audio embedding with the text embedding of its class's prompt
(``clap_prompt``, default "the sound of {class}"), and its mean per system and class with a
bootstrap interval (`clap_scores`; ``clap_score_clap``).
"""

from __future__ import annotations

import logging
import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np
import pandas as pd

from regnet.atomic import atomic_path
from regnet.clips import ClipRecord, agreed_settings, read_clips
from regnet.config import DataConfig, seconds_to_samples
from regnet.data.manifest import read_manifest
from regnet.data.mel import fit_length
from regnet.errors import UserError
from regnet.data.audio import load_audio
from regnet.metrics.envelope import envelope_correlation
from regnet.metrics.mel_l2 import mel_l2
from regnet.metrics.onsets import DEFAULT_TOLERANCE_S, detect_onsets, score_onsets
from regnet.metrics.references import (ONSET_REFERENCES, REFERENCES, Reference, ReferenceIndex,
                                       read_event_times)
from regnet.metrics.stats import mean_ci

if TYPE_CHECKING:
    from regnet.metrics.embedders import EmbedderSpec, ReleasedEmbedder

log = logging.getLogger(__name__)

# Per-clip metric columns, in table order, with their table headings.
METRICS = {
    "mel_l2_x100": "waveform mel L2 (×10⁻²) ↓",
    "onset_precision": "onset P ↑",
    "onset_recall": "onset R ↑",
    "onset_f1": "onset F1 ↑",
    "onset_acc": "onset Acc ↑",
    "onset_ap": "onset AP ↑",
    "envelope_corr": "envelope r ↑",
    "kl_posterior": "KL ↓",
}
SET_METRICS = {"frechet_distance": "FD ↓"}
ALL_CLASSES = "all"
SUMMARY_COLUMNS = ["system", "class", "metric", "n", "mean", "ci95_low", "ci95_high", "ci_method",
                   "embedder", "weights_sha256", "sample_rate_hz"]
# Metrics of the released embedders, per embedder name: metric prefix -> table heading.
RELEASED_METRICS = {"fd": "FD ↓", "kl_softmax": "KL softmax ↓", "kl_sigmoid": "KL sigmoid ↓",
                    "is": "IS ↑", "desync": "DeSync ↓", "ib_score": "IB-score ↑", "clap_score": "CLAP score ↑"}
SYNC_MODEL = "synchformer"  # `regnet.metrics.embedders.synchformer`: audio and video, not an audio embedder
IB_MODEL = "imagebind"  # `regnet.metrics.embedders.imagebind`: audio and video too, treated like the sync model
CLAP_MODEL = "clap"  # `regnet.metrics.embedders.clap`: an audio embedder (FD) with a text side (CLAP score)


@dataclass
class EvaluateOptions:
    reference: str = "real"
    onset_reference: str = "auto"
    tolerance_s: float = DEFAULT_TOLERANCE_S
    embedding: Path | None = None
    real_system: str = "real"
    released: list[EmbedderSpec] = field(default_factory=list)  # released embedders (NAME=PATH)
    vggish_pca: Path | None = None  # optional VGGish PCA parameters
    clap_tokenizer: Path | None = None  # roberta-base's vocab.json + merges.txt, for the CLAP score
    clap_prompt: str = "the sound of {class}"  # CLAP score text per class; {class} = the class name
    bootstrap: int = 200  # bootstrap replicates for the released embedders' intervals
    seed: int = 0

    def __post_init__(self):
        if self.reference not in REFERENCES:
            raise UserError(f"--reference: '{self.reference}' is not one of {', '.join(REFERENCES)}")
        if self.onset_reference not in ONSET_REFERENCES:
            raise UserError(f"--onset-reference: '{self.onset_reference}' is not one of "
                            f"{', '.join(ONSET_REFERENCES)}")
        if not (self.tolerance_s > 0):
            raise UserError(f"--tolerance: must be > 0 seconds, got {self.tolerance_s}")
        if self.bootstrap < 0:
            raise UserError(f"--bootstrap: must be >= 0, got {self.bootstrap}")
        names = [s.name for s in self.released]
        if len(set(names)) != len(names):
            raise UserError(f"--embedding: {', '.join(sorted({n for n in names if names.count(n) > 1}))} given twice")
        if "{class}" not in self.clap_prompt:
            raise UserError(f"--clap-prompt: must contain {{class}} (where the class name goes), got "
                            f"'{self.clap_prompt}'")
        try:
            _prompt(self.clap_prompt, "x")
        except (KeyError, IndexError, ValueError) as e:
            raise UserError(f"--clap-prompt: '{self.clap_prompt}' is not a template with only {{class}} "
                            f"({type(e).__name__}: {e})") from None


@dataclass
class Skipped:
    where: str
    reason: str


@dataclass
class EvaluationResult:
    clips: pd.DataFrame  # one row per clip
    summary: pd.DataFrame  # long: system, class, metric, n, mean, ci95_low, ci95_high
    skipped: list[Skipped] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    # long: system, video_id, class, metric, value, embedder, weights_sha256, sample_rate_hz
    embedder_clips: pd.DataFrame | None = None
    embedders: list[dict] = field(default_factory=list)  # name, file, sha256, sample rate, window


class _AudioCache:
    """Each reference is decoded (and its onsets detected) once, however many systems use it."""

    def __init__(self, cfg: DataConfig):
        self.cfg = cfg
        self.n = cfg.clip_samples
        self._wav: dict[Path, np.ndarray] = {}
        self._onsets: dict[Path, object] = {}

    def wav(self, path: Path) -> np.ndarray:
        if path not in self._wav:
            self._wav[path] = fit_length(load_audio(path, self.cfg.sample_rate, self.cfg.clip_seconds), self.n)
        return self._wav[path]

    def onsets(self, path: Path):
        if path not in self._onsets:
            self._onsets[path] = detect_onsets(self.wav(path), self.cfg.sample_rate, self.cfg.hop_length)
        return self._onsets[path]


def measure_clip(wav: np.ndarray, ref_wav: np.ndarray, ref_onsets_s: np.ndarray, cfg: DataConfig,
                 tolerance_s: float = DEFAULT_TOLERANCE_S) -> dict[str, float]:
    """All weight-free metrics of one clip against one reference (both already at clip length)."""
    det = detect_onsets(wav, cfg.sample_rate, cfg.hop_length)
    s = score_onsets(det, ref_onsets_s, tolerance_s)
    return {"mel_l2_x100": mel_l2(wav, ref_wav, cfg), "onset_precision": s.precision,
            "onset_recall": s.recall, "onset_f1": s.f1, "onset_acc": s.accuracy, "onset_ap": s.ap,
            "envelope_corr": envelope_correlation(wav, ref_wav, cfg),
            "n_onsets": s.n_detected, "n_reference_onsets": s.n_reference}


def load_clip_lists(paths: list[str | Path]) -> tuple[list[ClipRecord], list[Skipped]]:
    """Clips from several clips.csv files; a repeated (system, video_id) keeps the first."""
    out, skipped, seen = [], [], set()
    for p in paths:
        for c in read_clips(p, check_files=False):
            key = (c.system, c.video_id)
            if key in seen:
                skipped.append(Skipped(f"{p}: {c.system}/{c.video_id}", "listed twice; first kept"))
                continue
            seen.add(key)
            out.append(c)
    return out, skipped


def clip_seconds_of(paths: list[str | Path]) -> float | None:
    """The clip length the clips.csv files record (``clip_seconds``; files recording different
    ones are a `UserError` naming two), else, for files written before it was recorded, the
    median ``duration_s`` of their clips; None when no clips.csv gives either."""
    return _clip_length(paths)[0]


def _clip_length(paths: list[str | Path]) -> tuple[float | None, bool]:
    """`clip_seconds_of`, and whether it was recorded (not inferred)."""
    recorded = agreed_settings(paths, why="clips measured together need one length (give it with "
                               "--set data.clip_seconds=...)").clip_seconds
    if recorded is not None:
        return recorded, True
    durations = [c.duration_s for p in paths for c in read_clips(p, check_files=False)]
    finite = [d for d in durations if np.isfinite(d) and d > 0]
    return (float(np.median(finite)) if finite else None), False


def data_config_for_clips(cfg: DataConfig, clips: list[str | Path], explicit: bool) -> DataConfig:
    """``cfg``, or, unless the clip length was given ``explicit``-ly, ``cfg`` at the clips' own
    length (`clip_seconds_of`: recorded in clips.csv, else inferred from an older file's
    durations): generated clips are as long as the config that made them, and measuring a 2 s clip
    padded to the 10 s default would dilute every number."""
    if not explicit:
        seconds, recorded = _clip_length(clips)
        # An inferred length within a step of the config's is the config's (durations are cut to
        # the source); a recorded one is the length the clips were made at.
        if seconds is not None and (abs(seconds - cfg.clip_seconds) > 1.0 / cfg.fps
                                    or (recorded and seconds != cfg.clip_seconds)):
            log.info("clip length %.3g s taken from clips.csv %s", seconds,
                     "clip_seconds" if recorded else "duration_s")
            cfg.clip_seconds = seconds
    return cfg


def evaluate(clips_paths: list[str | Path], cfg: DataConfig, opts: EvaluateOptions,
             manifest: str | Path | None = None) -> EvaluationResult:
    """Measure every clip of every clips.csv against its reference (see `regnet.metrics.references`)."""
    if not clips_paths:
        raise UserError("--clips: give at least one clips.csv")
    clips, skipped = load_clip_lists(clips_paths)
    return evaluate_clips(clips, cfg, opts, read_manifest(manifest) if manifest else None, skipped)


def evaluate_clips(clips: list[ClipRecord], cfg: DataConfig, opts: EvaluateOptions,
                   manifest_rows: list | None = None, skipped: list[Skipped] | None = None) -> EvaluationResult:
    """`evaluate` on clip records already in hand (e.g. the clips a study shows)."""
    skipped = list(skipped or [])
    index = ReferenceIndex(clips, manifest_rows, opts.real_system)
    cache = _AudioCache(cfg)
    embedder = _load_embedder(opts)
    released = _load_released(opts)
    records, wavs, ref_wavs, pairs, videos = [], [], [], [], []
    for clip in clips:
        where = f"{clip.system}/{clip.video_id}"
        try:
            ref = index.reference(clip, opts.reference)
            ref_wav = cache.wav(ref.audio_path)
            onsets_s, onset_src = _reference_onsets(ref, opts.onset_reference, cache, cfg)
            wav = fit_length(load_audio(clip.wav_path, cfg.sample_rate, cfg.clip_seconds), cache.n)
        except UserError as e:
            skipped.append(Skipped(where, str(e)))
            continue
        m = measure_clip(wav, ref_wav, onsets_s, cfg, opts.tolerance_s)
        records.append({"system": clip.system, "video_id": clip.video_id, "class": ref.class_name,
                        "reference": opts.reference, "reference_source": ref.source,
                        "onset_reference": onset_src, "clip_seconds": cfg.clip_seconds, **m})
        if embedder is not None:
            wavs.append(wav)
            ref_wavs.append(ref_wav)
        pairs.append((Path(clip.wav_path), ref.audio_path))
        videos.append(_video_of(clip, index))
    per_clip = pd.DataFrame(records)
    notes = [f"reference: {opts.reference}; onset tolerance ±{opts.tolerance_s * 1000:.0f} ms; "
             f"clip length {cfg.clip_seconds:g} s at {cfg.sample_rate} Hz",
             "mel L2 here is recomputed from each clip's waveform, so it includes the vocoder's error; the "
             "paper's Table III number is RegNet's predicted mel to the clean mel (`ablate`, "
             "regnet.metrics.predicted_mel)"]
    # Each system that departs from the paper's says so once (clips.csv's deviations column).
    for system, devs in {c.system: getattr(c, "deviations", "") for c in clips}.items():
        if devs:
            notes.append(f"{system} deviates from the paper's system: {devs}")
    embeddings = None
    if embedder is not None and records:
        e_gen, p_gen = embedder.embed(wavs, cfg.sample_rate)
        e_ref, p_ref = embedder.embed(ref_wavs, cfg.sample_rate)
        from regnet.metrics.embedding import kl_divergence

        per_clip["kl_posterior"] = kl_divergence(p_ref, p_gen)
        embeddings = (e_gen, e_ref)
        notes.append(f"embedding metrics from {embedder.path} ({len(embedder.classes)} classes)")
    else:
        notes.append("embedding metrics (FD, KL) skipped: no --embedding weights given"
                     if embedder is None else "embedding metrics: no clips measured")
    if skipped:
        log.warning("skipped %d clip(s):\n%s", len(skipped),
                    "\n".join(f"  {s.where}: {s.reason}" for s in skipped))
    if per_clip.empty:
        raise UserError("evaluate: no clip could be measured (" +
                        "; ".join(f"{s.where}: {s.reason}" for s in skipped[:3]) + ")")
    summary = summarise(per_clip, embeddings)
    result = EvaluationResult(per_clip, summary, skipped, notes)
    if released:
        rows, clip_rows = [], []
        for emb in released:
            if emb.name == SYNC_MODEL:
                r, c, short = sync_metrics(emb, per_clip, [g for g, _ in pairs], videos, cfg.clip_seconds, opts)
                if short:
                    notes.append(f"{emb.name}: {len(short)} clip(s) shorter than {emb.config.window_s:g} s (or "
                                 "unreadable) left out of DeSync: " + ", ".join(short))
            elif emb.name == IB_MODEL:
                r, c, short = ib_metrics(emb, per_clip, [g for g, _ in pairs], videos, cfg.clip_seconds, opts)
                if short:
                    notes.append(f"{emb.name}: {len(short)} clip(s) with audio under 25 ms or an unreadable "
                                 "or too short video left out of the IB-score: " + ", ".join(short))
            else:
                r, c = released_metrics(emb, per_clip, pairs, cfg.clip_seconds, opts)
            rows += r
            clip_rows += c
            # per-clip values also as columns of objective_clips.csv, where the human-vs-machine
            # report (mturk.report.objective) and the simulated raters read per-clip metrics
            for metric in dict.fromkeys(x["metric"] for x in c):
                if metric.startswith("sync_offset_"):
                    continue  # a signed offset is no better-or-worse score; its |.| is DeSync
                per_clip[metric] = [x["value"] for x in c if x["metric"] == metric]
            result.embedders.append({"embedder": emb.name, "file": str(emb.path), "sha256": emb.sha256,
                                     "sample_rate_hz": emb.sample_rate, "input": emb.window_note})
        result.summary = pd.concat([summary, pd.DataFrame(rows, columns=SUMMARY_COLUMNS)],
                                   ignore_index=True)
        result.embedder_clips = pd.DataFrame(clip_rows, columns=[
            "system", "video_id", "class", "metric", "value", "embedder", "weights_sha256", "sample_rate_hz"])
        notes.append(f"released embedders: {', '.join(e.name for e in released)}; intervals: "
                     f"bootstrap over clips, {opts.bootstrap} replicates, seed {opts.seed}")
        for emb in released:
            if emb.name == CLAP_MODEL:
                notes.append(f"clap: CLAP score = cosine of each clip's audio embedding with that of the text "
                             f"'{opts.clap_prompt}' for its class" if emb.text_fn is not None else
                             "clap: FD only; the CLAP score needs --clap-tokenizer (roberta-base's vocab.json "
                             "and merges.txt)")
    return result


def _load_released(opts: EvaluateOptions) -> list[ReleasedEmbedder]:
    from regnet.metrics.embedders import load_released

    if opts.vggish_pca and not any(s.name == "vggish" for s in opts.released):
        raise UserError("--vggish-pca: give --embedding vggish=PATH too")
    if opts.clap_tokenizer and not any(s.name == CLAP_MODEL for s in opts.released):
        raise UserError("--clap-tokenizer: give --embedding clap=PATH too")
    out = []
    for spec in opts.released:
        kw = {"pca_path": opts.vggish_pca} if spec.name == "vggish" and opts.vggish_pca else {}
        if spec.name == CLAP_MODEL:
            kw = {"tokenizer_dir": opts.clap_tokenizer}
        emb = load_released(spec, **kw)
        log.info("%s: %s, sha256 %s, input %d Hz", emb.name, emb.path, emb.sha256, emb.sample_rate)
        out.append(emb)
    return out


def _embed_files(emb: ReleasedEmbedder, paths: list[Path], clip_seconds: float) -> dict:
    """Each distinct file read at the embedder's rate (cut / zero-padded to the clip length), embedded."""
    from tqdm import tqdm

    n = seconds_to_samples(clip_seconds, emb.sample_rate)
    unique = list(dict.fromkeys(paths))
    outs = {}
    batch = 8
    for i in tqdm(range(0, len(unique), batch), desc=f"{emb.name} @ {emb.sample_rate} Hz", unit="batch",
                  disable=None):
        chunk = unique[i:i + batch]
        wavs = [fit_length(load_audio(p, emb.sample_rate, clip_seconds), n) for p in chunk]
        outs.update(zip(chunk, emb.embed(wavs)))
    return outs


def released_metrics(emb: ReleasedEmbedder, per_clip: pd.DataFrame, pairs: list[tuple[Path, Path]],
                     clip_seconds: float, opts: EvaluateOptions) -> tuple[list[dict], list[dict]]:
    """Summary rows (FD, mean KL, IS per system and class, with bootstrap intervals) and per-clip
    KL rows of one released embedder; ``pairs[k]`` = (clip file, reference file) of per_clip row k."""
    from regnet.metrics.fad import bootstrap_frechet
    from regnet.metrics.posteriors import bootstrap_inception_score, kl_sigmoid, kl_softmax

    outs = _embed_files(emb, [p for pair in pairs for p in pair], clip_seconds)
    gen = [outs[g] for g, _ in pairs]
    ref = [outs[r] for _, r in pairs]
    tag = {"embedder": emb.name, "weights_sha256": emb.sha256, "sample_rate_hz": emb.sample_rate}
    clip_rows: list[dict] = []
    kl = {}
    if emb.has_logits:
        g_logits = np.stack([o.logits for o in gen])
        r_logits = np.stack([o.logits for o in ref])
        kl = {"kl_softmax": kl_softmax(r_logits, g_logits), "kl_sigmoid": kl_sigmoid(r_logits, g_logits)}
        for k, row in enumerate(per_clip[["system", "video_id", "class"]].to_dict("records")):
            for name, values in kl.items():
                clip_rows.append({**row, "metric": f"{name}_{emb.name}", "value": float(values[k]), **tag})
    scores = {}
    if emb.text_fn is not None:  # CLAP: each clip's audio against its class's prompt
        scores["clap_score"] = clap_scores(emb, per_clip["class"].tolist(), gen, opts.clap_prompt)
        for k, row in enumerate(per_clip[["system", "video_id", "class"]].to_dict("records")):
            clip_rows.append({**row, "metric": f"clap_score_{emb.name}", "value": float(scores["clap_score"][k]),
                              **tag})
    empty = sum(1 for o in gen + ref if len(o.embeddings) == 0)
    if empty:
        log.warning("%s: %d clip/reference file(s) too short for one frame; they add nothing to FD",
                    emb.name, empty)
    rows = []
    for system, cls, mask in _groups(per_clip):
        idx = np.flatnonzero(mask.to_numpy())
        fd = bootstrap_frechet([gen[i].embeddings for i in idx], [ref[i].embeddings for i in idx],
                               opts.bootstrap, opts.seed)
        stats = {"fd": fd}
        for name, values in {**kl, **scores}.items():
            stats[name] = _clip_mean_ci(values[idx], opts)
        if emb.has_logits:
            stats["is"] = bootstrap_inception_score(g_logits[idx], opts.bootstrap, opts.seed)
        for name, ci in stats.items():
            rows.append({"system": system, "class": cls, "metric": f"{name}_{emb.name}", "n": ci.n,
                         "mean": ci.value, "ci95_low": ci.low, "ci95_high": ci.high,
                         "ci_method": "bootstrap" if np.isfinite(ci.low) else "", **tag})
    return rows, clip_rows


def _prompt(template: str, class_name: str) -> str:
    """The CLAP score's text for a class: ``{class}`` replaced by the class name, underscores as
    spaces (``dog_barking`` -> "dog barking")."""
    return template.format(**{"class": str(class_name).replace("_", " ")})


def clap_scores(emb: ReleasedEmbedder, classes: list[str], gen: list, template: str) -> np.ndarray:
    """Per clip, the cosine of its (unit) audio embedding with its class prompt's (unit) text
    embedding; ``gen[k]`` is clip k's `EmbedOutput`."""
    names = list(dict.fromkeys(classes))
    text = dict(zip(names, emb.embed_text([_prompt(template, c) for c in names])))
    return np.array([float(g.embeddings.mean(0) @ text[c]) for g, c in zip(gen, classes)])


def _video_of(clip: ClipRecord, index: ReferenceIndex) -> Path:
    """The video a clip's sound was made for: av-benchmark pairs generated audio with the
    ground-truth video."""
    row = index.manifest_row(clip)
    if row is not None and row.video_path:
        return Path(row.video_path)
    src = (clip.source_video or "").strip()
    if src and Path(src).is_file():
        return Path(src)
    return Path(clip.clip_path)


def _sync_frames(path: Path, clip_seconds: float, side: int) -> np.ndarray:
    """uint8 frames [T, side, side, 3] at 25 fps: short side scaled to ``side``, centre-cropped
    (av-benchmark: Resize(224, bicubic) + CenterCrop(224); ffmpeg's area scaling here)."""
    from regnet.data.video import probe, read_video
    from regnet.metrics.embedders.synchformer import FPS, centre_crop, video_size

    info = probe(path)
    if not info.has_video or not info.size:
        raise UserError(f"{path}: no video stream")
    decoded = read_video(path, FPS, clip_seconds, video_size(*info.size, side), info=info)
    return centre_crop(decoded.frames, side)


def sync_metrics(model, per_clip: pd.DataFrame, wav_paths: list[Path], video_paths: list[Path],
                 clip_seconds: float, opts: EvaluateOptions) -> tuple[list[dict], list[dict], list[str]]:
    """Synchformer's per-clip offsets and DeSync (summary rows with bootstrap intervals, per-clip
    rows, and the clips left out as too short or unreadable); row k of per_clip is wav_paths[k]
    against video_paths[k]."""
    from tqdm import tqdm

    from regnet.metrics.embedders.synchformer import desync, predicted_offsets

    n = len(per_clip)
    first, last, ds = np.full(n, np.nan), np.full(n, np.nan), np.full(n, np.nan)
    keys = per_clip[["system", "video_id"]].astype(str).agg("/".join, axis=1).tolist()
    short: list[str] = []
    frames_of: dict[Path, np.ndarray] = {}
    video_cache: dict = {}
    # one video decoded (and its video features computed) at a time, however many systems were
    # made for it
    for k in tqdm(sorted(range(n), key=lambda i: str(video_paths[i])), desc=f"{model.name} @ 25 fps",
                  unit="clip", disable=None):
        try:
            if video_paths[k] not in frames_of:
                frames_of.clear()
                video_cache.clear()
                frames_of[video_paths[k]] = _sync_frames(video_paths[k], clip_seconds, model.config.image)
            wav = load_audio(wav_paths[k], model.sample_rate, clip_seconds)
        except UserError as e:
            log.warning("%s: %s: %s", model.name, keys[k], e)
            short.append(keys[k])
            continue
        logits = model.predict(frames_of[video_paths[k]], wav, video_cache)
        if logits is None:
            short.append(keys[k])
            continue
        first[k], last[k] = predicted_offsets(logits)
        ds[k] = desync(logits[:1], logits[1:])[0]
    values = {f"sync_offset_first_s_{model.name}": first, f"sync_offset_last_s_{model.name}": last,
              f"desync_{model.name}": ds}
    rows, clip_rows = _per_clip_metric_rows(model, per_clip, values, f"desync_{model.name}", opts)
    return rows, clip_rows, sorted(short)


def _ib_frames(path: Path, clip_seconds: float, side: int) -> np.ndarray:
    """uint8 frames [T >= 2, H, W, 3], short side ``side``, of the clip's video for ImageBind:
    av-benchmark's ``int(0.5 * clip length)`` frames, one every 2 s from 0 (the last repeated when
    the video is one frame short, as its VideoDataset does; shorter is an error, which drops the
    video there too). A clip under 4 s, which av-benchmark cannot score (one frame, no pair), gets
    its first and last frame at 25 fps: ImageBind's own video loader takes a clip shorter than
    its 2 s window whole and subsamples 2 frames, its first and last. Scaled by ffmpeg's area
    filter (av-benchmark: torchvision Resize(224, bicubic)), long side truncated as there."""
    from regnet.data.video import probe, read_video
    from regnet.metrics.embedders.imagebind import PAIR_FPS, VIDEO_FPS, video_frame_count
    from regnet.metrics.embedders.synchformer import video_size

    info = probe(path)
    if not info.has_video or not info.size:
        raise UserError(f"{path}: no video stream")
    size = video_size(*info.size, side)
    n = video_frame_count(clip_seconds)
    if n < 2:
        frames = read_video(path, PAIR_FPS, clip_seconds, size, info=info).frames
        return frames[[0, -1]]
    frames = read_video(path, VIDEO_FPS, n / VIDEO_FPS, size, info=info).frames
    if len(frames) == n - 1:
        frames = np.concatenate([frames, frames[-1:]])
    if len(frames) < n:
        raise UserError(f"{path}: video too short for ImageBind: {len(frames)} of {n} frames at {VIDEO_FPS:g} fps")
    return frames[:n]


def ib_metrics(model, per_clip: pd.DataFrame, wav_paths: list[Path], video_paths: list[Path],
               clip_seconds: float, opts: EvaluateOptions) -> tuple[list[dict], list[dict], list[str]]:
    """ImageBind's per-clip IB-score (the cosine of the clip's audio embedding and its video's)
    and its mean per system and class with a bootstrap interval (summary rows, per-clip rows, and
    the clips left out); row k of per_clip is wav_paths[k] against video_paths[k]. The audio is
    read at 16 kHz up to the clip length, unpadded (ImageBind pads the fbank itself)."""
    from tqdm import tqdm

    from regnet.metrics.embedders.imagebind import ib_score

    n = len(per_clip)
    ib = np.full(n, np.nan)
    keys = per_clip[["system", "video_id"]].astype(str).agg("/".join, axis=1).tolist()
    short: list[str] = []
    video_emb: dict[Path, np.ndarray | None] = {}
    # one video embedded at a time (its 3 x (frames - 1) clips through the 32-layer vision tower),
    # however many systems were made for it
    for k in tqdm(sorted(range(n), key=lambda i: str(video_paths[i])), desc=f"{model.name} @ 16 kHz",
                  unit="clip", disable=None):
        if video_paths[k] not in video_emb:
            video_emb.clear()
            try:
                frames = _ib_frames(video_paths[k], clip_seconds, model.config.image)
                video_emb[video_paths[k]] = model.video_embedding(frames)
            except UserError as e:
                log.warning("%s: %s: %s", model.name, keys[k], e)
                video_emb[video_paths[k]] = None
        try:
            wav = load_audio(wav_paths[k], model.sample_rate, clip_seconds)
        except UserError as e:
            log.warning("%s: %s: %s", model.name, keys[k], e)
            wav = None
        v = video_emb[video_paths[k]]
        a = None if wav is None or v is None else model.audio_embedding(wav)
        if a is None:
            short.append(keys[k])
            continue
        ib[k] = ib_score(v, a)
    metric = f"ib_score_{model.name}"
    rows, clip_rows = _per_clip_metric_rows(model, per_clip, {metric: ib}, metric, opts)
    return rows, clip_rows, sorted(short)


def _clip_mean_ci(values: np.ndarray, opts: EvaluateOptions):
    """The mean of per-clip values with its percentile bootstrap interval (at least 1000
    replicates, none when --bootstrap 0)."""
    from regnet.metrics.posteriors import bootstrap_mean

    return bootstrap_mean(values, max(opts.bootstrap, 1000) if opts.bootstrap else 0, opts.seed)


def _per_clip_metric_rows(model, per_clip: pd.DataFrame, values: dict[str, np.ndarray], summarised: str,
                          opts: EvaluateOptions) -> tuple[list[dict], list[dict]]:
    """An audio-visual model's per-clip rows (each array of ``values``, row k = per_clip's row k)
    and the summary rows of ``values[summarised]``: its mean per system and class with a bootstrap
    interval; every row tagged with the model's name, weights sha256 and sample rate."""
    tag = {"embedder": model.name, "weights_sha256": model.sha256, "sample_rate_hz": model.sample_rate}
    clip_rows = [{**row, "metric": name, "value": float(v[k]), **tag}
                 for k, row in enumerate(per_clip[["system", "video_id", "class"]].to_dict("records"))
                 for name, v in values.items()]
    rows = []
    for system, cls, mask in _groups(per_clip):
        ci = _clip_mean_ci(values[summarised][np.flatnonzero(mask.to_numpy())], opts)
        rows.append({"system": system, "class": cls, "metric": summarised, "n": ci.n,
                     "mean": ci.value, "ci95_low": ci.low, "ci95_high": ci.high,
                     "ci_method": "bootstrap" if np.isfinite(ci.low) else "", **tag})
    return rows, clip_rows


def _load_embedder(opts: EvaluateOptions):
    if opts.embedding is None:
        return None
    from regnet.metrics.embedding import load_embedder

    return load_embedder(opts.embedding)


def _reference_onsets(ref: Reference, mode: str, cache: _AudioCache, cfg: DataConfig):
    use_events = mode == "events" or (mode == "auto" and ref.events_path is not None)
    if use_events:
        if ref.events_path is None:
            raise UserError(f"video {ref.video_id}: no events_path in the manifest (--onset-reference events)")
        times = read_event_times(ref.events_path)
        return times[times < cfg.clip_seconds], "events"
    return cache.onsets(ref.audio_path).times_s, "audio"


def _groups(per_clip: pd.DataFrame):
    """(system, class, row mask) for every class and for all classes of each system."""
    for system in dict.fromkeys(per_clip["system"]):
        sys_mask = per_clip["system"] == system
        classes = list(dict.fromkeys(per_clip.loc[sys_mask, "class"]))
        for cls in classes:
            yield system, cls, sys_mask & (per_clip["class"] == cls)
        if len(classes) > 1:
            yield system, ALL_CLASSES, sys_mask


def summarise(per_clip: pd.DataFrame, embeddings=None) -> pd.DataFrame:
    """Long summary table: mean and t-based 95% CI per system, class and metric; FD per set."""
    out = []
    for system, cls, mask in _groups(per_clip):
        for metric in METRICS:
            if metric not in per_clip.columns:
                continue
            ci = mean_ci(per_clip.loc[mask, metric].to_numpy(dtype=float))
            out.append({"system": system, "class": cls, "metric": metric, "n": ci.n,
                        "mean": ci.mean, "ci95_low": ci.low, "ci95_high": ci.high,
                        "ci_method": "t" if np.isfinite(ci.low) else ""})
        if embeddings is not None:
            from regnet.metrics.embedding import frechet_distance

            idx = np.flatnonzero(mask.to_numpy())
            fd = frechet_distance(embeddings[0][idx], embeddings[1][idx])
            out.append({"system": system, "class": cls, "metric": "frechet_distance", "n": len(idx),
                        "mean": fd, "ci95_low": math.nan, "ci95_high": math.nan})
    return pd.DataFrame(out, columns=SUMMARY_COLUMNS)


def _cell(row) -> str:
    if row is None or not np.isfinite(row["mean"]):
        return "–"
    if np.isfinite(row["ci95_low"]):
        return f"{row['mean']:.3f} ± {(row['ci95_high'] - row['ci95_low']) / 2:.3f}"
    return f"{row['mean']:.3f}"


def render_markdown(result: EvaluationResult, command: str | None = None) -> str:
    s = result.summary
    metrics = [m for m in list(METRICS) + list(SET_METRICS) if m in set(s["metric"])]
    heads = {**METRICS, **SET_METRICS}
    lines = ["# Objective metrics", ""]
    if command:
        lines += [f"Command: `{command}`", ""]
    lines += [f"- {n}" for n in result.notes] + [""]
    lines.append("| system | class | clips | " + " | ".join(heads[m] for m in metrics) + " |")
    lines.append("|---|---|---:|" + "---:|" * len(metrics))
    for (system, cls), g in s.groupby(["system", "class"], sort=False):
        by_metric = {r["metric"]: r for r in g.to_dict("records")}
        n = max(int(r["n"]) for r in by_metric.values())
        lines.append(f"| {system} | {cls} | {n} | " +
                     " | ".join(_cell(by_metric.get(m)) for m in metrics) + " |")
    lines += ["", "Cells: mean ± half-width of the t-based 95% interval over clips (no interval with "
              "one clip; FD is one number per set). P = precision of detected onsets against the "
              "reference onsets (proxy for Sound-Redundant), R = recall (proxy for Sound-Missing), "
              "Acc = fraction of clips with the right number of onsets, AP = onset average "
              "precision (CondFoleyGen), r = correlation of RMS envelopes. Undefined values (e.g. "
              "precision with no detected onset) are left out of a mean; "
              "`objective.csv` gives n per metric.", ""]
    if result.embedders:
        lines += _released_markdown(result)
    if result.skipped:
        lines += [f"Skipped {len(result.skipped)} clip(s):", ""]
        lines += [f"- {x.where}: {x.reason}" for x in result.skipped] + [""]
    return "\n".join(lines)


def _interval_cell(row) -> str:
    if row is None or not np.isfinite(row["mean"]):
        return "–"
    if np.isfinite(row["ci95_low"]):
        return f"{row['mean']:.3f} [{row['ci95_low']:.3f}, {row['ci95_high']:.3f}]"
    return f"{row['mean']:.3f}"


def _released_markdown(result: EvaluationResult) -> list[str]:
    s = result.summary
    lines = ["## Released embedders", "", "| embedder | weight file | sha256 | input rate | input |",
             "|---|---|---|---:|---|"]
    for e in result.embedders:
        lines.append(f"| {e['embedder']} | {Path(e['file']).name} | `{e['sha256']}` | "
                     f"{e['sample_rate_hz']} Hz | {e['input']} |")
    cols = [(f"{m}_{e['embedder']}", f"{h.rsplit(' ', 1)[0]} ({e['embedder']}) {h.rsplit(' ', 1)[1]}")
            for e in result.embedders for m, h in RELEASED_METRICS.items()]
    cols = [(m, h) for m, h in cols if m in set(s["metric"])]
    lines += ["", "| system | class | clips | " + " | ".join(h for _, h in cols) + " |",
              "|---|---|---:|" + "---:|" * len(cols)]
    for (system, cls), g in s.groupby(["system", "class"], sort=False):
        by_metric = {r["metric"]: r for r in g.to_dict("records")}
        if not any(m in by_metric for m, _ in cols):
            continue
        n = max(int(by_metric[m]["n"]) for m, _ in cols if m in by_metric)
        lines.append(f"| {system} | {cls} | {n} | " +
                     " | ".join(_interval_cell(by_metric.get(m)) for m, _ in cols) + " |")
    lines += ["", "Cells: value on the whole set [95% bootstrap interval over clips; for FD and IS "
              "the replicates' percentiles re-centred on the value]. FD: "
              "Fréchet distance of the system's embeddings to those of its references; KL: mean "
              "per-clip KL(reference || generated) of the class posteriors (softmax, or element-wise "
              "sigmoid); IS: Inception Score of the generated clips (av-benchmark's 10 splits, fewer "
              "with under 20 clips). DeSync: mean over clips of Synchformer's absolute predicted "
              "audio-visual offset (s; the mean of the clip's first and last 4.8 s). IB-score: mean over "
              "clips of the cosine of ImageBind's audio and video embeddings of the clip (higher = "
              "audio more like what the video shows). CLAP score: mean over clips of the cosine of "
              "LAION-CLAP's audio embedding of the clip and its text embedding of the clip's class "
              "prompt (the note above gives the prompt). "
              "`objective_clips_embedders.csv` has the per-clip KL values and offsets.", ""]
    return lines


def write_results(result: EvaluationResult, out_dir: str | Path, command: str | None = None) -> dict[str, Path]:
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    paths = {"md": out / "objective.md", "csv": out / "objective.csv", "clips": out / "objective_clips.csv"}
    # The simulated raters read objective_clips.csv: never leave half of it behind.
    with atomic_path(paths["md"]) as tmp:
        tmp.write_text(render_markdown(result, command))
    with atomic_path(paths["csv"]) as tmp:
        result.summary.to_csv(tmp, index=False, float_format="%.6g")
    with atomic_path(paths["clips"]) as tmp:
        result.clips.to_csv(tmp, index=False, float_format="%.6g")
    if result.embedder_clips is not None:
        paths["embedder_clips"] = out / "objective_clips_embedders.csv"
        with atomic_path(paths["embedder_clips"]) as tmp:
            result.embedder_clips.to_csv(tmp, index=False, float_format="%.6g")
    return paths

