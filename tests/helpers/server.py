"""Fixtures for the eval_server tests: a real server on 127.0.0.1 (in-process thread or subprocess),
boto3 clients pointed at it, a throwaway PostgreSQL cluster, a tiny HIT page with a video.

Import what a test module needs: `from server_fixtures import db_url, live_server, ...`.
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import boto3
import pytest
from botocore.config import Config as BotoConfig

from tests.helpers.pg import PgCluster, create_pg_database, pg_available, pg_cluster

from eval_server.config import ServerConfig
from regnet.mturk_xml import html_question as build_html_question
from eval_server.server import ThreadedServer, build_app, start_in_thread

REPO = Path(__file__).resolve().parents[2]
KEY, SECRET = "AKTESTKEY0001", "test-secret-0001"

CHROMIUM_ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                 "--disable-background-networking", "--disable-component-update", "--disable-sync"]


def mturk_client(url: str, key: str = KEY, secret: str = SECRET, retries: int = 0):
    return boto3.client("mturk", endpoint_url=url, region_name="us-east-1", aws_access_key_id=key,
                        aws_secret_access_key=secret,
                        config=BotoConfig(retries={"max_attempts": retries, "mode": "standard"},
                                          connect_timeout=5, read_timeout=30))


@dataclass
class LiveServer:
    url: str
    db_url: str
    admin_token: str
    _server: ThreadedServer = field(repr=False)

    def client(self, **kw):
        return mturk_client(self.url, **kw)

    def close(self) -> None:
        self._server.close()


def start_inprocess(db_url: str, media_dirs: tuple[Path, ...] = (), threads: int = 16, **cfg) -> LiveServer:
    config = ServerConfig(db_url=db_url, media_dirs=media_dirs, requester_key=KEY, requester_secret=SECRET,
                          admin_token="admin-token-test", **cfg)
    app, resolved, _ = build_app(config)
    srv = start_in_thread(app, threads=threads, connection_limit=400)
    return LiveServer(srv.url, resolved.db_url, resolved.admin_token, srv)


@dataclass
class SubprocessServer:
    url: str
    proc: subprocess.Popen
    output: list[str]

    def client(self, **kw):
        return mturk_client(self.url, **kw)

    def children(self, n: int) -> list[int]:
        """The n server processes `serve --processes n` forks (Linux's /proc; its address is printed
        before it forks them)."""
        pid = self.proc.pid
        deadline = time.monotonic() + 30
        while True:
            kids = [int(c) for c in Path(f"/proc/{pid}/task/{pid}/children").read_text().split()]
            if len(kids) == n or time.monotonic() > deadline:
                assert len(kids) == n, f"serve forked {len(kids)} processes, not {n}"
                return kids
            time.sleep(0.05)

    def stop(self) -> None:
        self.proc.terminate()
        try:
            self.proc.wait(timeout=15)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()


def start_subprocess(db_url: str, *extra: str, env: dict | None = None, timeout_s: float = 30) -> SubprocessServer:
    """`regnet-bench serve --port 0` in a child process; the URL is read from its first line."""
    cmd = [sys.executable, "-m", "regnet.cli", "serve", "--db", db_url, "--host", "127.0.0.1", "--port", "0",
           "--requester-key", KEY, "--requester-secret", SECRET, *extra]
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
                            env={**os.environ, **(env or {})}, cwd=REPO)
    lines: list[str] = []
    deadline = time.time() + timeout_s
    url = None
    while time.time() < deadline:
        line = proc.stdout.readline()
        if not line:
            break
        lines.append(line)
        m = re.search(r"regnet-bench server: (http://\S+)", line)
        if m:
            url = m.group(1)
            break
    if url is None:
        proc.kill()
        raise RuntimeError("server did not start:\n" + "".join(lines) + (proc.stdout.read() or ""))
    threading.Thread(target=lambda: lines.extend(proc.stdout), daemon=True).start()
    return SubprocessServer(url, proc, lines)


# ---- PostgreSQL (the cluster itself: tests/helpers/pg.py) ------------------------------------------

@pytest.fixture(scope="session")
def pg(tmp_path_factory) -> Iterator[PgCluster]:
    if not pg_available():
        if os.environ.get("CI") == "true":
            pytest.fail("PostgreSQL binaries (initdb, pg_ctl) are missing: scripts/setup.sh installs postgresql")
        pytest.skip("PostgreSQL binaries (initdb, pg_ctl) not installed")
    pytest.importorskip("psycopg2", reason="psycopg2-binary (dev extra) is needed for the PostgreSQL runs")
    with pg_cluster(tmp_path_factory.mktemp("pg")) as cluster:
        yield cluster


@pytest.fixture(params=["sqlite", "postgresql"])
def db_url(request, tmp_path) -> str:
    """A fresh database on each backend."""
    if request.param == "sqlite":
        return str(tmp_path / "server.sqlite")
    return create_pg_database(request.getfixturevalue("pg"))


@pytest.fixture
def sqlite_url(tmp_path) -> str:
    return str(tmp_path / "server.sqlite")


# ---- HIT content ---------------------------------------------------------------------------------------

def html_question(body: str, height: int = 600) -> str:
    """A small HTML page around ``body``, as an HTMLQuestion (the product's one builder)."""
    return build_html_question(f'<!DOCTYPE html><html><head><meta charset="utf-8"></head><body>{body}</body></html>',
                               frame_height=height)


SIMPLE_FORM = html_question(
    '<form method="post" action="/mturk/externalSubmit"><input type="hidden" name="assignmentId" id="aid">'
    '<input name="answer"><input type="submit"></form>')
# A one-question qualification test and its AnswerKey: answer 'b' scores 100, 'a' scores 0.
QF = "http://mechanicalturk.amazonaws.com/AWSMechanicalTurkDataSchemas/2017-11-06/QuestionForm.xsd"
AK = "http://mechanicalturk.amazonaws.com/AWSMechanicalTurkDataSchemas/2005-10-01/AnswerKey.xsd"
TEST_FORM = f"""<QuestionForm xmlns="{QF}"><Overview><Text>Hearing check</Text></Overview>
<Question><QuestionIdentifier>tone</QuestionIdentifier><QuestionContent><Text>Which is higher?</Text></QuestionContent>
<AnswerSpecification><SelectionAnswer><Selections>
<Selection><SelectionIdentifier>a</SelectionIdentifier><Text>A</Text></Selection>
<Selection><SelectionIdentifier>b</SelectionIdentifier><Text>B</Text></Selection>
</Selections></SelectionAnswer></AnswerSpecification></Question></QuestionForm>"""
ANSWER_KEY = f"""<AnswerKey xmlns="{AK}"><Question><QuestionIdentifier>tone</QuestionIdentifier>
<AnswerOption><SelectionIdentifier>b</SelectionIdentifier><AnswerScore>1</AnswerScore></AnswerOption></Question>
<QualificationValueMapping><PercentageMapping><MaximumSummedScore>1</MaximumSummedScore></PercentageMapping>
</QualificationValueMapping></AnswerKey>"""


def video_question(video_name: str) -> str:
    """A HIT page as MTurk pages are written: a video that must play to its end, a radio answer, and a
    form posting to turkSubmitTo + /mturk/externalSubmit with the hidden assignmentId."""
    return html_question(f"""
<fieldset class="trial" data-trial-id="t1" data-kind="real_fake" data-question="real">
<video id="v" data-role="single" src="/media/{video_name}" preload="auto" muted playsinline></video>
<label><input type="radio" name="t1" value="real" id="real"> real</label>
<label><input type="radio" name="t1" value="fake" id="fake"> fake</label>
<input type="hidden" name="t1__played" id="played" value="0">
</fieldset>
<form id="f" method="post"><input type="hidden" name="assignmentId" id="aid"></form>
<button id="go" disabled>Submit</button>
<script>
var q = new URLSearchParams(location.search);
document.getElementById("aid").value = q.get("assignmentId");
document.getElementById("f").action = (q.get("turkSubmitTo") || "") + "/mturk/externalSubmit";
var v = document.getElementById("v");
v.addEventListener("ended", function () {{ document.getElementById("played").value = "1";
  if (q.get("assignmentId") !== "ASSIGNMENT_ID_NOT_AVAILABLE") document.getElementById("go").disabled = false; }});
document.getElementById("go").addEventListener("click", function () {{
  var f = document.getElementById("f");
  ["t1", "t1__played"].forEach(function (n) {{
    var el = document.querySelector('[name="' + n + '"]:checked') || document.querySelector('[name="' + n + '"][type=hidden]');
    if (el) {{ var h = document.createElement("input"); h.type = "hidden"; h.name = n; h.value = el.value; f.appendChild(h); }}
  }});
  f.submit();
}});
</script>""", height=500)


def make_video(path: Path) -> Path:
    """A tiny mp4 (H.264 + AAC): half a second of colour with a tone."""
    import numpy as np
    from moviepy import AudioArrayClip, ColorClip
    sr = 22050
    t = np.arange(int(0.5 * sr)) / sr
    tone = (0.2 * np.sin(2 * np.pi * 440 * t)).astype(np.float32)
    audio = AudioArrayClip(np.stack([tone, tone], axis=1), fps=sr)
    clip = ColorClip((64, 64), color=(200, 40, 40), duration=0.5).with_audio(audio)
    clip.write_videofile(str(path), fps=10, codec="libx264", audio_codec="aac", logger=None,
                         ffmpeg_params=["-pix_fmt", "yuv420p"])
    return path


# ---- a signed-in rater ------------------------------------------------------------------------------

_CSRF_META = re.compile(r'<meta name="csrf-token" content="([^"]+)"')


def csrf_token(session, base_url: str) -> str:
    """The CSRF token of this session, read from the worker page as a browser would see it."""
    r = session.get(f"{base_url.rstrip('/')}/worker", timeout=30)
    m = _CSRF_META.search(r.text)
    if not m:
        raise AssertionError(f"no csrf-token meta on /worker ({r.status_code}): {r.text[:200]}")
    return m.group(1)


def sign_in(session, base_url: str, worker_id: str, sig: str | None = None) -> None:
    """Sign `session` (a requests.Session) in as `worker_id` by link (`/worker?workerId=ID[&sig=..]`),
    confirming the switch when it was signed in as someone else, and make every later POST from it
    carry the CSRF token (header X-CSRFToken, which Flask-WTF accepts as the form field)."""
    base = base_url.rstrip("/")
    params = {"workerId": worker_id, **({"sig": sig} if sig else {})}
    r = session.get(f"{base}/worker", params=params, timeout=30)
    if 'id="switchWorker"' in r.text:  # signed in as someone else: the page asks to confirm by POST
        token = _CSRF_META.search(r.text).group(1)
        r = session.post(f"{base}/worker/login", data={**params, "csrf_token": token}, timeout=30)
    if r.status_code != 200 or f"Worker {worker_id}" not in r.text:
        raise AssertionError(f"sign-in as {worker_id} failed ({r.status_code}): {r.text[:200]}")
    session.headers["X-CSRFToken"] = csrf_token(session, base)


def rater(base_url: str, worker_id: str, sig: str | None = None):
    """A new requests.Session signed in as `worker_id`."""
    import requests
    s = requests.Session()
    sign_in(s, base_url, worker_id, sig)
    return s


def post_form(session, url: str, data: dict | list, base_url: str | None = None, **kw):
    """POST a form with the session's CSRF token as the `csrf_token` field (what our own pages' forms send)."""
    token = session.headers.get("X-CSRFToken") or csrf_token(session, base_url or url.split("/worker")[0])
    items = list(data.items()) if isinstance(data, dict) else list(data)
    return session.post(url, data=items + [("csrf_token", token)], timeout=30, **kw)


def accept_hit(session, base_url: str, hit_id: str, ui: str | None = None):
    """POST /worker/accept as the session's rater; the answer is the redirect (not followed)."""
    data = {"hitId": hit_id, **({"ui": ui} if ui else {})}
    return post_form(session, f"{base_url.rstrip('/')}/worker/accept", data, base_url, allow_redirects=False)


def assignment_of(resp) -> str:
    """The assignmentId in an accept redirect's Location."""
    loc = resp.headers["Location"]
    return loc.split("assignmentId=")[1].split("&")[0]
