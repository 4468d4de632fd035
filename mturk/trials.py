"""Build a study from clip manifests (docs/paper.md): paired comparisons, real-or-fake, MOS, plus the
catch and gold trials that screen raters, packed into HITs. Everything random draws from one
``random.Random(seed)``, so the same inputs and seed give the same study, media names included.

What a reviewer checks, and where it is made (docs/architecture.md "Studies people will review"):
- exposure control: in real-or-fake (and, with ``exposure``, MOS) the conditions (systems) of a
  video are split over rater groups by a Latin square; each HIT belongs to one group
  (mturk/exposure.py enforces it on publish, the report checks it);
- loudness: every clip is measured and normalised (mturk/loudness.py) before it becomes media;
- checks: every HIT carries at least one gold or catch trial, or the build fails with the change
  that would make room; every check is labelled by what it really shows (mturk/study.py CHECKS);
- practice: every page opens with one practice question answered with feedback, never a vote.
"""

from __future__ import annotations

import hashlib
import itertools
import json
import logging
import os
import random
from dataclasses import asdict, dataclass, field
from pathlib import Path

from mturk import loudness as lnorm
from mturk.exposure import EXPOSURE_PROTOCOLS, ExposureDesign, latin_square
from mturk.media import MediaJob, make_media, opaque_name
from mturk.study import DEFAULT_REWARD, HitSpec, Qualifications, Study, Trial, save_study
from mturk.vocabulary import CHECKS, CRITERIA, KINDS
from regnet.clips import ClipRecord, agreed_settings, read_clips
from regnet.errors import UserError

log = logging.getLogger(__name__)

PROTOCOLS, QUESTIONS = KINDS, CRITERIA  # what build-study offers: every kind, every criterion
# Which checks each kind of HIT can carry. Catch trials are obvious to an attentive rater; gold
# trials (a real sound against another video's real sound, i.e. misaligned) have a known answer
# but need the same perception the study measures.
# A silent clip in real-or-fake is never its real sound ("Not real"); in MOS it scores 1 on
# Sound missing. When no video is free for any of these, a MOS HIT repeats its reference 5.
CATCH_TYPES = {"pair": ("identical", "silent", "other_class"), "real_fake": ("other_class", "silent"),
               "mos": ("silent", "other_class")}
# The practice question of each kind of page: an obvious case, explained after the answer.
PRACTICE_CHECK = {"pair": ("other_class", "silent"), "real_fake": ("other_class", "silent"),
                  "mos": ("other_class", "silent")}
ID_PREFIX = {"pair": "pr", "real_fake": "rf", "mos": "mo", "catch": "ck", "gold": "gd", "practice": "px"}
# Free videos a check trial needs besides the HIT's own (silent/identical: one).
CHECK_NEEDS_VIDEOS = 1


@dataclass
class StudyOptions:
    name: str = ""
    seed: int = 0
    protocols: tuple[str, ...] = PROTOCOLS
    questions: tuple[str, ...] = QUESTIONS
    pairs: list[tuple[str, str]] | None = None  # default: every pair of non-real systems
    real_system: str = "real"
    trials_per_hit: int = 10  # main trials; checks come on top
    catch_per_hit: int = 1
    gold_per_hit: int = 1
    reward: str = DEFAULT_REWARD
    max_assignments: int = 3
    assignment_duration_s: int = 3600
    lifetime_s: int = 3 * 86400
    auto_approval_delay_s: int = 3 * 86400
    title: str = "Watch short videos and judge their sound"
    description: str = ("Watch short videos to the end and say how well the sound matches what "
                        "you see. Headphones or speakers needed.")
    keywords: str = "video, audio, sound, rating, comparison"
    qualifications: Qualifications = field(default_factory=Qualifications)
    # Protocols whose conditions are split over rater groups (real_fake by default; add mos).
    exposure: tuple[str, ...] = ("real_fake",)
    practice: bool = True  # a practice question with feedback opens every page
    loudness: lnorm.LoudnessOptions = field(default_factory=lnorm.LoudnessOptions)


