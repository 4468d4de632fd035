"""Verbs of the human-study stage: build-study, preview-study, publish-hits, collect, approve,
reject, expire, import-batch, export-batch."""

from __future__ import annotations

import argparse
import os
from pathlib import Path

from mturk import client as mclient
from regnet.commands.study_design import add_study_design_args, csv_list, design_from_args
from regnet.errors import UserError
from regnet.tables import read_table


def _add_target(p: argparse.ArgumentParser, default_note: str) -> None:
    g = p.add_mutually_exclusive_group()
    g.add_argument("--sandbox", action="store_true", help=f"the MTurk sandbox ({default_note})")
    g.add_argument("--production", action="store_true", help="real MTurk (spends money)")
    g.add_argument("--endpoint-url", metavar="URL",
                   help="any server speaking the MTurk API, e.g. our eval_server (also: AWS_ENDPOINT_URL_MTURK)")


def _target_or_none(args) -> mclient.Target | None:
    if args.sandbox or args.production or args.endpoint_url:
        return mclient.resolve_target(args.sandbox, args.production, args.endpoint_url)
    return None


def _qc_args(p: argparse.ArgumentParser) -> None:
    from mturk.qc import add_qc_flags

    p.add_argument("--votes", help="votes table (default DIR/votes.csv, as collect writes it)")
    add_qc_flags(p)  # one rule set with `report`; decisions go to qc_decisions.csv beside the votes
    p.add_argument("--dry-run", action="store_true", help="list what would be done, send nothing")


def _prolific_review_args(p: argparse.ArgumentParser) -> None:
    g = p.add_argument_group("Prolific")
    g.add_argument("--prolific", action="store_true",
                   help="also approve/reject the participants' Prolific submissions (paying or not) from the same "
                   "QC decisions: a participant with any failed assignment is rejected")
    g.add_argument("--category", default="FAILED_CHECK", help="Prolific's rejection category (default FAILED_CHECK)")
    g.add_argument("--message", help="rejection message sent to the participant (at least 100 characters)")


