"""HIT layouts (MTurk "projects"): HTML with ${name} placeholders, registered once and rendered per
HIT from HITLayoutParameters, then wrapped in the form MTurk wraps layouts in."""

from __future__ import annotations

import html
import re
import secrets

from sqlalchemy.exc import IntegrityError

from eval_server.db import Database, Layout
from eval_server.errors import ApiError
from regnet.errors import UserError

PLACEHOLDER = re.compile(r"\$\{([A-Za-z0-9_.\-]+)\}")
LAYOUT_ID_RE = re.compile(r"^[A-Z0-9]{1,64}$")

# The wrapper MTurk puts around a layout: a form posting to turkSubmitTo's externalSubmit with the
# hidden assignmentId, and a Submit button that preview disables. The script fills both from the URL.
_WRAP = """<!DOCTYPE html>
<html><head><meta charset="utf-8"><title>HIT</title></head><body>
<form name="mturk_form" method="post" id="mturk_form" action="/mturk/externalSubmit">
<input type="hidden" value="" name="assignmentId" id="assignmentId">
{body}
<p><input type="submit" id="submitButton" value="Submit"></p>
</form>
<script>
(function () {{
  var q = new URLSearchParams(window.location.search);
  var aid = q.get("assignmentId") || "ASSIGNMENT_ID_NOT_AVAILABLE";
  document.getElementById("assignmentId").value = aid;
  var to = q.get("turkSubmitTo");
  if (to) {{ document.getElementById("mturk_form").action = to.replace(/\\/$/, "") + "/mturk/externalSubmit"; }}
  if (aid === "ASSIGNMENT_ID_NOT_AVAILABLE") {{
    var b = document.getElementById("submitButton"); b.disabled = true; b.value = "Accept the HIT to submit";
  }}
}})();
</script>
</body></html>"""


def placeholders(layout_html: str) -> list[str]:
    return list(dict.fromkeys(PLACEHOLDER.findall(layout_html)))


def render(layout_id: str, layout_html: str, params: list[dict]) -> str:
    """The worker-facing page for a layout; values are HTML-escaped, a missing one is refused."""
    values: dict[str, str] = {}
    for p in params:
        if p["Name"] in values:
            raise ApiError(f"HITLayoutParameter {p['Name']} is given more than once.",
                           "AWS.MechanicalTurk.InvalidHITLayoutParameter")
        values[p["Name"]] = p["Value"]
    missing = [n for n in placeholders(layout_html) if n not in values]
    if missing:
        raise ApiError(f"HITLayout {layout_id} requires the HITLayoutParameter(s) {', '.join(missing)}, "
                       "which the request does not provide.", "AWS.MechanicalTurk.MissingHITLayoutParameter")
    body = PLACEHOLDER.sub(lambda m: html.escape(values[m.group(1)], quote=True), layout_html)
    return _WRAP.format(body=body)


def add_layout(db: Database, layout_html: str, layout_id: str | None, name: str, at: float) -> str:
    if not layout_html.strip():
        raise UserError("layout: the file is empty")
    if layout_id is not None and not LAYOUT_ID_RE.match(layout_id):
        raise UserError(f"--id: {layout_id!r} must be 1-64 characters of A-Z and 0-9 (as MTurk layout ids are)")
    lid = layout_id or "".join(secrets.choice("ABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789") for _ in range(30))
    try:
        with db.write() as s:
            existing = s.get(Layout, lid)
            if existing is not None:
                raise UserError(f"--id: layout {lid} already exists (layouts are never overwritten: HITs "
                                "made from it must keep their page)")
            s.add(Layout(id=lid, name=name, html=layout_html, created_at=at))
    except IntegrityError:
        raise UserError(f"--id: layout {lid} already exists") from None
    return lid