def build_screened_study(clip_manifests: list[str | Path], out_dir: str | Path, opts: StudyOptions,
                         screening_opts=None) -> tuple[Study, list[str]]:
    """`build_study` and its screening test (consent, calibration at the study's loudness target,
    headphone check) in one study folder; returns it with the lines a requester reads."""
    from dataclasses import asdict

    from mturk import screening

    study = build_study(clip_manifests, out_dir, opts)
    so = screening_opts or screening.ScreeningOptions()
    scr = screening.attach(study, calibration_lufs=opts.loudness.target_lufs if opts.loudness else None,
                           **asdict(so))
    return study, [describe_study(study, out_dir), "screening: " + screening.describe(scr)]


def describe_study(study, out) -> str:
    """One line: the study's trials and HITs per protocol, and where it was written."""
    kinds: dict[str, int] = {}
    for h in study.hits:
        kinds[h.kind] = kinds.get(h.kind, 0) + 1
    return (f"study {study.name}: {len(study.trials)} trials in {len(study.hits)} HITs "
            f"({', '.join(f'{k} {n}' for k, n in kinds.items())}) -> {out}")


class _Builder:
    def __init__(self, clips: dict[str, dict[str, ClipRecord]], videos: list[str], opts: StudyOptions):
        self.clips, self.videos, self.opts = clips, videos, opts
        self.rng = random.Random(opts.seed)
        self.salt = f"{opts.name}:{opts.seed}"
        self.systems = list(clips)
        self.real = opts.real_system if opts.real_system in clips else ""
        self.base_system = self.real or self.systems[0]
        self.cls = {v: clips[self.systems[0]][v].class_name for v in videos}
        self.jobs: dict[str, MediaJob] = {}
        self.counters = {k: itertools.count(1) for k in ID_PREFIX}
        self.loudness: lnorm.LoudnessPlan | None = None

    # -- media -------------------------------------------------------------------------------
    def gain(self, system: str, video: str) -> float | None:
        return self.loudness.gain_for(self.clips[system][video].clip_path) if self.loudness else None

    def _name(self, *parts: str, gain: float | None) -> str:
        # The gain is part of the name: a study rebuilt with another loudness target never reuses
        # media normalised for the old one.
        return opaque_name(self.salt, *parts, *(() if gain is None else (f"gain={gain:.3f}",)))

    def own(self, system: str, video: str, variant: str = "") -> str:
        g = self.gain(system, video)
        name = self._name(system, video, variant, gain=g)
        self.jobs.setdefault(name, MediaJob(name, "link", self.clips[system][video].clip_path, gain_db=g))
        return name

    def silent(self, system: str, video: str) -> str:
        name = opaque_name(self.salt, system, video, "silent")
        self.jobs.setdefault(name, MediaJob(name, "silent", self.clips[system][video].clip_path))
        return name

    def swapped(self, system: str, video: str, sound_of: str) -> str:
        g = self.gain(system, sound_of)
        name = self._name(system, video, "sound-of", sound_of, gain=g)
        self.jobs.setdefault(name, MediaJob(name, "mux", self.clips[system][video].clip_path,
                                            self.clips[system][sound_of].clip_path, gain_db=g))
        return name

    def next_id(self, key: str) -> str:
        return f"{ID_PREFIX[key]}{next(self.counters[key]):04d}"

    def trial(self, key: str, kind: str, question: str, role: str, video: str, left: tuple,
              right: tuple = ("", "", "", ""), truth: str = "", check: str = "", group: str = "") -> Trial:
        """``left``/``right``: (system label, source clip, media name, sound)."""
        if check and check not in CHECKS:
            raise ValueError(check)
        return Trial(trial_id=self.next_id(key), kind=kind, question=question, role=role,
                     video_id=video, class_name=self.cls[video], left_system=left[0],
                     left_clip=str(left[1]), left_media=left[2], left_sound=left[3],
                     right_system=right[0], right_clip=str(right[1]), right_media=right[2],
                     right_sound=right[3], truth=truth, check=check, group=group)

    def side(self, system: str, video: str) -> tuple:
        return (system, self.clips[system][video].clip_path, self.own(system, video), "own")

    # -- main trials -------------------------------------------------------------------------
    def pair_trials(self, pairs: list[tuple[str, str]]) -> list[Trial]:
        out = []
        for (a, b), q in itertools.product(pairs, self.opts.questions):
            vids = list(self.videos)
            self.rng.shuffle(vids)
            # Balanced sides: half the videos show `a` on the left; an odd one out is drawn.
            n_a_left = len(vids) // 2 + (self.rng.random() < 0.5 if len(vids) % 2 else 0)
            for i, v in enumerate(vids):
                first, second = (a, b) if i < n_a_left else (b, a)
                out.append(self.trial("pair", "pair", q, "main", v, self.side(first, v), self.side(second, v)))
        return out

    def real_fake_trials(self, design: ExposureDesign | None) -> list[Trial]:
        if design is None:
            return [self.trial("real_fake", "real_fake", "real", "main", v, self.side(s, v))
                    for v in self.videos for s in self.systems]
        return [self.trial("real_fake", "real_fake", "real", "main", v, self.side(s, v), group=str(g))
                for g, row in enumerate(design.square) for v, s in zip(design.videos, row)]

    def mos_trials(self, exclude: set[str], design: ExposureDesign | None) -> list[Trial]:
        if design is None:
            return [self.trial("mos", "mos", q, "main", v, self.side(s, v))
                    for v in self.videos if v not in exclude for s in self.systems for q in self.opts.questions]
        return [self.trial("mos", "mos", q, "main", v, self.side(s, v), group=str(g))
                for g, row in enumerate(design.square) for v, s in zip(design.videos, row)
                for q in self.opts.questions]

    # -- checks ------------------------------------------------------------------------------
    def other_video(self, v: str, busy: set[str], same_class: bool | None) -> str | None:
        pool = [u for u in self.videos if u != v and u not in busy
                and (same_class is None or (self.cls[u] == self.cls[v]) == same_class)]
        return self.rng.choice(pool) if pool else None

    def check_trial(self, kind: str, check: str, busy: set[str], practice: bool = False) -> Trial | None:
        free = [v for v in self.videos if v not in busy]
        self.rng.shuffle(free)
        s = self.base_system
        for v in free:
            busy_v = busy | {v}
            qs = self.opts.questions
            if check == "identical":
                own = self.side(s, v)
                dup = (s, own[1], self.own(s, v, "dup"), "own")  # a second name: URLs must differ
                return self.trial("catch", "pair", self.rng.choice(qs), "catch", v, own, dup, "", check)
            if check == "silent":
                bad = (f"check:{check}", self.clips[s][v].clip_path, self.silent(s, v), "silent")
                q, truth_bad = "missing", "1"
            else:
                u = self.other_video(v, busy_v, same_class=(check == "misaligned"))
                if u is None and check == "misaligned":
                    u = self.other_video(v, busy_v, None)
                if u is None:
                    continue
                if check == "misaligned" and self.cls[u] != self.cls[v]:
                    # No other video of the class is free: the swap crosses classes, an obvious
                    # catch rather than the subtle gold it was meant to be. Say what it is.
                    check = "other_class"
                bad = (f"check:{check}", self.clips[s][v].clip_path, self.swapped(s, v, u), f"other:{u}")
                q = "mismatched" if check == "other_class" else self.rng.choice(
                    [x for x in qs if x != "mismatched"] or list(qs))
                truth_bad = "1"
            role = "practice" if practice else "gold" if check == "misaligned" else "catch"
            key = role
            if kind == "pair":
                good = self.side(s, v)
                if self.rng.random() < 0.5:
                    return self.trial(key, "pair", q, role, v, good, bad, "left", check)
                return self.trial(key, "pair", q, role, v, bad, good, "right", check)
            if kind == "real_fake":
                return self.trial(key, "real_fake", "real", role, v, bad, truth="fake", check=check)
            return self.trial(key, "mos", q, role, v, bad, truth=truth_bad, check=check)
        return None

    def ref5_repeat(self, ref_video: str) -> Trial:
        """The reference scored 5 asked again as a MOS question: its rating must be high. Needs no
        free video, so every MOS HIT can carry a check."""
        q = self.rng.choice(list(self.opts.questions))
        side = ("check:ref5_repeat", self.clips[self.real][ref_video].clip_path,
                self.own(self.real, ref_video, "ref5-repeat"), "own")
        return self.trial("catch", "mos", q, "catch", ref_video, side, truth="5", check="ref5_repeat")


