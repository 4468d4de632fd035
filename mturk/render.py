"""HIT pages: one jinja2 page per HIT, the same HTML on MTurk (as an ``HTMLQuestion``) and on the
local server. Markup and field names follow docs/architecture.md "HIT pages"; the page carries no
system names, only opaque media names under ``media_base_url``.
"""

from __future__ import annotations

import logging
from functools import lru_cache
from pathlib import Path

import jinja2

from mturk.study import TRIAL_ID_RE, HitSpec, Study
from regnet.errors import UserError

log = logging.getLogger(__name__)

# MTurk refuses a Question parameter larger than this (HTMLQuestion with the page inside).
MAX_QUESTION_BYTES = 65_535
HTML_QUESTION_NS = "http://mechanicalturk.amazonaws.com/AWSMechanicalTurkDataSchemas/2011-11-11/HTMLQuestion.xsd"

PROMPTS = {
    ("pair", "missing"): "Which video has fewer moments where something visibly happens but no sound is heard?",
    ("pair", "redundant"): "Which video has fewer sounds that nothing in the picture makes?",
    ("pair", "mismatched"): "In which video does the kind of sound fit the picture better?",
    ("real_fake", "real"): "Is this the real, recorded sound of this video?",
    ("mos", "missing"): "Sound missing: how well is every visible action heard? (5: always, 1: almost never)",
    ("mos", "redundant"): "Sound redundant: how free is it of sounds nothing in the picture makes? (5: free, 1: mostly such sound)",
    ("mos", "mismatched"): "Sound mismatched: how well does the kind of sound fit the picture? (5: perfectly, 1: not at all)",
}
ANSWERS = {
    "pair": [("left", "Left"), ("right", "Right")],
    "real_fake": [("real", "Real"), ("fake", "Not real")],
    "mos": [("1", "1 (bad)"), ("2", "2 (poor)"), ("3", "3 (fair)"), ("4", "4 (good)"), ("5", "5 (excellent)")],
}


@lru_cache(maxsize=1)
def _env() -> jinja2.Environment:
    return jinja2.Environment(loader=jinja2.PackageLoader("mturk", "templates"),
                              autoescape=jinja2.select_autoescape(["html"]),
                              undefined=jinja2.StrictUndefined, trim_blocks=True, lstrip_blocks=True)


def media_base(url: str) -> str:
    """'' (page next to media/), 'media', 'https://host/media' -> prefix ending in '/'."""
    return url if url == "" or url.endswith("/") else url + "/"


def render_hit(study: Study, hit: HitSpec, media_base_url: str) -> str:
    index = study.trial_index()
    trials = [index[tid] for tid in hit.trial_ids]
    for t in trials:
        if not TRIAL_ID_RE.match(t.trial_id):
            raise UserError(f"trials.csv: trial id {t.trial_id!r} may hold only letters, digits, _ and -")
    html = _env().get_template("hit.html").render(
        title=study.title, kind=hit.kind, questions=sorted({t.question for t in trials if t.role == "main"}
                                                          or set(study.questions)),
        trials=trials, ref1=hit.ref1_media, ref5=hit.ref5_media, media_base=media_base(media_base_url),
        prompts=PROMPTS, answers=ANSWERS)
    check_size(html_question(html), f"HIT {hit.local_id}")
    return html


def html_question(html: str, frame_height: int = 0) -> str:
    """The ``Question`` parameter of CreateHITWithHITType: the page inside an HTMLQuestion."""
    if "]]>" in html:
        raise UserError("HIT page: contains ']]>', which cannot sit inside the HTMLQuestion CDATA")
    return (f'<HTMLQuestion xmlns="{HTML_QUESTION_NS}"><HTMLContent><![CDATA[\n{html}\n]]></HTMLContent>'
            f"<FrameHeight>{int(frame_height)}</FrameHeight></HTMLQuestion>")


def check_size(question: str, what: str) -> None:
    size = len(question.encode("utf-8"))
    if size > MAX_QUESTION_BYTES:
        raise UserError(f"{what}: page is {size} bytes, over MTurk's 64 KB limit; use fewer --trials-per-hit")


def write_pages(study: Study, out_dir: str | Path, media_base_url: str) -> list[Path]:
    """Render every HIT to ``out_dir/<local_id>.html``; all pages are checked before any is written."""
    out_dir = Path(out_dir)
    pages = [(h.local_id, render_hit(study, h, media_base_url)) for h in study.hits]
    out_dir.mkdir(parents=True, exist_ok=True)
    paths = []
    for local_id, html in pages:
        p = out_dir / f"{local_id}.html"
        p.write_text(html, encoding="utf-8")
        paths.append(p)
    log.info("wrote %d HIT page(s) to %s", len(paths), out_dir)
    return paths
