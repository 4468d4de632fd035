"""CLI verbs of the local rating server: `serve` and `layout add`."""

from __future__ import annotations

import argparse
import logging
import os
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
    p.add_argument("--threads", type=int, default=8, help="request threads per process (default: %(default)s)")
    p.add_argument("--processes", type=int, default=1, help="server processes sharing the socket (default: 1)")
    p.add_argument("--requester-key", default=os.environ.get("REGNET_REQUESTER_KEY", ""),
                   help="API access key (env REGNET_REQUESTER_KEY; generated once and stored if absent)")
    p.add_argument("--requester-secret", default=os.environ.get("REGNET_REQUESTER_SECRET", ""),
                   help="API secret key (env REGNET_REQUESTER_SECRET)")
    p.add_argument("--admin-token", default=os.environ.get("REGNET_ADMIN_TOKEN", ""),
                   help="token for /admin (env REGNET_ADMIN_TOKEN; generated once and stored if absent)")
    p.add_argument("--account-balance", default="10000.00", help="what GetAccountBalance reports (default: %(default)s)")
    p.add_argument("--completion-url", default="", help="where recruited raters are sent when no HITs are left")
    p.add_argument("--completion-code", default="", help="completion code shown to raters when no HITs are left")
    p.add_argument("--max-body-kb", type=int, default=2048, help="largest request body in KiB (default: %(default)s)")
    p.set_defaults(func=run_serve)

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
    if args.threads < 1 or args.processes < 1:
        raise UserError("--threads and --processes must be at least 1")
    config = ServerConfig(db_url=args.db, media_dirs=server.media_dirs(args.media),
                          requester_key=args.requester_key, requester_secret=args.requester_secret,
                          admin_token=args.admin_token, account_balance=args.account_balance,
                          completion_url=args.completion_url, completion_code=args.completion_code,
                          max_body_bytes=args.max_body_kb * 1024)
    app, cfg, gen = server.build_app(config)
    sock = server.bind(args.host, args.port)
    host, port = sock.getsockname()[:2]
    url = f"http://{host}:{port}"
    print(f"regnet-bench server: {url}  (API endpoint_url={url}, raters: {url}/worker, admin: {url}/admin)",
          flush=True)
    if gen.requester_key:
        print(f"requester key (shown once, kept in the database): {gen.requester_key}", flush=True)
        print(f"requester secret (shown once): {gen.requester_secret}", flush=True)
    if gen.admin_token:
        print(f"admin token (shown once): {gen.admin_token}", flush=True)
    server.serve(app, sock, threads=args.threads, processes=args.processes)
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
