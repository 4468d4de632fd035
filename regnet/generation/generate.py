"""`generate_clips`: silent videos -> RegNet mel (Ŝ0) -> waveform -> mp4 + wav + clips.csv.

Stages per batch of videos: features (decode, flow, backbone: `regnet.data.extract`, or a fresh
file from a feature cache), RegNet (`RegNet.generate`: regularizer replaced per the checkpoint's
``model.test_regularizer``), vocoder (`regnet.vocoder.load_vocoder`), then wav + mp4 writing in a
small thread pool so ffmpeg runs while the next batch is computed; on CUDA the next batch's
features are prepared on a worker thread meanwhile, so decoding and extraction overlap the model
and vocoder (``prefetch``).

A video longer than the model's clip length (``data.clip_seconds``) is generated whole: windows of
that length overlapping by ``overlap_s`` (default a quarter of a window), joined in the mel domain
before the vocoder (`regnet.generation.windows`, which says why). A shorter video is padded the way
the training data was (``data.pad_mode``). Every clip is cut back to its source video's length, or
to ``max_seconds``; clips.csv records the windows used.

Resumable: a video whose mp4 and wav both exist is kept unless ``overwrite``; clips.csv is merged
with the one already in ``out_dir``. A bad video (no frames, unreadable, features made with
another config) is listed in the report and the others go on.
"""

from __future__ import annotations

import contextlib
import logging
import math
import time
from collections import defaultdict
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import soundfile as sf
import torch
from threadpoolctl import threadpool_limits
from tqdm import tqdm

from regnet.clips import ClipRecord, earlier_clips, read_clips, write_clips
from regnet.config import Config, VocoderConfig
from regnet.data.features import VideoFeatures, feature_path, is_fresh, load_features, save_features
from regnet.errors import UserError
from regnet.generation.inputs import VideoItem, list_videos
from regnet.generation.media import mux, write_wav
from regnet.generation.windows import Window, default_overlap, describe, join_mels, plan_windows

log = logging.getLogger(__name__)

STAGES = ("features", "regnet", "vocoder", "write")


@dataclass
class GenerateReport:
    out_dir: Path
    clips_csv: Path | None
    generated: list[str] = field(default_factory=list)
    reused: list[str] = field(default_factory=list)
    failed: list[tuple[str, str]] = field(default_factory=list)
    left_out: int = 0  # videos of another class than the checkpoint's
    # Busy time per stage; the stages overlap, so together they can exceed wall_seconds.
    stage_seconds: dict[str, float] = field(default_factory=lambda: defaultdict(float))
    wall_seconds: float = 0.0
    vocoder: str = ""

    def summary(self) -> str:
        times = ", ".join(f"{k} {self.stage_seconds.get(k, 0.0):.1f} s" for k in STAGES)
        return (f"{len(self.generated)} generated, {len(self.reused)} kept from an earlier run, "
                f"{len(self.failed)} skipped ({times}; {self.wall_seconds:.1f} s wall, stages overlap)")


def clip_paths(out_dir: Path, video_id: str) -> tuple[Path, Path]:
    return out_dir / "clips" / f"{video_id}.mp4", out_dir / "wav" / f"{video_id}.wav"


def _select(items: list[VideoItem], ck_class: str, videos: Path, report: GenerateReport) -> list[VideoItem]:
    """A per-class checkpoint generates for its own class: other classes of a manifest are left out."""
    if ck_class in ("", "all"):
        return items
    if videos.is_dir():
        return [VideoItem(i.video_id, ck_class, i.video_path) for i in items]
    keep = [i for i in items if i.class_name == ck_class]
    if not keep:
        raise UserError(f"{videos}: no videos of class '{ck_class}' (the checkpoint's class)")
    report.left_out = len(items) - len(keep)
    if report.left_out:
        log.info("%d videos of other classes left out (checkpoint is for '%s')", report.left_out, ck_class)
    return keep