def register(sub) -> None:
    p = sub.add_parser("build-study", help="make a human study (trials, HITs, media) from clip manifests",
                       description="Paired comparisons (missing/redundant/mismatched), real-or-fake and MOS "
                       "trials with catch and gold trials, packed into HITs; deterministic from --seed.")
    p.add_argument("--clips", nargs="+", required=True, metavar="CLIPS_CSV", help="clips.csv of each system")
    p.add_argument("--out", required=True, metavar="DIR", help="study folder to write")
    add_study_design_args(p)
    p.set_defaults(func=run_build)

    p = sub.add_parser("preview-study", help="write a study's HIT pages to a folder to look at",
                       description="Open the pages in a browser: without ?assignmentId=... they show in "
                       "preview mode (answers disabled), as MTurk shows them before a worker accepts.")
    p.add_argument("--study", required=True, metavar="DIR")
    p.add_argument("--out", help="folder for the pages (default DIR/hits)")
    p.add_argument("--media-base-url", help="URL prefix of the media (default: the study's media folder, relative)")
    p.set_defaults(func=run_preview)

    p = sub.add_parser("publish-hits", help="create a study's HITs on MTurk or an MTurk-API server",
                       description="Idempotent: every HIT has a deterministic UniqueRequestToken and a ledger "
                       "row (DIR/ledger.sqlite); a re-run creates only what is missing.")
    p.add_argument("--study", required=True, metavar="DIR")
    _add_target(p, "default")
    p.add_argument("--dry-run", action="store_true", help="print the plan and the cost; send nothing")
    p.add_argument("--yes-spend-money", action="store_true", help="required with --production")
    p.add_argument("--max-cost", metavar="USD", help="required with --production: refuse above this amount")
    p.add_argument("--media-base-url", metavar="URL", help="where DIR/media is served: media URLs become URL/<name>")
    p.add_argument("--s3-bucket", metavar="BUCKET", help="upload DIR/media to this S3 bucket and use its URLs")
    p.add_argument("--s3-prefix", help="key prefix in the bucket (default regnet-bench/<study uid>)")
    p.add_argument("--no-system-quals", action="store_true",
                   help="omit MTurk's approval-rate, HITs-approved and locale qualifications (lab servers)")
    p.add_argument("--min-approval-rate", type=int, help="percent (default 95)")
    p.add_argument("--min-hits-approved", type=int, help="default 1000")
    p.add_argument("--locale", help="comma list of countries, e.g. US,GB (default US; 'any' drops it)")
    p.add_argument("--approval-rate-qual-id", help="qualification type id for the approval rate")
    p.add_argument("--hits-approved-qual-id", help="qualification type id for the number of HITs approved")
    p.add_argument("--locale-qual-id", help="qualification type id for the locale")
    p.add_argument("--exclude-qualification", action="append", default=[], metavar="QUAL_ID",
                   help="keep out workers holding this qualification (DoesNotExist; repeatable)")
    p.add_argument("--exclude-participants-of", action="append", default=[], metavar="STUDY_DIR",
                   help="keep out workers of an earlier study published to the same endpoint (repeatable)")
    p.add_argument("--no-participant-qual", action="store_true",
                   help="do not create this study's participant qualification")
    g = p.add_argument_group("Prolific (README: Recruiting on Prolific; token from PROLIFIC_API_TOKEN)")
    g.add_argument("--prolific", action="store_true",
                   help="create the Prolific study that sends participants to the rating server (a draft; "
                   "published only with --production --yes-spend-money --max-cost)")
    g.add_argument("--public-url", metavar="URL", help="the rating server's address as participants reach it")
    g.add_argument("--hits-per-participant", type=int, default=1,
                   help="HITs each participant does (default 1: places = HITs x assignments)")
    g.add_argument("--estimated-minutes", type=int, help="Prolific's estimated completion time (default: a minute "
                   "per trial plus 3 for screening)")
    p.set_defaults(func=run_publish)

    p = sub.add_parser("collect", help="fetch submitted assignments into the votes table",
                       description="Paginated ListAssignmentsForHIT for every HIT in the ledger; re-running adds "
                       "only new assignments. Workers seen get the study's participant qualification.")
    p.add_argument("--study", required=True, metavar="DIR")
    _add_target(p, "default: every endpoint the ledger lists")
    p.add_argument("--out", help="votes table (default DIR/votes.csv; .parquet works too)")
    p.add_argument("--prolific", action="store_true", help="also against the study's Prolific submissions (matched with the server's raters)")
    p.set_defaults(func=run_collect)

    p = sub.add_parser("sync-exposure", help="grant each rater group's qualification to its workers (MTurk)",
                       description="MTurk has no grant-on-accept: this grants a group's exposure qualification "
                       "(AssociateQualificationWithWorker) to the worker of every submitted assignment of the "
                       "group's HITs, closing the other groups' HITs to them. collect runs it too; run it often "
                       "while a study is live (accepted-but-unsubmitted work is invisible to the API).")
    p.add_argument("--study", required=True, metavar="DIR")
    _add_target(p, "default: every endpoint the ledger lists")
    p.set_defaults(func=run_sync_exposure)

    p = sub.add_parser("approve", help="approve submitted assignments that pass QC")
    p.add_argument("--study", required=True, metavar="DIR")
    _qc_args(p)
    p.add_argument("--all", action="store_true", help="approve failing assignments too")
    _prolific_review_args(p)
    p.set_defaults(func=run_review, action="approve")

    p = sub.add_parser("reject", help="reject submitted assignments that fail QC (with feedback)")
    p.add_argument("--study", required=True, metavar="DIR")
    _qc_args(p)
    _prolific_review_args(p)
    p.set_defaults(func=run_review, action="reject", all=False)

    p = sub.add_parser("expire", help="end a study's HITs now (submitted work can still be collected)")
    p.add_argument("--study", required=True, metavar="DIR")
    _add_target(p, "default: every endpoint the ledger lists")
    p.add_argument("--prolific", action="store_true", help="also against the study's Prolific study (stops it: no new participants)")
    p.set_defaults(func=run_expire)

    p = sub.add_parser("bonus", help="pay bonuses to a study's Prolific participants (spends money)",
                       description="Sets up and pays bonuses through Prolific's bulk bonus API. The total with "
                       "Prolific's fee and VAT is checked against --max-cost before anything is paid.")
    p.add_argument("--study", required=True, metavar="DIR")
    p.add_argument("--amounts", required=True, metavar="CSV", help="CSV with columns participant_id, amount (1.50)")
    p.add_argument("--yes-spend-money", action="store_true", help="required: bonuses are paid at once")
    p.add_argument("--max-cost", metavar="AMOUNT", help="required: refuse above this total")
    p.set_defaults(func=run_bonus)

    p = sub.add_parser("import-batch", help="MTurk batch-result CSV or Turkle export -> votes table")
    p.add_argument("csv", help="batch results CSV (Input.*/Answer.* columns)")
    p.add_argument("--study", metavar="DIR", help="study folder (default: trial data from the CSV's Input.trials)")
    p.add_argument("--out", help="votes table to write (default DIR/votes.csv with --study)")
    p.set_defaults(func=run_import)

    p = sub.add_parser("export-batch", help="votes table -> MTurk batch-result CSV (Approve/Reject from QC)")
    p.add_argument("--study", metavar="DIR", help="study folder (adds HIT settings; default votes DIR/votes.csv)")
    p.add_argument("--votes", help="votes table")
    p.add_argument("--out", required=True, help="CSV to write")
    p.set_defaults(func=run_export)


