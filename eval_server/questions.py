"""The three Question documents a HIT can carry (HTMLQuestion, ExternalQuestion, QuestionForm):
parse and check them on CreateHIT, and render what the worker's frame shows."""

from __future__ import annotations

import html
import re
import xml.etree.ElementTree as ET
from dataclasses import dataclass, field

from eval_server.errors import ApiError
from regnet.mturk_xml import MAX_QUESTION_BYTES

MAX_FRAME_HEIGHT = 100_000


@dataclass(frozen=True)
class Media:
    """A Binary / EmbeddedBinary content element: shown as <audio>, <video> or <img>."""
    kind: str  # audio | video | image
    url: str
    alt: str = ""


@dataclass(frozen=True)
class FormQuestion:
    identifier: str
    text: str
    kind: str  # free | selection
    selections: tuple[tuple[str, str], ...] = ()  # (identifier, text)
    multiple: bool = False
    media: tuple[Media, ...] = ()


@dataclass(frozen=True)
class Question:
    kind: str  # html | external | form
    html: str = ""
    url: str = ""
    frame_height: int = 0
    overview: str = ""
    form: tuple[FormQuestion, ...] = field(default=())
    overview_media: tuple[Media, ...] = ()

    @property
    def selection_ids(self) -> frozenset[str]:
        return frozenset(q.identifier for q in self.form if q.kind == "selection")


def _local(tag: str) -> str:
    return tag.rsplit("}", 1)[-1]


def _child(el: ET.Element, name: str) -> ET.Element | None:
    for c in el:
        if _local(c.tag) == name:
            return c
    return None


def _children(el: ET.Element, name: str) -> list[ET.Element]:
    return [c for c in el if _local(c.tag) == name]


MEDIA_TAGS = ("Binary", "EmbeddedBinary")


def _text_of(el: ET.Element | None) -> str:
    """The readable text of a content element (Text, FormattedContent, Title); media elements
    (their URL and MIME type) are not text."""
    if el is None:
        return ""
    parts = [el.text or ""]
    for c in el:
        if _local(c.tag) not in MEDIA_TAGS:
            parts.append(_text_of(c))
        parts.append(c.tail or "")
    return " ".join(p.strip() for p in parts if p.strip())


def _media_of(el: ET.Element | None) -> tuple[Media, ...]:
    out = []
    for c in (el if el is not None else []):
        if _local(c.tag) not in MEDIA_TAGS:
            continue
        mime = _child(c, "MimeType") if _child(c, "MimeType") is not None else _child(c, "EmbeddedMimeType")
        kind = ((_child(mime, "Type").text or "") if mime is not None and _child(mime, "Type") is not None
                else "").strip()
        url = (_child(c, "DataURL").text or "").strip() if _child(c, "DataURL") is not None else ""
        if kind not in ("audio", "video", "image"):
            raise ApiError(f"{_local(c.tag)}: Type must be image, audio or video, not {kind!r}.")
        # MTurk needs an http(s) URL; a path on this server ("/media/x.wav") also works here.
        if not re.match(r"^(https?://|/)", url):
            raise ApiError(f"{_local(c.tag)}: DataURL must be an http(s) URL, not {url!r}.")
        out.append(Media(kind, url, _text_of(_child(c, "AltText"))))
    return tuple(out)


def parse(doc: str, *, strict: bool = False) -> Question:
    """The Question document; `strict` (CreateHIT) also refuses what an older release stored and a
    page can live with (a FrameHeight that is not a number of pixels is then 0)."""
    if len(doc.encode("utf-8")) > MAX_QUESTION_BYTES:
        raise ApiError(f"The Question is {len(doc.encode('utf-8'))} bytes; it must not exceed "
                       f"{MAX_QUESTION_BYTES} bytes.")
    try:
        root = ET.fromstring(doc.encode("utf-8"))
    except ET.ParseError as e:
        raise ApiError(f"The value of the Question parameter is not valid XML: {e}.") from None
    name = _local(root.tag)
    frame_height = _frame_height(_child(root, "FrameHeight"), strict)
    if name == "HTMLQuestion":
        content = _child(root, "HTMLContent")
        if content is None or not (content.text or "").strip():
            raise ApiError("HTMLQuestion must contain a non-empty HTMLContent element.")
        return Question("html", html=content.text, frame_height=frame_height)
    if name == "ExternalQuestion":
        url_el = _child(root, "ExternalURL")
        url = (url_el.text or "").strip() if url_el is not None else ""
        if not re.match(r"^https?://", url):
            raise ApiError("ExternalQuestion must contain an ExternalURL starting with http:// or https://.")
        return Question("external", url=url, frame_height=frame_height)
    if name == "QuestionForm":
        return _parse_form(root)
    raise ApiError(f"The Question root element must be HTMLQuestion, ExternalQuestion or QuestionForm, "
                   f"not {name}.")


