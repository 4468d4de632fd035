"""`generate_clips`: silent videos -> RegNet mel (Ŝ0) -> waveform -> mp4 + wav + clips.csv.

Stages per batch of videos: features (decode, flow, backbone: `regnet.data.extract`, or a fresh
file from a feature cache), RegNet (`RegNet.generate`: regularizer replaced per the checkpoint's
``model.test_regularizer``), vocoder (`regnet.vocoder.load_vocoder`), then wav + mp4 writing in a
small thread pool so ffmpeg runs while the next batch is computed. Each clip is cut back to its
source video's length (at most ``data.clip_seconds``, what the model generates).

Resumable: a video whose mp4 and wav both exist is kept unless ``overwrite``; clips.csv is merged
with the one already in ``out_dir``. A bad video (no frames, unreadable, features made with
another config) is listed in the report and the others go on.
"""

from __future__ import annotations

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
from tqdm import tqdm

from regnet.clips import ClipRecord, earlier_clips, read_clips, write_clips
from regnet.config import Config, VocoderConfig
from regnet.data.features import VideoFeatures, feature_path, is_fresh, load_features, save_features
from regnet.errors import UserError
from regnet.generation.inputs import VideoItem, list_videos
from regnet.generation.media import mux, write_wav

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
    stage_seconds: dict[str, float] = field(default_factory=lambda: defaultdict(float))
    vocoder: str = ""

    def summary(self) -> str:
        times = ", ".join(f"{k} {self.stage_seconds.get(k, 0.0):.1f} s" for k in STAGES)
        return (f"{len(self.generated)} generated, {len(self.reused)} kept from an earlier run, "
                f"{len(self.failed)} skipped ({times})")


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

    def get(self, item: VideoItem) -> VideoFeatures:
        if self.cache is not None:
            path = feature_path(self.cache, item.video_id)
            if path.is_file() and (is_fresh(path, self.expected) or not self.can_extract):
                # A stale file is an error only when we could not make a fresh one ourselves.
                return load_features(path, expected_hash=self.expected)
        if not self.can_extract:
            raise UserError(f"{self.checkpoint}: trained on features this tool does not extract "
                            f"(hash {self.expected}); pass --features with that cache")
        from regnet.data.extract import extract_video

        if self._tools is None:
            from regnet.data.backbones import load_backbone
            from regnet.data.flow import FlowComputer

            d = self.cfg.data
            self._tools = (load_backbone(d, str(self.device)), FlowComputer(d.flow_method, d.flow_bound))
        backbone, flow = self._tools
        f = extract_video(item.video_path, self.cfg.data, video_id=item.video_id, class_name=item.class_name,
                          backbone=backbone, flow=flow, device=str(self.device))
        if self.cache is not None:
            save_features(feature_path(self.cache, item.video_id), f)
        return f


def generate_clips(checkpoint: str | Path, videos: str | Path, out_dir: str | Path,
                   vocoder: str | Path = "griffin-lim", *, system: str = "regnet", overwrite: bool = False,
                   split: str | None = None, device: torch.device | str = "cpu", batch_size: int = 8,
                   seed: int = 0, features_dir: str | Path | None = None,
                   vocoder_cfg: VocoderConfig | None = None, write_workers: int = 2) -> GenerateReport:
    """Generate sound for every video; see the module docstring. Returns what happened."""
    from regnet.authors.detect import maybe_import
    from regnet.train.checkpoint import load_regnet
    from regnet.vocoder import load_vocoder

    out_dir, videos, checkpoint = Path(out_dir), Path(videos), Path(checkpoint)
    device = torch.device(device)
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
    sr = cfg.data.sample_rate
    ckpt_str = str(checkpoint)

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
                                              str(it.video_path), sf.info(str(wav)).duration)
            report.reused.append(it.video_id)
        else:
            todo.append(it)

    feats = _FeatureSource(cfg, meta.get("data_hash"), Path(features_dir) if features_dir else None, device,
                           checkpoint)
    pending: list[tuple[VideoItem, float, Future]] = []
    t_stage = report.stage_seconds
    with ThreadPoolExecutor(max_workers=max(1, write_workers)) as pool, \
            tqdm(total=len(todo), unit="video", desc="generate", disable=None) as bar:
        for b, lo in enumerate(range(0, len(todo), max(1, batch_size))):
            batch: list[tuple[VideoItem, VideoFeatures]] = []
            t0 = time.perf_counter()
            for it in todo[lo:lo + batch_size]:
                try:
                    f = feats.get(it)
                    _check_features(f, cfg, it)
                    batch.append((it, f))
                except UserError as e:
                    report.failed.append((it.video_id, str(e)))
                    bar.update(1)
            t_stage["features"] += time.perf_counter() - t0
            if not batch:
                continue
            t0 = time.perf_counter()
            visual = torch.from_numpy(np.stack([f.visual for _, f in batch])).float().to(device)
            with torch.no_grad():
                mel = model.generate(visual, seed=seed + b).clamp(0.0, 1.0).float().cpu().numpy()
            t_stage["regnet"] += time.perf_counter() - t0
            # Only the frames that cover the source video are vocoded (+1 for the edge); the rest
            # is the padding that would be cut anyway.
            keeps = [int(round(_source_seconds(f, it, cfg) * sr)) for it, f in batch]
            hop = cfg.data.hop_length
            t0 = time.perf_counter()
            wavs = voc.mel_to_audio([m[:, : min(m.shape[1], -(-k // hop) + 1)] for m, k in zip(mel, keeps)])
            t_stage["vocoder"] += time.perf_counter() - t0
            for (it, f), w, keep in zip(batch, wavs, keeps):
                pending.append((it, keep / sr, pool.submit(_write_clip, out_dir, it, w[:keep], sr, keep / sr)))
            bar.update(len(batch))
        t0 = time.perf_counter()
        for it, seconds, fut in pending:
            try:
                mp4, wav = fut.result()
            except UserError as e:
                report.failed.append((it.video_id, str(e)))
                continue
            records[it.video_id] = ClipRecord(system, it.video_id, it.class_name, mp4, wav, voc.name, ckpt_str,
                                              str(it.video_path), seconds)
            report.generated.append(it.video_id)
        # Writing overlapped the other stages; what is left here is the part it did not hide.
        t_stage["write"] += time.perf_counter() - t0

    for vid, why in report.failed:
        log.warning("skipped %s: %s", vid, why)
    if records:
        report.clips_csv = out_dir / "clips.csv"
        write_clips(report.clips_csv, _merge_previous(report.clips_csv, records))
    return report


def _check_features(f: VideoFeatures, cfg: Config, item: VideoItem) -> None:
    dv = f.rgb.shape[1] + f.flow.shape[1]
    if dv != cfg.model.visual_dim:
        raise UserError(f"{item.video_path}: features have {dv} dims per step, the checkpoint expects "
                        f"{cfg.model.visual_dim} (data.backbone differs?)")
    if f.rgb.shape[0] != cfg.data.n_steps:
        raise UserError(f"{item.video_path}: features have {f.rgb.shape[0]} steps, the checkpoint expects "
                        f"{cfg.data.n_steps}")


def _source_seconds(f: VideoFeatures, item: VideoItem, cfg: Config) -> float:
    """The source video's length, capped at the clip length the model generates."""
    seconds = f.duration_s
    if not seconds or not math.isfinite(seconds):
        from regnet.data.video import probe

        seconds = probe(item.video_path).duration_s or cfg.data.clip_seconds
    return min(float(seconds), cfg.data.clip_seconds)


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
