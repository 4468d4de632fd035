"""Simulated raters over HTTP: the same path a person's browser takes on the local server.

For each bot (worker id ``SIM-<seed>-<k>``): it signs in by its link (``GET /worker?workerId=W``, or
the signed link given for it), which starts its session, and reads the session's CSRF token from the
page's ``<meta name="csrf-token">``; ``GET /worker/api/hits`` lists the session's HITs; for each
available one ``POST /worker/accept`` (``hitId``, ``csrf_token``) answers 302 to the HIT page URL
(carrying ``assignmentId``, ``hitId``, ``workerId``, ``turkSubmitTo``); the page is fetched (through
its iframe if it is a frame), every ``<fieldset class="trial">`` is looked up in the study and
answered (`mturk.simulate.decide`), ``ID__played=1``, ``ID__plays`` and ``simulated=1`` are set,
and the form is posted to ``turkSubmitTo + /mturk/externalSubmit`` with the page's own hidden
fields, as the page's script makes a browser do. A HIT that is refused, or whose page shows a
trial the study does not know, is skipped and listed; the other HITs go on.
"""

from __future__ import annotations

import logging
import re
from dataclasses import dataclass, field
from urllib.parse import parse_qs, urljoin, urlparse

import numpy as np
import requests

from regnet.errors import UserError
from mturk.simulate.decide import MetricTable, RaterParams, answer_trial
from mturk.study import Trial
from mturk.vocabulary import ANSWERS
from mturk.simulate.page import HitPage, parse_hit_page

log = logging.getLogger(__name__)

TIMEOUT_S = 30
_CSRF_META = re.compile(r'<meta name="csrf-token" content="([^"]+)"')


@dataclass
class BotResult:
    worker_id: str
    submitted: list[str] = field(default_factory=list)  # hit ids
    answers: int = 0
    skipped: list[tuple[str, str]] = field(default_factory=list)  # (hit id, reason)


def worker_id(seed: int, k: int) -> str:
    return f"SIM-{seed}-{k}"


