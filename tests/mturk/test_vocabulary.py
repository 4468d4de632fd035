"""The study's words (kinds, questions, answers, roles, checks) are declared in `mturk.vocabulary`
alone; every other module reads them from there, so a new answer or role cannot reach the pages
without reaching the vote reader and the report."""

from __future__ import annotations

import ast
from pathlib import Path

from mturk import vocabulary

REPO = Path(__file__).resolve().parents[2]
WORDS = {"KINDS", "QUESTIONS", "ANSWERS", "ROLES", "CHECKS", "MOS_RATINGS", "ANSWER_LABELS", "VOTE_ROLES"}


def _literal_declarations(path: Path) -> list[str]:
    """Module-level NAME = <literal tuple/dict/list> for a vocabulary name."""
    out = []
    for node in ast.parse(path.read_text(encoding="utf-8")).body:
        if isinstance(node, ast.Assign):
            names = [t.id for t in node.targets if isinstance(t, ast.Name)]
            if set(names) & WORDS and isinstance(node.value, (ast.Tuple, ast.Dict, ast.List)):
                out.append(f"{path.relative_to(REPO)}:{node.lineno}: {', '.join(names)}")
    return out


def test_no_module_but_the_vocabulary_declares_the_words():
    found = [d for pkg in ("mturk", "eval_server", "regnet") for f in sorted((REPO / pkg).rglob("*.py"))
             if f.name != "vocabulary.py" for d in _literal_declarations(f)]
    assert not found, "vocabulary declared outside mturk/vocabulary.py:\n" + "\n".join(found)


def test_the_words_fit_together():
    assert set(vocabulary.QUESTIONS) == set(vocabulary.KINDS) == set(vocabulary.ANSWERS)
    assert vocabulary.ANSWERS["mos"] == vocabulary.MOS_RATINGS
    assert {vocabulary.MOS_BEST, vocabulary.MOS_WORST} <= set(vocabulary.MOS_RATINGS)
    assert "practice" in vocabulary.ROLES and "practice" not in vocabulary.VOTE_ROLES
