"""Qualification tests: a QuestionForm `Test` scored against an `AnswerKey`, as MTurk scores them."""

from __future__ import annotations

import math
import re
import xml.etree.ElementTree as ET

from eval_server.errors import ApiError


def _local(tag: str) -> str:
    return tag.rsplit("}", 1)[-1]


def _find(el: ET.Element, name: str) -> ET.Element | None:
    return next((c for c in el if _local(c.tag) == name), None)


def _findall(el: ET.Element, name: str) -> list[ET.Element]:
    return [c for c in el if _local(c.tag) == name]


# A qualification value is a 32-bit integer (IntegerValue in MTurk's model, INTEGER in our tables).
INT32 = (-2**31, 2**31 - 1)
_INTEGER = re.compile(r"^[+-]?[0-9]{1,10}\Z")
_NUMBERS = {"AnswerScore", "DefaultScore", "MaximumSummedScore", "InclusiveLowerBound", "InclusiveUpperBound",
            "QualificationValue", "OutOfRangeQualificationValue"}


def _int(el: ET.Element | None, default: int = 0, lenient: bool = False) -> int:
    """A number of the key: ASCII digits (int() would also take '١٢' or '1_0') within INT32. Lenient
    (scoring a key stored before these checks existed): anything else counts as `default`."""
    if el is None:
        return default
    text = (el.text or "").strip()
    if not _INTEGER.match(text) or not INT32[0] <= int(text) <= INT32[1]:
        if lenient:
            return default
        raise ApiError(f"AnswerKey: {_local(el.tag)} must be an integer between {INT32[0]} and {INT32[1]}.")
    return int(text)


def _multiplier(el: ET.Element, lenient: bool = False) -> float:
    try:
        m = float((el.text or "1").strip())
    except ValueError:
        m = math.nan
    if not math.isfinite(m):
        if lenient:
            return 1.0
        raise ApiError("AnswerKey: SummedScoreMultiplier must be a finite number.")
    return m


def check_answer_key(xml: str) -> None:
    """Refuse a key that could ever score outside a qualification value's range: every number in it
    is checked, and the mapping is applied to the lowest and highest summed scores it allows."""
    try:
        root = ET.fromstring(xml.encode("utf-8"))
    except ET.ParseError as e:
        raise ApiError(f"The AnswerKey is not valid XML: {e}.") from None
    if _local(root.tag) != "AnswerKey":
        raise ApiError("The AnswerKey root element must be AnswerKey.")
    for el in root.iter():  # every number, also in ranges the two totals below never reach
        if _local(el.tag) in _NUMBERS:
            _int(el)
        elif _local(el.tag) == "SummedScoreMultiplier":
            _multiplier(el)
    lo = hi = 0
    for q in _findall(root, "Question"):
        scores = [_int(_find(opt, "AnswerScore")) for opt in _findall(q, "AnswerOption")]
        scores.append(_int(_find(q, "DefaultScore")))
        lo, hi = lo + min(scores), hi + max(scores)
    for total in (lo, hi):
        value = _map(root, total)
        if not INT32[0] <= value <= INT32[1]:
            raise ApiError(f"AnswerKey: a summed score of {total} maps to {value}, outside a qualification "
                           f"value's range ({INT32[0]} to {INT32[1]}).")


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
                total += _int(_find(opt, "AnswerScore"), lenient=True)
                matched = True
                break
        if not matched:
            total += _int(_find(q, "DefaultScore"), lenient=True)
    # check_answer_key made sure every reachable total maps inside INT32; a key stored before that
    # check is read leniently and clamped, so it cannot make a worker's submit fail.
    return max(INT32[0], min(INT32[1], _map(root, total, lenient=True)))


def _map(root: ET.Element, total: int, lenient: bool = False) -> int:
    mapping = _find(root, "QualificationValueMapping")
    if mapping is None:
        return total
    pct = _find(mapping, "PercentageMapping")
    if pct is not None:
        maximum = _int(_find(pct, "MaximumSummedScore"), 1, lenient) or 1
        return round(100 * total / maximum)
    scale = _find(mapping, "ScaleMapping")
    if scale is not None:
        el = _find(scale, "SummedScoreMultiplier")
        if el is None:
            return total
        value = total * _multiplier(el, lenient)
        if abs(value) >= 2**62:  # far outside INT32 either way; round() of a huge float is slow
            return INT32[1] + 1 if value > 0 else INT32[0] - 1
        return round(value)
    ranges = _find(mapping, "RangeMapping")
    if ranges is not None:
        for r in _findall(ranges, "SummedScoreRange"):
            lo, hi = (_int(_find(r, bound), 0, lenient) for bound in ("InclusiveLowerBound", "InclusiveUpperBound"))
            if lo <= total <= hi:
                return _int(_find(r, "QualificationValue"), 0, lenient)
        return _int(_find(ranges, "OutOfRangeQualificationValue"), 0, lenient)
    return total
