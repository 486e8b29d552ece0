"""The ``vendorkit`` command: demo, sandbox, token, call, logout, collect.

Every error a person can act on (a missing variable, refused credentials, an unreachable
host, a rate limit) is one line on stderr and a non-zero exit status: 2 for
configuration and usage, 1 for the rest, 130 after Ctrl-C. ``--debug`` adds the
traceback and the library's DEBUG log. Nothing in the library imports this package.
"""

from __future__ import annotations

import argparse
import asyncio
import importlib
import importlib.util
import logging
import os
import sys
import traceback
from collections.abc import Callable, Coroutine, Sequence
from typing import Any

from ..errors import (
    AuthenticationError,
    ConfigurationError,
    ConnectError,
    RateLimitError,
    TimeoutError,
    VendorkitError,
)
from ..sandbox import VENDORS, Quota, parse_variant
from .output import error, redact
from .shard import Shard

__all__ = ["build_parser", "main"]

Command = Callable[[argparse.Namespace], Coroutine[Any, Any, int]]

EXIT_ERROR, EXIT_CONFIG, EXIT_INTERRUPTED, EXIT_BROKEN_PIPE = 1, 2, 130, 141
#: The demo's per-credential quota on each emulator, by default: it binds, so the run shows
#: throttling handled (the 429 column) with no call lost.
DEMO_QUOTA = "400/20"


def main(argv: Sequence[str] | None = None) -> int:
    """Run one command; the exit status is returned (the console script exits with it)."""
    parser = build_parser()
    args = parser.parse_args(argv)
    if importlib.util.find_spec("rich") is None:
        error("the vendorkit command needs its extra: pip install 'vendorkit[cli]'")
        return EXIT_CONFIG
    _configure_logging(args.debug)
    command: Command = args.command
    try:
        return asyncio.run(command(args))
    except BrokenPipeError:  # `vendorkit ... | head`: the reader left; so do we, quietly
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return EXIT_BROKEN_PIPE
    except KeyboardInterrupt:
        if args.debug:
            print(redact(traceback.format_exc()), file=sys.stderr, end="")
        if args.command_name == "sandbox":
            return 0
        error("interrupted")
        return EXIT_INTERRUPTED
    except Exception as exc:
        if args.debug:
            print(redact(traceback.format_exc()), file=sys.stderr, end="")
        message, status = describe(exc)
        error(message)
        return status


def describe(exc: BaseException) -> tuple[str, int]:
    """One line for an error, and the exit status it calls for."""
    text = str(exc) or type(exc).__name__
    if isinstance(exc, ConfigurationError):
        return text, EXIT_CONFIG
    if isinstance(exc, RateLimitError):
        wait = "" if exc.retry_after is None else f"; retry after {exc.retry_after:g} s"
        return f"rate limited: {text}{wait}", EXIT_ERROR
    if isinstance(exc, AuthenticationError):
        return f"authentication failed: {text}", EXIT_ERROR
    if isinstance(exc, ConnectError):
        return f"cannot reach host: {text}", EXIT_ERROR
    if isinstance(exc, TimeoutError):
        return f"timed out: {text}", EXIT_ERROR
    if isinstance(exc, VendorkitError):
        return text, EXIT_ERROR
    if isinstance(exc, OSError):
        return f"{exc.strerror or text}: {exc.filename or ''}".rstrip(": "), EXIT_ERROR
    return (f"unexpected {type(exc).__name__}: {redact(text)} (run with --debug for the "
            "traceback)"), EXIT_ERROR


def _configure_logging(debug: bool) -> None:
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(logging.Formatter(
        "%(asctime)s %(levelname)s %(name)s: %(message)s" if debug else "%(message)s"))
    logger = logging.getLogger("vendorkit")
    logger.addHandler(handler)
    logger.setLevel(logging.DEBUG if debug else logging.WARNING)
    logger.propagate = False


# --- the parser ---------------------------------------------------------------------------


def _lazy(module: str, name: str) -> Command:
    """A command whose module is imported on use: the modules need ``rich``, which
    ``main`` checks for first."""

    async def command(args: argparse.Namespace) -> int:
        function: Command = getattr(importlib.import_module(f"{__name__}.{module}"), name)
        return await function(args)

    return command


