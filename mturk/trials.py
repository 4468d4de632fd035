"""Build a study from clip manifests (DESIGN §4): paired comparisons, real-or-fake, MOS, plus the
catch and gold trials that screen raters, packed into HITs. Everything random draws from one
``random.Random(seed)``, so the same inputs and seed give the same study, media names included.
"""

from __future__ import annotations

import hashlib
import itertools
import json
import logging
import random
from dataclasses import asdict, dataclass, field
from pathlib import Path

from mturk.media import MediaJob, make_media, opaque_name
from mturk.study import HitSpec, Qualifications, Study, Trial, save_study
from regnet.clips import ClipRecord, read_clips
from regnet.errors import UserError

log = logging.getLogger(__name__)

PROTOCOLS = ("pair", "real_fake", "mos")
QUESTIONS = ("missing", "redundant", "mismatched")
# Which checks each kind of HIT can carry. Catch trials are obvious to an attentive rater; gold
# trials (a real sound against another video's real sound, i.e. misaligned) have a known answer
# but need the same perception the study measures.
CATCH_TYPES = {"pair": ("identical", "silent", "other_class"), "real_fake": ("other_class",),
               "mos": ("silent", "other_class")}
ID_PREFIX = {"pair": "pr", "real_fake": "rf", "mos": "mo", "catch": "ck", "gold": "gd"}


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
    reward: str = "0.50"
    max_assignments: int = 3
    assignment_duration_s: int = 3600
    lifetime_s: int = 3 * 86400
    auto_approval_delay_s: int = 3 * 86400
    title: str = "Watch short videos and judge their sound"
    description: str = ("Watch short videos to the end and say how well the sound matches what "
                        "you see. Headphones or speakers needed.")
    keywords: str = "video, audio, sound, rating, comparison"
    qualifications: Qualifications = field(default_factory=Qualifications)


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

    # -- media -------------------------------------------------------------------------------
    def own(self, system: str, video: str, variant: str = "") -> str:
        name = opaque_name(self.salt, system, video, variant)
        self.jobs.setdefault(name, MediaJob(name, "link", self.clips[system][video].clip_path))
        return name

    def silent(self, system: str, video: str) -> str:
        name = opaque_name(self.salt, system, video, "silent")
        self.jobs.setdefault(name, MediaJob(name, "silent", self.clips[system][video].clip_path))
        return name

    def swapped(self, system: str, video: str, sound_of: str) -> str:
        name = opaque_name(self.salt, system, video, "sound-of", sound_of)
        self.jobs.setdefault(name, MediaJob(name, "mux", self.clips[system][video].clip_path,
                                            self.clips[system][sound_of].clip_path))
        return name

    def next_id(self, key: str) -> str:
        return f"{ID_PREFIX[key]}{next(self.counters[key]):04d}"

    def trial(self, key: str, kind: str, question: str, role: str, video: str, left: tuple,
              right: tuple = ("", "", "", ""), truth: str = "", check: str = "") -> Trial:
        """``left``/``right``: (system label, source clip, media name, sound)."""
        return Trial(trial_id=self.next_id(key), kind=kind, question=question, role=role,
                     video_id=video, class_name=self.cls[video], left_system=left[0],
                     left_clip=str(left[1]), left_media=left[2], left_sound=left[3],
                     right_system=right[0], right_clip=str(right[1]), right_media=right[2],
                     right_sound=right[3], truth=truth, check=check)

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

    def real_fake_trials(self) -> list[Trial]:
        return [self.trial("real_fake", "real_fake", "real", "main", v, self.side(s, v))
                for v in self.videos for s in self.systems]

    def mos_trials(self, exclude: set[str]) -> list[Trial]:
        return [self.trial("mos", "mos", q, "main", v, self.side(s, v))
                for v in self.videos if v not in exclude for s in self.systems for q in self.opts.questions]

    # -- checks ------------------------------------------------------------------------------
    def other_video(self, v: str, busy: set[str], same_class: bool | None) -> str | None:
        pool = [u for u in self.videos if u != v and u not in busy
                and (same_class is None or (self.cls[u] == self.cls[v]) == same_class)]
        return self.rng.choice(pool) if pool else None

    def check_trial(self, kind: str, check: str, busy: set[str]) -> Trial | None:
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
                bad = (f"check:{check}", self.clips[s][v].clip_path, self.swapped(s, v, u), f"other:{u}")
                q = "mismatched" if check == "other_class" else self.rng.choice(
                    [x for x in qs if x != "mismatched"] or list(qs))
                truth_bad = "1"
            role = "gold" if check == "misaligned" else "catch"
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
    try:
        out_dir.mkdir(parents=True, exist_ok=True)
    except OSError as e:
        raise UserError(f"--out: cannot create {out_dir} ({e.strerror})") from None
    clips = read_clip_manifests(clip_manifests)
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

    main: dict[str, list[Trial]] = {}
    refs = ("", "")
    ref_videos: set[str] = set()
    if "pair" in opts.protocols:
        main["pair"] = b.pair_trials(pairs)
    if "real_fake" in opts.protocols:
        if not b.real:
            log.warning("no %r system: real-or-fake trials show generated sound only", opts.real_system)
        main["real_fake"] = b.real_fake_trials()
    if "mos" in opts.protocols:
        if not b.real:
            raise UserError(f"--protocols: MOS needs the real sound (system {opts.real_system!r}) for "
                            "its reference videos; add its clips.csv or set --real-system")
        if len(b.videos) < 3:
            raise UserError("--clips: MOS needs at least 3 videos (one is the reference)")
        ref_video = b.rng.choice(b.videos)
        sound_of = b.other_video(ref_video, set(), same_class=False) or b.other_video(ref_video, set(), None)
        refs = (b.swapped(b.real, ref_video, sound_of), b.own(b.real, ref_video, "ref5"))
        ref_videos = {ref_video, sound_of}
        main["mos"] = b.mos_trials(exclude=ref_videos)

    hits: list[HitSpec] = []
    all_trials: list[Trial] = []
    n_hit = itertools.count(1)
    no_room: dict[str, int] = {}
    for kind, trials in main.items():
        catch_types = [c for c in CATCH_TYPES[kind] if c != "other_class" or len(set(b.cls.values())) > 1]
        for members in _pack(trials, opts.trials_per_hit, b.rng):
            # The MOS references open every MOS HIT, so their videos count as used there.
            busy = set().union(*(_trial_videos(t) for t in members)) | (ref_videos if kind == "mos" else set())
            wanted = [catch_types[(len(hits) + i) % len(catch_types)]
                      for i in range(opts.catch_per_hit if catch_types else 0)]
            wanted += ["misaligned"] * (opts.gold_per_hit if b.real else 0)
            for c in wanted:
                t = b.check_trial(kind, c, busy)
                if t is None:
                    no_room[kind] = no_room.get(kind, 0) + 1
                    continue
                members.append(t)
                busy |= _trial_videos(t)
            b.rng.shuffle(members)
            hit = HitSpec(local_id=f"h{next(n_hit):04d}", kind=kind, trial_ids=[t.trial_id for t in members],
                          ref1_media=refs[0] if kind == "mos" else "", ref5_media=refs[1] if kind == "mos" else "")
            for t in members:
                t.hit = hit.local_id
            hits.append(hit)
            all_trials.extend(members)
    for kind, n in no_room.items():
        log.warning("%d check trial(s) left out of %s HITs: no video free of the HIT's own "
                    "(more videos, or fewer --trials-per-hit, make room)", n, kind)
    if opts.gold_per_hit and not b.real:
        log.warning("no %r system: no gold trials (they need the real sound)", opts.real_system)

    used = {m for t in all_trials for m in t.media_names} | {m for h in hits for m in (h.ref1_media, h.ref5_media) if m}
    all_trials.sort(key=lambda t: t.trial_id)
    settings = {k: v for k, v in asdict(opts).items() if k != "qualifications"}
    uid = hashlib.sha256(json.dumps([settings, [asdict(t) for t in all_trials], [asdict(h) for h in hits]],
                                    sort_keys=True, default=str).encode()).hexdigest()[:16]
    _refuse_replacing_used_study(out_dir, uid)
    make_media([j for n, j in sorted(b.jobs.items()) if n in used], out_dir / "media")
    study = Study(name=opts.name, uid=uid, seed=opts.seed, systems=systems, real_system=b.real,
                  protocols=list(main), questions=list(opts.questions), title=opts.title,
                  description=opts.description, keywords=opts.keywords, reward=opts.reward,
                  max_assignments=opts.max_assignments, assignment_duration_s=opts.assignment_duration_s,
                  lifetime_s=opts.lifetime_s, auto_approval_delay_s=opts.auto_approval_delay_s,
                  trials_per_hit=opts.trials_per_hit, qualifications=opts.qualifications, hits=hits,
                  trials=all_trials)
    save_study(study, out_dir)
    log.info("study %s: %d trials in %d HITs -> %s", study.name, len(all_trials), len(hits), out_dir)
    return study


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
