"""Study records and their files: ``DIR/study.json`` (settings, HITs) and ``DIR/trials.csv``.

A study folder is self-contained: every clip a rater sees lives in ``DIR/media/`` under an opaque
name (raters must not read system names from URLs), so the folder can be moved, published from
another machine, or served by the local server as it is.
"""

from __future__ import annotations

import json
import re
from dataclasses import asdict, dataclass, field, fields
from decimal import Decimal, InvalidOperation
from pathlib import Path

import pandas as pd

from mturk.vocabulary import MOS_BEST, MOS_WORST
from regnet.errors import UserError

STUDY_FORMAT = "regnet-bench/study"
STUDY_VERSION = 1
TRIAL_ID_RE = re.compile(r"^[A-Za-z0-9_-]+$")

# MTurk's own limits (API reference, CreateHITType / CreateHITWithHITType).
MIN_DURATION_S, MAX_DURATION_S = 30, 31_536_000
MAX_AUTO_APPROVAL_S = 2_592_000

TRIAL_COLUMNS = ["trial_id", "hit", "kind", "question", "role", "check", "video_id", "class",
                 "left_system", "right_system", "left_clip", "right_clip", "left_media", "right_media",
                 "left_sound", "right_sound", "truth", "group"]
# Columns a study written before they existed may lack (filled with "").
OPTIONAL_TRIAL_COLUMNS = ("group",)

# The MOS criteria's wording: the HIT page's instructions, its questions, its reference-video
# captions and the report's labels all read these strings, so they cannot drift apart.


@dataclass(frozen=True)
class Criterion:
    name: str  # "Sound missing"
    definition: str  # what the criterion is about
    question: str  # the question of a MOS trial
    worst: str  # what a 1 means
    best: str  # what a 5 means

    @property
    def anchors(self) -> str:
        """The scale in one line, as shown everywhere: "1 = ..., 5 = ..."."""
        return f"{MOS_WORST} = {self.worst}; {MOS_BEST} = {self.best}"


MOS_CRITERIA = {
    "missing": Criterion("Sound missing",
                         "Moments where something in the video visibly happens that should make a sound, "
                         "but no matching sound is heard.",
                         "Sound missing: is every visible action heard?",
                         "almost no visible action is heard", "every visible action is heard"),
    "redundant": Criterion("Sound redundant",
                           "Sounds that are heard while nothing in the video produces them.",
                           "Sound redundant: is the sound free of sounds nothing in the picture makes?",
                           "most of the sound has no visible cause", "no sound without a visible cause"),
    "mismatched": Criterion("Sound mismatched",
                            "Whether the kind of sound fits what is seen (a dog should sound like a dog, "
                            "a drum like a drum).",
                            "Sound mismatched: does the kind of sound fit the picture?",
                            "the kind of sound does not fit at all", "the kind of sound fits perfectly"),
}
# The reference videos of a MOS page, captioned with the same direction.
MOS_REFERENCE = {MOS_WORST: "the sound does not match the picture at all",
                 MOS_BEST: "the sound matches the picture in every respect"}


def mos_label(question: str) -> str:
    """The report's label for a MOS criterion: "Sound missing (1 = ...; 5 = ...)"."""
    c = MOS_CRITERIA[question]
    return f"{c.name} ({c.anchors})"


@dataclass
class Trial:
    """One question shown to a rater. ``left_*`` is the only side of a real_fake or MOS trial
    (``right_*`` empty). ``*_sound`` says what sound the media carries: ``own`` (the system's
    clip as generated), ``silent``, or ``other:<video_id>`` (another video's sound, for checks)."""

    trial_id: str
    kind: str  # pair | real_fake | mos
    question: str  # missing | redundant | mismatched | real
    role: str  # one of mturk.vocabulary.ROLES
    video_id: str
    class_name: str
    left_system: str
    left_clip: str
    left_media: str
    right_system: str = ""
    right_clip: str = ""
    right_media: str = ""
    left_sound: str = "own"
    right_sound: str = ""
    truth: str = ""  # expected answer of a gold/catch trial; "" when any answer is acceptable
    check: str = ""  # which check a catch/gold trial is: a key of mturk.vocabulary.CHECKS
    hit: str = ""  # local id of the HIT carrying it
    group: str = ""  # exposure-control rater group ("0", "1", ...) of a main trial; "" when none

    @property
    def media_names(self) -> list[str]:
        return [m for m in (self.left_media, self.right_media) if m]