def _trial_videos(t: Trial) -> set[str]:
    out = {t.video_id}
    for s in (t.left_sound, t.right_sound):
        if s.startswith("other:"):
            out.add(s.split(":", 1)[1])
    return out


def _pack(trials: list[Trial], n: int, rng: random.Random) -> list[list[Trial]]:
    """First fit after a seeded shuffle: at most ``n`` trials per HIT, no video twice in a HIT."""
    order = list(trials)
    rng.shuffle(order)
    hits: list[tuple[list[Trial], set[str]]] = []
    for t in order:
        vids = _trial_videos(t)
        for members, used in hits:
            if len(members) < n and not (vids & used):
                members.append(t)
                used |= vids
                break
        else:
            hits.append(([t], set(vids)))
    return [m for m, _ in hits]


def read_clip_manifests(paths: list[str | Path]) -> dict[str, dict[str, ClipRecord]]:
    clips: dict[str, dict[str, ClipRecord]] = {}
    for p in paths:
        for c in read_clips(p):
            per = clips.setdefault(c.system, {})
            if c.video_id in per:
                raise UserError(f"{p}: system {c.system} lists video {c.video_id} twice")
            per[c.video_id] = c
    return clips


def build_study(clip_manifests: list[str | Path], out_dir: str | Path, opts: StudyOptions) -> Study:
    out_dir = Path(out_dir)
    if not clip_manifests:
        raise UserError("--clips: give at least one clips.csv")
    opts.name = opts.name or out_dir.resolve().name
    bad = [p for p in opts.protocols if p not in PROTOCOLS]
    if bad or not opts.protocols:
        raise UserError(f"--protocols: {', '.join(bad) or 'none given'}; choose from {', '.join(PROTOCOLS)}")
    badq = [q for q in opts.questions if q not in QUESTIONS]
    if badq or not opts.questions:
        raise UserError(f"--questions: {', '.join(badq) or 'none given'}; choose from {', '.join(QUESTIONS)}")
    if not 1 <= opts.max_assignments <= 1_000_000:
        raise UserError(f"--assignments: {opts.max_assignments} is outside 1..1000000")
    if opts.trials_per_hit < 1:
        raise UserError(f"--trials-per-hit: {opts.trials_per_hit} must be at least 1")
    for flag, n in (("--catch-per-hit", opts.catch_per_hit), ("--gold-per-hit", opts.gold_per_hit)):
        if n < 0:
            raise UserError(f"{flag}: {n} must be 0 or more")
    bad_x = [p for p in opts.exposure if p not in EXPOSURE_PROTOCOLS]
    if bad_x:
        raise UserError(f"--exposure: {', '.join(bad_x)}; choose from {', '.join(EXPOSURE_PROTOCOLS)} or none")
    try:
        out_dir.mkdir(parents=True, exist_ok=True)
    except OSError as e:
        raise UserError(f"--out: cannot create {out_dir} ({e.strerror})") from None
    clips = read_clip_manifests(clip_manifests)
    # The trials compare clips of one length and rate; each system's feature hash is its own.
    made_with = agreed_settings(clip_manifests, why="a study compares clips of one length and rate "
                                "(make every system's clips with the same data.clip_seconds and data.sample_rate)")
    feature_hashes = {s: "; ".join(sorted({c.feature_config_hash for c in per.values() if c.feature_config_hash}))
                      for s, per in clips.items()}
    systems = list(clips)
    common = set.intersection(*(set(v) for v in clips.values()))
    if not common:
        raise UserError(f"--clips: systems {', '.join(systems)} have no video in common")
    for s, per in clips.items():
        if len(per) > len(common):
            log.warning("system %s: %d video(s) not shown by every system are left out", s, len(per) - len(common))
    b = _Builder(clips, sorted(common), opts)

    pairs = opts.pairs
    if pairs is None:
        generated = [s for s in systems if s != b.real]
        pairs = list(itertools.combinations(generated if len(generated) >= 2 else systems, 2))
    for a, c in pairs:
        for s in (a, c):
            if s not in clips:
                raise UserError(f"--pairs: system {s!r} is not in the clip manifests ({', '.join(systems)})")
        if a == c:
            raise UserError(f"--pairs: {a}:{c} compares a system with itself")
    if "pair" in opts.protocols and not pairs:
        raise UserError("--protocols: pair needs at least two systems")
    if "mos" in opts.protocols:
        if not b.real:
            raise UserError(f"--protocols: MOS needs the real sound (system {opts.real_system!r}) for "
                            "its reference videos; add its clips.csv or set --real-system")
        if len(b.videos) < 3:
            raise UserError("--clips: MOS needs at least 3 videos (one is the reference)")

    # Loudness first: the gains are part of the media names.
    b.loudness = measure_clips(clips, b.videos, opts.loudness)

    main: dict[tuple[str, int | None], list[Trial]] = {}
    designs: dict[str, ExposureDesign] = {}
    refs = ("", "")
    ref_videos: set[str] = set()
    ref_video = ""
    if "pair" in opts.protocols:
        main[("pair", None)] = b.pair_trials(pairs)
    if "real_fake" in opts.protocols:
        if not b.real:
            log.warning("no %r system: real-or-fake trials show generated sound only", opts.real_system)
        design = None
        if "real_fake" in opts.exposure and len(systems) > 1:
            design = designs["real_fake"] = ExposureDesign("real_fake", systems, b.videos,
                                                           latin_square(b.videos, systems))
        _add_grouped(main, "real_fake", b.real_fake_trials(design))
    if "mos" in opts.protocols:
        ref_video = b.rng.choice(b.videos)
        sound_of = b.other_video(ref_video, set(), same_class=False) or b.other_video(ref_video, set(), None)
        refs = (b.swapped(b.real, ref_video, sound_of), b.own(b.real, ref_video, "ref5"))
        ref_videos = {ref_video, sound_of}
        design = None
        if "mos" in opts.exposure and len(systems) > 1:
            vids = [v for v in b.videos if v not in ref_videos]
            design = designs["mos"] = ExposureDesign("mos", systems, vids, latin_square(vids, systems))
        _add_grouped(main, "mos", b.mos_trials(ref_videos, design))

    hits: list[HitSpec] = []
    all_trials: list[Trial] = []
    n_hit = itertools.count(1)
    no_room: dict[str, int] = {}
    unchecked: dict[str, list[str]] = {}
    n_kind: dict[str, int] = {}
    for (kind, group), trials in main.items():
        catch_types = [c for c in CATCH_TYPES[kind] if c != "other_class" or len(set(b.cls.values())) > 1]
        for members in _pack(trials, opts.trials_per_hit, b.rng):
            local_id = f"h{next(n_hit):04d}"
            n_kind[kind] = n_kind.get(kind, 0) + 1
            # The MOS references open every MOS HIT, so their videos count as used there.
            busy = set().union(*(_trial_videos(t) for t in members)) | (ref_videos if kind == "mos" else set())
            wanted = [catch_types[(len(hits) + i) % len(catch_types)]
                      for i in range(opts.catch_per_hit if catch_types else 0)]
            wanted += ["misaligned"] * (opts.gold_per_hit if b.real else 0)
            n_checks = 0
            for c in wanted:
                t = b.check_trial(kind, c, busy)
                if t is None and c in catch_types:
                    # Another kind of catch may fit where this one does not.
                    t = next((x for x in (b.check_trial(kind, o, busy) for o in catch_types if o != c) if x), None)
                if t is None and kind == "mos" and c in catch_types:
                    t = b.ref5_repeat(ref_video)
                if t is None:
                    no_room[kind] = no_room.get(kind, 0) + 1
                    continue
                members.append(t)
                n_checks += 1
                busy |= _trial_videos(t)
            if not n_checks:
                unchecked.setdefault(kind, []).append(local_id)
            b.rng.shuffle(members)
            practice = None
            if opts.practice:
                practice = next((x for x in (b.check_trial(kind, c, busy, practice=True)
                                             for c in PRACTICE_CHECK[kind]) if x), None) or next(
                    (x for x in (b.check_trial(kind, c, ref_videos if kind == "mos" else set(), practice=True)
                                 for c in PRACTICE_CHECK[kind]) if x), None)
            hit = HitSpec(local_id=local_id, kind=kind, trial_ids=[t.trial_id for t in members],
                          ref1_media=refs[0] if kind == "mos" else "", ref5_media=refs[1] if kind == "mos" else "",
                          group=group, practice_id=practice.trial_id if practice else "")
            for t in members + ([practice] if practice else []):
                t.hit = hit.local_id
            hits.append(hit)
            all_trials.extend(members + ([practice] if practice else []))
    for kind, n in no_room.items():
        log.warning("%d check trial(s) left out of %s HITs: no video free of the HIT's own "
                    "(more videos, or fewer --trials-per-hit, make room)", n, kind)
    if opts.gold_per_hit and not b.real:
        log.warning("no %r system: no gold trials (they need the real sound)", opts.real_system)
    for kind, ids in unchecked.items():
        raise UserError(f"{_KIND_NAME[kind]} HITs have no check ({len(ids)} of {n_kind[kind]}, e.g. {ids[0]}): "
                        + _smallest_fix(kind, opts, len(b.videos), bool(b.real)))

    used = {m for t in all_trials for m in t.media_names} | {m for h in hits for m in (h.ref1_media, h.ref5_media) if m}
    all_trials.sort(key=lambda t: t.trial_id)
    settings = {k: v for k, v in asdict(opts).items() if k != "qualifications"}
    uid = hashlib.sha256(json.dumps([settings, [asdict(t) for t in all_trials], [asdict(h) for h in hits]],
                                    sort_keys=True, default=str).encode()).hexdigest()[:16]
    _refuse_replacing_used_study(out_dir, uid)
    make_media([j for n, j in sorted(b.jobs.items()) if n in used], out_dir / "media")
    measure_after(b, out_dir / "media", used)
    for d in designs.values():
        d.hits = {str(g): [h.local_id for h in hits if h.kind == d.protocol and h.group == g]
                  for g in range(d.n_groups)}
        d.trials = {str(g): [t.trial_id for t in all_trials if t.kind == d.protocol and t.role == "main"
                             and t.group == str(g)] for g in range(d.n_groups)}
    study = Study(name=opts.name, uid=uid, seed=opts.seed, systems=systems, real_system=b.real,
                  protocols=list(dict.fromkeys(k for k, _ in main)), questions=list(opts.questions),
                  title=opts.title, description=opts.description, keywords=opts.keywords, reward=opts.reward,
                  max_assignments=opts.max_assignments, assignment_duration_s=opts.assignment_duration_s,
                  lifetime_s=opts.lifetime_s, auto_approval_delay_s=opts.auto_approval_delay_s,
                  trials_per_hit=opts.trials_per_hit, qualifications=opts.qualifications, hits=hits,
                  trials=all_trials, exposure={p: d.to_json() for p, d in designs.items()},
                  loudness=b.loudness.summary(), clip_seconds=made_with.clip_seconds,
                  sample_rate=made_with.sample_rate, feature_config_hash=feature_hashes)
    save_study(study, out_dir)
    log.info("study %s: %d trials in %d HITs -> %s", study.name, len(all_trials), len(hits), out_dir)
    return study


