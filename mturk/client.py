"""Where requests go (sandbox, production, or any endpoint speaking the MTurk API) and how their
failures read: credentials missing, an endpoint out of reach or an API error become one-line
`UserError`s, never tracebacks."""

from __future__ import annotations

import logging
import os
from contextlib import contextmanager
from dataclasses import dataclass

from regnet.errors import UserError

log = logging.getLogger(__name__)

SANDBOX_URL = "https://mturk-requester-sandbox.us-east-1.amazonaws.com"
PRODUCTION_URL = "https://mturk-requester.us-east-1.amazonaws.com"
SANDBOX_WORKER_URL = "https://workersandbox.mturk.com"
ENV_ENDPOINT = "AWS_ENDPOINT_URL_MTURK"  # botocore's service-specific endpoint variable
REGION = "us-east-1"  # the only region MTurk ever ran in


@dataclass(frozen=True)
class Target:
    endpoint: str
    label: str  # sandbox | production | custom

    @property
    def is_production(self) -> bool:
        return self.endpoint.rstrip("/") == PRODUCTION_URL


def resolve_target(sandbox: bool = False, production: bool = False, endpoint_url: str | None = None) -> Target:
    """``--endpoint-url`` > ``--production`` / ``--sandbox`` > ``AWS_ENDPOINT_URL_MTURK`` > sandbox."""
    if sum(map(bool, (sandbox, production, endpoint_url))) > 1:
        raise UserError("--sandbox, --production and --endpoint-url: choose one")
    if endpoint_url:
        url = endpoint_url.rstrip("/")
    elif production:
        url = PRODUCTION_URL
    elif sandbox:
        url = SANDBOX_URL
    else:
        url = os.environ.get(ENV_ENDPOINT, "").strip().rstrip("/") or SANDBOX_URL
    if not url.startswith(("http://", "https://")):
        raise UserError(f"--endpoint-url: {url!r} is not an http(s) URL")
    label = "production" if url == PRODUCTION_URL else "sandbox" if url == SANDBOX_URL else "custom"
    return Target(url, label)


def make_client(target: Target, service: str = "mturk"):
    import boto3
    from botocore.config import Config as BotoConfig

    # Adaptive mode adds client-side rate limiting on top of retries: MTurk throttles bursts of
    # CreateHIT calls, and a study publishes hundreds of them.
    cfg = BotoConfig(retries={"mode": "adaptive", "max_attempts": 10}, connect_timeout=10, read_timeout=60)
    client = boto3.session.Session().client(service, region_name=REGION, endpoint_url=target.endpoint, config=cfg)
    # ...but an endpoint that cannot be reached at all (refused, no route, DNS) would otherwise be
    # retried ten times with backoff: close to a minute, minutes against a black hole.
    client.meta.events.register_first(f"needs-retry.{client.meta.service_model.service_id.hyphenize()}",
                                      _fail_fast_on_connect)
    return client


CONNECT_ATTEMPTS = 2  # attempts to open a connection before giving up (throttling keeps its 10)


def _fail_fast_on_connect(attempts: int = 1, caught_exception: Exception | None = None, **_) -> None:
    """``needs-retry`` hook run before botocore's own: re-raise a connection failure once it has been
    tried CONNECT_ATTEMPTS times; anything else (throttling, 5xx) goes on to the adaptive retries."""
    from botocore.exceptions import ConnectTimeoutError, EndpointConnectionError

    if isinstance(caught_exception, (EndpointConnectionError, ConnectTimeoutError)) and attempts >= CONNECT_ATTEMPTS:
        log.debug("giving up on %s after %d attempt(s)", caught_exception, attempts)
        raise caught_exception
    return None


# Error codes AWS (and our server) answer for a wrong key or secret: no later call can succeed either.
AUTH_ERROR_CODES = frozenset({"UnrecognizedClientException", "InvalidSignatureException", "InvalidClientTokenId",
                              "SignatureDoesNotMatch", "MissingAuthenticationTokenException", "AuthFailure",
                              "IncompleteSignature", "ExpiredTokenException", "AccessDeniedException"})


@contextmanager
def api_errors(target: Target, what: str):
    """Turn botocore failures inside the block into one-line errors naming the endpoint."""
    from botocore.exceptions import (BotoCoreError, ClientError, EndpointConnectionError,
                                     NoCredentialsError, PartialCredentialsError)

    try:
        yield
    except (NoCredentialsError, PartialCredentialsError):
        raise UserError(f"credentials: no AWS credentials for {target.endpoint} (set AWS_ACCESS_KEY_ID and "
                        "AWS_SECRET_ACCESS_KEY or AWS_PROFILE; for the local server, the keys it was given)") from None
    except EndpointConnectionError:
        hint = ("is it running and is the URL right?" if target.label == "custom" else
                "Amazon closed MTurk on 2026-09-30; run the study on the local server instead "
                "(regnet-bench serve, then --endpoint-url URL)")
        raise UserError(f"{target.endpoint}: cannot reach the MTurk endpoint ({what}); {hint}") from None
    except ClientError as e:
        err = e.response.get("Error", {})
        if err.get("Code") in AUTH_ERROR_CODES:
            # Starts with "credentials:" like the missing-keys case, so batch loops stop at once.
            raise UserError(f"credentials: {target.endpoint} refused the AWS credentials ({what}): "
                            f"{err.get('Code')}: {err.get('Message', '')}".splitlines()[0]) from None
        raise UserError(f"{target.endpoint}: {what} refused: {err.get('Code', '?')}: "
                        f"{err.get('Message', str(e))}".splitlines()[0]) from None
    except BotoCoreError as e:
        raise UserError(f"{target.endpoint}: {what} failed: {str(e).splitlines()[0]}") from None


def client_for(target: Target):
    """A boto3 client for ``target``, its set-up errors as one-line errors (the `ClientFor` every
    publish/collect/review function takes)."""
    with api_errors(target, "client set-up"):
        return make_client(target)


def ensure_qualification_type(client, ledger, target: Target, study_name: str, key: str, name: str,
                              **fields) -> str:
    """The qualification type ``name`` of this study on ``target``, created once (``fields``: the rest of
    CreateQualificationType's arguments); the ledger remembers it under ``key``, and a run that died
    before writing the ledger finds it again by its name, which is the study's own."""
    from botocore.exceptions import ClientError

    qid = ledger.get(target.endpoint, study_name, key)
    if qid:
        return qid
    with api_errors(target, "CreateQualificationType"):
        try:
            qid = client.create_qualification_type(Name=name, QualificationTypeStatus="Active",
                                                   **fields)["QualificationType"]["QualificationTypeId"]
        except ClientError:
            found = client.list_qualification_types(Query=name, MustBeRequestable=False,
                                                    MustBeOwnedByCaller=True, MaxResults=100)
            ids = [t["QualificationTypeId"] for t in found.get("QualificationTypes", []) if t["Name"] == name]
            if not ids:
                raise
            qid = ids[0]
    ledger.put(target.endpoint, study_name, key, qid)
    return qid
