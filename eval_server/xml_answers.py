"""Answers as MTurk returns them: the QuestionFormAnswers XML document, and back.

Any text a form can post is kept. XML 1.0 cannot carry some characters at all (NUL and the other C0
controls except tab, newline and carriage return; U+FFFE, U+FFFF; lone surrogates), so a value holding
one is written in a reversible escaped form (docs/mturk-scripts.md, "Answers that XML cannot carry"):

- the element (QuestionIdentifier, FreeText or SelectionIdentifier) gets the attribute
  ``rb:escaped="1"`` (``xmlns:rb="urn:regnet-bench:xml-escape"``), and in its text every such
  character is written ``\\uXXXX`` (four hex digits) and every backslash ``\\\\``;
- a value without such characters is written as it is (only ``<>&`` and carriage return, as
  ``&#13;``, are XML-escaped, so a parser hands back exactly the text that was posted).
"""

from __future__ import annotations

import re
import xml.etree.ElementTree as ET
from collections.abc import Iterable

NS = "http://mechanicalturk.amazonaws.com/AWSMechanicalTurkDataSchemas/2005-10-01/QuestionFormAnswers.xsd"
ESCAPE_NS = "urn:regnet-bench:xml-escape"
ESCAPED_ATTR = f"{{{ESCAPE_NS}}}escaped"
# Characters outside XML 1.0's Char production (https://www.w3.org/TR/xml/#charsets).
_NOT_XML = re.compile("[\x00-\x08\x0b\x0c\x0e-\x1f\ud800-\udfff\ufffe\uffff]")
_ESCAPES = re.compile(r"\\(\\|u[0-9A-Fa-f]{4})")


def needs_escape(text: str) -> bool:
    return _NOT_XML.search(text) is not None


def escape_value(text: str) -> str:
    """The reversible form of a value holding characters XML 1.0 cannot carry (see the module doc)."""
    return _NOT_XML.sub(lambda m: f"\\u{ord(m.group()):04X}", text.replace("\\", "\\\\"))


def unescape_value(text: str) -> str:
    return _ESCAPES.sub(lambda m: "\\" if m.group(1) == "\\" else chr(int(m.group(1)[1:], 16)), text)


def _xml_text(text: str) -> str:
    # A literal carriage return would come back as a newline (XML end-of-line handling); &#13; does not.
    return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;").replace("\r", "&#13;")


def _element(tag: str, value: str) -> str:
    if needs_escape(value):
        return f'<{tag} rb:escaped="1">{_xml_text(escape_value(value))}</{tag}>'
    return f"<{tag}>{_xml_text(value)}</{tag}>"


def build(fields: Iterable[tuple[str, str]], selection_questions: frozenset[str] = frozenset()) -> str:
    """One <Answer> per field name, in first-seen order. Repeated names (checkboxes) are joined with
    '|' in FreeText, as MTurk does for HTML forms; QuestionForm selection questions list each choice
    as its own <SelectionIdentifier>."""
    grouped: dict[str, list[str]] = {}
    for name, value in fields:
        grouped.setdefault(name, []).append(value)
    parts = ['<?xml version="1.0" encoding="UTF-8" standalone="no"?>',
             f'<QuestionFormAnswers xmlns="{NS}" xmlns:rb="{ESCAPE_NS}">']
    for name, values in grouped.items():
        parts.append("<Answer>" + _element("QuestionIdentifier", name))
        if name in selection_questions:
            parts.extend(_element("SelectionIdentifier", v) for v in values)
        else:
            parts.append(_element("FreeText", "|".join(values)))
        parts.append("</Answer>")
    parts.append("</QuestionFormAnswers>")
    return "".join(parts)


def text_of(el: ET.Element | None) -> str:
    """An element's value, undoing the escape when the element is marked escaped."""
    if el is None:
        return ""
    text = el.text or ""
    return unescape_value(text) if el.get(ESCAPED_ATTR) == "1" else text


def parse(xml: str) -> dict[str, str]:
    """{QuestionIdentifier: answer}; several SelectionIdentifiers are joined with '|'."""
    root = ET.fromstring(xml.encode("utf-8"))
    out: dict[str, str] = {}
    for ans in root.findall(f"{{{NS}}}Answer"):
        qid = text_of(ans.find(f"{{{NS}}}QuestionIdentifier"))
        free = ans.find(f"{{{NS}}}FreeText")
        if free is not None:
            out[qid] = text_of(free)
        else:
            out[qid] = "|".join(text_of(e) for e in ans.findall(f"{{{NS}}}SelectionIdentifier"))
    return out
