"""The HTMLQuestion document MTurk's CreateHIT takes as its Question: one builder for the study side
(`mturk.render`, `mturk.publish`) and the local server's HIT layouts (`eval_server.api.hits`),
which may not import each other, so it sits on the floor both stand on."""

from __future__ import annotations

# CreateHIT's Question: "must not be larger than 64 kilobytes (65,535 bytes) in size, including whitespace".
MAX_QUESTION_BYTES = 65_535
HTML_QUESTION_NS = "http://mechanicalturk.amazonaws.com/AWSMechanicalTurkDataSchemas/2011-11-11/HTMLQuestion.xsd"


def html_question(html: str, frame_height: int = 0) -> str:
    """The page inside an HTMLQuestion's CDATA section. HTMLQuestion is XML: a ']]>' in the page
    would end the section early, so each one is written ']]]]><![CDATA[>' (one section ends after
    ']]', the next begins with '>'), and an XML parser reads back the page exactly as given. The
    size limit (MAX_QUESTION_BYTES) is the caller's to check (`mturk.render.check_size`,
    `eval_server.questions.parse`)."""
    body = html.replace("]]>", "]]]]><![CDATA[>")
    return (f'<HTMLQuestion xmlns="{HTML_QUESTION_NS}"><HTMLContent><![CDATA[{body}]]></HTMLContent>'
            f"<FrameHeight>{int(frame_height)}</FrameHeight></HTMLQuestion>")
