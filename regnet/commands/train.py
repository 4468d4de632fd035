"""Verbs ``train`` (RegNet on a manifest + feature cache), ``ablate`` (the paper's Tables III, V-VIII
on the synthetic gauss set), ``ablate-study`` (the variants' clips and a study for Tables IV and
VIII's MOS) and ``baseline`` (the §V-E baseline's clips)."""

from __future__ import annotations

import argparse
import shlex

from regnet.commands.common import add_config_args, config_from_args
from regnet.device import resolve_device


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("train", help="train RegNet on a manifest and its feature cache",
                       description="Train RegNet (one model per sound class as in the paper, or one for "
                       "all classes). Multi-GPU / multi-node: launch with torchrun.")
    p.add_argument("--manifest", required=True, help="dataset manifest.csv (split 'train' is used)")
    p.add_argument("--features", required=True, help="feature cache folder (regnet-bench extract)")
    p.add_argument("--out", required=True, help="run folder: config.yaml, last.pt, log.csv")
    g = p.add_mutually_exclusive_group()
    g.add_argument("--class", dest="class_name", help="train on this class only")
    g.add_argument("--all-classes", action="store_true", help="one model over all classes")
    p.add_argument("--resume", action="store_true", help="continue from OUT/last.pt (same config)")
    p.add_argument("--seed", type=int, help="random seed (same as --set train.seed=N)")
    p.add_argument("--steps", type=int, help="stop after this many steps (same as --set train.max_steps=N)")
    p.add_argument("--device", default="auto", help="auto (CUDA when present), cpu, cuda, cuda:1 ...")
    add_config_args(p)
    p.set_defaults(func=run_train)

    a = sub.add_parser("ablate", help="RegNet vs woREG / VS / D / S variants on the synthetic gauss set",
                       description="Train RegNet (S860D32), woREG, VS, narrow D=8, wide D=1024 and S32D32 "
                       "on a synthetic set made with `synth --irrelevant gauss` and report the L2 (x1e-2) "
                       "between the generated mel (regularizer zeroed) and the clean relevant track's mel "
                       "on the test split.")
    a.add_argument("--data", required=True, help="synthetic set folder (manifest.csv from regnet-bench synth)")
    a.add_argument("--features", help="its feature cache (default DATA/features)")
    a.add_argument("--scale", choices=["small", "full"], default="small",
                   help="small: CPU-sized, <= 15 min on 2 cores; full: paper-size models, for a GPU")
    a.add_argument("--out", default="runs/ablation", help="folder for the variants' runs")
    a.add_argument("--results", default="results", help="where ablation.md and ablation.csv go")
    a.add_argument("--seeds", type=int, help="training seeds per variant (default: 2 small, 3 full)")
    a.add_argument("--steps", type=int, help="training steps per run (default from --scale)")
    a.add_argument("--variants", help="comma-separated subset, e.g. RegNet,woREG")
    a.add_argument("--device", default="auto")
    add_config_args(a)
    a.set_defaults(func=run_ablate)

    s = sub.add_parser("ablate-study", help="the ablation variants' clips and a study (Tables IV, VIII MOS)",
                       description="Generate the test-split clips of every variant `ablate` trained "
                       "(RUNS/<variant>/seed<N>/last.pt; system = variant name), package the real sound, "
                       "optionally the §V-E baseline, and build one study over them (real_fake: Table IV, "
                       "woREG vs RegNet; mos: Table VIII's MOS per variant). Then publish-hits, collect, report.")
    s.add_argument("--runs", default="runs/ablation", help="the ablate --out folder (default runs/ablation)")
    s.add_argument("--data", required=True, help="the synthetic set the ablation trained on")
    s.add_argument("--features", help="its feature cache (default DATA/features)")
    s.add_argument("--out", required=True, help="folder for OUT/clips/<system> and OUT/study")
    s.add_argument("--variants", help="comma-separated subset (default every trained variant), e.g. RegNet,woREG")
    s.add_argument("--seed", type=int, help="which training seed's model (default each variant's first)")
    s.add_argument("--vocoder", default="griffin-lim", help="'griffin-lim' (default) or a WaveNet checkpoint")
    s.add_argument("--baseline", action="store_true", help="add the §V-E baseline (regnet-bench baseline) as a system")
    s.add_argument("--protocols", default="real_fake,mos", help="build-study protocols (default real_fake,mos)")
    s.add_argument("--study-seed", type=int, default=0, help="build-study --seed")
    s.add_argument("build_args", nargs=argparse.REMAINDER, metavar="-- BUILD_STUDY_ARGS",
                   help="after --, options passed on to build-study (e.g. -- --trials-per-hit 3 --allow-silent)")
    s.add_argument("--device", default="auto")
    s.set_defaults(func=run_ablate_study)

    b = sub.add_parser("baseline", help="the paper's simple baseline (§V-E): the class's sound at each visual event",
                       description="For every video of a split: detect visual events from the motion energy "
                       "of the picture and paste the class's sound (cut from its training clips at their "
                       "strongest onset) at each; written as clips.csv like import-clips, so evaluate and "
                       "build-study take it as any other system.")
    b.add_argument("--manifest", required=True, help="dataset manifest.csv (train split: the class sounds)")
    b.add_argument("--out", required=True, help="output folder (clips/, wav/, clips.csv)")
    b.add_argument("--split", default="test", help="videos to make clips for (default test)")
    b.add_argument("--system", default="baseline", help="system name in clips.csv (default baseline)")
    add_config_args(b)
    b.set_defaults(func=run_baseline_verb)


