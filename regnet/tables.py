"""The one reader and writer of the spreadsheet-bound CSVs regnet-bench exchanges with people and with
other tools (MTurk batch-result files, the server's admin export): every cell read back as the exact
text written, and every text cell written so that a spreadsheet shows it rather than runs it.
"""

from __future__ import annotations

import io
import math
import re
from pathlib import Path

import pandas as pd

from regnet.errors import UserError

# A cell a spreadsheet would run as a formula (OWASP "CSV Injection": = + - @ tab CR), also after
# leading quotes, so that adding one quote is reversible: `unneutralise_formula` strips one where a
# quote precedes these.
_FORMULA_START = re.compile(r"'*[=+\-@\t\r]")


def neutralise_formula(value):
    """`'`-prefix a text cell that a spreadsheet would evaluate (OWASP's advice for CSV exports)."""
    return "'" + value if isinstance(value, str) and _FORMULA_START.match(value) else value


def unneutralise_formula(value):
    """Undo `neutralise_formula` (in a file MTurk wrote, a cell starting with a quote and a formula
    character, which MTurk leaves as typed, loses that quote: rare, and such a cell is no rating)."""
    return value[1:] if isinstance(value, str) and value.startswith("'") and _FORMULA_START.match(value[1:]) \
        else value


def to_safe_csv(df: pd.DataFrame) -> str:
    """The frame as CSV with every text cell and column name neutralised (the frame itself stays raw)."""
    safe = df.map(neutralise_formula) if len(df) else df.copy()
    safe.columns = [neutralise_formula(c) for c in df.columns]
    # CRLF rows (RFC 4180): the csv writer then quotes a cell holding a lone CR, which it otherwise
    # writes bare and every reader (spreadsheets, pandas) takes for the end of the row.
    return safe.to_csv(index=False, lineterminator="\r\n")


def write_safe_csv(df: pd.DataFrame, out: str | Path, what: str = "the table") -> Path:
    """`to_safe_csv` into a file; a folder that cannot be written is a one-line error naming it."""
    out = Path(out)
    try:
        out.parent.mkdir(parents=True, exist_ok=True)
        out.write_text(to_safe_csv(df), encoding="utf-8", newline="")
    except OSError as e:
        raise UserError(f"{out}: cannot write {what} ({e.strerror or e})") from None
    return out


def read_safe_csv(path: str | Path) -> pd.DataFrame:
    """A CSV as written by `to_safe_csv` (or by MTurk / Turkle): every cell the exact text, the
    formula quote taken off again. A missing or unreadable file is a one-line error naming it."""
    path = Path(path)
    if not path.is_file():
        raise UserError(f"{path}: not found")
    try:
        raw = path.read_bytes()
        df = _text_frame_from_bytes(raw)
    except (pd.errors.EmptyDataError, pd.errors.ParserError, UnicodeDecodeError) as e:
        raise UserError(f"{path}: not a readable CSV ({str(e).splitlines()[0]})") from None
    df = df.map(unneutralise_formula)
    df.columns = [unneutralise_formula(c) for c in df.columns]
    return df


def read_table(path: str | Path, what: str = "", *, required: tuple[str, ...] | list[str] = (),
               dtype=None, keep_default_na: bool = True, flag: str = "") -> pd.DataFrame:
    """Every CSV a user hands in (a manifest, clips.csv, votes, a metrics or links table), read the one
    way: a missing, empty, unreadable or not-UTF-8 file, or one without a ``required`` column, is a
    one-line error naming the file (after ``flag``, e.g. ``--links``) and ``what`` it should be."""
    path = Path(path)
    where = f"{flag}: {path}" if flag else f"{path}"
    hint = f" ({what})" if what else ""
    if not path.is_file():
        raise UserError(f"{where}: not found{hint}")
    try:
        df = pd.read_csv(path, dtype=dtype, keep_default_na=keep_default_na)
    except pd.errors.EmptyDataError:
        raise UserError(f"{where}: empty file{hint}") from None
    except (pd.errors.ParserError, UnicodeDecodeError, ValueError, OSError) as e:
        raise UserError(f"{where}: not a readable CSV ({str(e).splitlines()[0] if str(e) else type(e).__name__})") \
            from None
    missing = [c for c in required if c not in df.columns]
    if missing:
        raise UserError(f"{where}: missing column(s) {', '.join(missing)}{hint}")
    return df


def as_text(df: pd.DataFrame) -> pd.DataFrame:
    """A frame of mixed cells as the all-text frame `read_safe_csv` would give for its CSV (None and
    NaN are empty cells), so an in-memory table and its file go through one converter."""
    def cell(v) -> str:
        if v is None or (isinstance(v, float) and math.isnan(v)) or v is pd.NA:
            return ""
        return v if isinstance(v, str) else str(v)

    out = df.map(cell) if len(df) else df.astype(str)
    out.columns = [str(c) for c in df.columns]
    return out


def _text_frame_from_bytes(raw: bytes) -> pd.DataFrame:
    # pandas' C parser ends a field at NUL, so NUL travels as a private-use character the file lacks.
    if b"\0" not in raw:
        return pd.read_csv(io.BytesIO(raw), dtype=str, keep_default_na=False)
    stand_in = next(chr(cp) for cp in range(0xF0000, 0x10FFFE) if chr(cp).encode() not in raw)
    df = pd.read_csv(io.BytesIO(raw.replace(b"\0", stand_in.encode())), dtype=str, keep_default_na=False)
    df.columns = [c.replace(stand_in, "\0") for c in df.columns]
    return df.map(lambda v: v.replace(stand_in, "\0"))
