"""QA regressions for the local server's hostile-input answers: each a 4xx with a clear message, and the
server keeps answering afterwards. In-process server on 127.0.0.1."""

from __future__ import annotations

import pytest
import requests
from botocore.auth import SigV4Auth
from botocore.awsrequest import AWSRequest
from botocore.credentials import Credentials
from tests.helpers.server import KEY, SECRET, start_inprocess


@pytest.fixture
def server(sqlite_url, tmp_path):  # noqa: F811
    media = tmp_path / "media"
    media.mkdir()
    (media / "clip.mp4").write_bytes(b"\x00" * 64)
    srv = start_inprocess(sqlite_url, media_dirs=(media,), threads=4)
    yield srv
    srv.close()


def signed_post(url: str, operation: str, body: bytes) -> requests.Response:
    req = AWSRequest(method="POST", url=url + "/", data=body,
                     headers={"X-Amz-Target": f"MTurkRequesterServiceV20170117.{operation}",
                              "Content-Type": "application/x-amz-json-1.1"})
    SigV4Auth(Credentials(KEY, SECRET), "mturk-requester", "us-east-1").add_auth(req)
    return requests.post(url + "/", data=body, headers=dict(req.headers), timeout=30)


def test_deeply_nested_json_is_a_request_error(server):
    body = b'{"a":' * 5000 + b"1" + b"}" * 5000
    r = signed_post(server.url, "GetAccountBalance", body)
    assert r.status_code == 400, r.text
    assert r.json()["__type"] == "RequestError" and "not valid JSON" in r.json()["Message"]
    ok = signed_post(server.url, "GetAccountBalance", b"{}")
    assert ok.status_code == 200 and "AvailableBalance" in ok.json()


def test_nul_byte_in_media_name_is_not_found(server):
    for bad in ("%00", "clip.mp4%00", "sub%00dir/clip.mp4"):
        r = requests.get(f"{server.url}/media/{bad}", timeout=30)
        assert r.status_code == 404, (bad, r.status_code)
    assert requests.get(f"{server.url}/media/clip.mp4", timeout=30).status_code == 200
