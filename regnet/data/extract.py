"""Feature extraction: one video -> `VideoFeatures`; a manifest -> a feature cache of ``.npz`` files.

Per video: decode resampled to ``fps`` at ``flow_size``; optical flow between consecutive frames;
RGB and flow features from the backbone; pad both to ``n_steps`` (``pad_mode``); audio to mono at
``sample_rate``, looped with the same period as the picture when ``pad_mode='repeat'`` so sound and
picture stay aligned after padding; log-mel. Features are computed on the source steps and then
padded, which is the same as computing them on the repeated video except at the seam, where no
fake wrap-around motion is introduced.

A video without an audio track gets ``has_audio=False`` and an all-zero mel (fine for `generate`,
refused by the trainer).
"""

from __future__ import annotations

import logging
import multiprocessing as mp
import traceback
from concurrent.futures import ProcessPoolExecutor, as_completed
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
from tqdm import tqdm

from regnet.config import DataConfig
from regnet.data.audio import load_audio
from regnet.data.backbones import Backbone, load_backbone
from regnet.data.features import VideoFeatures, feature_path, is_fresh, save_features
from regnet.data.flow import FlowComputer
from regnet.data.manifest import ManifestRow, read_manifest
from regnet.data.mel import fit_length, log_mel
from regnet.data.video import DecodedVideo, MediaInfo, pad_steps, probe, read_video
from regnet.errors import UserError

log = logging.getLogger(__name__)


def extract_video(video_path: str | Path, data_cfg: DataConfig, audio_path: str | Path | None = None,
                  *, video_id: str | None = None, class_name: str = "all",
                  backbone: Backbone | None = None, flow: FlowComputer | None = None,
                  device: str = "cpu") -> VideoFeatures:
    """Features of one video (``audio_path``: take the sound from another file instead).

    Pass ``backbone``/``flow`` to reuse them across videos; otherwise they are built from
    ``data_cfg``. Bad input raises `UserError` naming the file.
    """
    cfg = data_cfg
    video_path = Path(video_path)
    backbone = backbone or load_backbone(cfg, device)
    flow = flow or FlowComputer(cfg.flow_method, cfg.flow_bound, device)
    info = probe(video_path)
    rgb, flw, dec = visual_steps(video_path, cfg, backbone, flow, cfg.clip_seconds, info)
    n_src = len(dec.frames)
    rgb = pad_steps(rgb, cfg.n_steps, cfg.pad_mode)
    flw = pad_steps(flw, cfg.n_steps, cfg.pad_mode)

    audio_src = Path(audio_path) if audio_path else video_path
    has_audio = (probe(audio_src).has_audio if audio_path else info.has_audio)
    if has_audio:
        wav = load_audio(audio_src, cfg.sample_rate, max_seconds=cfg.clip_seconds)
        mel = log_mel(_pad_audio(wav, n_src, cfg), cfg)
    else:
        log.info("%s: no audio track (mel left at zero)", audio_src)
        mel = np.zeros((cfg.n_mels, cfg.mel_frames), dtype=np.float32)
    return VideoFeatures(
        video_id=video_id or video_path.stem, class_name=class_name, rgb=rgb, flow=flw, mel=mel,
        config_hash=cfg.cache_hash(), has_audio=has_audio,
        duration_s=float(info.duration_s) if info.duration_s else float(dec.duration_s))


def visual_steps(video_path: str | Path, cfg: DataConfig, backbone: Backbone, flow: FlowComputer,
                 max_seconds: float, info: MediaInfo | None = None
                 ) -> tuple[np.ndarray, np.ndarray, DecodedVideo]:
    """RGB and flow features [N, D] of up to ``max_seconds`` of the video, one row per step that
    falls inside it (not padded: `extract_video` pads to the model's length, `generate` windows a
    longer video)."""
    dec = read_video(video_path, cfg.fps, max_seconds, cfg.flow_size, info)
    return backbone.rgb(dec.frames), backbone.flow(flow.frames(dec.frames)), dec