class SimulatedRater:
    """One bot. ``trials`` maps trial ids to the study's `Trial`s."""

    def __init__(self, endpoint_url: str, worker: str, trials: dict[str, Trial],
                 metrics: MetricTable, params: RaterParams, rng: np.random.Generator,
                 session: requests.Session | None = None, clip_seconds: float = 10.0,
                 sign_in_url: str | None = None):
        self.base = endpoint_url.rstrip("/") + "/"
        self.worker = worker
        self.trials, self.metrics, self.params, self.rng = trials, metrics, params, rng
        self.http = session or requests.Session()
        self.clip_seconds = clip_seconds
        self.sign_in_url = sign_in_url
        self.csrf = ""

    def sign_in(self) -> None:
        """Follow the bot's link (as a person opens theirs) and keep the session's CSRF token."""
        url = self.sign_in_url or urljoin(self.base, "worker")
        r = self._get(url, params=None if self.sign_in_url else {"workerId": self.worker})
        m = _CSRF_META.search(r.text)
        if 'id="switchWorker"' in r.text and m:
            # This session was someone else's: confirm the switch as the page asks (same-origin POST).
            form = {"workerId": self.worker, "csrf_token": m.group(1)}
            if self.sign_in_url:
                form.update({k: v[0] for k, v in parse_qs(urlparse(self.sign_in_url).query).items() if k == "sig"})
            r = self._post(urljoin(self.base, "worker/login"), data=form)
            m = _CSRF_META.search(r.text)
        if r.status_code != 200 or m is None:
            raise UserError(f"--endpoint-url: signing in as {self.worker} at {url} answered {r.status_code}: "
                            f"{r.text[:120].strip()}")
        self.csrf = m.group(1)

    def _post(self, url: str, **kw) -> requests.Response:
        try:
            return self.http.post(url, timeout=TIMEOUT_S, **kw)
        except requests.RequestException as e:
            raise UserError(f"--endpoint-url: cannot reach {url} ({type(e).__name__})") from None

    def _get(self, url: str, **kw) -> requests.Response:
        try:
            return self.http.get(url, timeout=TIMEOUT_S, **kw)
        except requests.RequestException as e:
            raise UserError(f"--endpoint-url: cannot reach {url} ({type(e).__name__})") from None

    def available_hits(self) -> list[str]:
        if not self.csrf:
            self.sign_in()
        # The list comes a page at a time (at most 100 HITs); the next page's URL is in the Link header.
        url: str | None = urljoin(self.base, "worker/api/hits?limit=100")
        ids: list[str] = []
        seen: set[str] = set()
        while url and url not in seen:
            seen.add(url)
            r = self._get(url)
            if r.status_code != 200:
                raise UserError(f"--endpoint-url: {r.url} answered {r.status_code}; is it the local server?")
            try:
                hits = r.json()["hits"]
            except (ValueError, KeyError, TypeError):
                raise UserError(f"--endpoint-url: {r.url} did not return the worker HIT list") from None
            ids += [str(h["hitId"]) for h in hits if h.get("available", True)]
            nxt = r.links.get("next", {}).get("url")
            url = urljoin(r.url, nxt) if nxt else None
        return list(dict.fromkeys(ids))

    def run(self, max_hits: int | None = None) -> BotResult:
        result = BotResult(self.worker)
        for hit_id in self.available_hits():
            if max_hits is not None and len(result.submitted) >= max_hits:
                break
            try:
                result.answers += self.take(hit_id)
                result.submitted.append(hit_id)
            except _Skip as e:
                log.warning("%s: HIT %s skipped: %s", self.worker, hit_id, e)
                result.skipped.append((hit_id, str(e)))
        return result

    def take(self, hit_id: str) -> int:
        """Accept, answer and submit one HIT; returns the number of trials answered."""
        if not self.csrf:
            self.sign_in()
        try:
            r = self.http.post(urljoin(self.base, "worker/accept"), data={"hitId": hit_id, "csrf_token": self.csrf},
                               allow_redirects=False, timeout=TIMEOUT_S)
        except requests.RequestException as e:
            raise _Skip(f"accept failed ({type(e).__name__})") from None
        if r.status_code not in (301, 302, 303, 307) or "Location" not in r.headers:
            raise _Skip(f"accept refused ({r.status_code})")
        page_url = urljoin(r.url, r.headers["Location"])
        page, page_url = self._fetch_page(page_url)
        query = {k: v[0] for k, v in parse_qs(urlparse(page_url).query).items()}
        assignment = query.get("assignmentId") or page.fields.get("assignmentId", "")
        if not assignment or assignment == "ASSIGNMENT_ID_NOT_AVAILABLE":
            raise _Skip("the HIT page carries no assignmentId")
        unknown = [t.trial_id for t in page.trials if t.trial_id not in self.trials]
        if unknown:
            raise _Skip(f"trial(s) {', '.join(unknown[:3])} not in the study")
        fields = dict(page.fields)
        fields["assignmentId"] = assignment
        videos = page.n_reference_videos
        for pt in page.trials:
            trial = self.trials[pt.trial_id]
            answer = answer_trial(trial, self.metrics, self.params, self.rng)
            if pt.options and answer not in pt.options:
                raise _Skip(f"trial {pt.trial_id}: page offers {pt.options}, not {answer!r}")
            fields[pt.trial_id] = answer
            fields[f"{pt.trial_id}__played"] = "1"
            fields[f"{pt.trial_id}__plays"] = str(max(1, pt.n_videos))
            videos += max(1, pt.n_videos)
        # A person plays every video once and takes a few seconds per answer.
        fields["time_on_page_s"] = f"{videos * self.clip_seconds + 3.0 * len(page.trials) + self.rng.uniform(0, 5):.1f}"
        fields["hidden_s"] = "0"
        fields["simulated"] = "1"
        submit_to = query.get("turkSubmitTo")
        action = (submit_to.rstrip("/") + "/mturk/externalSubmit" if submit_to
                  else urljoin(page_url, page.form_action or "/mturk/externalSubmit"))
        try:
            resp = self.http.post(action, data=fields, timeout=TIMEOUT_S)
        except requests.RequestException as e:
            raise _Skip(f"submit to {action} failed ({type(e).__name__})") from None
        if resp.status_code >= 400:
            raise _Skip(f"submit refused ({resp.status_code}: {resp.text[:120].strip()})")
        return len(page.trials)

    def _fetch_page(self, url: str) -> tuple[HitPage, str]:
        for _ in range(2):  # the page itself, or a frame around it
            r = self._get(url)
            if r.status_code != 200:
                raise _Skip(f"HIT page {url} answered {r.status_code}")
            url = r.url
            page = parse_hit_page(r.text)
            if page.trials or not page.iframe_src:
                break
            url = urljoin(url, page.iframe_src)
        if not page.trials:
            raise _Skip("the HIT page shows no trial")
        return page, url