def run_build(args) -> int:
    from mturk.trials import build_screened_study

    opts, screening_opts = design_from_args(args)
    study, lines = build_screened_study(args.clips, args.out, opts, screening_opts)
    for line in lines:
        print(line)
    return 0


def run_sync_exposure(args) -> int:
    from mturk.exposure import sync_exposure
    from mturk.ledger import Ledger
    from mturk.study import load_study

    study = load_study(args.study)
    if not study.exposure:
        print("this study has no exposure design: nothing to grant")
        return 0
    with Ledger.for_study(args.study) as ledger:
        res = sync_exposure(study, ledger, mclient.client_for, _target_or_none(args))
    print(f"exposure: {res.granted} worker grant(s) made, {res.already} already held, over {res.hits} group HIT(s)")
    return 0


def run_preview(args) -> int:
    from mturk.render import write_pages
    from mturk.study import load_study

    study = load_study(args.study)
    out = Path(args.out) if args.out else Path(args.study) / "hits"
    base = args.media_base_url
    if base is None:
        base = os.path.relpath(Path(args.study).resolve() / "media", out.resolve())
    paths = write_pages(study, out, base)
    for p in paths:
        print(p)
    return 0


def _apply_qual_args(study, args) -> list[str]:
    q = study.qualifications
    if args.no_system_quals:
        q.use_system = False
    for attr in ("min_approval_rate", "min_hits_approved", "approval_rate_qual_id", "hits_approved_qual_id",
                 "locale_qual_id"):
        if getattr(args, attr) is not None:
            setattr(q, attr, getattr(args, attr))
    if args.locale is not None:
        q.locales = [] if args.locale.strip().lower() == "any" else csv_list(args.locale)
    if args.no_participant_qual:
        q.mark_participants = False
    return list(args.exclude_qualification)


def run_publish(args) -> int:
    if args.prolific:
        return run_publish_prolific(args)
    from mturk.publish import PublishOptions, publish_study
    from mturk.study import load_study

    study = load_study(args.study)
    target = mclient.resolve_target(args.sandbox, args.production, args.endpoint_url)
    opts = PublishOptions(media_base_url=args.media_base_url, s3_bucket=args.s3_bucket, s3_prefix=args.s3_prefix,
                          exclude_quals=_apply_qual_args(study, args),
                          exclude_participants_of=list(args.exclude_participants_of),
                          yes_spend_money=args.yes_spend_money, max_cost=args.max_cost, dry_run=args.dry_run)
    res = publish_study(study, args.study, target, opts, mclient.client_for, _s3_client, say=print)
    if res is None:
        return 0
    if target.label == "sandbox":
        print(f"{mclient.SANDBOX_WORKER_URL}/projects/{res.hit_type_id}/tasks")
    elif target.label == "production":
        print(f"https://worker.mturk.com/projects/{res.hit_type_id}/tasks")
    return 0


def _s3_client(target: mclient.Target):
    import boto3

    with mclient.api_errors(target, "S3 client set-up"):
        return boto3.session.Session().client("s3")