def _vendors(text: str) -> list[str]:
    names = [name.strip().lower() for name in text.split(",") if name.strip()]
    unknown = [name for name in names if name not in VENDORS]
    if unknown or not names:
        raise argparse.ArgumentTypeError(
            f"unknown vendor {', '.join(unknown) or '(none)'}; choose from {', '.join(VENDORS)}")
    return list(dict.fromkeys(names))


def _positive_int(text: str) -> int:
    value = int(text)
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be at least 1, got {value}")
    return value


def _positive_float(text: str) -> float:
    value = float(text)
    if not value > 0:
        raise argparse.ArgumentTypeError(f"must be more than 0, got {text}")
    return value


def _variant(text: str) -> tuple[str, str]:
    try:
        return parse_variant(text)
    except ValueError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from None


def _quota(text: str) -> Quota:
    try:
        return Quota.parse(text)
    except ValueError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from None


def _shard(text: str) -> Shard:
    try:
        return Shard.parse(text)
    except ValueError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from None


def build_parser() -> argparse.ArgumentParser:
    """The argument parser of every command."""
    common = argparse.ArgumentParser(add_help=False)
    common.add_argument("--debug", action="store_true", default=argparse.SUPPRESS,
                        help="show tracebacks and the library's DEBUG log")
    common.add_argument("--sandbox", action="store_true",
                        help="use the embedded vendor emulators instead of the real hosts "
                             "(no account needed)")
    credentials = argparse.ArgumentParser(add_help=False)
    credentials.add_argument("--profile", help="config file profile: the [VENDOR.PROFILE] table "
                                               "(default: [VENDOR], or $VENDORKIT_PROFILE)")

    parser = argparse.ArgumentParser(
        prog="vendorkit", description="Call five vendor APIs with one correct session layer.")
    parser.add_argument("--debug", action="store_true", help=argparse.SUPPRESS)
    commands = parser.add_subparsers(title="commands", dest="command_name", required=True,
                                     metavar="COMMAND")

    demo = commands.add_parser(
        "demo", parents=[common], help="run a high-concurrency collection on the emulators",
        description="Thousands of calls to all five emulated vendors at once, with short-lived "
                    "tokens and injected faults; a summary table; exit 0 if all succeeded "
                    "with no login storm. (--sandbox is implied.)")
    demo.add_argument("--calls", type=_positive_int, default=2000, help="calls per vendor")
    demo.add_argument("--concurrency", type=_positive_int, default=200,
                      help="calls in flight per vendor")
    demo.add_argument("--token-lifetime", type=_positive_float, default=3.0, metavar="SECONDS",
                      help="lifetime of the emulators' access tokens")
    demo.add_argument("--no-faults", action="store_true", help="inject no faults")
    demo.add_argument("--vendors", type=_vendors, default=list(VENDORS),
                      help=f"comma-separated subset of {','.join(VENDORS)}")
    demo.add_argument("--quota", type=_quota, default=Quota.parse(DEMO_QUOTA),
                      metavar="RATE[/BURST]",
                      help="per-credential quota on each emulator, 429 + Retry-After beyond "
                           f"(default {DEMO_QUOTA}: the clients' adaptive rate limiters at "
                           "work)")
    demo.add_argument("--no-quota", dest="quota", action="store_const", const=None,
                      help="no quota on the emulators")
    demo.add_argument("--variants", action="store_true",
                      help="a random emulator variant per vendor (printed; see --seed)")
    demo.add_argument("--seed", type=int, default=None,
                      help="seed of --variants' choice, to repeat a run (default: random)")
    demo.set_defaults(command=_lazy("demo", "run_demo"))

    sandbox = commands.add_parser(
        "sandbox", parents=[common], help="serve the vendor emulators until Ctrl-C",
        description="Serve the five vendor emulators and print their base URLs, test "
                    "credentials and VENDORKIT_* variables. (--sandbox is implied.)")
    sandbox.add_argument("--host", default="127.0.0.1")
    sandbox.add_argument("--port", type=int, default=0,
                         help="first port (the next vendors take the next ports); 0: free ports")
    sandbox.add_argument("--token-lifetime", type=_positive_float, default=None,
                         metavar="SECONDS", help="access token lifetime (default: each vendor's)")
    sandbox.add_argument("--vendors", type=_vendors, default=list(VENDORS),
                         help=f"comma-separated subset of {','.join(VENDORS)}")
    sandbox.add_argument("--json", action="store_true",
                         help="print one JSON line (base URLs, credentials, variables)")
    sandbox.add_argument("--variant", type=_variant, action="append", default=[],
                         metavar="VENDOR=NAME", help="answer one undocumented point another "
                         "way, e.g. cloudcx=capped-page (repeatable)")
    sandbox.add_argument("--quota", type=_quota, default=None, metavar="RATE[/BURST]",
                         help="per-credential quota: RATE requests/s, BURST at once (default 1); "
                              "429 + Retry-After beyond")
    sandbox.set_defaults(command=_lazy("sandbox_cmd", "run_sandbox"))

    token = commands.add_parser(
        "token", parents=[common, credentials], help="log in (or reuse the cached token) and "
        "describe the token", description="Print the token's type, scope and expiry as JSON.")
    token.add_argument("vendor", choices=VENDORS)
    token.add_argument("--show-secret", action="store_true", help="include the access token")
    token.add_argument("--no-cache", action="store_true", help="neither read nor keep the "
                       "token in the token cache")
    token.set_defaults(command=_lazy("call", "run_token"))

    call = commands.add_parser(
        "call", parents=[common, credentials], help="send one authenticated request",
        description="Send one authenticated request and print the answer as JSON.")
    call.add_argument("vendor", choices=VENDORS)
    call.add_argument("method", type=str.upper, metavar="METHOD")
    call.add_argument("path", metavar="PATH", help="path below the vendor's base URL")
    call.add_argument("--param", "-p", action="append", metavar="NAME=VALUE",
                      help="query parameter (repeatable)")
    call.add_argument("--json", metavar="BODY", help="JSON request body, or @FILE")
    call.add_argument("--no-cache", action="store_true", help="neither read nor keep the "
                      "token in the token cache")
    call.set_defaults(command=_lazy("call", "run_call"))

    logout = commands.add_parser(
        "logout", parents=[common, credentials], help="revoke the cached token",
        description="Revoke the cached token at the vendor (where it can be) and forget it.")
    logout.add_argument("vendor", choices=VENDORS)
    logout.set_defaults(command=_lazy("call", "run_logout"))

    collect = commands.add_parser(
        "collect", parents=[common, credentials], help="page through a listing to JSON Lines",
        description="Write every item of a listing to a JSON Lines file, one page at a time; "
                    "resumable. Listings: cloudcx users, wogeez companies.")
    collect.add_argument("vendor", choices=VENDORS)
    collect.add_argument("resource", metavar="RESOURCE", help="users (cloudcx), companies "
                                                              "(wogeez)")
    collect.add_argument("--out", "-o", required=True, metavar="FILE")
    collect.add_argument("--keywords", help="filter (cloudcx users)")
    collect.add_argument("--page-size", type=_positive_int, default=None)
    collect.add_argument("--resume", action="store_true",
                         help="continue an interrupted run: skip the pages already written")
    collect.add_argument("--overwrite", action="store_true",
                         help="replace an existing file instead of refusing")
    collect.add_argument("--rate", type=_positive_float, default=None, metavar="R",
                         help="at most R requests a second for the credential (with --redis: "
                              "for the whole fleet); default: adaptive, slower after a 429")
    collect.add_argument("--burst", type=_positive_int, default=None, metavar="B",
                         help="with --rate: B requests at once after a quiet spell (default 1)")
    collect.add_argument("--shard", type=_shard, default=None, metavar="K/N",
                         help="collect shard K of N: the pages whose offset from the first is "
                              "K-1 modulo N, to OUT with -K-of-N before its suffix")
    collect.add_argument("--redis", default=None, metavar="URL",
                         help="share the token and the rate limit through Redis with every "
                              "process on the same credential (default: $VENDORKIT_REDIS_URL)")
    collect.set_defaults(command=_lazy("collect", "run_collect"))
    return parser
