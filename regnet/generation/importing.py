"""Other systems' clips in our clips.csv format, so any system can enter a study or `evaluate`.

* `import_clips`: a folder of wavs (or flac) or videos with sound, one file per video, the file stem
  being the video id. With a manifest, each file gets its class and source video, and a wav is
  muxed with the source picture into an mp4 (cut to the shorter of the two); a video file is copied
  as it is and its sound extracted to a wav.
* `import_real`: every manifest video's own sound, packaged like a generated clip (cut to the
  video's length, at most ``data.clip_seconds``), as the system 'real'.

A wav at another sample rate than ``data.sample_rate`` is refused (naming it) unless ``resample``;
a file that fails is listed and the others go on. clips.csv records the data config used to
import them (clip_seconds, sample_rate and its feature-config hash): a study compares clips of one
length, and `build-study` refuses systems whose recorded lengths or rates differ.
"""

from __future__ import annotations

import logging
import shutil
from dataclasses import dataclass, field, replace
from pathlib import Path

import numpy as np
import soundfile as sf
from tqdm import tqdm

from regnet.clips import ClipRecord, earlier_clips, write_clips
from regnet.config import DataConfig
from regnet.data.audio import load_audio
from regnet.data.manifest import ManifestRow, read_manifest
from regnet.data.video import probe
from regnet.errors import UserError
from regnet.generation.inputs import VIDEO_SUFFIXES
from regnet.generation.media import mux, write_wav

log = logging.getLogger(__name__)

AUDIO_SUFFIXES = (".wav", ".flac")


@dataclass
class ImportReport:
    clips_csv: Path | None
    imported: list[str] = field(default_factory=list)
    failed: list[tuple[str, str]] = field(default_factory=list)

    def summary(self) -> str:
        return f"{len(self.imported)} clips imported, {len(self.failed)} skipped"


def import_clips(src_dir: str | Path, out_dir: str | Path, system: str, data_cfg: DataConfig,
                 manifest: str | Path | None = None, resample: bool = False) -> ImportReport:
    src_dir, out_dir = Path(src_dir), Path(out_dir)
    if not src_dir.is_dir():
        raise UserError(f"{src_dir}: not a folder")
    files = sorted(p for p in src_dir.iterdir()
                   if p.is_file() and p.suffix.lower() in AUDIO_SUFFIXES + VIDEO_SUFFIXES)
    if not files:
        raise UserError(f"{src_dir}: no wav/flac or video files")
    rows = {r.video_id: r for r in read_manifest(manifest)} if manifest else {}
    earlier = earlier_clips(out_dir, system)
    made_with = _made_with(data_cfg)
    report = ImportReport(clips_csv=None)
    records: list[ClipRecord] = []
    seen: set[str] = set()
    for f in tqdm(files, unit="clip", desc=f"import {system}", disable=None):
        vid = f.stem
        try:
            if vid in seen:
                raise UserError(f"{f}: video id '{vid}' appears twice in {src_dir}")
            seen.add(vid)
            if manifest and vid not in rows:
                raise UserError(f"{f}: video id '{vid}' is not in {manifest}")
            records.append(replace(_import_one(f, out_dir, system, rows.get(vid), data_cfg, resample),
                                   **made_with))
            report.imported.append(vid)
        except UserError as e:
            report.failed.append((vid, str(e)))
    return _finish(report, out_dir, records, earlier)