def run_collect(args) -> int:
    from mturk import screening
    from mturk.collect import collect
    from mturk.ledger import Ledger
    from mturk.study import load_study

    study = load_study(args.study)
    out = Path(args.out) if args.out else Path(args.study) / "votes.csv"
    with Ledger.for_study(args.study) as ledger:
        res = collect(study, ledger, mclient.client_for, out, _target_or_none(args))
        screened = screening.fetch(study, ledger, mclient.client_for, out.parent / screening.SCREENING_CSV)
    print(f"{res.hits} HIT(s): {res.seen_assignments} assignment(s) seen, {res.new_assignments} new, "
          f"{res.new_votes} vote(s) added -> {out}")
    if screening.of(study).enabled:
        print(f"{screened} worker(s) took the screening test -> {out.parent / screening.SCREENING_CSV}")
    if res.marked_workers:
        print(f"{res.marked_workers} worker(s) given the participant qualification")
    if args.prolific:
        _reconcile_prolific(study, out)
    return 0


def run_review(args) -> int:
    from mturk.collect import apply_review, review_plan
    from mturk.ledger import Ledger
    from mturk.qc import QCConfig, config_from_flags, decide, write_decisions
    from mturk.study import load_study
    from mturk.votes import read_votes

    study = load_study(args.study)
    votes_path = Path(args.votes) if args.votes else Path(args.study) / "votes.csv"
    votes = read_votes(votes_path)
    rules = config_from_flags(args, QCConfig.for_study(args.study))
    if not args.dry_run:  # `report` reads the decisions acted on (and their rules) from here
        write_decisions(decide(votes, rules, study), votes_path)
    with Ledger.for_study(args.study) as ledger:
        plan = review_plan(study, ledger, votes, rules, approve_all=args.all)
        todo = plan.approve if args.action == "approve" else plan.reject
        for v in todo:
            print(f"{args.action} {v.assignment_id} worker {v.worker_id}: "
                  f"{'; '.join(v.reasons) if v.reasons else 'passed QC'}")
        if args.dry_run:
            print(f"dry run: {len(todo)} assignment(s) would be {_past(args.action)}; nothing sent")
            return 0
        n = apply_review(todo, args.action, ledger, mclient.client_for)
        if args.prolific:
            _review_prolific(study, ledger, plan, args)
    other = len(plan.reject if args.action == "approve" else plan.approve)
    print(f"{n} assignment(s) {_past(args.action)}; {other} left for "
          f"{'reject' if args.action == 'approve' else 'approve'}; {plan.already_reviewed} already reviewed")
    return 0


def _past(action: str) -> str:
    return {"approve": "approved", "reject": "rejected"}[action]


def run_expire(args) -> int:
    from mturk.collect import expire
    from mturk.ledger import Ledger
    from mturk.study import load_study

    study = load_study(args.study)
    with Ledger.for_study(args.study) as ledger:
        n = expire(study, ledger, mclient.client_for, _target_or_none(args))
        if args.prolific:
            from mturk import prolific, prolific_study

            client = prolific.ProlificClient(prolific.token_from_env())
            pid = prolific_study.study_id_of(study, ledger)
            out = client.transition_study(pid, "STOP")
            print(f"Prolific study {pid}: {out.get('status', 'stopped')}")
    print(f"{n} HIT(s) expired; run collect for work already submitted")
    return 0


def run_import(args) -> int:
    from mturk.batch_csv import votes_from_batch_csv
    from mturk.votes import write_votes

    if not args.out and not args.study:
        raise UserError("--out: where to write the votes (or give --study to write DIR/votes.csv)")
    votes = votes_from_batch_csv(args.csv, args.study)
    out = Path(args.out) if args.out else Path(args.study) / "votes.csv"
    write_votes(out, votes)
    print(f"{votes['assignment_id'].nunique()} assignment(s), {len(votes)} vote(s) -> {out}")
    return 0


def run_export(args) -> int:
    from mturk.batch_csv import export_batch_csv
    from mturk.votes import read_votes

    if not args.votes and not args.study:
        raise UserError("--votes: which votes table to export (or --study DIR for DIR/votes.csv)")
    votes = read_votes(args.votes or Path(args.study) / "votes.csv")
    out = export_batch_csv(votes, args.out, args.study)
    print(out)
    return 0


