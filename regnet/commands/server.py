"""CLI verbs of the local rating server: `serve`, `export-links` and `layout add`."""

from __future__ import annotations

import argparse
import csv
import logging
import os
import secrets
from pathlib import Path

from eval_server.config import ServerConfig
from eval_server.db import Database
from eval_server.ids import now
from eval_server.layouts import add_layout, placeholders
from regnet.errors import UserError

log = logging.getLogger(__name__)


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("serve", help="run the local rating server (MTurk requester API + worker pages)",
                       description="Run the local rating server: the MTurk requester API at POST / (point boto3's "
                       "endpoint_url or AWS_ENDPOINT_URL_MTURK at it), the worker pages at /worker, media at "
                       "/media/<name>, the admin page at /admin.")
    p.add_argument("--db", default="eval_server.sqlite",
                   help="SQLite file or SQLAlchemy URL, e.g. postgresql://user@host/db (default: %(default)s)")
    p.add_argument("--media", nargs="*", default=[], metavar="DIR", help="folders served under /media/")
    p.add_argument("--host", default="127.0.0.1", help="address to listen on (default: %(default)s)")
    p.add_argument("--port", type=int, default=8000, help="port (default: %(default)s; 0 picks a free one)")
    p.add_argument("--processes", type=int, default=None,
                   help="server processes sharing the socket and its connections evenly (default: with neither "
                        "flag, cores + 1 processes x 2 threads on SQLite and cores x 4 on PostgreSQL, at most 8 "
                        "processes, one process without fork: on 2 cores 3 x 2 and 2 x 4 were fastest, 1 x 8 "
                        "slowest; with --threads alone, 1)")
    p.add_argument("--threads", type=int, default=None,
                   help="request threads per process (default: as above; with --processes alone, 8 for one "
                        "process, else 2 on SQLite and 4 on PostgreSQL)")
    p.add_argument("--requester-key", default=os.environ.get("REGNET_REQUESTER_KEY", ""),
                   help="API access key (env REGNET_REQUESTER_KEY; generated once and stored if absent)")
    p.add_argument("--requester-secret", default=os.environ.get("REGNET_REQUESTER_SECRET", ""),
                   help="API secret key (env REGNET_REQUESTER_SECRET)")
    p.add_argument("--admin-token", default=os.environ.get("REGNET_ADMIN_TOKEN", ""),
                   help="token for /admin (env REGNET_ADMIN_TOKEN; generated once and stored if absent)")
    p.add_argument("--account-balance", default="10000.00", help="what GetAccountBalance reports (default: %(default)s)")
    p.add_argument("--completion-url", default="", help="where recruited raters are sent when no HITs are left")
    p.add_argument("--completion-code", default="", help="completion code shown to raters when no HITs are left")
    p.add_argument("--recruit-config", metavar="FILE",
                   help="a study's prolific.json (written by publish-hits --prolific): the links back to Prolific "
                   "for completed, failed screening and timed out, and the HITs each participant does")
    p.add_argument("--max-body-kb", type=int, default=2048, help="largest request body in KiB (default: %(default)s)")
    p.add_argument("--require-signed-links", action="store_true",
                   help="raters sign in only by their personal link (see export-links); default: open sign-in, "
                   "anyone may type or link in a worker id (a local lab)")
    p.add_argument("--submit-origin", action="append", default=[], metavar="ORIGIN",
                   help="another origin (scheme://host[:port]) whose ExternalQuestion pages may post answers "
                   "to /mturk/externalSubmit (repeatable; see docs/architecture.md)")
    p.set_defaults(func=run_serve)

    ep = sub.add_parser("export-links", help="write one personal sign-in link per rater (CSV: worker_id,link)",
                        description="Write signed sign-in links, /worker?workerId=ID&sig=HMAC(server secret, ID), one "
                        "per rater, for a server run with --require-signed-links (they also work with open sign-in). "
                        "The secret is the one kept in the server's database, so run this against the same --db.")
    ep.add_argument("--db", default="eval_server.sqlite", help="the server's database (default: %(default)s)")
    ep.add_argument("--base-url", required=True,
                    help="the server's address as raters reach it, e.g. http://lab-pc:8000")
    who = ep.add_mutually_exclusive_group(required=True)
    who.add_argument("--workers", metavar="FILE", help="text file with one worker id per line")
    who.add_argument("--count", type=int, help="make this many new worker ids (R-<random>)")
    ep.add_argument("--out", default="-", help="CSV file to write (default: standard output)")
    ep.set_defaults(func=run_export_links)

    lp = sub.add_parser("layout", help="manage HIT layouts (MTurk project HTML with ${name} placeholders)")
    lsub = lp.add_subparsers(dest="layout_command", metavar="ACTION", required=True)
    la = lsub.add_parser("add", help="register a layout; prints its id (use it as HITLayoutId)")
    la.add_argument("file", help="HTML file with ${name} placeholders")
    la.add_argument("--db", default="eval_server.sqlite", help="the server's database (default: %(default)s)")
    la.add_argument("--id", dest="layout_id", default=None, help="layout id to use (A-Z0-9; default: generated)")
    la.add_argument("--name", default=None, help="a name shown to requesters (default: the file name)")
    la.set_defaults(func=run_layout_add)


