"""Check a votes frame against `mturk.vocabulary` and derive the columns the report
uses. Anything that means the table itself is wrong (an unknown kind or system, a MOS outside 1-5,
one assignment id shared by two workers) is a one-line UserError: counting such rows as "excluded"
would hide a broken pipeline. Rows that are merely unusable (no answer) are left to `qc.py`, which
counts them."""

from __future__ import annotations

import logging

import pandas as pd

from mturk.vocabulary import KINDS, QUESTIONS
from mturk.vocabulary import VOTE_ROLES as ROLES
from regnet.errors import UserError
from mturk.report.inputs import StudyInfo

log = logging.getLogger(__name__)


def _examples(values, k: int = 3) -> str:
    vals = list(dict.fromkeys(str(v) for v in values))
    more = f" (+{len(vals) - k} more)" if len(vals) > k else ""
    return ", ".join(repr(v) for v in vals[:k]) + more


def _clean(s: pd.Series) -> pd.Series:
    return s.astype("string").str.strip().replace("", pd.NA)


def validate(df: pd.DataFrame, name: str, study: StudyInfo | None = None) -> pd.DataFrame:
    """Return a copy with cleaned text columns plus `rating` (float, MOS) and `chosen_system`
    filled for pairs; raise UserError naming `name` on content that cannot be right."""
    if len(df) == 0:
        raise UserError(f"{name}: no votes in the table")
    df = df.copy()
    for c in ("assignment_id", "worker_id", "trial_id", "kind", "question", "answer",
              "left_system", "right_system", "chosen_system", "trial_role", "truth", "class",
              "video_id", "hit_id"):
        df[c] = _clean(df[c])
    df["kind"] = df["kind"].str.lower()
    df["question"] = df["question"].str.lower()
    df["trial_role"] = df["trial_role"].fillna("main").str.lower()
    for c in ("assignment_id", "worker_id", "trial_id"):
        if df[c].isna().any():
            raise UserError(f"{name}: {int(df[c].isna().sum())} row(s) without {c}")
    bad = ~df["kind"].isin(KINDS)
    if bad.any():
        raise UserError(f"{name}: unknown kind {_examples(df.loc[bad, 'kind'])} "
                        f"(expected {', '.join(KINDS)})")
    bad = ~df["trial_role"].isin(ROLES)
    if bad.any():
        raise UserError(f"{name}: unknown trial_role {_examples(df.loc[bad, 'trial_role'])} "
                        f"(expected {', '.join(ROLES)})")
    for kind, qs in QUESTIONS.items():
        bad = (df["kind"] == kind) & ~df["question"].isin(qs)
        if bad.any():
            raise UserError(f"{name}: question {_examples(df.loc[bad, 'question'])} is not valid "
                            f"for kind {kind} (expected {', '.join(qs)})")
    # One trial is one item: the same trial id must always show the same systems and question.
    main = df["trial_role"] == "main"
    shape = df[main].groupby("trial_id")[["kind", "question", "left_system", "right_system"]] \
        .nunique(dropna=False)
    bad = shape[(shape > 1).any(axis=1)]
    if len(bad):
        raise UserError(f"{name}: trial {_examples(bad.index)} appears with different "
                        "kind/question/systems in different rows")
    owners = df.groupby("assignment_id")["worker_id"].nunique()
    if (owners > 1).any():
        raise UserError(f"{name}: duplicated assignment id {_examples(owners[owners > 1].index)} "
                        "used by more than one worker")

    answered = df["answer"].notna()
    pair = df["kind"] == "pair"
    ans = df["answer"].str.lower()
    bad = pair & answered & ~ans.isin(["left", "right"])
    if bad.any():
        raise UserError(f"{name}: pair answer {_examples(df.loc[bad, 'answer'])} is not left/right")
    rf = df["kind"] == "real_fake"
    bad = rf & answered & ~ans.isin(["real", "fake"])
    if bad.any():
        raise UserError(f"{name}: real-or-fake answer {_examples(df.loc[bad, 'answer'])} "
                        "is not real/fake")
    df.loc[pair | rf, "answer"] = ans[pair | rf]
    mos = df["kind"] == "mos"
    rating = pd.to_numeric(df["answer"].where(mos), errors="coerce")
    bad = mos & answered & ~(rating.isin([1, 2, 3, 4, 5]))
    if bad.any():
        raise UserError(f"{name}: MOS rating outside 1-5 in {int(bad.sum())} row(s): "
                        f"{_examples(df.loc[bad, 'answer'])}")
    # The votes table also carries `rating`: honoured where the answer is blank, and checked
    # against the answer where both are given (a 6 or "abc" next to a valid answer is an error,
    # never silently ignored).
    given = df["rating"].astype("string").str.strip().replace("", pd.NA) if "rating" in df \
        else pd.Series(pd.NA, index=df.index, dtype="string")
    gnum = pd.to_numeric(given, errors="coerce")
    bad = mos & given.notna() & ~gnum.isin([1, 2, 3, 4, 5])
    if bad.any():
        raise UserError(f"{name}: rating column outside 1-5 in {int(bad.sum())} MOS row(s): "
                        f"{_examples(given[bad])}")
    clash = mos & answered & given.notna() & (gnum != rating)
    if clash.any():
        raise UserError(f"{name}: rating disagrees with answer in {int(clash.sum())} MOS row(s) "
                        f"(e.g. trial {df.loc[clash, 'trial_id'].iloc[0]}: rating "
                        f"{given[clash].iloc[0]!r}, answer {df.loc[clash, 'answer'].iloc[0]!r})")
    fill = mos & ~answered & given.notna()
    if fill.any():
        df.loc[fill, "answer"] = gnum[fill].astype(int).astype(str)
        rating = rating.where(~fill, gnum)
    df["rating"] = rating.astype(float)

    # Systems are needed only where a vote is analysed (main trials); catch trials may be blank.
    need_right = main & pair
    need_left = main
    miss = (need_left & df["left_system"].isna()) | (need_right & df["right_system"].isna())
    if miss.any():
        raise UserError(f"{name}: {int(miss.sum())} main-trial row(s) without left_system/"
                        f"right_system (e.g. trial {_examples(df.loc[miss, 'trial_id'], 1)})")
    same = main & pair & (df["left_system"] == df["right_system"])
    if same.any():
        raise UserError(f"{name}: main pair trial {_examples(df.loc[same, 'trial_id'])} compares "
                        "a system with itself (mark such trials trial_role=catch)")
    if study is not None and study.systems:
        seen = pd.concat([df.loc[main, "left_system"], df.loc[main & pair, "right_system"]])
        known = set(study.systems) | ({study.real_system} if study.real_system else set())
        unknown = sorted(set(seen.dropna()) - known)
        if unknown:
            raise UserError(f"{name}: unknown system(s) {', '.join(map(repr, unknown))} "
                            f"(study {study.path} has {', '.join(study.systems)})")

    derived = pd.Series(pd.NA, index=df.index, dtype="string")
    derived[pair & (ans == "left")] = df.loc[pair & (ans == "left"), "left_system"]
    derived[pair & (ans == "right")] = df.loc[pair & (ans == "right"), "right_system"]
    given = df["chosen_system"]
    clash = pair & answered & main & given.notna() & (given != derived)
    if clash.any():
        raise UserError(f"{name}: chosen_system disagrees with answer and left/right systems in "
                        f"{int(clash.sum())} row(s) (e.g. trial "
                        f"{_examples(df.loc[clash, 'trial_id'], 1)})")
    df.loc[pair, "chosen_system"] = derived[pair]
    df["work_time_s"] = pd.to_numeric(df["work_time_s"], errors="coerce")
    df["class"] = df["class"].fillna("(no class)")
    return df


def system_order(df: pd.DataFrame, study: StudyInfo | None, real_system: str,
                 focus: str | None = None) -> list[str]:
    """The focus system first (so every comparison reads "<focus> preferred over <other>"), then
    the study's order when known, else alphabetical with the real sound last (it is the ceiling
    every table compares against)."""
    main = df["trial_role"] == "main"
    seen = set(df.loc[main, "left_system"].dropna()) | set(
        df.loc[main & (df["kind"] == "pair"), "right_system"].dropna())
    if study is not None and study.systems:
        order = [s for s in study.systems if s in seen] + sorted(seen - set(study.systems))
    else:
        order = sorted(seen, key=lambda s: (s == real_system, s))
    if focus is not None and focus in order:
        order = [focus] + [s for s in order if s != focus]
    return order