_KIND_NAME = {"pair": "paired-comparison", "real_fake": "real-or-fake", "mos": "MOS"}


def _smallest_fix(kind: str, opts: StudyOptions, n_videos: int, has_real: bool) -> str:
    """The one change that would give every HIT of this kind a check."""
    if opts.catch_per_hit == 0:
        golds = opts.gold_per_hit and has_real
        return "add --catch-per-hit 1" + (" (the gold trials found no free video)" if golds else "")
    room = n_videos - CHECK_NEEDS_VIDEOS
    if room >= 1:
        return f"reduce --trials-per-hit to {room} (a check needs a video the HIT does not show)"
    return f"add videos: {n_videos} video(s) leave no room for a check next to a main trial"


def _add_grouped(main: dict, kind: str, trials: list[Trial]) -> None:
    for t in trials:
        main.setdefault((kind, int(t.group) if t.group else None), []).append(t)


def measure_clips(clips: dict[str, dict[str, ClipRecord]], videos: list[str],
                  opts: lnorm.LoudnessOptions) -> lnorm.LoudnessPlan:
    """Loudness of every clip of every system the study shows; refuses silent/clipped ones."""
    from concurrent.futures import ThreadPoolExecutor

    from tqdm import tqdm

    sources = {str(clips[s][v].clip_path): (s, v) for s in clips for v in videos}
    paths = sorted(sources)
    # Each measurement is an ffmpeg decode (a process start) plus a short numpy pass.
    with ThreadPoolExecutor(max_workers=min(4, os.cpu_count() or 1)) as pool:
        got = list(tqdm(pool.map(lnorm.measure, paths), total=len(paths), desc="loudness", unit="clip",
                        disable=len(paths) < 50, leave=False))
    return lnorm.plan(sources, opts, dict(zip(paths, got)))


