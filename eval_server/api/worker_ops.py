"""Worker blocks, messages to workers, notification settings and the account balance."""

from __future__ import annotations

import json

from sqlalchemy import exists, select

from eval_server.api.common import ApiContext, dumps, now, operation, page_args, page_out, run_page
from eval_server.db import Assignment, Event, HITType, Notification, Qualification, QualificationRequest, WorkerBlock
from eval_server.errors import ApiError


@operation("CreateWorkerBlock")
def create_block(ctx: ApiContext, p: dict) -> dict:
    with ctx.db.write() as s:
        b = s.get(WorkerBlock, p["WorkerId"], with_for_update=True)
        if b is None:
            s.add(WorkerBlock(worker_id=p["WorkerId"], reason=p["Reason"], created_at=now()))
        else:
            b.reason = p["Reason"]
    return {}


@operation("DeleteWorkerBlock")
def delete_block(ctx: ApiContext, p: dict) -> dict:
    # Unblocking a worker who is not blocked succeeds, as on MTurk.
    with ctx.db.write() as s:
        b = s.get(WorkerBlock, p["WorkerId"])
        if b is not None:
            s.delete(b)
    return {}


@operation("ListWorkerBlocks")
def list_blocks(ctx: ApiContext, p: dict) -> dict:
    with ctx.db.read() as s:
        offset, limit = page_args(p)
        rows, token = run_page(s, select(WorkerBlock).order_by(WorkerBlock.created_at, WorkerBlock.worker_id),
                               offset, limit)
        return page_out([{"WorkerId": b.worker_id, "Reason": b.reason} for b in rows], token, "WorkerBlocks")


def _known_worker(s, worker_id: str) -> bool:
    return any(s.scalar(select(exists().where(col == worker_id))) for col in (
        Assignment.worker_id, Qualification.worker_id, QualificationRequest.worker_id))


@operation("NotifyWorkers")
def notify_workers(ctx: ApiContext, p: dict) -> dict:
    """Stored and shown to each worker on their page; MTurk only messages workers who worked for you."""
    if len(p["WorkerIds"]) > 100:
        raise ApiError("NotifyWorkers takes at most 100 WorkerIds.")
    failures = []
    with ctx.db.write() as s:
        for w in dict.fromkeys(p["WorkerIds"]):
            if not _known_worker(s, w):
                failures.append({"NotifyWorkersFailureCode": "HardFailure", "WorkerId": w,
                                 "NotifyWorkersFailureMessage": f"Worker {w} has not worked for you."})
                continue
            s.add(Notification(worker_id=w, subject=p["Subject"], message=p["MessageText"], created_at=now()))
    return {"NotifyWorkersFailureStatuses": failures}


@operation("GetAccountBalance")
def account_balance(ctx: ApiContext, p: dict) -> dict:
    # There is no money on a local server: the configured figure (--account-balance) is reported.
    return {"AvailableBalance": ctx.config.account_balance, "OnHoldBalance": "0.00"}


def _check_notification(spec: dict) -> None:
    if spec["Version"] != "2006-05-05":
        raise ApiError("Notification Version must be 2006-05-05.")
    if spec["Transport"] == "Email" and "@" not in spec["Destination"]:
        raise ApiError("An Email notification needs an email address as Destination.")


@operation("UpdateNotificationSettings")
def update_notification_settings(ctx: ApiContext, p: dict) -> dict:
    """Stored per HIT type; nothing is ever sent off this machine (documented)."""
    with ctx.db.write() as s:
        ht = s.get(HITType, p["HITTypeId"], with_for_update=True)
        if ht is None:
            raise ApiError(f"HITType {p['HITTypeId']} does not exist.", "AWS.MechanicalTurk.HITTypeDoesNotExist")
        if p.get("Notification") is not None:
            _check_notification(p["Notification"])
            ht.notification = dumps(p["Notification"])
        if "Active" in p:
            if ht.notification is None and p["Active"]:
                raise ApiError(f"HITType {ht.id} has no notification specification to activate.")
            ht.notification_active = p["Active"]
        elif p.get("Notification") is not None:
            ht.notification_active = True
    return {}


@operation("SendTestEventNotification")
def send_test_event(ctx: ApiContext, p: dict) -> dict:
    _check_notification(p["Notification"])
    with ctx.db.write() as s:
        s.add(Event(hit_type_id=None, event_type=p["TestEventType"],
                    data=json.dumps({"Notification": p["Notification"], "test": True}), created_at=now()))
    return {}