@dataclass
class HitSpec:
    """One HIT as the study plans it (``local_id``); MTurk's HITId lives in the ledger."""

    local_id: str
    kind: str
    trial_ids: list[str]
    ref1_media: str = ""  # MOS only: the reference scored 1, shown first
    ref5_media: str = ""  # MOS only: the reference scored 5
    group: int | None = None  # exposure-control rater group; None: any rater may take it
    practice_id: str = ""  # the practice trial opening the page (role practice, not in trial_ids)


@dataclass
class Qualifications:
    """Worker requirements. The system qualification ids are MTurk's; a lab server that has no such
    qualifications publishes with ``use_system=False``."""

    use_system: bool = True
    min_approval_rate: int = 95
    min_hits_approved: int = 1000
    locales: list[str] = field(default_factory=lambda: ["US"])
    approval_rate_qual_id: str = "000000000000000000L0"
    hits_approved_qual_id: str = "00000000000000000040"
    locale_qual_id: str = "00000000000000000071"
    # Qualification type ids (of earlier studies' participants) a worker must NOT hold.
    exclude_qual_ids: list[str] = field(default_factory=list)
    # Create a qualification for this study and grant it to every worker `collect` sees, so later
    # studies can keep them out with exclude_qual_ids.
    mark_participants: bool = True


@dataclass
class Study:
    name: str
    uid: str  # content hash: tokens derive from it, so a changed study never reuses old tokens
    seed: int
    systems: list[str]
    real_system: str
    protocols: list[str]
    questions: list[str]
    title: str
    description: str
    keywords: str
    reward: str  # US dollars, MTurk money format "0.50"
    max_assignments: int
    assignment_duration_s: int
    lifetime_s: int
    auto_approval_delay_s: int
    trials_per_hit: int
    qualifications: Qualifications
    hits: list[HitSpec]
    trials: list[Trial] = field(default_factory=list, repr=False)
    directory: Path | None = field(default=None, repr=False, compare=False)
    # Exposure control per protocol (mturk/exposure.py `ExposureDesign` as a dict), and the
    # loudness of every stimulus before/after normalisation (mturk/loudness.py); {} in old studies.
    exposure: dict = field(default_factory=dict)
    loudness: dict = field(default_factory=dict)
    # Consent, volume calibration and headphone check before rating (mturk/screening.py
    # `Screening` as a dict); {} in old studies and with build-study --no-screening.
    screening: dict = field(default_factory=dict)
    # The clips' length and sample rate (one for the whole study: its trials compare clips of one
    # length) and each system's feature-config hash, as their clips.csv record them; None / "" where
    # those files record none, None / {} in studies written before these were recorded.
    clip_seconds: float | None = None
    sample_rate: int | None = None
    feature_config_hash: dict = field(default_factory=dict)

    def trial(self, trial_id: str) -> Trial:
        return self.trial_index()[trial_id]

    def trial_index(self) -> dict[str, Trial]:
        return {t.trial_id: t for t in self.trials}

    def hit(self, local_id: str) -> HitSpec:
        for h in self.hits:
            if h.local_id == local_id:
                return h
        raise KeyError(local_id)

    def media_path(self, name: str) -> Path:
        if self.directory is None:
            raise ValueError("study has no folder")
        return self.directory / "media" / name


# US dollars per assignment, unless --reward says otherwise: build-study (StudyOptions) and plan.
DEFAULT_REWARD = "0.50"


def parse_reward(text: str | float, where: str = "--reward") -> str:
    """MTurk money format: dollars with at most two decimals, at least $0.01; returns "0.50"."""
    s = str(text).strip().lstrip("$")
    if not re.fullmatch(r"\d+(\.\d{1,2})?", s):
        raise UserError(f"{where}: {text!r} is not an MTurk amount in US dollars like 0.50")
    try:
        value = Decimal(s)
    except InvalidOperation:
        raise UserError(f"{where}: {text!r} is not an MTurk amount in US dollars like 0.50") from None
    if value < Decimal("0.01"):
        raise UserError(f"{where}: {text!r} is below MTurk's minimum reward of 0.01")
    return f"{value:.2f}"


