"""Qualification tests: a QuestionForm `Test` scored against an `AnswerKey`, as MTurk scores them."""

from __future__ import annotations

import xml.etree.ElementTree as ET

from eval_server.errors import ApiError


def _local(tag: str) -> str:
    return tag.rsplit("}", 1)[-1]


def _find(el: ET.Element, name: str) -> ET.Element | None:
    return next((c for c in el if _local(c.tag) == name), None)


def _findall(el: ET.Element, name: str) -> list[ET.Element]:
    return [c for c in el if _local(c.tag) == name]


def _int(el: ET.Element | None, default: int = 0) -> int:
    try:
        return int((el.text or "").strip()) if el is not None else default
    except ValueError:
        raise ApiError(f"AnswerKey: {_local(el.tag)} must be an integer.") from None


def check_answer_key(xml: str) -> None:
    try:
        root = ET.fromstring(xml.encode("utf-8"))
    except ET.ParseError as e:
        raise ApiError(f"The AnswerKey is not valid XML: {e}.") from None
    if _local(root.tag) != "AnswerKey":
        raise ApiError("The AnswerKey root element must be AnswerKey.")
    score({}, xml)  # also validates every number in it


def score(answers: dict[str, str], answer_key_xml: str) -> int:
    """The qualification value a worker's test answers earn ({question id: 'a|b'} selections)."""
    root = ET.fromstring(answer_key_xml.encode("utf-8"))
    total = 0
    for q in _findall(root, "Question"):
        qid = (_find(q, "QuestionIdentifier").text or "").strip() if _find(q, "QuestionIdentifier") is not None else ""
        chosen = set(filter(None, (answers.get(qid) or "").split("|")))
        matched = False
        for opt in _findall(q, "AnswerOption"):
            wanted = {(e.text or "").strip() for e in _findall(opt, "SelectionIdentifier")}
            if wanted and wanted == chosen:
                total += _int(_find(opt, "AnswerScore"))
                matched = True
                break
        if not matched:
            total += _int(_find(q, "DefaultScore"))
    mapping = _find(root, "QualificationValueMapping")
    if mapping is None:
        return total
    pct = _find(mapping, "PercentageMapping")
    if pct is not None:
        maximum = _int(_find(pct, "MaximumSummedScore"), 1) or 1
        return round(100 * total / maximum)
    scale = _find(mapping, "ScaleMapping")
    if scale is not None:
        el = _find(scale, "SummedScoreMultiplier")
        try:
            return round(total * float((el.text or "1").strip())) if el is not None else total
        except ValueError:
            raise ApiError("AnswerKey: SummedScoreMultiplier must be a number.") from None
    ranges = _find(mapping, "RangeMapping")
    if ranges is not None:
        for r in _findall(ranges, "SummedScoreRange"):
            if _int(_find(r, "InclusiveLowerBound")) <= total <= _int(_find(r, "InclusiveUpperBound")):
                return _int(_find(r, "QualificationValue"))
        return _int(_find(ranges, "OutOfRangeQualificationValue"))
    return total
