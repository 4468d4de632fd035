"""Publish a study's HITs through the MTurk API: a HIT type, one HIT per planned HIT, each with a
deterministic UniqueRequestToken and a ledger row written before the call, so a re-run after a
crash creates only what is missing."""

from __future__ import annotations

import logging
import re
from dataclasses import dataclass, field
from decimal import ROUND_HALF_UP, Decimal
from pathlib import Path

from mturk import screening
from mturk.client import Target, api_errors, ensure_qualification_type
from mturk.ledger import Ledger
from mturk.render import render_hit
from mturk.study import Qualifications, Study
from regnet.errors import UserError
from regnet.mturk_xml import html_question

log = logging.getLogger(__name__)

CENT = Decimal("0.01")
HIT_ID_RE = re.compile(r"\b[A-Z0-9]{30}\b")
HIT_WITH_ID_RE = re.compile(r"HIT with ID\W*([A-Za-z0-9_-]+)")


@dataclass
class CostEstimate:
    reward: Decimal  # per assignment
    fee: Decimal  # MTurk's commission per assignment
    assignments: int  # per HIT
    hits: int
    total: Decimal

    @property
    def per_hit(self) -> Decimal:
        return (self.reward + self.fee) * self.assignments


def fee_rate(assignments: int) -> Decimal:
    """MTurk's commission on the reward: 20%, 20% more for HITs with 10 or more assignments."""
    return Decimal("0.40") if assignments >= 10 else Decimal("0.20")


def estimate_cost(reward: str, assignments: int, hits: int) -> CostEstimate:
    """MTurk pricing: `fee_rate` of the reward, rounded to the cent and at least $0.01 per
    assignment. The one cost rule: publish-hits' spend guard and the plan verb both use it."""
    r = Decimal(reward)
    fee = max(CENT, (r * fee_rate(assignments)).quantize(CENT, rounding=ROUND_HALF_UP))
    return CostEstimate(r, fee, assignments, hits, (r + fee) * assignments * hits)


def check_spend_guard(target: Target, cost: CostEstimate, yes_spend_money: bool, max_cost: str | None) -> None:
    """Production spends real money: refuse unless both guard flags are given and cover the cost."""
    if not target.is_production:
        return
    if not yes_spend_money:
        raise UserError(f"--production: this spends ${cost.total:.2f}; add --yes-spend-money and "
                        f"--max-cost {cost.total:.2f} (or more) to go ahead")
    if max_cost is None:
        raise UserError(f"--max-cost: required with --production; the estimate is ${cost.total:.2f}")
    try:
        cap = Decimal(str(max_cost).lstrip("$"))
    except ArithmeticError:
        raise UserError(f"--max-cost: {max_cost!r} is not an amount in US dollars") from None
    if cap < cost.total:
        raise UserError(f"--max-cost: ${cap:.2f} does not cover the estimate of ${cost.total:.2f}")


def qualification_requirements(q: Qualifications, exclude: list[str] | None = None) -> list[dict]:
    reqs: list[dict] = []
    if q.use_system:
        reqs.append({"QualificationTypeId": q.approval_rate_qual_id, "Comparator": "GreaterThanOrEqualTo",
                     "IntegerValues": [int(q.min_approval_rate)], "ActionsGuarded": "DiscoverPreviewAndAccept"})
        reqs.append({"QualificationTypeId": q.hits_approved_qual_id, "Comparator": "GreaterThanOrEqualTo",
                     "IntegerValues": [int(q.min_hits_approved)], "ActionsGuarded": "DiscoverPreviewAndAccept"})
        if q.locales:
            reqs.append({"QualificationTypeId": q.locale_qual_id, "Comparator": "In",
                         "LocaleValues": [_locale(x) for x in q.locales], "ActionsGuarded": "DiscoverPreviewAndAccept"})
    for qid in dict.fromkeys(list(q.exclude_qual_ids) + list(exclude or [])):
        reqs.append({"QualificationTypeId": qid, "Comparator": "DoesNotExist",
                     "ActionsGuarded": "DiscoverPreviewAndAccept"})
    return reqs


def _locale(text: str) -> dict:
    """'US' or 'US-NY' (country, subdivision) as MTurk's Locale structure."""
    m = re.fullmatch(r"([A-Z]{2})(?:-([A-Z0-9]{1,3}))?", text.strip().upper())
    if not m:
        raise UserError(f"--locale: {text!r} is not an ISO 3166 country code like US or US-NY")
    return {"Country": m.group(1), **({"Subdivision": m.group(2)} if m.group(2) else {})}


