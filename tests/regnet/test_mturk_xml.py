"""One HTMLQuestion builder (`regnet.mturk_xml.html_question`) for the study side and the local
server: a page holding ']]>' is split across CDATA sections, so the document is well-formed XML
whose HTMLContent is the page exactly as given."""

from __future__ import annotations

import xml.etree.ElementTree as ET

import pytest

PAGES = ["<p>plain</p>", "]]>", "<p>a]]>b</p>]]>]]>", "<script>if (a[b[0]]>1) {}</script>", "x]]",
         "]", "]]]>>", "<p>ü — ✓</p>"]


def _content(doc: str) -> tuple[str, str]:
    root = ET.fromstring(doc.encode("utf-8"))
    return root.find("{*}HTMLContent").text or "", root.find("{*}FrameHeight").text


@pytest.mark.parametrize("page", PAGES)
def test_cdata_round_trips_through_every_entry_point(page):
    from eval_server import questions
    from regnet.mturk_xml import html_question

    assert _content(html_question(page, frame_height=450)) == (page, "450")
    # The local server's CreateHIT parser reads back the same page.
    assert questions.parse(html_question(page), strict=True).html == page


def test_one_builder_and_one_size_limit():
    """Nothing but regnet/mturk_xml.py writes an <HTMLQuestion> or states the Question size limit."""
    from pathlib import Path

    repo = Path(__file__).resolve().parents[2]
    found = [f"{f.relative_to(repo)}" for pkg in ("regnet", "mturk", "eval_server") for f in (repo / pkg).rglob("*.py")
             if f.name != "mturk_xml.py" and ("<HTMLQuestion xmlns" in (t := f.read_text(encoding="utf-8"))
                                             or "MAX_QUESTION_BYTES =" in t or "def html_question" in t)]
    assert not found


def test_the_local_server_takes_what_mturk_takes_and_refuses_one_byte_more(sqlite_url):
    """MTurk's CreateHIT: the Question "must not be larger than 64 kilobytes (65,535 bytes)"; the
    publisher checks that limit, so the local server must not accept a byte more than MTurk would."""
    from botocore.exceptions import ClientError
    from tests.helpers.server import start_inprocess

    from regnet.mturk_xml import MAX_QUESTION_BYTES, html_question

    srv = start_inprocess(sqlite_url)
    try:
        c = srv.client()
        ht = c.create_hit_type(Title="t", Description="d", Reward="0.10", AssignmentDurationInSeconds=600)["HITTypeId"]
        base = "<form><input name='a'></form>"
        pad = MAX_QUESTION_BYTES - len(html_question(base, 400).encode())
        exact = html_question(base + "x" * pad, 400)
        assert len(exact.encode()) == MAX_QUESTION_BYTES
        c.create_hit_with_hit_type(HITTypeId=ht, MaxAssignments=1, LifetimeInSeconds=600, Question=exact)
        with pytest.raises(ClientError) as e:
            c.create_hit_with_hit_type(HITTypeId=ht, MaxAssignments=1, LifetimeInSeconds=600,
                                       Question=html_question(base + "x" * (pad + 1), 400))
        assert e.value.response["ResponseMetadata"]["HTTPStatusCode"] == 400
    finally:
        srv.close()
