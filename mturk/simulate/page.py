"""Reading a HIT page the way a browser sees it: the form, its fields, and the trials
(``<fieldset class="trial" data-trial-id data-kind data-question>``, docs/architecture.md)."""

from __future__ import annotations

from dataclasses import dataclass, field
from html.parser import HTMLParser


@dataclass
class PageTrial:
    trial_id: str
    kind: str
    question: str
    options: list[str] = field(default_factory=list)  # radio values offered
    n_videos: int = 0


@dataclass
class HitPage:
    form_action: str | None = None
    fields: dict[str, str] = field(default_factory=dict)  # hidden/text inputs with their values
    trials: list[PageTrial] = field(default_factory=list)
    n_reference_videos: int = 0
    iframe_src: str | None = None


class _Parser(HTMLParser):
    def __init__(self):
        super().__init__(convert_charrefs=True)
        self.page = HitPage()
        self._in_form = False
        self._trial: PageTrial | None = None
        self._fieldset_depth = 0

    def handle_starttag(self, tag, attrs):
        a = {k: (v or "") for k, v in attrs}
        if tag == "form" and self.page.form_action is None:
            self._in_form = True
            self.page.form_action = a.get("action", "")
        elif tag == "iframe" and self.page.iframe_src is None and a.get("src"):
            self.page.iframe_src = a["src"]
        elif tag == "fieldset":
            if "trial" in a.get("class", "").split() and "data-trial-id" in a:
                self._trial = PageTrial(a["data-trial-id"], a.get("data-kind", ""), a.get("data-question", ""))
                self.page.trials.append(self._trial)
                self._fieldset_depth = 1
            elif self._trial is not None:
                self._fieldset_depth += 1
        elif tag == "video":
            if self._trial is not None:
                self._trial.n_videos += 1
            elif a.get("data-role") in ("ref1", "ref5"):
                self.page.n_reference_videos += 1
        elif tag == "input" and self._in_form:
            name, typ = a.get("name", ""), a.get("type", "text").lower()
            if not name:
                return
            if typ == "radio":
                if self._trial is not None and name == self._trial.trial_id:
                    self._trial.options.append(a.get("value", ""))
            elif typ not in ("submit", "button", "checkbox", "file", "image", "reset"):
                self.page.fields[name] = a.get("value", "")

    def handle_endtag(self, tag):
        if tag == "form":
            self._in_form = False
        elif tag == "fieldset" and self._trial is not None:
            self._fieldset_depth -= 1
            if self._fieldset_depth <= 0:
                self._trial = None


def parse_hit_page(html: str) -> HitPage:
    p = _Parser()
    p.feed(html)
    p.close()
    return p.page