def hit_type_request(study: Study, requirements: list[dict]) -> dict:
    return {"AutoApprovalDelayInSeconds": study.auto_approval_delay_s,
            "AssignmentDurationInSeconds": study.assignment_duration_s,
            "Reward": study.reward, "Title": study.title, "Keywords": study.keywords,
            "Description": study.description, "QualificationRequirements": requirements}


def request_token(study: Study, local_hit: str) -> str:
    # The study uid is a hash of the study's content, so a rebuilt (changed) study never collides
    # with an old one, while a re-run of the same study reuses its tokens. MTurk allows 64 chars.
    return f"rb-{study.uid}-{local_hit}"[:64]


def participant_qual_name(study: Study) -> str:
    return f"regnet-bench participants of {study.name} ({study.uid})"


@dataclass
class PublishResult:
    hit_type_id: str
    created: list[str] = field(default_factory=list)  # MTurk HITIds created by this run
    skipped: int = 0  # already in the ledger
    participant_qual_id: str | None = None
    group_hit_types: dict[tuple[str, int], str] = field(default_factory=dict)  # exposure groups


def resolve_media_base(target: Target, media_base_url: str | None, s3_base: str | None) -> str:
    if s3_base:
        return s3_base
    if media_base_url:
        return media_base_url
    if target.label == "custom":
        # Our local server serves DIR/media at /media on the same origin as its API.
        return target.endpoint + "/media"
    raise UserError("--media-base-url: MTurk workers load the clips by URL; give --media-base-url URL "
                    "(where DIR/media is served) or --s3-bucket BUCKET")


def render_all(study: Study, base: str) -> dict[str, str]:
    """Every HIT's Question XML, all size-checked before anything is sent."""
    return {h.local_id: html_question(render_hit(study, h, base)) for h in study.hits}


def remaining_hits(study: Study, ledger: Ledger, target: Target) -> list[str]:
    return [h.local_id for h in study.hits
            if not ((row := ledger.hit_by_token(target.endpoint, request_token(study, h.local_id)))
                    and row.status != "pending")]


def ensure_participant_qual(client, study: Study, ledger: Ledger, target: Target) -> str:
    return _ensure_qual(client, ledger, target, study.name, "participant_qual_id", participant_qual_name(study),
                        "Took part in a regnet-bench listening study; later studies may exclude these workers.")


def ensure_exposure_quals(client, study: Study, ledger: Ledger, target: Target) -> dict[tuple[str, int], str]:
    """One qualification type per (protocol, rater group) of the study's exposure design."""
    from mturk import exposure

    out = {}
    for protocol, d in exposure.designs_of(study).items():
        for g in range(d.n_groups):
            out[(protocol, g)] = _ensure_qual(
                client, ledger, target, study.name, exposure.ledger_key(protocol, g),
                exposure.qual_name(study, protocol, g),
                f"Rater group {g} of a regnet-bench {protocol} study: holders see only this group's HITs.")
    return out


def _ensure_qual(client, ledger: Ledger, target: Target, study_name: str, key: str, name: str,
                 description: str) -> str:
    return ensure_qualification_type(client, ledger, target, study_name, key, name, Keywords="regnet-bench",
                                     Description=description)


def publish(study: Study, client, target: Target, ledger: Ledger, questions: dict[str, str],
            exclude_qual_ids: list[str] | None = None, media_base: str = "") -> PublishResult:
    """Create the HIT type and every HIT not yet created on ``target``. ``questions``: from
    `render_all`. Stops at the first failure with a one-line error; the ledger tells what exists.
    ``media_base``: where DIR/media is served (the screening test's sounds)."""
    qual_id = ensure_participant_qual(client, study, ledger, target) if study.qualifications.mark_participants else None
    reqs = qualification_requirements(study.qualifications, exclude_qual_ids)
    scr = screening.of(study)
    if scr.enabled:  # consent + calibration + headphone check, once per endpoint (ledger)
        reqs.append(screening.requirement(screening.ensure_qual(client, study, ledger, target, media_base), scr))
    with api_errors(target, "CreateHITType"):
        hit_type_id = client.create_hit_type(**hit_type_request(study, reqs))["HITTypeId"]
    ledger.put(target.endpoint, study.name, "hit_type_id", hit_type_id)
    # Exposure control: each rater group's HITs get their own HIT type, whose requirements keep
    # out holders of the other groups' qualifications (mturk/exposure.py).
    from mturk import exposure

    group_quals = ensure_exposure_quals(client, study, ledger, target)
    group_types: dict[tuple[str, int], str] = {}
    for (protocol, g) in group_quals:
        with api_errors(target, "CreateHITType"):
            group_types[(protocol, g)] = client.create_hit_type(**hit_type_request(
                study, reqs + exposure.group_requirements(group_quals, protocol, g)))["HITTypeId"]
        ledger.put(target.endpoint, study.name, f"hit_type_id:{protocol}:{g}", group_types[(protocol, g)])
    result = PublishResult(hit_type_id=hit_type_id, participant_qual_id=qual_id, group_hit_types=group_types)
    for hit in study.hits:
        token = request_token(study, hit.local_id)
        row = ledger.hit_by_token(target.endpoint, token)
        if row and row.status != "pending":
            result.skipped += 1
            continue
        key = (hit.kind, hit.group)
        if hit.group is not None and key not in group_types:
            raise UserError(f"{study.directory}/study.json: HIT {hit.local_id} is in {hit.kind} group {hit.group}, "
                            "which the study's exposure design does not list")
        type_id = group_types[key] if hit.group is not None else hit_type_id
        ledger.mark_pending(study.name, hit.local_id, token, target.endpoint, type_id)
        try:
            hit_id = _create_one(client, target, type_id, study, questions[hit.local_id], token,
                                 exposure.annotation(token, group_quals.get(key)))
        except UserError as e:
            n_done = len(ledger.hits(study.name, target.endpoint, "created"))
            raise UserError(f"{e} -- {n_done} of {len(study.hits)} HITs exist on {target.endpoint} "
                            f"(ledger {ledger.path}); run publish-hits again to create the rest") from None
        ledger.mark_created(target.endpoint, token, hit_id, type_id)
        result.created.append(hit_id)
        log.info("HIT %s -> %s", hit.local_id, hit_id)
    return result


