"""The paper's human tables for the ablation variants, as one command (`regnet-bench ablate-study`).

Table IV asks raters whether woREG's and RegNet's clips are real or fake; Table VIII's MOS scores
each capacity variant. Both need the variants' clips on the same test videos as the real sound.
`build_ablation_study` takes the run folder `ablate` wrote (``RUNS/<variant>/seed<N>/last.pt``),
generates each variant's clips for the test split of the synthetic set (system = the variant's
name), packages the real sound, optionally adds the §V-E baseline (`regnet.generation.baseline`),
and builds one study over all of them with `build-study` (protocols real_fake and mos by default),
so `publish-hits` / `collect` / `report` give Table IV (the real_fake table, woREG vs RegNet) and
Table VIII's MOS (the MOS table, one row per variant).
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from pathlib import Path

import torch

from regnet.errors import UserError
from regnet.train.trainer import LAST

log = logging.getLogger(__name__)

TABLE_IV = ("RegNet", "woREG")
TABLE_VIII = ("RegNet", "D8", "Dwide", "S32D32")


@dataclass
class AblationStudy:
    study_dir: Path
    clips: dict[str, Path] = field(default_factory=dict)  # system -> clips.csv


def variant_checkpoints(runs: Path, variants: list[str] | None, seed: int | None) -> dict[str, Path]:
    """The checkpoint of each variant: its given seed, else its first seed folder."""
    if not runs.is_dir():
        raise UserError(f"{runs}: no ablation run folder (run `regnet-bench ablate --out {runs}` first)")
    found = {}
    for vdir in sorted(p for p in runs.iterdir() if p.is_dir()):
        if variants and vdir.name not in variants:
            continue
        seeds = sorted(vdir.glob("seed*/" + LAST), key=lambda p: int(p.parent.name[4:] or 0))
        if seed is not None:
            seeds = [p for p in seeds if p.parent.name == f"seed{seed}"]
        if seeds:
            found[vdir.name] = seeds[0]
    missing = [v for v in variants or [] if v not in found]
    if missing:
        raise UserError(f"{runs}: no trained run of variant '{missing[0]}'"
                        + (f" with seed {seed}" if seed is not None else ""))
    if not found:
        raise UserError(f"{runs}: no <variant>/seed<N>/{LAST} inside")
    return found


def build_ablation_study(runs: str | Path, data: str | Path, out: str | Path, *, features: str | Path | None = None,
                         variants: list[str] | None = None, seed: int | None = None, vocoder: str = "griffin-lim",
                         baseline: bool = False, design=None,
                         device: torch.device | str = "cpu") -> AblationStudy:
    """``design``: (StudyOptions, ScreeningOptions) of the study over the variants' clips (default:
    real_fake and MOS, as Tables IV and VIII)."""
    from mturk.trials import StudyOptions, build_screened_study
    from regnet.config import preset
    from regnet.generation.generate import generate_clips
    from regnet.generation.importing import import_real
    from regnet.train.checkpoint import load_regnet

    runs, data, out = Path(runs), Path(data), Path(out)
    manifest = data / "manifest.csv"
    if not manifest.is_file():
        raise UserError(f"{manifest}: not found (the synthetic set the ablation trained on)")
    features = Path(features) if features else data / "features"
    cks = variant_checkpoints(runs, variants, seed)
    result = AblationStudy(study_dir=out / "study")
    data_cfg = None
    for name, ck in cks.items():
        log.info("ablate-study: clips of %s from %s", name, ck)
        rep = generate_clips(ck, manifest, out / "clips" / name, vocoder, system=name, split="test",
                             device=device, features_dir=features)
        if rep.clips_csv is None:
            raise UserError(f"{ck}: no clip generated for the test split ({rep.failed[:1]})")
        result.clips[name] = rep.clips_csv
        data_cfg = data_cfg or load_regnet(ck, "cpu")[1].data
    data_cfg = data_cfg or preset("small").data
    real = import_real(manifest, out / "clips" / "real", data_cfg, split="test")
    result.clips["real"] = real.clips_csv
    if baseline:
        from regnet.generation.baseline import run_baseline

        result.clips["baseline"] = run_baseline(manifest, out / "clips" / "baseline", data_cfg).clips_csv
    opts, screening_opts = design or (StudyOptions(protocols=("real_fake", "mos")), None)
    for line in build_screened_study(list(result.clips.values()), result.study_dir, opts, screening_opts)[1]:
        log.info("ablate-study: %s", line)
    return result
