"""What the CLI prints: JSON on stdout, one-line errors on stderr, secrets never.

Every secret the CLI comes to hold (credentials, tokens) is remembered here and replaced
by ``***`` in anything printed, in every form a server may echo it in (the rule lives in
``vendorkit.redaction``), as a second guard behind the library's own redaction.
"""

from __future__ import annotations

import json
import shutil
import sys
from collections.abc import Iterable
from typing import TYPE_CHECKING, TextIO

from .. import redaction

if TYPE_CHECKING:
    from rich.console import Console

__all__ = ["console", "error", "note", "print_json", "redact", "remember_secrets"]

#: Width of tables printed to a pipe or file, where there is no terminal to ask.
PLAIN_WIDTH = 150

_secrets: set[str] = set()


def remember_secrets(values: Iterable[str | None]) -> None:
    """Add secrets to redact from everything printed from now on."""
    _secrets.update(v for v in values if v and len(v) >= 4)


def redact(text: str) -> str:
    """``text`` with every remembered secret, as written or encoded, replaced by ``***``."""
    return redaction.redact(text, _secrets)


def console(file: TextIO | None = None) -> Console:
    """A rich console on ``file`` (stdout): live and coloured on a terminal, plain and
    wide enough for a table on a pipe."""
    from rich.console import Console  # the cli extra; main() checked it is installed

    file = file or sys.stdout
    probe = Console(file=file)
    if probe.is_terminal:
        return probe
    width = max(PLAIN_WIDTH, shutil.get_terminal_size((PLAIN_WIDTH, 24)).columns)
    return Console(file=file, width=width, no_color=True, highlight=False, soft_wrap=False)


def print_json(value: object) -> None:
    """``value`` as indented JSON on stdout, redacted; highlighted on a terminal."""
    text = redact(json.dumps(value, indent=2, ensure_ascii=False))
    if sys.stdout.isatty():
        console().print_json(text)
    else:
        print(text, flush=True)


def note(message: str) -> None:
    """A progress or status line on stderr (stdout stays for results)."""
    print(redact(message), file=sys.stderr, flush=True)


def error(message: str) -> None:
    """One line on stderr: ``vendorkit: error: ...``, redacted, newlines folded."""
    line = " ".join(redact(message).split())
    print(f"vendorkit: error: {line}", file=sys.stderr, flush=True)