class _FeatureSource:
    """Features for one video: a fresh cache file when there is one, else extracted here."""

    def __init__(self, cfg: Config, data_hash: str | None, cache: Path | None, device: torch.device,
                 checkpoint: Path):
        self.cfg, self.cache, self.device = cfg, cache, device
        self.expected = data_hash or cfg.data.cache_hash()
        self.can_extract = self.expected == cfg.data.cache_hash()
        self.checkpoint = checkpoint
        self._tools = None

    def _tools_for(self):
        if self._tools is None:
            from regnet.data.backbones import load_backbone
            from regnet.data.flow import FlowComputer

            d = self.cfg.data
            self._tools = (load_backbone(d, str(self.device)),
                           FlowComputer(d.flow_method, d.flow_bound, str(self.device)))
        return self._tools

    def whole(self, item: VideoItem, seconds: float) -> VideoFeatures | None:
        """Unpadded features of the first ``seconds`` of a video longer than one window (cached as
        ``<id>.whole.npz``), or None when this tool cannot extract what the checkpoint was trained on."""
        path = feature_path(self.cache, item.video_id + ".whole") if self.cache is not None else None
        if path is not None and is_fresh(path, self.expected):
            f = load_features(path, expected_hash=self.expected)
            if len(f.rgb) >= int(round(seconds * self.cfg.data.fps)) - 1:
                return f
        if not self.can_extract:
            return None
        from regnet.data.extract import visual_steps

        backbone, flow = self._tools_for()
        rgb, flw, dec = visual_steps(item.video_path, self.cfg.data, backbone, flow, seconds)
        d = self.cfg.data
        f = VideoFeatures(video_id=item.video_id, class_name=item.class_name, rgb=rgb, flow=flw,
                          mel=np.zeros((d.n_mels, 0), dtype=np.float32), config_hash=d.cache_hash(),
                          has_audio=False, duration_s=float(dec.info.duration_s or dec.duration_s))
        if path is not None:
            save_features(path, f)
        return f

    def cached(self, item: VideoItem) -> VideoFeatures | None:
        """The cache's file for this video (one window, padded), when it can be used."""
        if self.cache is not None:
            path = feature_path(self.cache, item.video_id)
            if path.is_file() and (is_fresh(path, self.expected) or not self.can_extract):
                # A stale file is an error only when we could not make a fresh one ourselves.
                return load_features(path, expected_hash=self.expected)
        return None

    def get(self, item: VideoItem) -> VideoFeatures:
        f = self.cached(item)
        if f is not None:
            return f
        if not self.can_extract:
            raise UserError(f"{self.checkpoint}: trained on features this tool does not extract "
                            f"(hash {self.expected}); pass --features with that cache")
        from regnet.data.extract import extract_video

        backbone, flow = self._tools_for()
        f = extract_video(item.video_path, self.cfg.data, video_id=item.video_id, class_name=item.class_name,
                          backbone=backbone, flow=flow, device=str(self.device))
        if self.cache is not None:
            save_features(feature_path(self.cache, item.video_id), f)
        return f