def _pad_audio(wav: np.ndarray, n_src_steps: int, cfg: DataConfig) -> np.ndarray:
    """Cut the sound to the picture's length and loop it with the picture when it is padded."""
    if n_src_steps >= cfg.n_steps:
        return wav
    period = int(round(n_src_steps / cfg.fps * cfg.sample_rate))
    wav = fit_length(wav, period)
    if cfg.pad_mode != "repeat":
        return wav
    total = cfg.clip_samples
    return np.tile(wav, -(-total // period))[:total]


# ---------------------------------------------------------------------------------------------
# Batch
# ---------------------------------------------------------------------------------------------
@dataclass
class ExtractReport:
    cache_dir: Path
    config_hash: str
    written: list[str] = field(default_factory=list)
    fresh: list[str] = field(default_factory=list)  # already in the cache with this config
    stale: list[str] = field(default_factory=list)  # made with another config, recomputed
    failed: list[tuple[str, str]] = field(default_factory=list)  # (video_id, reason)

    def summary(self) -> str:
        return (f"{len(self.written)} extracted ({len(self.stale)} replacing stale files), "
                f"{len(self.fresh)} already fresh, {len(self.failed)} skipped")


# Per worker process: built once by the initializer, used for every video of that worker.
_WORKER: dict = {}


def _init_worker(cfg: DataConfig, device: str, threads: int | None) -> None:
    import cv2
    import torch

    if threads:
        torch.set_num_threads(threads)
        cv2.setNumThreads(threads)
    _WORKER["cfg"] = cfg
    _WORKER["backbone"] = load_backbone(cfg, device)
    _WORKER["flow"] = FlowComputer(cfg.flow_method, cfg.flow_bound, device)
    _WORKER["device"] = device


def _work(row: ManifestRow, out_path: str) -> tuple[str, str | None]:
    """Extract and save one row; returns (video_id, reason it failed or None)."""
    try:
        f = extract_video(row.video_path, _WORKER["cfg"], row.audio_path, video_id=row.video_id,
                          class_name=row.class_name, backbone=_WORKER["backbone"],
                          flow=_WORKER["flow"], device=_WORKER["device"])
        save_features(out_path, f)
        return row.video_id, None
    except UserError as e:
        return row.video_id, str(e)
    except Exception as e:  # a batch goes on past one bad file; the trace is kept for -vv
        log.debug("%s: %s", row.video_path, traceback.format_exc())
        return row.video_id, f"{row.video_path}: unexpected {type(e).__name__}: {str(e)[:200]}"


def extract_manifest(manifest: str | Path | list[ManifestRow], cache_dir: str | Path,
                     data_cfg: DataConfig, workers: int = 1, device: str = "cpu",
                     force: bool = False) -> ExtractReport:
    """Fill ``cache_dir`` with ``<video_id>.npz`` for every manifest row.

    Resumable: files made with this config are kept; files made with another config are
    recomputed (counted in ``stale``); ``force`` recomputes everything. Failures do not stop the
    batch; they are listed in the report and logged at the end.
    """
    rows = read_manifest(manifest) if not isinstance(manifest, list) else manifest
    cache_dir = Path(cache_dir)
    cache_dir.mkdir(parents=True, exist_ok=True)
    expected = data_cfg.cache_hash()  # checks weights files exist before any work
    report = ExtractReport(cache_dir=cache_dir, config_hash=expected)
    from regnet.deviations import announce, data_deviations, write_cache_config

    announce("extract", data_deviations(data_cfg))
    write_cache_config(cache_dir, data_cfg)
    todo = []
    for r in rows:
        path = feature_path(cache_dir, r.video_id)
        if not force and is_fresh(path, expected):
            report.fresh.append(r.video_id)
            continue
        if path.exists():
            report.stale.append(r.video_id)
        todo.append((r, str(path)))
    if report.stale:
        log.info("%d cached file(s) were made with another config; recomputing them",
                 len(report.stale))
    if not todo:
        log.info("feature cache %s is up to date (%d videos)", cache_dir, len(report.fresh))
        return report
    workers = max(1, min(int(workers), len(todo)))
    if workers > 1:
        # Fail here, in one line, rather than in every worker's initializer.
        load_backbone(data_cfg, "cpu")
        FlowComputer(data_cfg.flow_method, data_cfg.flow_bound)
    bar = tqdm(total=len(todo), desc="extract", unit="video", disable=None)
    try:
        if workers == 1:
            _init_worker(data_cfg, device, None)
            for r, path in todo:
                _collect(report, _work(r, path))
                bar.update()
        else:
            # Not plain fork: a process that has already run torch/OpenCV holds an OpenMP thread
            # pool, and libgomp deadlocks in a forked child (seen: torch.set_num_threads hanging in
            # the initializer). forkserver forks workers from a clean server that imports the
            # audio/vision stack once; CUDA workers are spawned.
            method = "spawn" if device.startswith("cuda") or "forkserver" not in mp.get_all_start_methods() \
                else "forkserver"
            ctx = mp.get_context(method)
            if method == "forkserver":
                ctx.set_forkserver_preload(["regnet.data.extract"])
            with ProcessPoolExecutor(workers, mp_context=ctx, initializer=_init_worker,
                                     initargs=(data_cfg, device, 1)) as pool:
                futures = [pool.submit(_work, r, path) for r, path in todo]
                for fut in as_completed(futures):
                    _collect(report, fut.result())
                    bar.update()
    finally:
        bar.close()
        _WORKER.clear()
    if report.failed:
        lines = "\n".join(f"  {vid}: {reason}" for vid, reason in report.failed)
        log.warning("skipped %d of %d video(s):\n%s", len(report.failed), len(rows), lines)
    return report


def _collect(report: ExtractReport, result: tuple[str, str | None]) -> None:
    vid, reason = result
    if reason is None:
        report.written.append(vid)
    else:
        report.failed.append((vid, reason))
