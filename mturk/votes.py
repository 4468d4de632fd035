"""The long votes table (DESIGN §3): one row per answer. Written by `collect` (and batch-CSV
import), read by `report`. Columns beyond DESIGN §3: ``class`` (the video's class, for Table II),
``trial_role`` (main | gold | catch), ``truth`` (expected answer of a gold/catch trial),
``played_to_end`` (every video of the trial played to its end before the answer), ``simulated``
(answer came from `simulate-raters`; every report says so)."""

from __future__ import annotations

from pathlib import Path

import pandas as pd

from regnet.atomic import atomic_path
from regnet.errors import UserError

VOTE_COLUMNS = [
    "study", "hit_id", "assignment_id", "worker_id", "trial_id", "kind", "question",
    "left_system", "right_system", "answer", "chosen_system", "rating", "is_gold", "submit_time",
    "work_time_s", "class", "video_id", "trial_role", "truth", "played_to_end", "simulated",
]
KINDS = ("pair", "real_fake", "mos")
QUESTIONS = {"pair": ("missing", "redundant", "mismatched"), "real_fake": ("real",),
             "mos": ("missing", "redundant", "mismatched")}
ANSWERS = {"pair": ("left", "right"), "real_fake": ("real", "fake"), "mos": ("1", "2", "3", "4", "5")}
ROLES = ("main", "gold", "catch")


def empty_votes() -> pd.DataFrame:
    return pd.DataFrame(columns=VOTE_COLUMNS)


def read_votes(path: str | Path) -> pd.DataFrame:
    """Read votes.csv or votes.parquet; a missing optional column is filled, a missing key column is
    a one-line error."""
    path = Path(path)
    if not path.is_file():
        raise UserError(f"{path}: votes file not found")
    try:
        df = pd.read_parquet(path) if path.suffix == ".parquet" else pd.read_csv(
            path, dtype={"answer": str, "worker_id": str, "trial_id": str, "hit_id": str,
                         "assignment_id": str, "video_id": str})
    except pd.errors.EmptyDataError:
        raise UserError(f"{path}: empty file, no votes") from None
    except (pd.errors.ParserError, ValueError, OSError) as e:
        raise UserError(f"{path}: not a readable votes table ({str(e).splitlines()[0]})") from None
    required = ["assignment_id", "worker_id", "trial_id", "kind", "question", "answer"]
    missing = [c for c in required if c not in df.columns]
    if missing:
        raise UserError(f"{path}: missing column(s) {', '.join(missing)}")
    for c in VOTE_COLUMNS:
        if c not in df.columns:
            df[c] = pd.NA
    df["is_gold"] = _as_bool(df["is_gold"], False)
    df["simulated"] = _as_bool(df["simulated"], False)
    df["played_to_end"] = _as_bool(df["played_to_end"], True)
    df["trial_role"] = df["trial_role"].fillna("main")
    return df[VOTE_COLUMNS + [c for c in df.columns if c not in VOTE_COLUMNS]]


def _as_bool(col: pd.Series, default: bool) -> pd.Series:
    """True/False, 1/0 or their strings; a missing value takes the default."""
    truthy = {"true": True, "1": True, "yes": True, "false": False, "0": False, "no": False}
    return col.map(lambda v: default if pd.isna(v) else truthy.get(str(v).strip().lower(), bool(v))).astype(bool)


def write_votes(path: str | Path, df: pd.DataFrame) -> None:
    """Write the whole table beside ``path`` and rename it into place: an interrupted write (Ctrl-C,
    a full disk) leaves the votes already stored there intact."""
    path = Path(path)
    cols = VOTE_COLUMNS + [c for c in df.columns if c not in VOTE_COLUMNS]
    df = df.reindex(columns=cols)
    try:
        with atomic_path(path, ".tmp") as tmp:
            if path.suffix == ".parquet":
                df.to_parquet(tmp, index=False)
            else:
                df.to_csv(tmp, index=False)
    except OSError as e:
        raise UserError(f"{path}: cannot write the votes table ({e.strerror or e})") from None