def run_serve(args: argparse.Namespace) -> int:
    from eval_server import server  # waitress and Flask only load for this verb

    if not 0 <= args.port <= 65535:
        raise UserError(f"--port: {args.port} is not a port number")
    processes, threads = _layout(args)
    if threads < 1 or processes < 1:
        raise UserError("--threads and --processes must be at least 1")
    if processes > 1 and not hasattr(os, "fork"):
        raise UserError("--processes: this system cannot fork server processes; run one (--processes 1)")
    recruit = None
    if args.recruit_config:
        from eval_server.recruit import read_recruit_config

        recruit = read_recruit_config(args.recruit_config)
    config = ServerConfig(db_url=args.db, media_dirs=server.media_dirs(args.media),
                          requester_key=args.requester_key, requester_secret=args.requester_secret,
                          admin_token=args.admin_token, account_balance=args.account_balance,
                          completion_url=recruit.completion_url if recruit else args.completion_url,
                          completion_code=args.completion_code,
                          screenout_url=recruit.screenout_url if recruit else "",
                          timeout_url=recruit.timeout_url if recruit else "",
                          hits_per_recruit=recruit.hits_per_recruit if recruit else 0,
                          max_body_bytes=args.max_body_kb * 1024,
                          require_signed_links=args.require_signed_links,
                          submit_origins=tuple(_origin(o) for o in args.submit_origin))
    # Bind first: keys generated by build_app are shown only once, so a start that cannot listen
    # must fail before it makes (and stores) them.
    sock = server.bind(args.host, args.port)
    try:
        app, cfg, gen = server.build_app(config)
    except BaseException:
        sock.close()
        raise
    host, port = sock.getsockname()[:2]
    url = f"http://{host}:{port}"
    print(f"regnet-bench server: {url}  (API endpoint_url={url}, raters: {url}/worker, admin: {url}/admin)",
          flush=True)
    if gen.requester_key:
        print(f"requester key (shown once, kept in the database): {gen.requester_key}", flush=True)
        print(f"requester secret (shown once): {gen.requester_secret}", flush=True)
    if gen.admin_token:
        print(f"admin token (shown once): {gen.admin_token}", flush=True)
    if cfg.require_signed_links:
        print(f"sign-in: personal links only; write them with `regnet-bench export-links --db {args.db} "
              f"--base-url {url} --count N --out links.csv` (or --workers FILE)", flush=True)
    else:
        print(f"sign-in: open (any worker id); links look like {url}/worker?workerId=ID", flush=True)
    print(f"serving with {processes} process{'es' if processes > 1 else ''} x {threads} threads "
          "(--processes, --threads)", flush=True)
    server.serve(app, sock, threads=threads, processes=processes)
    return 0


def _layout(args: argparse.Namespace) -> tuple[int, int]:
    """(processes, threads): the flags given, the rest from eval_server.server.default_layout."""
    from eval_server.db import normalize_url
    from eval_server.server import default_layout, usable_cores

    return default_layout(normalize_url(args.db).startswith("sqlite"), usable_cores(), hasattr(os, "fork"),
                          processes=args.processes, threads=args.threads)


def _origin(value: str) -> str:
    from urllib.parse import urlparse
    u = urlparse(value)
    if u.scheme not in ("http", "https") or not u.netloc or u.path not in ("", "/") or u.query:
        raise UserError(f"--submit-origin: {value!r} is not an origin like https://tasks.example.org")
    return f"{u.scheme}://{u.netloc}"


def _read_workers(path: Path) -> list[str]:
    from eval_server.identity import valid_worker_id
    if not path.is_file():
        raise UserError(f"{path}: worker list not found")
    try:
        lines = path.read_text(encoding="utf-8").splitlines()
    except UnicodeDecodeError:
        raise UserError(f"{path}: not UTF-8 text") from None
    workers, seen = [], set()
    for n, line in enumerate(lines, 1):
        w = line.strip()
        if not w or w.startswith("#"):
            continue
        if not valid_worker_id(w):
            raise UserError(f"{path}:{n}: {w[:80]!r} is not a worker id (1-64 of letters, digits, _ . @ -)")
        if w not in seen:
            seen.add(w)
            workers.append(w)
    if not workers:
        raise UserError(f"{path}: no worker ids in the file")
    return workers


def run_export_links(args: argparse.Namespace) -> int:
    from eval_server.identity import sign_in_link
    from eval_server.server import session_secret
    if args.count is not None and not 1 <= args.count <= 100_000:
        raise UserError(f"--count: {args.count} is not between 1 and 100000")
    base = args.base_url.rstrip("/")
    if not base.startswith(("http://", "https://")):
        raise UserError(f"--base-url: {args.base_url!r} must start with http:// or https://")
    workers = (_read_workers(Path(args.workers)) if args.workers
               else [f"R-{secrets.token_hex(6).upper()}" for _ in range(args.count)])
    db = Database(args.db)
    db.setup()
    secret = session_secret(db)
    rows = [(w, sign_in_link(base, secret, w)) for w in workers]
    if args.out == "-":
        import sys
        w = csv.writer(sys.stdout)
        w.writerow(["worker_id", "link"])
        w.writerows(rows)
        return 0
    out = Path(args.out)
    try:
        with out.open("w", newline="", encoding="utf-8") as f:
            w = csv.writer(f)
            w.writerow(["worker_id", "link"])
            w.writerows(rows)
    except OSError as e:
        raise UserError(f"--out: cannot write {out} ({e.strerror})") from None
    print(f"{len(rows)} links written to {out}")
    return 0


def run_layout_add(args: argparse.Namespace) -> int:
    path = Path(args.file)
    if not path.is_file():
        raise UserError(f"{path}: layout file not found")
    try:
        html = path.read_text(encoding="utf-8")
    except UnicodeDecodeError:
        raise UserError(f"{path}: not UTF-8 text") from None
    db = Database(args.db)
    db.setup()
    lid = add_layout(db, html, args.layout_id, args.name or path.name, now())
    log.info("layout %s registered with parameters: %s", lid, ", ".join(placeholders(html)) or "(none)")
    print(lid)
    return 0
