"""The arguments that design a study (protocols, trials, pay, loudness, screening): `build-study`
takes them, and `ablate-study` passes what follows its `--` through the same parser."""

from __future__ import annotations

import argparse

from mturk.study import DEFAULT_REWARD, MAX_AUTO_APPROVAL_S, parse_duration, parse_reward
from regnet.errors import UserError


def add_study_design_args(p: argparse.ArgumentParser) -> None:
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--name", help="study name (default: the folder name)")
    p.add_argument("--protocols", default="pair,real_fake,mos", help="comma list of pair, real_fake, mos")
    p.add_argument("--questions", default="missing,redundant,mismatched", help="criteria for pair and MOS trials")
    p.add_argument("--pairs", action="append", metavar="A:B",
                   help="systems to compare (repeatable; default every pair of non-real systems)")
    p.add_argument("--real-system", default="real", help="system name of the real sound (default 'real')")
    p.add_argument("--trials-per-hit", type=int, default=10, help="main trials per HIT (checks come on top)")
    p.add_argument("--catch-per-hit", type=int, default=1)
    p.add_argument("--gold-per-hit", type=int, default=1)
    p.add_argument("--exposure", default="real_fake", metavar="PROTOCOLS",
                   help="protocols whose conditions are split over rater groups by a Latin square, so no rater "
                        "judges two systems' sounds of one video: real_fake (default), real_fake,mos, or none")
    p.add_argument("--no-practice", action="store_true", help="no practice question opening each HIT page")
    p.add_argument("--loudness-target", default="-23", metavar="LUFS",
                   help="normalise every clip's integrated loudness (ITU-R BS.1770) to this (default -23); "
                        "'none' measures and checks only")
    p.add_argument("--peak-limit", type=float, default=-1.0, metavar="DBTP",
                   help="true-peak ceiling after normalisation (default -1 dBTP)")
    p.add_argument("--silence-floor", type=float, default=-70.0, metavar="LUFS",
                   help="a clip quieter than this (or with no audio) is silent (default -70)")
    p.add_argument("--allow-silent", action="store_true", help="keep silent clips (with a loud warning)")
    p.add_argument("--allow-clipped", action="store_true", help="keep clipped clips (with a loud warning)")
    p.add_argument("--reward", default=DEFAULT_REWARD,
                   help=f"US dollars per assignment (default {DEFAULT_REWARD})")
    p.add_argument("--assignments", type=int, default=3, help="workers per HIT (default 3, as the paper)")
    p.add_argument("--assignment-duration", default="1h", help="time a worker has for one HIT (default 1h)")
    p.add_argument("--lifetime", default="3d", help="how long HITs stay available (default 3d)")
    p.add_argument("--auto-approve", default="3d", help="auto-approval delay (default 3d)")
    p.add_argument("--title")
    p.add_argument("--description")
    p.add_argument("--keywords")
    p.add_argument("--no-headphone-check", action="store_true",
                   help="leave the headphone check out of the screening test")
    p.add_argument("--headphone-check", choices=["woods", "huggins"], default="woods",
                   help="woods: antiphase tones (Woods et al. 2017, default); huggins: dichotic pitch "
                   "(Milne et al. 2021)")
    p.add_argument("--no-screening", action="store_true",
                   help="no screening qualification at all (no consent page, calibration or headphone check)")
    p.add_argument("--consent", metavar="FILE", help="consent text shown before screening (default: a generic one)")
    p.add_argument("--instructions", metavar="FILE", help="instructions shown with the consent (default: generic)")


def design_parser(prog: str) -> argparse.ArgumentParser:
    """A parser of the design arguments alone (for options handed on by another verb)."""
    p = argparse.ArgumentParser(prog=prog, add_help=False)
    add_study_design_args(p)
    return p


def csv_list(text: str) -> list[str]:
    """"a, b,,c" -> ["a", "b", "c"] (the comma lists of the study flags)."""
    return [x.strip() for x in text.split(",") if x.strip()]


def design_from_args(args: argparse.Namespace):
    """(StudyOptions, ScreeningOptions) from the parsed design arguments."""
    from mturk import screening
    from mturk.trials import StudyOptions

    pairs = None
    if args.pairs:
        pairs = []
        for item in args.pairs:
            for pair in csv_list(item):
                a, sep, b = pair.partition(":")
                if not sep or not a or not b:
                    raise UserError(f"--pairs: {pair!r} is not SYSTEM_A:SYSTEM_B")
                pairs.append((a, b))
    opts = StudyOptions(
        name=args.name or "", seed=args.seed, protocols=tuple(csv_list(args.protocols)),
        questions=tuple(csv_list(args.questions)), pairs=pairs, real_system=args.real_system,
        trials_per_hit=args.trials_per_hit, catch_per_hit=args.catch_per_hit, gold_per_hit=args.gold_per_hit,
        reward=parse_reward(args.reward), max_assignments=args.assignments,
        assignment_duration_s=parse_duration(args.assignment_duration, "--assignment-duration"),
        lifetime_s=parse_duration(args.lifetime, "--lifetime"),
        auto_approval_delay_s=parse_duration(args.auto_approve, "--auto-approve", 0, MAX_AUTO_APPROVAL_S),
        exposure=tuple(x for x in csv_list(args.exposure) if x.lower() != "none"), practice=not args.no_practice,
        loudness=_loudness_options(args))
    for k in ("title", "description", "keywords"):
        if getattr(args, k):
            setattr(opts, k, getattr(args, k))
    return opts, screening.ScreeningOptions(
        enabled=not args.no_screening, headphone_check=not args.no_headphone_check, check=args.headphone_check,
        consent=screening.read_consent_file(args.consent) if args.consent else None,
        instructions=screening.read_consent_file(args.instructions) if args.instructions else None)


def _loudness_options(args):
    from mturk.loudness import LoudnessOptions

    text = str(args.loudness_target).strip().lower()
    if text in ("none", "off"):
        target = None
    else:
        try:
            target = float(text)
        except ValueError:
            raise UserError(f"--loudness-target: {args.loudness_target!r} is not a level in LUFS like -23, or none") from None
        if not -70 <= target <= 0:
            raise UserError(f"--loudness-target: {target:g} LUFS is outside -70..0")
    if not -20 <= args.peak_limit <= 0:
        raise UserError(f"--peak-limit: {args.peak_limit:g} dBTP is outside -20..0")
    return LoudnessOptions(target_lufs=target, peak_limit_dbtp=args.peak_limit,
                           silence_floor_lufs=args.silence_floor, allow_silent=args.allow_silent,
                           allow_clipped=args.allow_clipped)