class _Skip(Exception):
    """This HIT cannot be taken; the bot goes on with the next."""


def run_bots(endpoint_url: str, trials: dict[str, Trial], metrics: MetricTable, n: int, seed: int,
             params: RaterParams, clip_seconds: float = 10.0, max_hits: int | None = None,
             session_factory=requests.Session, links: dict[str, str] | None = None) -> list[BotResult]:
    """Run ``n`` bots one after another; bot k draws from ``default_rng([seed, k])``. ``links`` maps worker
    ids to their personal sign-in links (a server with --require-signed-links)."""
    if n < 1:
        raise UserError(f"--n: need at least one rater, got {n}")
    known = set(ANSWERS)
    if any(t.kind not in known for t in trials.values()):
        bad = next(t for t in trials.values() if t.kind not in known)
        raise UserError(f"study: trial {bad.trial_id} has unknown kind {bad.kind!r}")
    results = []
    for k in range(n):
        wid = worker_id(seed, k)
        bot = SimulatedRater(endpoint_url, wid, trials, metrics, params, np.random.default_rng([seed, k]),
                             session_factory(), clip_seconds, sign_in_url=(links or {}).get(wid))
        results.append(bot.run(max_hits))
        log.info("%s submitted %d HIT(s), %d answers", bot.worker, len(results[-1].submitted),
                 results[-1].answers)
    return results


@dataclass
class SimulationReport:
    results: list[BotResult]
    loudspeakers: list[str]  # bots that took the screening test over loudspeakers (and failed it)

    @property
    def skipped(self) -> list[tuple[str, str, str]]:
        return [(r.worker_id, h, why) for r in self.results for h, why in r.skipped]


def simulate_study(endpoint_url: str, study, metrics: MetricTable, n: int, seed: int, params: RaterParams, *,
                   clip_seconds: float = 10.0, loudspeaker_raters: int = 0, max_hits: int | None = None,
                   links: dict[str, str] | None = None) -> SimulationReport:
    """`n` bots take the study's screening test (over headphones) and then its HITs; then
    ``loudspeaker_raters`` more take the test over loudspeakers, so screening has someone to refuse.
    An endpoint where no bot could take any HIT is an error; one with no HIT left is not."""
    from mturk import screening

    if loudspeaker_raters < 0:
        raise UserError(f"--loudspeaker-raters: {loudspeaker_raters} must be 0 or more")
    trials = study.trial_index()
    bots = [worker_id(seed, k) for k in range(n)]
    factory = screening.prepare_bots(endpoint_url, study, bots, links=links)
    results = run_bots(endpoint_url, trials, metrics, n, seed, params, clip_seconds=clip_seconds,
                       max_hits=max_hits, session_factory=factory, links=links)
    speakers = [f"SIM-{seed}-L{k}" for k in range(loudspeaker_raters)]
    if speakers:
        screening.prepare_bots(endpoint_url, study, speakers, loudspeaker=set(speakers), links=links)
    report = SimulationReport(results, speakers)
    skipped = report.skipped
    if skipped:
        log.warning("skipped HITs:\n%s", "\n".join(f"  {w} {h}: {why}" for w, h, why in skipped))
    if skipped and not any(r.submitted for r in results):
        raise UserError(f"--endpoint-url: no HIT could be taken at {endpoint_url} "
                        f"({len(skipped)} skipped, e.g. {skipped[0][1]}: {skipped[0][2]})")
    if not skipped and not any(r.submitted for r in results):
        # A re-run after every assignment is done has nothing to do; that is not a failure.
        log.warning("no HIT left for the simulated raters at %s", endpoint_url)
    return report
