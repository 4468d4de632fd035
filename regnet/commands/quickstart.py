"""`regnet-bench quickstart`: the whole benchmark on synthetic data, on this machine."""

from __future__ import annotations

import argparse
import socket
from pathlib import Path

from regnet.errors import UserError


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "quickstart", help="the whole benchmark on synthetic data: synth → train → clips → metrics → "
        "study on the local server (→ simulated raters → report)",
        description="Builds the synthetic benchmark, extracts features, trains a small RegNet and a woREG "
        "baseline on CPU, generates clips for RegNet, woREG and the real sound, runs evaluate, builds a "
        "study, starts the local server and publishes the study to it through boto3. With --simulate N "
        "(default 3) simulated raters answer, then collect and report run (every output labelled "
        "simulated). Re-running resumes; --workdir chooses the place.")
    p.add_argument("--workdir", type=Path, default=Path("quickstart"), help="where everything goes (default ./quickstart)")
    p.add_argument("--preset", choices=["small", "tiny", "paper"], default="small",
                   help="model size (default small: 2 s clips, CPU-sized)")
    p.add_argument("--n-per-class", type=int, default=8, help="synthetic videos per class (default 8)")
    p.add_argument("--seconds", type=float, default=2.0, help="synthetic video length (default 2)")
    p.add_argument("--steps", type=int, default=800, help="training steps per model (default 800)")
    p.add_argument("--lr", type=float, default=1e-3, help="learning rate of both models (default 1e-3)")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--host", default="127.0.0.1")
    p.add_argument("--port", type=int, default=8000, help="local server port (default 8000; 0 = any free)")
    p.add_argument("--simulate", type=int, default=3, metavar="N",
                   help="simulated raters to run after publishing (default 3; 0 = wait for people). The "
                   "study gets N+1 assignments per HIT, so one of each is left for a person")
    p.add_argument("--no-serve", action="store_true", help="stop the server at the end instead of serving until Ctrl-C")
    p.add_argument("--set", dest="overrides", action="append", default=[], metavar="SECTION.KEY=VALUE",
                   help="config override for extract/train (repeatable)")
    p.set_defaults(func=run)


def _check_port_free(host: str, port: int) -> None:
    """Fail before minutes of training, not after: the server starts only once the clips exist."""
    if port == 0:
        return
    try:
        with socket.create_server((host, port)):
            pass
    except OSError as e:
        raise UserError(f"--port: cannot listen on {host}:{port} ({e.strerror}); pick another with --port "
                        "(or --port 0 for any free one)") from None


def run(args: argparse.Namespace) -> int:
    from regnet.pipelines.quickstart import Quickstart, QuickstartOptions

    if args.n_per_class < 2:
        # synth puts a quarter of each class (at least one video) in the test split only from 2 up;
        # with 1 there is nothing to generate clips for, found only after training.
        raise UserError(f"--n-per-class: {args.n_per_class} is too few; at least 2 (one of them becomes "
                        "the test video each class is judged on)")
    if args.steps < 1 or args.seconds <= 0 or args.simulate < 0 or args.lr <= 0:
        raise UserError("--steps must be at least 1, --seconds and --lr above 0 and --simulate 0 or more")
    if not 0 <= args.port <= 65535:
        raise UserError(f"--port: {args.port} is not a port number")
    _check_port_free(args.host, args.port)
    opts = QuickstartOptions(workdir=args.workdir, preset=args.preset, n_per_class=args.n_per_class,
                             seconds=args.seconds, steps=args.steps, lr=args.lr, seed=args.seed, host=args.host,
                             port=args.port, simulate=args.simulate, serve=not args.no_serve,
                             overrides=args.overrides)
    Quickstart(opts, say=lambda line: print(line, flush=True)).run()
    return 0
