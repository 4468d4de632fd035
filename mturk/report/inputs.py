"""Where votes come from: our votes table, an MTurk batch-results CSV / Turkle export, or the local
server's database; plus the study folder (systems, votes per item) when one is given.

Everything ends as one long votes frame with `mturk.votes.VOTE_COLUMNS`; checking its content is
`validate.py`'s job.
"""

from __future__ import annotations

import json
import logging
from dataclasses import dataclass, field
from pathlib import Path

import pandas as pd

from mturk.votes import VOTE_COLUMNS, derive_role, read_votes
from regnet.errors import UserError

log = logging.getLogger(__name__)

# study.json keys that may carry the number of assignments (votes) per HIT, in order of preference.
_VOTES_KEYS = ("votes_per_item", "assignments_per_hit", "max_assignments", "assignments")


@dataclass(frozen=True)
class StudyInfo:
    """What the report needs from a study folder; each field is None when the study does not say."""

    path: Path
    systems: tuple[str, ...] | None = None
    votes_per_item: int | None = None
    reward: float | None = None
    real_system: str | None = None
    trials_per_hit: int | None = None
    trials: pd.DataFrame | None = field(default=None, compare=False, repr=False)
    # The system the study is about: study.json "focus", else the first --clips of build-study
    # that is not the real sound. Table I says "<focus> preferred over <other>".
    focus: str | None = None


def load_study(study_dir: str | Path | None) -> StudyInfo | None:
    if study_dir is None:
        return None
    d = Path(study_dir)
    sj = d / "study.json"
    if not sj.is_file():
        raise UserError(f"{d}: not a study folder (no study.json)")
    try:
        meta = json.loads(sj.read_text())
    except (json.JSONDecodeError, UnicodeDecodeError) as e:
        raise UserError(f"{sj}: not valid JSON ({e})") from None
    if not isinstance(meta, dict):
        raise UserError(f"{sj}: expected a JSON object")
    systems = meta.get("systems")
    if isinstance(systems, list):
        systems = tuple(str(s["name"] if isinstance(s, dict) else s) for s in systems)
    elif isinstance(systems, dict):
        systems = tuple(str(s) for s in systems)
    else:
        systems = None
    vpi = next((meta[k] for k in _VOTES_KEYS if isinstance(meta.get(k), (int, float))), None)
    if vpi is None and isinstance(meta.get("hits"), dict):
        vpi = next((meta["hits"][k] for k in _VOTES_KEYS
                    if isinstance(meta["hits"].get(k), (int, float))), None)
    reward = meta.get("reward")
    try:
        reward = float(reward) if reward is not None else None
    except (TypeError, ValueError):
        reward = None
    trials = None
    tc = d / "trials.csv"
    if tc.is_file():
        trials = pd.read_csv(tc, dtype=str)
    real = meta.get("real_system")
    tph = meta.get("trials_per_hit")
    real = str(real) if isinstance(real, str) and real else None
    focus = meta.get("focus")
    if not (isinstance(focus, str) and focus):
        focus = next((s for s in (systems or ()) if s != real), None)
    return StudyInfo(d, systems, int(vpi) if vpi else None, reward, real,
                     int(tph) if isinstance(tph, (int, float)) and tph > 0 else None, trials,
                     focus)


def is_batch_csv(path: Path) -> bool:
    """MTurk batch results and Turkle exports both carry the answers as `Answer.*` columns."""
    if path.suffix.lower() != ".csv":
        return False
    try:
        header = pd.read_csv(path, nrows=0).columns
    except (pd.errors.EmptyDataError, pd.errors.ParserError, UnicodeDecodeError):
        return False
    return any(str(c).startswith("Answer.") for c in header)


def normalize(df: pd.DataFrame, name: str) -> pd.DataFrame:
    """Same column filling as `read_votes`, for frames that did not come from a votes file."""
    required = ["assignment_id", "worker_id", "trial_id", "kind", "question", "answer"]
    missing = [c for c in required if c not in df.columns]
    if missing:
        raise UserError(f"{name}: missing column(s) {', '.join(missing)}")
    df = df.copy()
    for c in VOTE_COLUMNS:
        if c not in df.columns:
            df[c] = pd.NA
    df["is_gold"] = df["is_gold"].fillna(False).astype(bool)
    df["simulated"] = df["simulated"].fillna(False).astype(bool)
    df["played_to_end"] = df["played_to_end"].fillna(True).astype(bool)
    df["trial_role"] = derive_role(df)
    return df[VOTE_COLUMNS + [c for c in df.columns if c not in VOTE_COLUMNS]]


def _from_batch(path: Path, study: StudyInfo | None) -> pd.DataFrame:
    try:
        from mturk.batch_csv import votes_from_batch_csv
    except ImportError:
        raise UserError(f"{path}: looks like an MTurk batch CSV (Answer.* columns) but the batch "
                        "importer mturk.batch_csv is not installed") from None
    return votes_from_batch_csv(path, study_dir=study.path if study else None)


def load_votes(votes: str | Path | None = None, db_url: str | None = None,
               study: StudyInfo | None = None) -> tuple[pd.DataFrame, str]:
    """Return (votes frame, a one-line description of the source)."""
    if (votes is None) == (db_url is None):
        raise UserError("give exactly one of --votes FILE or --db URL")
    if db_url is not None:
        try:
            from eval_server.export import batch_results_frame, to_safe_csv
        except ImportError:
            raise UserError("--db: the local server's exporter (eval_server.export) is not "
                            "installed") from None
        import tempfile

        from sqlalchemy.exc import SQLAlchemyError

        try:
            frame = batch_results_frame(db_url)
        except SQLAlchemyError as e:
            first = str(e.orig if getattr(e, "orig", None) else e).splitlines()[0]
            raise UserError(f"{db_url}: not a readable regnet-bench server database ({first})") \
                from None
        if frame is None or len(frame) == 0:
            raise UserError(f"{db_url}: the database holds no submitted assignments")
        # The server exports in MTurk batch layout; one converter keeps both paths identical.
        with tempfile.TemporaryDirectory() as tmp:
            p = Path(tmp) / "batch.csv"
            # As the admin export writes it (any answer text survives; mturk.batch_csv reads it back).
            p.write_text(to_safe_csv(frame), encoding="utf-8", newline="")
            df = _from_batch(p, study)
        return normalize(df, db_url), f"local server database {db_url}"
    path = Path(votes)
    if not path.is_file():
        raise UserError(f"{path}: votes file not found")
    if is_batch_csv(path):
        log.info("%s: MTurk batch-results layout (Answer.* columns)", path)
        return normalize(_from_batch(path, study), str(path)), f"MTurk batch CSV {path}"
    return read_votes(path), f"votes table {path}"