def run_train(args: argparse.Namespace) -> int:
    from regnet.train.run import train_runs

    cfg = config_from_args(args)
    if args.seed is not None:
        cfg.train.seed = args.seed
    if args.steps is not None:
        cfg.train.max_steps = args.steps
    results = train_runs(cfg, args.manifest, args.features, args.out, class_name=args.class_name,
                         all_classes=args.all_classes, resume=args.resume,
                         device=resolve_device(args.device))
    for r in results:
        print(r.checkpoint)
    return 0


def run_ablate(args: argparse.Namespace) -> int:
    from regnet.pipelines.ablation import run_ablation

    report = run_ablation(args.data, features=args.features, scale=args.scale, out=args.out,
                          results=args.results, seeds=args.seeds, steps=args.steps,
                          variants=args.variants.split(",") if args.variants else None,
                          base_cfg=config_from_args(args) if (args.config or args.preset or args.overrides)
                          else None, device=resolve_device(args.device),
                          command=_ablate_command(args))
    print(report)
    return 0


def run_ablate_study(args: argparse.Namespace) -> int:
    from regnet.commands.study_design import design_from_args, design_parser
    from regnet.pipelines.ablation_study import build_ablation_study

    design = design_parser("regnet-bench ablate-study ... -- BUILD_STUDY_ARGS").parse_args(
        ["--seed", str(args.study_seed), "--protocols", args.protocols, *[a for a in args.build_args if a != "--"]])
    res = build_ablation_study(args.runs, args.data, args.out, features=args.features,
                               variants=args.variants.split(",") if args.variants else None, seed=args.seed,
                               vocoder=args.vocoder, baseline=args.baseline, design=design_from_args(design),
                               device=resolve_device(args.device))
    for system, csv in res.clips.items():
        print(f"{system}: {csv}")
    print(res.study_dir)
    return 0


def run_baseline_verb(args: argparse.Namespace) -> int:
    from regnet.generation.baseline import run_baseline

    report = run_baseline(args.manifest, args.out, config_from_args(args).data, split=args.split, system=args.system)
    for vid, why in report.failed:
        print(f"skipped {vid}: {why}")
    print(report.clips_csv)
    return 0


def _ablate_command(args: argparse.Namespace) -> str:
    """The command line that reproduces this run, for the report."""
    parts = ["regnet-bench", "ablate", "--scale", args.scale, "--data", args.data]
    for flag, value in (("--features", args.features), ("--out", args.out), ("--results", args.results),
                        ("--seeds", args.seeds), ("--steps", args.steps), ("--variants", args.variants),
                        ("--config", args.config), ("--preset", args.preset)):
        if value is not None:
            parts += [flag, str(value)]
    for item in args.overrides:
        parts += ["--set", item]
    return " ".join(shlex.quote(p) for p in parts)
