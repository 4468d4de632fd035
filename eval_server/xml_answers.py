"""Answers as MTurk returns them: the QuestionFormAnswers XML document, and back."""

from __future__ import annotations

import xml.etree.ElementTree as ET
from collections.abc import Iterable
from xml.sax.saxutils import escape

NS = "http://mechanicalturk.amazonaws.com/AWSMechanicalTurkDataSchemas/2005-10-01/QuestionFormAnswers.xsd"


def build(fields: Iterable[tuple[str, str]], selection_questions: frozenset[str] = frozenset()) -> str:
    """One <Answer> per field name, in first-seen order. Repeated names (checkboxes) are joined with
    '|' in FreeText, as MTurk does for HTML forms; QuestionForm selection questions list each choice
    as its own <SelectionIdentifier>."""
    grouped: dict[str, list[str]] = {}
    for name, value in fields:
        grouped.setdefault(name, []).append(value)
    parts = ['<?xml version="1.0" encoding="UTF-8" standalone="no"?>', f'<QuestionFormAnswers xmlns="{NS}">']
    for name, values in grouped.items():
        parts.append(f"<Answer><QuestionIdentifier>{escape(name)}</QuestionIdentifier>")
        if name in selection_questions:
            parts.extend(f"<SelectionIdentifier>{escape(v)}</SelectionIdentifier>" for v in values)
        else:
            parts.append(f"<FreeText>{escape('|'.join(values))}</FreeText>")
        parts.append("</Answer>")
    parts.append("</QuestionFormAnswers>")
    return "".join(parts)


def parse(xml: str) -> dict[str, str]:
    """{QuestionIdentifier: answer}; several SelectionIdentifiers are joined with '|'."""
    root = ET.fromstring(xml.encode("utf-8"))
    out: dict[str, str] = {}
    for ans in root.findall(f"{{{NS}}}Answer"):
        qid = ans.findtext(f"{{{NS}}}QuestionIdentifier") or ""
        free = ans.find(f"{{{NS}}}FreeText")
        if free is not None:
            out[qid] = free.text or ""
        else:
            sel = [e.text or "" for e in ans.findall(f"{{{NS}}}SelectionIdentifier")]
            out[qid] = "|".join(sel)
    return out