def measure_after(b: _Builder, media_dir: Path, used: set[str]) -> None:
    """Loudness of what a rater receives: each clip's own-sound media file, after encoding."""
    plan = b.loudness
    if plan is None:
        return
    for (system, video), name in _own_media(b, used).items():
        c = plan.clips.get(str(b.clips[system][video].clip_path))
        if c is None:
            continue
        m = lnorm.measure(media_dir / name)
        c.lufs_after = m.lufs if m.has_audio else None
        c.true_peak_after_dbtp = m.true_peak_dbtp if m.has_audio else None


def _own_media(b: _Builder, used: set[str]) -> dict[tuple[str, str], str]:
    out = {}
    for s in b.clips:
        for v in b.videos:
            name = b._name(s, v, "", gain=b.gain(s, v))
            if name in used:
                out[(s, v)] = name
    return out


def _refuse_replacing_used_study(out_dir: Path, uid: str) -> None:
    """A study already published or answered is the key to its HITs and votes (trial ids, media,
    tokens): writing a different study over it would orphan them. The same study again is fine."""
    sj = out_dir / "study.json"
    if not sj.is_file():
        return
    try:
        old_uid = json.loads(sj.read_text()).get("uid")
    except (OSError, ValueError, AttributeError):
        old_uid = None
    if old_uid == uid:
        return
    used = [n for n in ("ledger.sqlite", "votes.csv", "votes.parquet") if (out_dir / n).exists()]
    if used:
        raise UserError(f"--out: {out_dir} holds a different study that was already published or answered "
                        f"({', '.join(used)}); rebuilding it there would orphan its HITs and votes. "
                        "Build into a new folder")