def _create_one(client, target: Target, hit_type_id: str, study: Study, question: str, token: str,
                annotation: str | None = None) -> str:
    from botocore.exceptions import ClientError

    with api_errors(target, "CreateHITWithHITType"):
        try:
            resp = client.create_hit_with_hit_type(
                HITTypeId=hit_type_id, MaxAssignments=study.max_assignments, LifetimeInSeconds=study.lifetime_s,
                Question=question, RequesterAnnotation=annotation or token, UniqueRequestToken=token)
            return resp["HIT"]["HITId"]
        except ClientError as e:
            # Same token used before (a run that died before the ledger update): MTurk answers
            # with an error naming the existing HIT instead of creating a second one.
            msg = e.response.get("Error", {}).get("Message", "")
            turk_code = str(e.response.get("TurkErrorCode", ""))
            if "HitAlreadyExists" not in turk_code + msg and "already" not in msg.lower():
                raise
            m = HIT_WITH_ID_RE.search(msg) or HIT_ID_RE.search(msg)
            if m:
                return m.group(m.lastindex or 0)
            existing = _find_by_annotation(client, token)
            if existing:
                return existing
            raise


def _find_by_annotation(client, token: str) -> str | None:
    from mturk.exposure import token_of

    kwargs: dict = {"MaxResults": 100}
    while True:
        page = client.list_hits(**kwargs)
        for h in page.get("HITs", []):
            if token_of(h.get("RequesterAnnotation")) == token:
                return h["HITId"]
        if not page.get("NextToken") or not page.get("HITs"):
            return None
        kwargs["NextToken"] = page["NextToken"]


def upload_media(study: Study, s3, bucket: str, prefix: str, target_label: str = "s3") -> str:
    """Put DIR/media/* into ``s3://bucket/prefix/`` (skipping objects already there with the same
    size) and return their public base URL. Browsers play <video src> across origins without CORS;
    the bucket needs public read on the prefix (a bucket policy), since MTurk workers are anonymous."""
    from botocore.exceptions import BotoCoreError, ClientError

    prefix = prefix.strip("/")
    media_dir = Path(study.directory) / "media"
    names = sorted({m for t in study.trials for m in t.media_names}
                   | {m for h in study.hits for m in (h.ref1_media, h.ref5_media) if m}
                   | set(screening.of(study).media_names))
    n_up = 0
    for name in names:
        path = media_dir / name
        if not path.is_file():
            raise UserError(f"{path}: media file missing from the study folder (rebuild the study)")
        key = f"{prefix}/{name}" if prefix else name
        try:
            try:
                head = s3.head_object(Bucket=bucket, Key=key)
                if head.get("ContentLength") == path.stat().st_size:
                    continue
            except ClientError as e:
                if e.response.get("Error", {}).get("Code") not in ("404", "NoSuchKey", "NotFound"):
                    raise
            with open(path, "rb") as f:
                s3.put_object(Bucket=bucket, Key=key, Body=f,
                              ContentType="audio/wav" if name.endswith(".wav") else "video/mp4")
            n_up += 1
        except (ClientError, BotoCoreError) as e:
            raise UserError(f"--s3-bucket {bucket}: upload of {name} failed ({str(e).splitlines()[0]})") from None
    log.info("s3: %d of %d media file(s) uploaded to s3://%s/%s (the bucket must allow public GET)",
             n_up, len(names), bucket, prefix)
    return f"https://{bucket}.s3.amazonaws.com" + (f"/{prefix}" if prefix else "")