def parse_duration(text: str | int, where: str, lo: int = MIN_DURATION_S, hi: int = MAX_DURATION_S) -> int:
    """'90', '30s', '20m', '2h', '3d' -> seconds, checked against MTurk's range."""
    m = re.fullmatch(r"\s*(\d+)\s*([smhd]?)\s*", str(text))
    if not m:
        raise UserError(f"{where}: {text!r} is not a duration like 45m, 2h or 3d")
    seconds = int(m.group(1)) * {"": 1, "s": 1, "m": 60, "h": 3600, "d": 86400}[m.group(2)]
    if not lo <= seconds <= hi:
        raise UserError(f"{where}: {text!r} is outside MTurk's range of {lo} s to {hi} s")
    return seconds


def read_study_doc(directory: str | Path) -> dict:
    """study.json of a study folder as a JSON object; a missing or unreadable file is a one-line error.
    `load_study` reads a whole regnet-bench study from it; the report also takes a study folder that
    describes a study run elsewhere with only some of the same fields (`mturk.report.inputs`)."""
    sj = Path(directory) / "study.json"
    if not sj.is_file():
        raise UserError(f"{sj}: study file not found (make one with build-study)")
    try:
        doc = json.loads(sj.read_text(encoding="utf-8"))
    except json.JSONDecodeError as e:
        raise UserError(f"{sj}: not valid JSON ({e.msg}, line {e.lineno})") from None
    except UnicodeDecodeError as e:
        raise UserError(f"{sj}: not UTF-8 text ({e.reason})") from None
    if not isinstance(doc, dict):
        raise UserError(f"{sj}: expected a JSON object, not {type(doc).__name__}")
    return doc


def save_study(study: Study, directory: str | Path) -> None:
    directory = Path(directory)
    directory.mkdir(parents=True, exist_ok=True)
    doc = {
        "format": STUDY_FORMAT,
        "version": STUDY_VERSION,
        **{f.name: getattr(study, f.name) for f in fields(study)
           if f.name not in ("trials", "directory", "hits", "qualifications")},
        "qualifications": asdict(study.qualifications),
        "hits": [asdict(h) for h in study.hits],
        "n_trials": len(study.trials),
    }
    (directory / "study.json").write_text(json.dumps(doc, indent=2) + "\n")
    rows = []
    for t in study.trials:
        d = asdict(t)
        d["class"] = d.pop("class_name")
        rows.append(d)
    pd.DataFrame(rows, columns=TRIAL_COLUMNS).to_csv(directory / "trials.csv", index=False)
    study.directory = directory


def load_study(directory: str | Path) -> Study:
    """Read a study folder; every trial is a typed `Trial` reachable by id (`Study.trial`)."""
    directory = Path(directory)
    sj, tc = directory / "study.json", directory / "trials.csv"
    doc = read_study_doc(directory)
    if doc.get("format") != STUDY_FORMAT:
        raise UserError(f"{sj}: not a regnet-bench study (format {doc.get('format')!r})")
    if not tc.is_file():
        raise UserError(f"{tc}: trials file not found")
    df = pd.read_csv(tc, dtype=str, keep_default_na=False)
    for c in OPTIONAL_TRIAL_COLUMNS:
        if c not in df.columns:
            df[c] = ""
    missing = [c for c in TRIAL_COLUMNS if c not in df.columns]
    if missing:
        raise UserError(f"{tc}: missing column(s) {', '.join(missing)}")
    trials = []
    for r in df.to_dict("records"):
        r["class_name"] = r.pop("class")
        trials.append(Trial(**{k: r[k] for k in (f.name for f in fields(Trial))}))
    try:
        quals = Qualifications(**doc["qualifications"])
        hits = [HitSpec(**h) for h in doc["hits"]]
        optional = {"exposure", "loudness", "screening", "clip_seconds", "sample_rate", "feature_config_hash"}
        known = {f.name for f in fields(Study)} - {"trials", "directory", "qualifications", "hits"} - optional
        study = Study(**{k: doc[k] for k in known}, **{k: doc[k] for k in optional if k in doc},
                      qualifications=quals, hits=hits, trials=trials, directory=directory)
    except (KeyError, TypeError) as e:
        raise UserError(f"{sj}: incomplete or unknown study field ({e})") from None
    index = study.trial_index()
    for h in study.hits:
        for tid in h.trial_ids + ([h.practice_id] if h.practice_id else []):
            if tid not in index:
                raise UserError(f"{sj}: HIT {h.local_id} lists trial {tid}, absent from {tc}")
    return study
