"""The ``regnet-bench`` command.

Each area's verbs live in one module of `regnet.commands` with ``register(subparsers)``; this file
only wires them together and turns a `UserError` into one line on stderr (exit 2).
"""

from __future__ import annotations

import argparse
import logging
import sys

from regnet import __version__
from regnet.commands import (checkpoints, data, evaluate, generate, quickstart, report, server, simulate, study,
                             train, vocoder)
from regnet.errors import UserError
from regnet.log import setup_logging

# The modules that add verbs, in the order their verbs appear in --help (video -> ... -> table).
# Imported by name, not found at run time: a renamed module is an ImportError here, never a verb
# that silently vanishes from --help.
COMMAND_MODULES = (data, train, vocoder, generate, checkpoints, evaluate, study, server, simulate, report,
                   quickstart)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="regnet-bench",
        description="Generate sound for silent video with RegNet and measure how well it lines up "
        "with the picture, with people (MTurk or the local server) and with numbers.",
    )
    parser.add_argument("--version", action="version", version=f"regnet-bench {__version__}")
    parser.add_argument("-v", "--verbose", action="count", default=0, help="more log output (-vv: debug)")
    parser.add_argument("-q", "--quiet", action="store_true", help="warnings and errors only")
    sub = parser.add_subparsers(dest="command", metavar="VERB")
    for module in COMMAND_MODULES:
        module.register(sub)
    return parser


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    setup_logging(-1 if args.quiet else args.verbose)
    if not getattr(args, "func", None):
        parser.print_help()
        return 0
    try:
        result = args.func(args)
    except UserError as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return 130
    except BrokenPipeError:
        return 0
    except OSError as e:
        # A file system refusal on a path the user named (an --out that is a file, a read-only
        # folder, a full disk): one line naming the path. An OSError without a path is a bug.
        if e.filename is None:
            raise
        logging.getLogger(__name__).debug("file system error", exc_info=True)
        where = f"{e.filename} -> {e.filename2}" if e.filename2 else f"{e.filename}"
        print(f"error: {where}: {e.strerror or e}", file=sys.stderr)
        return 2
    logging.shutdown()
    return int(result or 0)


if __name__ == "__main__":
    sys.exit(main())