@dataclass
class PublishOptions:
    """How `publish_study` sends a study: where the media are, what it may spend, whom it excludes."""
    media_base_url: str | None = None
    s3_bucket: str | None = None
    s3_prefix: str | None = None
    exclude_quals: list[str] = field(default_factory=list)  # qualification ids whose holders are kept out
    exclude_participants_of: list[str] = field(default_factory=list)  # other study folders
    yes_spend_money: bool = False
    max_cost: str | None = None
    dry_run: bool = False


def participant_quals_of(study_dirs: list[str | Path], target: Target) -> list[str]:
    """The participant qualification each of these (published) studies gave its raters on ``target``."""
    from mturk.study import load_study

    out = []
    for d in study_dirs:
        other = load_study(d)
        with Ledger.for_study(d) as led:
            qid = led.get(target.endpoint, other.name, "participant_qual_id")
        if not qid:
            raise UserError(f"--exclude-participants-of {d}: that study has no participant qualification "
                            f"on {target.endpoint}")
        out.append(qid)
    return out


def describe_requirements(study: Study, reqs: list[dict]) -> str:
    scr = screening.of(study)
    return ("; ".join(f"{r['QualificationTypeId']} {r['Comparator']} "
                      f"{r.get('IntegerValues') or r.get('LocaleValues') or ''}".strip() for r in reqs) or "none") \
        + ("; + this study's participant qualification" if study.qualifications.mark_participants else "") \
        + "".join(f"; exposure: {p} in {d['groups']} rater groups (one qualification each, granted on "
                  "accept; each group's HITs require the others' absent)" for p, d in study.exposure.items()) \
        + (f"; + screening test (value >= {scr.required_value})" if scr.enabled else "")


def publish_study(study: Study, study_dir: str | Path, target: Target, opts: PublishOptions, client_for,
                  s3_client_for=None, say=log.info) -> PublishResult | None:
    """The whole of `publish-hits`: the cost shown first and the spend guard, media on S3 or a URL,
    every page rendered and size-checked, then the HITs the ledger does not hold yet. ``say`` gets
    each line a requester should read before money moves. Returns None when nothing was sent."""
    exclude = list(opts.exclude_quals) + participant_quals_of(opts.exclude_participants_of, target)
    with Ledger.for_study(study_dir) as ledger:
        todo = remaining_hits(study, ledger, target)
        cost = estimate_cost(study.reward, study.max_assignments, len(todo))
        say(f"target: {target.label} ({target.endpoint})")
        say(f"HITs: {len(study.hits)} in the study, {len(todo)} to create; {study.max_assignments} assignment(s) "
            f"each at ${cost.reward:.2f} + ${cost.fee:.2f} MTurk fee")
        say(f"cost: {len(todo)} x {study.max_assignments} x ${cost.reward + cost.fee:.2f} = ${cost.total:.2f}")
        say("qualifications: " + describe_requirements(study, qualification_requirements(study.qualifications,
                                                                                         exclude)))
        check_spend_guard(target, cost, opts.yes_spend_money, opts.max_cost)
        if opts.s3_bucket and opts.media_base_url:
            raise UserError("--s3-bucket and --media-base-url: choose one")
        scr = screening.of(study)
        if opts.dry_run:
            base = opts.media_base_url or (f"https://{opts.s3_bucket}.s3.amazonaws.com/..." if opts.s3_bucket else
                                           resolve_media_base(target, None, None))
            render_all(study, base)  # size checks, so a dry run catches an oversized page
            if scr.enabled:  # and an unusable screening test (size, relative URLs for MTurk)
                screening.check_media_base(base, target.label)
                screening.question_form(scr, base)
            say(f"media: {base}/<name>")
            say("dry run: nothing sent")
            return None
        s3_base = None
        if opts.s3_bucket:
            s3_base = upload_media(study, s3_client_for(target), opts.s3_bucket,
                                   opts.s3_prefix or f"regnet-bench/{study.uid}")
        base = resolve_media_base(target, opts.media_base_url, s3_base)
        questions = render_all(study, base)
        say(f"media: {base}/<name>")
        if not todo:
            say("nothing to create: every HIT is in the ledger")
            return None
        res = publish(study, client_for(target), target, ledger, questions, exclude, media_base=base)
    say(f"created {len(res.created)} HIT(s), {res.skipped} already there; HIT type {res.hit_type_id}")
    return res