def _frame_height(el: ET.Element | None, strict: bool) -> int:
    """FrameHeight in pixels: ASCII digits (str.isdigit() also takes '²', which int() refuses)."""
    text = (el.text or "").strip() if el is not None else ""
    if not text:
        return 0
    if not strict:
        return int(text) if re.fullmatch(r"[0-9]{1,6}", text) else 0
    if not re.fullmatch(r"[0-9]{1,6}", text):
        raise ApiError(f"FrameHeight must be a whole number of pixels from 0 to {MAX_FRAME_HEIGHT}, "
                       f"not '{text[:20]}'.")
    if int(text) > MAX_FRAME_HEIGHT:
        raise ApiError(f"FrameHeight must be a whole number of pixels from 0 to {MAX_FRAME_HEIGHT}.")
    return int(text)


def _parse_form(root: ET.Element) -> Question:
    overview = " ".join(_text_of(o) for o in _children(root, "Overview"))
    overview_media = tuple(m for o in _children(root, "Overview") for m in _media_of(o))
    items: list[FormQuestion] = []
    for q in _children(root, "Question"):
        ident = (_child(q, "QuestionIdentifier").text or "").strip() if _child(q, "QuestionIdentifier") is not None else ""
        if not ident:
            raise ApiError("Every Question in a QuestionForm needs a QuestionIdentifier.")
        text = _text_of(_child(q, "QuestionContent"))
        spec = _child(q, "AnswerSpecification")
        sel = _child(spec, "SelectionAnswer") if spec is not None else None
        if sel is not None:
            sels = _child(sel, "Selections")
            choices = tuple(((_child(s, "SelectionIdentifier").text or "").strip(),
                             _text_of(_child(s, "Text")) or _text_of(_child(s, "FormattedContent")))
                            for s in (_children(sels, "Selection") if sels is not None else [])
                            if _child(s, "SelectionIdentifier") is not None)
            max_el = _child(sel, "MaxSelectionCount")
            multiple = max_el is not None and (max_el.text or "1").strip() not in ("", "1")
            items.append(FormQuestion(ident, text, "selection", choices, multiple,
                                      _media_of(_child(q, "QuestionContent"))))
        else:
            items.append(FormQuestion(ident, text, "free", media=_media_of(_child(q, "QuestionContent"))))
    if not items:
        raise ApiError("A QuestionForm must contain at least one Question.")
    return Question("form", overview=overview, form=tuple(items), overview_media=overview_media)


def _media_html(media: tuple[Media, ...]) -> str:
    e = html.escape
    tags = {"audio": "<p><audio controls preload='auto' src='{u}' title='{a}'></audio></p>",
            "video": "<p><video controls preload='auto' src='{u}' title='{a}'></video></p>",
            "image": "<p><img src='{u}' alt='{a}'></p>"}
    return "".join(tags[m.kind].format(u=e(m.url), a=e(m.alt)) for m in media)


def render_form(q: Question, assignment_id: str, submit_to: str, *, action_path: str = "/mturk/externalSubmit",
                extra_hidden: dict[str, str] | None = None) -> str:
    """A QuestionForm as an HTML page whose form posts like an HTMLQuestion would."""
    e = html.escape
    parts = ["<!DOCTYPE html><html><head><meta charset='utf-8'><title>Task</title>",
             "<style>body{font-family:sans-serif;max-width:50em;margin:1em auto}fieldset{margin:1em 0}</style>",
             "</head><body>"]
    if q.overview:
        parts.append(f"<p>{e(q.overview)}</p>")
    parts.append(_media_html(q.overview_media))
    parts.append(f"<form method='post' action='{e(submit_to + action_path)}'>")
    parts.append(f"<input type='hidden' name='assignmentId' value='{e(assignment_id)}'>")
    for k, v in (extra_hidden or {}).items():
        parts.append(f"<input type='hidden' name='{e(k)}' value='{e(v)}'>")
    for item in q.form:
        parts.append(f"<fieldset><legend>{e(item.text or item.identifier)}</legend>{_media_html(item.media)}")
        if item.kind == "selection":
            typ = "checkbox" if item.multiple else "radio"
            for sid, label in item.selections:
                parts.append(f"<label><input type='{typ}' name='{e(item.identifier)}' value='{e(sid)}'> "
                             f"{e(label or sid)}</label><br>")
        else:
            parts.append(f"<input type='text' name='{e(item.identifier)}' size='60'>")
        parts.append("</fieldset>")
    disabled = " disabled" if assignment_id == "ASSIGNMENT_ID_NOT_AVAILABLE" else ""
    parts.append(f"<input type='submit' id='submitButton' value='Submit'{disabled}></form></body></html>")
    return "".join(parts)