def _import_one(f: Path, out_dir: Path, system: str, row: ManifestRow | None, d: DataConfig,
                resample: bool) -> ClipRecord:
    vid, sr = f.stem, d.sample_rate
    wav_out, mp4_out = out_dir / "wav" / f"{vid}.wav", out_dir / "clips" / f"{vid}.mp4"
    cls = row.class_name if row else "all"
    if f.suffix.lower() in AUDIO_SUFFIXES:
        try:
            native = sf.info(str(f)).samplerate
        except (sf.LibsndfileError, RuntimeError) as e:
            raise UserError(f"{f}: not a readable audio file ({e})") from None
        if native != sr and not resample:
            raise UserError(f"{f}: sample rate {native} Hz, expected {sr} Hz (pass --resample to convert)")
        audio = load_audio(f, sr)
        _check_sound(f, audio)
        write_wav(wav_out, audio, sr)
        if row is None:
            log.info("%s: no source video known (no --manifest); clip_path is the wav", f)
            return ClipRecord(system, vid, cls, wav_out, wav_out, duration_s=len(audio) / sr)
        info = probe(row.video_path)
        seconds = min(info.duration_s or len(audio) / sr, len(audio) / sr)
        mux(row.video_path, wav_out, mp4_out, seconds)
        return ClipRecord(system, vid, cls, mp4_out, wav_out, source_video=str(row.video_path), duration_s=seconds)
    info = probe(f)
    if not info.has_audio:
        raise UserError(f"{f}: no audio track")
    if not info.has_video:
        raise UserError(f"{f}: no video stream")
    audio = load_audio(f, sr)
    _check_sound(f, audio)
    write_wav(wav_out, audio, sr)
    mp4_out.parent.mkdir(parents=True, exist_ok=True)
    if f.suffix.lower() == ".mp4":
        shutil.copyfile(f, mp4_out)
    else:  # other containers: same picture and sound, in an mp4 every browser plays
        mux(f, wav_out, mp4_out, info.duration_s or len(audio) / sr)
    return ClipRecord(system, vid, cls, mp4_out, wav_out, source_video=str(row.video_path if row else f),
                      duration_s=float(info.duration_s or len(audio) / sr))


def _made_with(d: DataConfig) -> dict:
    """The clips.csv fields saying which data config the clips were imported with."""
    return dict(clip_seconds=d.clip_seconds, sample_rate=d.sample_rate, feature_config_hash=d.cache_hash())


def _check_sound(f: Path, audio: np.ndarray) -> None:
    if len(audio) == 0:
        raise UserError(f"{f}: no audio samples")


def import_real(manifest: str | Path, out_dir: str | Path, data_cfg: DataConfig, split: str | None = None,
                system: str = "real") -> ImportReport:
    """Each video's own sound (audio_path, else its audio track) as a clip of system ``system``."""
    out_dir = Path(out_dir)
    rows = [r for r in read_manifest(manifest) if split is None or r.split == split]
    if not rows:
        raise UserError(f"{manifest}: no videos" + (f" in split '{split}'" if split else ""))
    d, sr = data_cfg, data_cfg.sample_rate
    earlier = earlier_clips(out_dir, system)
    made_with = _made_with(d)
    report = ImportReport(clips_csv=None)
    records: list[ClipRecord] = []
    for r in tqdm(rows, unit="clip", desc=f"import {system}", disable=None):
        try:
            info = probe(r.video_path)
            if not info.has_video:
                raise UserError(f"{r.video_path}: no video stream")
            audio = load_audio(r.audio_path or r.video_path, sr, max_seconds=d.clip_seconds)
            _check_sound(r.audio_path or r.video_path, audio)
            seconds = min(info.duration_s or d.clip_seconds, d.clip_seconds, len(audio) / sr)
            audio = audio[: int(round(seconds * sr))]
            wav_out, mp4_out = out_dir / "wav" / f"{r.video_id}.wav", out_dir / "clips" / f"{r.video_id}.mp4"
            write_wav(wav_out, audio, sr)
            mux(r.video_path, wav_out, mp4_out, len(audio) / sr)
            records.append(ClipRecord(system, r.video_id, r.class_name, mp4_out, wav_out,
                                      source_video=str(r.video_path), duration_s=len(audio) / sr,
                                      **made_with))
            report.imported.append(r.video_id)
        except UserError as e:
            report.failed.append((r.video_id, str(e)))
    return _finish(report, out_dir, records, earlier)


def _finish(report: ImportReport, out_dir: Path, records: list[ClipRecord],
            earlier: dict[str, ClipRecord]) -> ImportReport:
    """Write clips.csv: this run's clips merged with the ones an earlier run of the same system
    left in ``out_dir`` (a re-run, or another folder imported into the same place, loses nothing)."""
    for vid, why in report.failed:
        log.warning("skipped %s: %s", vid, why)
    if records:
        merged = dict(earlier)
        merged.update({c.video_id: c for c in records})
        report.clips_csv = out_dir / "clips.csv"
        write_clips(report.clips_csv, [merged[k] for k in sorted(merged)])
    return report
