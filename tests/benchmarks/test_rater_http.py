"""The benchmark's rater client (`RaterHttp` in benchmarks/server_load.py) reads every way an HTTP/1.1
server may frame a response, keeps its cookies, and opens one new connection when the server has closed
an idle one. The benchmark itself only meets Content-Length bodies from waitress; a client that misread
another framing would hang or count a wrong answer as a page load."""

from __future__ import annotations

import socket
import sys
import threading
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(REPO / "benchmarks"))

from server_load import RaterHttp  # noqa: E402


class ScriptedServer:
    """127.0.0.1 server answering each request on a connection with the next canned response, then
    closing the connection when the script says so. Records the requests it read."""

    def __init__(self, connections: list[list[tuple[bytes, bool]]]):
        self.sock = socket.create_server(("127.0.0.1", 0))
        self.url = f"http://127.0.0.1:{self.sock.getsockname()[1]}"
        self.requests: list[bytes] = []
        self._thread = threading.Thread(target=self._run, args=(connections,), daemon=True)
        self._thread.start()

    def _run(self, connections):
        for script in connections:
            conn, _ = self.sock.accept()
            buf = b""
            with conn:
                for response, close in script:
                    while b"\r\n\r\n" not in buf:
                        buf += conn.recv(65536)
                    head, _, buf = buf.partition(b"\r\n\r\n")
                    length = next((int(line.split(b":")[1]) for line in head.split(b"\r\n")
                                   if line.lower().startswith(b"content-length:")), 0)
                    while len(buf) < length:
                        buf += conn.recv(65536)
                    self.requests.append(head + b"\r\n\r\n" + buf[:length])
                    buf = buf[length:]
                    conn.sendall(response)
                    if close:
                        break

    def close(self):
        self.sock.close()
        self._thread.join(timeout=5)


@pytest.fixture
def scripted():
    servers = []

    def make(connections):
        servers.append(ScriptedServer(connections))
        return servers[-1]
    yield make
    for s in servers:
        s.close()


def test_reads_content_length_chunked_and_close_delimited_bodies(scripted):
    srv = scripted([[
        (b"HTTP/1.1 200 OK\r\nContent-Length: 5\r\nSet-Cookie: session=abc; HttpOnly; Path=/\r\n\r\nhello", False),
        (b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n4\r\nwiki\r\n6;ext=1\r\npedia \r\n0\r\n\r\n", False),
        (b"HTTP/1.1 303 See Other\r\nLocation: /next\r\nContent-Length: 0\r\n\r\n", False),
        ("HTTP/1.1 200 OK\r\nConnection: close\r\n\r\nuntil close é".encode(), True),
    ]])
    r = RaterHttp(srv.url)
    assert r.request("GET", "/a") == (200, {"content-length": "5", "set-cookie": "session=abc; HttpOnly; Path=/"},
                                      "hello")
    assert r.cookies == {"session": "abc"}
    assert r.request("GET", "/b")[2] == "wikipedia "
    status, headers, body = r.request("POST", "/c", {"assignmentId": "A 1", "t1": "x&y"})
    assert (status, headers["location"], body) == (303, "/next", "")
    assert r.request("GET", "/d")[::2] == (200, "until close é")
    sent = srv.requests[2]
    assert sent.startswith(b"POST /c HTTP/1.1\r\n")
    assert b"Cookie: session=abc\r\n" in sent
    assert b"Content-Type: application/x-www-form-urlencoded\r\n" in sent
    assert sent.endswith(b"\r\n\r\nassignmentId=A+1&t1=x%26y")
    r.close()


def test_opens_one_new_connection_when_the_server_closed_the_idle_one(scripted):
    ok = b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok"
    # The first connection answers once and is closed without a word (a keep-alive timeout).
    srv = scripted([[(ok, True)], [(ok, False)]])
    r = RaterHttp(srv.url)
    r.headers["X-CSRFToken"] = "t"
    assert r.request("GET", "/1")[2] == "ok"
    assert r.request("GET", "/2")[2] == "ok"
    assert len(srv.requests) == 2 and b"X-CSRFToken: t\r\n" in srv.requests[1]
    r.close()


def test_a_server_that_goes_away_is_an_error_naming_the_request(scripted):
    srv = scripted([[(b"HTTP/1.1 200 OK\r\nContent-Length: 10\r\n\r\nshort", True)],
                    [(b"HTTP/1.1 200 OK\r\nContent-Length: 10\r\n\r\nshort", True)]])
    r = RaterHttp(srv.url, timeout=5)
    with pytest.raises(RuntimeError, match="GET /x: the server closed the connection mid-response"):
        r.request("GET", "/x")