# ---- Prolific -------------------------------------------------------------------------------------
def run_publish_prolific(args) -> int:
    from decimal import Decimal, InvalidOperation

    from mturk import prolific, prolific_study
    from mturk.ledger import Ledger
    from mturk.study import load_study

    if not args.public_url:
        raise UserError("--public-url: where Prolific participants reach the rating server (e.g. https://lab.example.org)")
    max_cost = None
    if args.max_cost is not None:
        try:
            max_cost = Decimal(args.max_cost)
        except InvalidOperation:
            raise UserError(f"--max-cost: {args.max_cost!r} is not an amount") from None
    study = load_study(args.study)
    plan = prolific_study.plan_for(study, args.public_url, hits_per_participant=args.hits_per_participant,
                                   minutes=args.estimated_minutes)
    client = prolific.ProlificClient(prolific.token_from_env())
    if args.dry_run:
        for line in prolific_study.cost_lines(plan, client.study_cost(plan.reward_cents, plan.places)):
            print(line)
        print("dry run: nothing created")
        return 0
    with Ledger.for_study(args.study) as ledger:
        res = prolific_study.publish(study, ledger, client, plan, production=args.production,
                                     yes_spend_money=args.yes_spend_money, max_cost=max_cost)
    for line in prolific_study.cost_lines(plan, res.total_cost_cents):
        print(line)
    recruit = Path(args.study) / "prolific.json"
    prolific_study.write_recruit_config(recruit, plan)
    print(f"Prolific study {res.prolific_id}: {res.status}" + (" (created now)" if res.created else "")
          + (" - published" if res.published else ""))
    print(f"serve with: regnet-bench serve ... --recruit-config {recruit}")
    if res.status == "UNPUBLISHED":
        print("a draft: nothing is spent until you publish it with --production --yes-spend-money --max-cost AMOUNT")
    return 0


def _prolific_submissions(study, ledger):
    from mturk import prolific, prolific_study

    client = prolific.ProlificClient(prolific.token_from_env())
    pid = prolific_study.study_id_of(study, ledger)
    return client, list(client.submissions(pid))


def _reconcile_prolific(study, votes_path: Path) -> None:
    from mturk import prolific_study
    from mturk.ledger import Ledger
    from mturk.votes import read_votes

    workers = set(read_votes(votes_path)["worker_id"]) if votes_path.is_file() else set()
    with Ledger.for_study(study.directory) as ledger:
        _, subs = _prolific_submissions(study, ledger)
    codes = prolific_study.completion_codes(study)
    for line in prolific_study.reconcile(subs, workers, codes.screened_out).lines():
        print(line)


def _review_prolific(study, ledger, plan, args) -> None:
    from mturk import prolific_study

    client, subs = _prolific_submissions(study, ledger)
    decisions = prolific_study.participant_decisions(plan.approve, plan.reject, ledger.assignments())
    if args.action == "approve":
        decisions = {k: v for k, v in decisions.items() if v[0]}
    else:
        decisions = {k: v for k, v in decisions.items() if not v[0]}
    message = args.message or ("Thank you for taking part. We could not accept this submission because it did not "
                               "pass the study's attention and listening checks, which every rater was told about "
                               "in the instructions.")
    out = prolific_study.review(client, subs, decisions, message=message, category=args.category,
                                dry_run=args.dry_run)
    print(f"Prolific: {len(out.approved)} approved, {len(out.rejected)} rejected, {len(out.already)} already reviewed, "
          f"{len(out.no_decision)} awaiting review with no QC decision yet")


def run_bonus(args) -> int:
    from decimal import Decimal, InvalidOperation


    from mturk import prolific, prolific_study
    from mturk.ledger import Ledger
    from mturk.study import load_study

    df = read_table(args.amounts, "one row per participant to pay", required=("participant_id", "amount"),
                    dtype=str, keep_default_na=False, flag="--amounts")
    try:
        max_cost = Decimal(args.max_cost) if args.max_cost is not None else None
    except InvalidOperation:
        raise UserError(f"--max-cost: {args.max_cost!r} is not an amount") from None
    study = load_study(args.study)
    client = prolific.ProlificClient(prolific.token_from_env())
    with Ledger.for_study(args.study) as ledger:
        pid = prolific_study.study_id_of(study, ledger)
    amounts = dict(zip(df["participant_id"], df["amount"]))
    out = prolific_study.bonuses(client, pid, amounts, yes_spend_money=args.yes_spend_money, max_cost=max_cost)
    print(f"Prolific: {len(amounts)} bonus(es) paid, total {Decimal(str(out.get('total_amount', 0))) / 100:.2f} "
          "with Prolific's fee and VAT")
    return 0
