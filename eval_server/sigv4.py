"""Verify AWS Signature Version 4 on requester API calls (what boto3 sends for 'mturk-requester').

The signature is recomputed from the request as received (canonical request, string to sign, key
derived from the secret) and compared in constant time; the region is taken from the credential scope
so a client configured for any region works.
"""

from __future__ import annotations

import hashlib
import hmac
import re
import time
from calendar import timegm
from collections.abc import Mapping
from dataclasses import dataclass
from urllib.parse import quote, unquote

from eval_server.errors import AuthError

_AUTH_RE = re.compile(
    r"^AWS4-HMAC-SHA256\s+Credential=(?P<cred>[^,\s]+),\s*SignedHeaders=(?P<signed>[^,\s]+),"
    r"\s*Signature=(?P<sig>[0-9a-f]{64})\s*$")


@dataclass(frozen=True)
class SignedRequest:
    method: str
    path: str
    query: str
    headers: Mapping[str, str]  # any case
    body: bytes


def _hmac(key: bytes, msg: str) -> bytes:
    return hmac.new(key, msg.encode("utf-8"), hashlib.sha256).digest()


def _canonical_query(query: str) -> str:
    if not query:
        return ""
    pairs = []
    for part in query.split("&"):
        k, _, v = part.partition("=")
        pairs.append((quote(unquote(k), safe="-_.~"), quote(unquote(v), safe="-_.~")))
    return "&".join(f"{k}={v}" for k, v in sorted(pairs))


def verify(req: SignedRequest, access_key: str, secret: str, max_skew_s: int) -> None:
    """Raise AuthError unless `req` carries a valid SigV4 signature by (access_key, secret)."""
    headers = {k.lower(): v for k, v in req.headers.items()}
    auth = headers.get("authorization", "")
    m = _AUTH_RE.match(auth)
    if not m:
        raise AuthError("MissingAuthenticationTokenException",
                        "Request is missing a valid AWS4-HMAC-SHA256 Authorization header.")
    cred = m["cred"].split("/")
    if len(cred) != 5 or cred[4] != "aws4_request":
        raise AuthError("IncompleteSignatureException", "Credential scope is malformed.")
    key_id, date, region, service, _ = cred
    if not hmac.compare_digest(key_id.encode(), access_key.encode()):
        raise AuthError("UnrecognizedClientException", "The security token included in the request is invalid.")
    amz_date = headers.get("x-amz-date", "")
    try:
        signed_at = timegm(time.strptime(amz_date, "%Y%m%dT%H%M%SZ"))
    except ValueError:
        raise AuthError("IncompleteSignatureException", "X-Amz-Date header is missing or malformed.") from None
    if abs(time.time() - signed_at) > max_skew_s:
        raise AuthError("InvalidSignatureException", "Signature expired: the request time is more than "
                        f"{max_skew_s // 60} minutes away from the server time.")
    if not amz_date.startswith(date):
        raise AuthError("InvalidSignatureException", "Credential date does not match X-Amz-Date.")
    signed = m["signed"].split(";")
    if "host" not in signed or any(h not in headers for h in signed):
        raise AuthError("IncompleteSignatureException", "SignedHeaders names a header the request lacks.")
    canonical_headers = "".join(f"{h}:{' '.join(headers[h].split())}\n" for h in signed)
    payload_hash = hashlib.sha256(req.body).hexdigest()
    path = quote(req.path or "/", safe="/-_.~")
    canonical = "\n".join([req.method.upper(), path, _canonical_query(req.query), canonical_headers,
                           m["signed"], payload_hash])
    scope = "/".join(cred[1:])
    to_sign = "\n".join(["AWS4-HMAC-SHA256", amz_date, scope,
                         hashlib.sha256(canonical.encode("utf-8")).hexdigest()])
    k = _hmac(("AWS4" + secret).encode("utf-8"), date)
    k = _hmac(k, region)
    k = _hmac(k, service)
    k = _hmac(k, "aws4_request")
    expected = hmac.new(k, to_sign.encode("utf-8"), hashlib.sha256).hexdigest()
    if not hmac.compare_digest(expected, m["sig"]):
        raise AuthError("InvalidSignatureException", "The request signature we calculated does not match "
                        "the signature you provided. Check your AWS Secret Access Key and signing method.")
