"""Flask's signed-cookie sessions, with each cookie that passed its checks remembered for the next request
that sends it.

Every request of a rater carries the same session cookie until the session changes, and Flask checks it
anew each time: a serializer built per request, the HMAC, zlib and its tagged JSON (about 90 us of CPU a
request here, some 5% of a submit, on the cores the raters' requests share). A cookie is the signed bytes
of its contents, so once one has passed those checks its contents are known for as long as it stays
valid: `RememberedCookieSessions` keeps them, keyed by the exact cookie text, until the signature's age
would pass the session lifetime (the limit Flask enforces), in a bounded LRU. A cookie never seen, or
changed in any byte, goes through Flask's own checks; each request gets its own copy of the contents.
"""

from __future__ import annotations

import copy
import threading
import time
from collections import OrderedDict

from flask import Flask, Request
from flask.sessions import SecureCookieSession, SecureCookieSessionInterface
from itsdangerous import BadSignature


class RememberedCookieSessions(SecureCookieSessionInterface):
    def __init__(self, max_cookies: int = 10_000):
        self.max_cookies = max_cookies
        self._lock = threading.Lock()
        # cookie text -> (its contents, the time its signature stops being accepted)
        self._known: OrderedDict[str, tuple[dict, float]] = OrderedDict()

    def open_session(self, app: Flask, request: Request) -> SecureCookieSession | None:
        if not app.secret_key:
            return None
        val = request.cookies.get(self.get_cookie_name(app))
        if not val:
            return self.session_class()
        with self._lock:
            known = self._known.get(val)
            if known is not None:
                self._known.move_to_end(val)
        if known is not None and time.time() < known[1]:
            return self.session_class(copy.deepcopy(known[0]))
        max_age = int(app.permanent_session_lifetime.total_seconds())
        try:
            data, signed = self.get_signing_serializer(app).loads(val, max_age=max_age, return_timestamp=True)
        except BadSignature:
            return self.session_class()
        with self._lock:
            self._known[val] = (copy.deepcopy(data), signed.timestamp() + max_age)
            while len(self._known) > self.max_cookies:
                self._known.popitem(last=False)
        return self.session_class(data)
