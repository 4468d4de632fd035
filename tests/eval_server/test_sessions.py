"""Remembered cookie sessions (eval_server/sessions.py): a remembered cookie opens the same session as
Flask's own check would, a cookie changed in any byte or past the session lifetime opens none, each
request gets its own copy, and the memory is bounded."""

from __future__ import annotations

from datetime import timedelta

import pytest
from flask import Flask, session
from flask.sessions import SecureCookieSessionInterface

from eval_server import sessions
from eval_server.sessions import RememberedCookieSessions


@pytest.fixture
def app():
    app = Flask(__name__)
    app.config["SECRET_KEY"] = "k" * 32
    app.session_interface = RememberedCookieSessions(max_cookies=3)

    @app.get("/in/<who>")
    def sign_in(who):
        session["worker_id"] = who
        session["info"] = {"study": "S1"}
        return "ok"

    @app.get("/me")
    def me():
        return f"{session.get('worker_id')}|{session.get('info')}"

    @app.get("/meddle")
    def meddle():  # changes this request's copy in place, without saving it
        session["info"]["study"] = "changed"
        return session["info"]["study"]
    return app


def _cookie(app, who: str) -> str:
    c = app.test_client()
    c.get(f"/in/{who}")
    return c.get_cookie("session").value


def _me(app, cookie: str | None) -> str:
    c = app.test_client()
    if cookie is not None:
        c.set_cookie("session", cookie)
    return c.get("/me").get_data(as_text=True)


def test_a_remembered_cookie_opens_what_flasks_own_check_opens(app):
    cookie = _cookie(app, "A")
    first, again = _me(app, cookie), _me(app, cookie)  # the second from memory
    assert first == again == "A|{'study': 'S1'}"
    assert cookie in app.session_interface._known
    with app.test_request_context(headers={"Cookie": f"session={cookie}"}):
        from flask import request
        assert dict(SecureCookieSessionInterface().open_session(app, request)) == dict(
            app.session_interface.open_session(app, request))


@pytest.mark.parametrize("where", [0, 20, -2])
def test_a_cookie_changed_in_any_byte_opens_no_session_though_the_original_is_remembered(app, where):
    cookie = _cookie(app, "A")
    assert _me(app, cookie).startswith("A|")
    i = where % len(cookie)
    forged = cookie[:i] + ("B" if cookie[i] != "B" else "C") + cookie[i + 1:]
    assert _me(app, forged) == "None|None"
    assert _me(app, cookie).startswith("A|")


def test_a_remembered_cookie_past_the_session_lifetime_opens_no_session(app, monkeypatch):
    app.permanent_session_lifetime = timedelta(hours=1)
    cookie = _cookie(app, "A")
    assert _me(app, cookie).startswith("A|")
    real = sessions.time.time
    monkeypatch.setattr(sessions.time, "time", lambda: real() + 2 * 3600)
    import itsdangerous.timed
    monkeypatch.setattr(itsdangerous.timed.time, "time", lambda: real() + 2 * 3600)
    assert _me(app, cookie) == "None|None"


def test_each_request_gets_its_own_copy(app):
    cookie = _cookie(app, "A")
    _me(app, cookie)
    c = app.test_client()
    c.set_cookie("session", cookie)
    assert c.get("/meddle").get_data(as_text=True) == "changed"
    assert _me(app, cookie) == "A|{'study': 'S1'}"


def test_the_memory_is_bounded(app):
    cookies = [_cookie(app, w) for w in "ABCDE"]
    for c in cookies:
        _me(app, c)
    assert len(app.session_interface._known) == 3
    assert all(_me(app, c).startswith(w + "|") for c, w in zip(cookies, "ABCDE"))  # forgotten ones still work