def generate_clips(checkpoint: str | Path, videos: str | Path, out_dir: str | Path,
                   vocoder: str | Path = "griffin-lim", *, system: str = "regnet", overwrite: bool = False,
                   split: str | None = None, device: torch.device | str = "cpu", batch_size: int = 8,
                   seed: int = 0, features_dir: str | Path | None = None,
                   vocoder_cfg: VocoderConfig | None = None, write_workers: int = 2,
                   max_seconds: float | None = None, overlap_s: float | None = None,
                   prefetch: bool | None = None) -> GenerateReport:
    """Generate sound for every video; see the module docstring. ``batch_size`` counts videos per
    batch and windows per RegNet forward. Returns what happened."""
    from regnet.authors.detect import maybe_import
    from regnet.train.checkpoint import load_regnet
    from regnet.vocoder import load_vocoder

    out_dir, videos, checkpoint = Path(out_dir), Path(videos), Path(checkpoint)
    device = torch.device(device)
    if max_seconds is not None and not (max_seconds > 0 and math.isfinite(max_seconds)):
        raise UserError(f"--max-seconds: must be a positive number of seconds, got {max_seconds}")
    report = GenerateReport(out_dir=out_dir, clips_csv=None)
    earlier = earlier_clips(out_dir, system)  # refuses a folder that holds another system's clips
    items = list_videos(videos, split=split)
    # The authors' released files (netG/netD pair, r9y9 *_ema.pth) work as they are: converted once.
    checkpoint = Path(maybe_import(checkpoint))
    model, cfg, meta = load_regnet(checkpoint, device)
    ck_class = str(meta.get("class_name") or "all")
    items = _select(items, ck_class, videos, report)
    voc = load_vocoder(maybe_import(vocoder), cfg.data, device, vocoder_cfg, seed=seed)
    report.vocoder = voc.name
    from regnet.deviations import announce, join, paper_deviations

    deviations = paper_deviations(cfg, voc.name, getattr(getattr(voc, "model", None), "cfg", None))
    announce("generate", deviations)
    sr = cfg.data.sample_rate
    ckpt_str = str(checkpoint)
    feats = _FeatureSource(cfg, meta.get("data_hash"), Path(features_dir) if features_dir else None, device,
                           checkpoint)
    # clips.csv records the config the clips were made with: evaluate and build-study read it.
    made_with = dict(clip_seconds=cfg.data.clip_seconds, sample_rate=sr, feature_config_hash=feats.expected)

    records: dict[str, ClipRecord] = {}
    todo: list[VideoItem] = []
    for it in items:
        mp4, wav = clip_paths(out_dir, it.video_id)
        before = earlier.get(it.video_id)
        if before is not None and (before.checkpoint, before.vocoder) != (ckpt_str, voc.name):
            # Made by another checkpoint or vocoder: keeping it would label it as this one's.
            log.info("%s: earlier clip made with %s / %s, regenerating", it.video_id, before.checkpoint,
                     before.vocoder)
            todo.append(it)
        elif not overwrite and mp4.is_file() and wav.is_file():
            records[it.video_id] = ClipRecord(system, it.video_id, it.class_name, mp4, wav, voc.name, ckpt_str,
                                              str(it.video_path), sf.info(str(wav)).duration,
                                              windows=before.windows if before is not None else "",
                                              deviations=join(deviations), **made_with)
            report.reused.append(it.video_id)
        else:
            todo.append(it)

    d = cfg.data
    window = d.n_steps
    overlap = default_overlap(window) if overlap_s is None else int(round(overlap_s * d.fps))
    if not 0 <= overlap < window:
        raise UserError(f"--overlap: must be at least 0 and shorter than the model's clip length "
                        f"({d.clip_seconds:g} s), got {overlap_s}")
    pending: list[tuple[_Job, Future]] = []
    t_stage = report.stage_seconds
    hop = d.hop_length
    def prepare(items: list[VideoItem]) -> tuple[list[_Job], list[tuple[str, str]], float]:
        t0 = time.perf_counter()
        jobs, failed = [], []
        for it in items:
            try:
                jobs.append(_prepare(feats, it, cfg, max_seconds, window, overlap))
            except UserError as e:
                failed.append((it.video_id, str(e)))
        return jobs, failed, time.perf_counter() - t0

    chunks = [todo[lo:lo + batch_size] for lo in range(0, len(todo), max(1, batch_size))]
    t_wall = time.perf_counter()
    # Stages overlap: the next batch's decode + features run on a worker thread while RegNet and
    # the vocoder work on this one, and wav/mp4 writing runs on `pool`. By default only on CUDA,
    # where the model and vocoder leave the CPU free; on a CPU the stages would share the same
    # cores. While they overlap, numpy's BLAS runs single-threaded: two threads calling into
    # OpenBLAS's pthreads pool at once left a later call spinning forever in one full test run.
    overlap_stages = device.type == "cuda" if prefetch is None else prefetch
    blas = threadpool_limits(limits=1, user_api="blas") if overlap_stages else contextlib.nullcontext()
    with blas, ThreadPoolExecutor(max_workers=max(1, write_workers)) as pool, \
            ThreadPoolExecutor(1) as prep, \
            tqdm(total=len(todo), unit="video", desc="generate", disable=None) as bar:
        def ahead_of(chunk):
            if overlap_stages:
                return prep.submit(prepare, chunk)
            done: Future = Future()
            done.set_result(prepare(chunk))
            return done
        ahead = ahead_of(chunks[0]) if chunks else None
        for b in range(len(chunks)):
            batch, failed, busy = ahead.result()
            ahead = ahead_of(chunks[b + 1]) if b + 1 < len(chunks) else None
            t_stage["features"] += busy
            report.failed.extend(failed)
            bar.update(len(failed))
            if not batch:
                continue
            t0 = time.perf_counter()
            # One z per video (drawn as before, one row per video of the batch), shared by all of
            # its windows: a video is one scene, and its windows should not differ in z.
            gen = torch.Generator(device=device).manual_seed(int(seed + b))
            z = model.sample_z(len(batch), device, generator=gen, test=True)
            mels = _regnet_mels(model, batch, z, batch_size)
            t_stage["regnet"] += time.perf_counter() - t0
            # Only the frames that cover the source video are vocoded (+1 for the edge); the rest
            # is the padding that would be cut anyway.
            keeps = [int(round(j.seconds * sr)) for j in batch]
            t0 = time.perf_counter()
            wavs = voc.mel_to_audio([_frames_for(m, -(-k // hop) + 1) for m, k in zip(mels, keeps)])
            t_stage["vocoder"] += time.perf_counter() - t0
            for j, w, keep in zip(batch, wavs, keeps):
                w = np.pad(w, (0, max(0, keep - len(w))))[:keep]
                pending.append((j, pool.submit(_write_clip, out_dir, j.item, w, sr, keep / sr)))
            bar.update(len(batch))
        t0 = time.perf_counter()
        for j, fut in pending:
            it = j.item
            try:
                mp4, wav = fut.result()
            except UserError as e:
                report.failed.append((it.video_id, str(e)))
                continue
            records[it.video_id] = ClipRecord(system, it.video_id, it.class_name, mp4, wav, voc.name, ckpt_str,
                                              str(it.video_path), j.seconds,
                                              windows=describe(j.plan, d.fps, j.seconds),
                                              deviations=join(deviations), **made_with)
            report.generated.append(it.video_id)
        # Writing overlapped the other stages; what is left here is the part it did not hide.
        t_stage["write"] += time.perf_counter() - t0
    report.wall_seconds = time.perf_counter() - t_wall

    for vid, why in report.failed:
        log.warning("skipped %s: %s", vid, why)
    if records:
        report.clips_csv = out_dir / "clips.csv"
        write_clips(report.clips_csv, _merge_previous(report.clips_csv, records))
    return report


def _check_features(f: VideoFeatures, cfg: Config, item: VideoItem, steps: int | None = None) -> None:
    dv = f.rgb.shape[1] + f.flow.shape[1]
    if dv != cfg.model.visual_dim:
        raise UserError(f"{item.video_path}: features have {dv} dims per step, the checkpoint expects "
                        f"{cfg.model.visual_dim} (data.backbone differs?)")
    if f.rgb.shape[0] != (cfg.data.n_steps if steps is None else steps):
        raise UserError(f"{item.video_path}: features have {f.rgb.shape[0]} steps, the checkpoint expects "
                        f"{cfg.data.n_steps}")


@dataclass
class _Job:
    """One video ready for the model: its visual steps, the windows over them, the seconds to keep."""
    item: VideoItem
    visual: np.ndarray  # [n_steps, Dv] (one padded window) or [N, Dv] (a whole longer video)
    seconds: float
    plan: list[Window]


def _prepare(feats: _FeatureSource, it: VideoItem, cfg: Config, max_seconds: float | None, window: int,
             overlap: int) -> _Job:
    d = cfg.data
    f = feats.cached(it)
    seconds = f.duration_s if f is not None else 0.0
    if not seconds or not math.isfinite(seconds):
        from regnet.data.video import probe

        seconds = probe(it.video_path).duration_s or d.clip_seconds
    seconds = min(float(seconds), max_seconds if max_seconds is not None else math.inf)
    if seconds > d.clip_seconds + 0.5 / d.fps:
        whole = feats.whole(it, seconds)
        if whole is not None:
            _check_features(whole, cfg, it, steps=len(whole.rgb))
            return _Job(it, whole.visual, seconds, plan_windows(len(whole.rgb), window, overlap))
        log.warning("%s: %.1f s long, but the checkpoint's features come from a cache that holds only "
                    "the first %.1f s; generating that much", it.video_path, seconds, d.clip_seconds)
    f = f if f is not None else feats.get(it)
    _check_features(f, cfg, it)
    return _Job(it, f.visual, min(seconds, d.clip_seconds), [Window(0, window)])


def _regnet_mels(model, batch: list[_Job], z: torch.Tensor, batch_size: int) -> list[np.ndarray]:
    """Each job's mel: the one-window videos in one forward, each longer video's windows batched."""
    device = z.device
    out: list[np.ndarray | None] = [None] * len(batch)
    single = [i for i, j in enumerate(batch) if len(j.plan) == 1]
    if single:
        visual = torch.from_numpy(np.stack([batch[i].visual for i in single])).float().to(device)
        model.eval()
        with torch.no_grad():
            mel = model(visual, None, z=z[single])[1].clamp(0.0, 1.0).float().cpu().numpy()
        for i, m in zip(single, mel):
            out[i] = m
    for i, j in enumerate(batch):
        if out[i] is None:
            out[i] = whole_video_mel(model, j.visual, j.plan, z[i], batch_size)
    return out


def whole_video_mel(model, visual: np.ndarray, plan: list[Window], z: torch.Tensor,
                    batch_size: int = 8) -> np.ndarray:
    """The mel [n_mels, 4N] of a whole video's visual steps [N, Dv]: every window of ``plan``
    through RegNet (regularizer replaced as at test time, the same ``z`` for all), ``batch_size``
    windows per forward, joined by `join_mels`."""
    device = z.device
    x = np.stack([visual[p.start:p.stop] for p in plan])
    parts = []
    model.eval()
    with torch.no_grad():
        for lo in range(0, len(x), max(1, batch_size)):
            xb = torch.from_numpy(x[lo:lo + batch_size]).float().to(device)
            zb = z.reshape(1, -1).expand(len(xb), -1)
            parts.append(model(xb, None, z=zb)[1].clamp(0.0, 1.0).float().cpu().numpy())
    mels = list(np.concatenate(parts))
    per_step = mels[0].shape[1] // plan[0].steps
    return join_mels(mels, plan, frames_per_step=per_step, total_steps=len(visual))


def _frames_for(mel: np.ndarray, frames: int) -> np.ndarray:
    """The first ``frames`` frames; a whole video's mel ends with its last step, so the few frames
    the waveform needs past it (the last step's share of a second) repeat its last frame."""
    if mel.shape[1] >= frames:
        return mel[:, :frames]
    return np.pad(mel, ((0, 0), (0, frames - mel.shape[1])), mode="edge")


def _write_clip(out_dir: Path, item: VideoItem, wav: np.ndarray, sr: int, seconds: float) -> tuple[Path, Path]:
    mp4_path, wav_path = clip_paths(out_dir, item.video_id)
    write_wav(wav_path, wav, sr)
    mux(item.video_path, wav_path, mp4_path, seconds)
    return mp4_path, wav_path


def _merge_previous(csv_path: Path, new: dict[str, ClipRecord]) -> list[ClipRecord]:
    """Rows of an earlier clips.csv in the same folder stay, unless this run rewrote them."""
    merged: dict[str, ClipRecord] = {}
    if csv_path.is_file():
        try:
            for r in read_clips(csv_path, check_files=False):
                if r.clip_path.is_file() and r.wav_path.is_file():
                    merged[r.video_id] = r
        except UserError as e:
            log.warning("earlier %s not merged: %s", csv_path, e)
    merged.update(new)
    return [merged[k] for k in sorted(merged)]
