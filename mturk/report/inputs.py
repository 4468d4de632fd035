"""Where votes come from: our votes table, an MTurk batch-results CSV / Turkle export, or the local
server's database; plus the study folder (systems, votes per item) when one is given.

Everything ends as one long votes frame with `mturk.votes.VOTE_COLUMNS`; checking its content is
`validate.py`'s job.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

import pandas as pd

from mturk.votes import normalize_votes, read_votes
from regnet.errors import UserError

if TYPE_CHECKING:
    from mturk.study import Study

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class StudyInfo:
    """What the report needs from a study folder, in `mturk.study.Study`'s own field names; each
    field is None when the study does not say (a folder describing a study run elsewhere may give
    only some). ``study``: the typed study when the folder is a whole regnet-bench study."""

    path: Path
    systems: tuple[str, ...] | None = None
    votes_per_item: int | None = None  # Study.max_assignments
    reward: float | None = None
    real_system: str | None = None
    trials_per_hit: int | None = None
    trials: pd.DataFrame | None = field(default=None, compare=False, repr=False)
    # The system the study is about: the first --clips of build-study that is not the real sound.
    # Table I says "<focus> preferred over <other>".
    focus: str | None = None
    study: Study | None = field(default=None, compare=False, repr=False)


def load_study(study_dir: str | Path | None) -> StudyInfo | None:
    """The study folder through `mturk.study`'s reader: the typed study when it is a whole one,
    else the fields its study.json does give (checked for type, one-line errors)."""
    from mturk.study import STUDY_FORMAT, read_study_doc
    from mturk.study import load_study as load_typed

    if study_dir is None:
        return None
    d = Path(study_dir)
    if not (d / "study.json").is_file():
        raise UserError(f"{d}: not a study folder (no study.json)")
    doc = read_study_doc(d)
    typed = load_typed(d) if doc.get("format") == STUDY_FORMAT else None
    where = d / "study.json"

    def field_of(name: str, kind: type | tuple[type, ...]):
        value = doc.get(name)
        if value is not None and not isinstance(value, kind):
            raise UserError(f"{where}: {name} must be {getattr(kind, '__name__', 'a number')}, "
                            f"not {type(value).__name__}")
        return value

    systems = field_of("systems", list)
    if systems is not None:
        if not all(isinstance(x, str) for x in systems):
            raise UserError(f"{where}: systems must be a list of system names")
        systems = tuple(systems)
    vpi = field_of("max_assignments", int)
    reward = field_of("reward", (str, int, float))
    try:
        reward = float(reward) if reward is not None else None
    except ValueError:
        raise UserError(f"{where}: reward {reward!r} is not an amount in US dollars") from None
    real = field_of("real_system", str) or None
    tph = field_of("trials_per_hit", int)
    tc = d / "trials.csv"
    trials = pd.read_csv(tc, dtype=str) if tc.is_file() else None
    focus = next((s for s in (systems or ()) if s != real), None)
    return StudyInfo(d, systems, vpi or None, reward, real, tph if tph and tph > 0 else None, trials, focus,
                     typed)


def is_batch_csv(path: Path) -> bool:
    """MTurk batch results and Turkle exports both carry the answers as `Answer.*` columns."""
    if path.suffix.lower() != ".csv":
        return False
    try:
        header = pd.read_csv(path, nrows=0).columns
    except (pd.errors.EmptyDataError, pd.errors.ParserError, UnicodeDecodeError):
        return False
    return any(str(c).startswith("Answer.") for c in header)


def load_votes(votes: str | Path | None = None, study: StudyInfo | None = None, *,
               batch: pd.DataFrame | None = None, source: str = "") -> tuple[pd.DataFrame, str]:
    """Return (votes frame, a one-line description of the source): from a votes table or batch CSV
    file (``votes``), or from a batch-result table already in memory (``batch``, e.g. the server's
    database as `regnet.commands.report` reads it; ``source`` names it)."""
    from mturk.batch_csv import votes_from_batch_csv, votes_from_batch_frame

    study_dir = study.path if study else None
    if (votes is None) == (batch is None):
        raise UserError("give exactly one of --votes FILE or --db URL")
    if batch is not None:
        if len(batch) == 0:
            raise UserError(f"{source}: holds no submitted assignments")
        # The server exports in MTurk batch layout; one converter keeps both paths identical.
        return normalize_votes(votes_from_batch_frame(batch, source, study_dir), source), source
    path = Path(votes)
    if not path.is_file():
        raise UserError(f"{path}: votes file not found")
    if is_batch_csv(path):
        log.info("%s: MTurk batch-results layout (Answer.* columns)", path)
        return normalize_votes(votes_from_batch_csv(path, study_dir), str(path)), f"MTurk batch CSV {path}"
    return read_votes(path), f"votes table {path}"
