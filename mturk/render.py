"""HIT pages: one jinja2 page per HIT, the same HTML on MTurk (as an ``HTMLQuestion``) and on the
local server. Markup and field names follow docs/architecture.md "HIT pages"; the page carries no
system names, only opaque media names under ``media_base_url``.
"""

from __future__ import annotations

import logging
from functools import lru_cache
from pathlib import Path

import jinja2

from mturk.study import MOS_CRITERIA, MOS_REFERENCE, TRIAL_ID_RE, HitSpec, Study, Trial
from mturk.vocabulary import ANSWER_LABELS, MOS_BEST, MOS_WORST
from regnet.errors import UserError
from regnet.mturk_xml import MAX_QUESTION_BYTES, html_question

log = logging.getLogger(__name__)

# MTurk refuses a Question parameter larger than this (HTMLQuestion with the page inside).

PROMPTS = {
    ("pair", "missing"): "Which video has fewer moments where something visibly happens but no sound is heard?",
    ("pair", "redundant"): "Which video has fewer sounds that nothing in the picture makes?",
    ("pair", "mismatched"): "In which video does the kind of sound fit the picture better?",
    ("real_fake", "real"): "Is this the real, recorded sound of this video?",
    # MOS: one wording and one direction (mturk/study.py MOS_CRITERIA), as in the instructions.
    **{("mos", q): f"{c.question} ({c.anchors})" for q, c in MOS_CRITERIA.items()},
}
CHOICES = {kind: list(labels.items()) for kind, labels in ANSWER_LABELS.items()}  # (value, label), in order
# Name of a practice question's answer field: not a trial id, so it never becomes a vote.
PRACTICE_FIELD = "practice__{}"
MOS_PRACTICE_TOLERANCE = 1  # as the QC's MOS check tolerance (mturk/qc.py)
# What the practice question showed, said after the rater answers it.
PRACTICE_FEEDBACK = {
    ("pair", "other_class"): "One video carries the sound of a different kind of video; the other has its own "
                             "sound, which fits better. The answer here is {answer}.",
    ("pair", "silent"): "One video has no sound at all, so every visible action in it goes unheard; the other "
                        "has fewer such moments. The answer here is {answer}.",
    ("real_fake", "other_class"): "This sound belongs to a different kind of video, so it is not the real "
                                  "recorded sound of this one. The answer here is {answer}.",
    ("real_fake", "silent"): "This video has no sound at all, so it cannot be its real recorded sound. "
                             "The answer here is {answer}.",
    ("mos", "other_class"): "This sound belongs to a different kind of video: it scores low, 1 or 2.",
    ("mos", "silent"): "This video has no sound at all: it scores low, 1 or 2.",
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
    practice = index.get(hit.practice_id) if hit.practice_id else None
    html = _env().get_template("hit.html").render(
        title=study.title, kind=hit.kind, questions=sorted({t.question for t in trials if t.role == "main"}
                                                          or set(study.questions)),
        trials=trials, ref1=hit.ref1_media, ref5=hit.ref5_media, media_base=media_base(media_base_url),
        prompts=PROMPTS, answers=CHOICES, criteria=MOS_CRITERIA, mos_worst=MOS_WORST, mos_best=MOS_BEST,
        mos_reference=MOS_REFERENCE, practice=practice, practice_field=PRACTICE_FIELD.format(hit.practice_id),
        practice_feedback=practice_feedback(practice) if practice else "",
        practice_tolerance=MOS_PRACTICE_TOLERANCE)
    check_size(html_question(html), f"HIT {hit.local_id}")
    return html


def practice_feedback(t: Trial) -> str:
    answer = ANSWER_LABELS[t.kind].get(t.truth, t.truth)
    return PRACTICE_FEEDBACK[(t.kind, t.check)].format(answer=answer)


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
