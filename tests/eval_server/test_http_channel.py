"""The server's connections do not busy-loop while a request thread writes its response
(eval_server/http_channel.py), and every response still goes out whole."""

from __future__ import annotations

import http.client
import socket
import threading
import time

import pytest
import waitress
import waitress.wasyncore as wasyncore
from waitress.channel import HTTPChannel

from eval_server.http_channel import QuietHTTPChannel
from eval_server.server import ThreadedServer, waitress_server


@pytest.fixture
def channel():
    """A QuietHTTPChannel on one end of a socket pair, its server never run."""
    with socket.create_server(("127.0.0.1", 0)) as listener:
        srv = waitress.create_server(lambda env, start: [], sockets=[listener], threads=1, _start=False)
        a, b = socket.socketpair()
        ch = QuietHTTPChannel(srv, a, ("127.0.0.1", 1), srv.adj, map={})
        try:
            yield ch
        finally:
            ch.close()
            b.close()
            srv.close()


def _holding(lock) -> tuple[threading.Event, threading.Event]:
    """Hold `lock` on another thread (a request thread writing); set the second event to let go."""
    held, done = threading.Event(), threading.Event()

    def hold():
        with lock:
            held.set()
            done.wait(10)
    threading.Thread(target=hold, daemon=True).start()
    held.wait(10)
    return held, done


def test_not_writable_while_a_request_thread_holds_the_output(channel):
    channel.requests = [object()]  # a request is being served
    channel.total_outbufs_len = 100
    assert channel.writable()  # nobody is writing: the loop may send it
    _, done = _holding(channel.outbuf_lock)
    try:
        assert not channel.writable()
        channel.total_outbufs_len = channel.adj.outbuf_high_watermark + 1
        assert channel.writable()  # its thread may be waiting for the loop to drain it
        channel.total_outbufs_len = 100
        channel.close_when_flushed = True
        assert channel.writable()  # closing: waitress's own handling
    finally:
        done.set()


def test_with_no_request_running_it_is_waitress_s_own_answer(channel):
    channel.requests = []
    channel.total_outbufs_len = 100
    _, done = _holding(channel.outbuf_lock)
    try:
        assert channel.writable() == HTTPChannel.writable(channel)
    finally:
        done.set()


def _loop_turns_per_request(quiet: bool) -> float:
    def app(environ, start_response):
        start_response("200 OK", [("Content-Type", "text/plain"), ("Content-Length", "5")])

        class Body:
            def __iter__(self):
                return iter([b"hello"])

            def close(self):  # after the body is written, as Flask's teardown runs
                time.sleep(0.002)
        return Body()

    make = waitress_server if quiet else waitress.create_server
    srv = make(app, host="127.0.0.1", port=0, threads=2)
    turns = [0]
    real_poll = wasyncore.poll

    def counting_poll(*a, **k):
        turns[0] += 1
        return real_poll(*a, **k)
    t = threading.Thread(target=srv.run, daemon=True)
    clients, per_client = 8, 40

    def client():
        c = http.client.HTTPConnection("127.0.0.1", srv.effective_port, timeout=30)
        for _ in range(per_client):
            c.request("GET", "/")
            r = c.getresponse()
            assert r.read() == b"hello"
        c.close()
    wasyncore.poll = counting_poll
    try:
        t.start()
        workers = [threading.Thread(target=client) for _ in range(clients)]
        for w in workers:
            w.start()
        for w in workers:
            w.join(60)
    finally:
        wasyncore.poll = real_poll
        ThreadedServer("", srv, t).close()
    return turns[0] / (clients * per_client)


def test_the_loop_turns_about_twice_per_request_not_a_dozen_times():
    # With waitress's own channel the loop turned 6-12 times per request here, nearly every turn finding
    # the output locked by the request thread; with the quiet one about 1.5 times.
    assert _loop_turns_per_request(quiet=True) < 4


def test_large_responses_go_out_whole_past_the_high_water_mark():
    chunk = bytes(range(256)) * 256  # 64 KiB

    def app(environ, start_response):
        start_response("200 OK", [("Content-Type", "application/octet-stream"),
                                  ("Content-Length", str(len(chunk) * 80))])
        return (chunk for _ in range(80))
    # A small high-water mark makes the request thread wait for the loop to drain its output.
    srv = waitress_server(app, host="127.0.0.1", port=0, threads=2, outbuf_high_watermark=256 * 1024)
    t = threading.Thread(target=srv.run, daemon=True)
    t.start()
    got: list[bytes] = []

    def client():
        c = http.client.HTTPConnection("127.0.0.1", srv.effective_port, timeout=30)
        for _ in range(3):
            c.request("GET", "/")
            r = c.getresponse()
            body = bytearray()
            while piece := r.read(8192):
                body += piece
                if len(body) % (1 << 20) < 8192:
                    time.sleep(0.005)  # a reader slower than the server now and then
            got.append(bytes(body))
        c.close()
    try:
        workers = [threading.Thread(target=client) for _ in range(3)]
        for w in workers:
            w.start()
        for w in workers:
            w.join(60)
    finally:
        ThreadedServer("", srv, t).close()
    assert len(got) == 9 and all(g == chunk * 80 for g in got)
