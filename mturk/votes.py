"""The long votes table (docs/architecture.md): one row per answer. Written by `collect` (and batch-CSV
import), read by `report`. Columns beyond the paper's own: ``class`` (the video's class, for Table II),
``trial_role`` (main | gold | catch), ``truth`` (expected answer of a gold/catch trial),
``played_to_end`` (every video of the trial played to its end before the answer), ``simulated``
(answer came from `simulate-raters`; every report says so)."""

from __future__ import annotations

import io
from pathlib import Path

import numpy as np
import pandas as pd

from mturk.vocabulary import VOTE_ROLES
from regnet.atomic import atomic_path
from regnet.errors import UserError

VOTE_COLUMNS = [
    "study", "hit_id", "assignment_id", "worker_id", "trial_id", "kind", "question",
    "left_system", "right_system", "answer", "chosen_system", "rating", "is_gold", "submit_time",
    "work_time_s", "class", "video_id", "trial_role", "truth", "played_to_end", "simulated",
]


def empty_votes() -> pd.DataFrame:
    return pd.DataFrame(columns=VOTE_COLUMNS)


def read_votes(path: str | Path) -> pd.DataFrame:
    """Read votes.csv or votes.parquet; a missing optional column is filled, a missing key column is
    a one-line error."""
    path = Path(path)
    if not path.is_file():
        raise UserError(f"{path}: votes file not found")
    try:
        df = pd.read_parquet(path) if path.suffix == ".parquet" else _read_csv(path)
    except pd.errors.EmptyDataError:
        raise UserError(f"{path}: empty file, no votes") from None
    except (pd.errors.ParserError, ValueError, OSError) as e:
        raise UserError(f"{path}: not a readable votes table ({str(e).splitlines()[0]})") from None
    return normalize_votes(df, str(path))


def normalize_votes(df: pd.DataFrame, name: str) -> pd.DataFrame:
    """The one shape every votes frame takes, whatever it was read from (votes.csv, a batch CSV, the
    server's database): the key columns required (a one-line error naming ``name``), the optional
    ones filled, the flags parsed as booleans, each vote's trial role derived."""
    required = ["assignment_id", "worker_id", "trial_id", "kind", "question", "answer"]
    missing = [c for c in required if c not in df.columns]
    if missing:
        raise UserError(f"{name}: missing column(s) {', '.join(missing)}")
    df = df.copy()
    for c in VOTE_COLUMNS:
        if c not in df.columns:
            df[c] = pd.NA
    df["is_gold"] = _as_bool(df["is_gold"], False)
    df["simulated"] = _as_bool(df["simulated"], False)
    df["played_to_end"] = _as_bool(df["played_to_end"], True)
    df["trial_role"] = derive_role(df)
    return df[VOTE_COLUMNS + [c for c in df.columns if c not in VOTE_COLUMNS]]


def derive_role(df: pd.DataFrame) -> pd.Series:
    """trial_role where given; else gold when ``is_gold`` says so, catch when a ``check`` is named
    (the study design's columns), main otherwise: a file with the design's columns but no
    trial_role must not count its checks as main votes."""
    role = df["trial_role"].astype("string").str.strip().replace("", pd.NA) \
        if "trial_role" in df.columns else pd.Series(pd.NA, index=df.index, dtype="string")
    gold = _as_bool(df["is_gold"], False) if "is_gold" in df.columns else \
        pd.Series(False, index=df.index)
    check = df["check"].astype("string").str.strip().replace("", pd.NA).notna() \
        if "check" in df.columns else pd.Series(False, index=df.index)
    derived = pd.Series(np.where(gold, "gold", np.where(check, "catch", "main")), index=df.index)
    return role.fillna(derived.astype("string")).astype(object)


def blank_answer_rows(info, answers: dict[str, str], trials: dict, rows: list[dict]) -> list[dict]:
    """Rows for trials whose answer field came back blank, answer left empty, so QC counts them as
    "no answer" instead of their vanishing (`mturk.answers.vote_rows` skips blank fields). `info`:
    an `mturk.answers.AssignmentInfo`; `rows`: vote_rows' output for the same answers."""
    have = {r["trial_id"] for r in rows}
    # A batch CSV has one Answer.* column per trial of every HIT in the file: a blank belongs to
    # this assignment only when its trial sits in the HIT of the trials it answered.
    hits = {getattr(trials[t], "hit", "") for t in have if t in trials}
    out = []
    for tid, value in answers.items():
        t = trials.get(tid)
        if t is None or tid in have or (value or "").strip() != "":
            continue
        if getattr(t, "hit", "") and t.hit not in hits:
            continue
        if t.role not in VOTE_ROLES:  # a practice question is never a vote
            continue
        out.append({
            "study": info.study, "hit_id": info.hit_id, "assignment_id": info.assignment_id,
            "worker_id": info.worker_id, "trial_id": tid, "kind": t.kind, "question": t.question,
            "left_system": t.left_system, "right_system": t.right_system, "answer": "",
            "chosen_system": "", "rating": float("nan"), "is_gold": t.role == "gold",
            "submit_time": info.submit_time, "work_time_s": info.work_time_s,
            "class": t.class_name, "video_id": t.video_id, "trial_role": t.role, "truth": t.truth,
            "played_to_end": answers.get(tid + "__played", "") == "1",
            "simulated": answers.get("simulated", "") in ("1", "true", "True"), "check": t.check,
            "assignment_status": info.status,
        })
    return out


# pandas' default missing-value spellings; the answer column is read exactly as written instead (an
# answer "NA" or "null" is an answer).
_NA_STRINGS = ["", "#N/A", "#N/A N/A", "#NA", "-1.#IND", "-1.#QNAN", "-NaN", "-nan", "1.#IND", "1.#QNAN",
               "<NA>", "N/A", "NA", "NULL", "NaN", "None", "n/a", "nan", "null"]
_TEXT_AS_IS = ("answer",)


def _read_csv(path: Path) -> pd.DataFrame:
    raw = path.read_bytes()
    # pandas' C parser ends a field at NUL: carry NUL through as a private-use character absent from the file.
    stand_in = None
    if b"\0" in raw:
        stand_in = next(chr(cp) for cp in range(0xF0000, 0x10FFFE) if chr(cp).encode() not in raw)
        raw = raw.replace(b"\0", stand_in.encode())
    header = pd.read_csv(io.BytesIO(raw), nrows=0).columns
    df = pd.read_csv(io.BytesIO(raw), dtype={"answer": str, "worker_id": str, "trial_id": str, "hit_id": str,
                                            "assignment_id": str, "video_id": str},
                     keep_default_na=False, na_values={c: _NA_STRINGS for c in header if c not in _TEXT_AS_IS})
    if stand_in is not None:
        df = df.map(lambda v: v.replace(stand_in, "\0") if isinstance(v, str) else v)
    return df


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
                # CRLF rows: the csv writer then quotes any text holding a lone CR, which it otherwise
                # writes bare (and every reader takes for the end of the row).
                df.to_csv(tmp, index=False, lineterminator="\r\n")
    except OSError as e:
        raise UserError(f"{path}: cannot write the votes table ({e.strerror or e})") from None
