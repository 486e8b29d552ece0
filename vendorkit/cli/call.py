"""``vendorkit token``, ``vendorkit call`` and ``vendorkit logout``: one vendor, one request."""

from __future__ import annotations

import argparse
import datetime
import json
from pathlib import Path
from typing import Any

from ..errors import ConfigurationError
from ..token import Token
from .clients import open_client
from .output import print_json, remember_secrets

__all__ = ["run_call", "run_logout", "run_token"]


async def run_token(args: argparse.Namespace) -> int:
    """Print the token's type, scope and expiry; the token itself only with --show-secret."""
    async with open_client(args.vendor, sandbox=args.sandbox, profile=args.profile,
                           cache_tokens=not args.no_cache) as client:
        token = await client.session.get_token()
        remember_secrets((token.refresh_token,) if args.show_secret else
                         (token.access_token, token.refresh_token))
        print_json(describe_token(args.vendor, token, show_secret=args.show_secret))
        # The token is for the caller to use: closing must not revoke it (a cached one
        # stays cached; `vendorkit logout` revokes it).
        client.session.tokens.forget()
    return 0


def describe_token(vendor: str, token: Token, *, show_secret: bool) -> dict[str, Any]:
    """What ``vendorkit token`` prints: never a secret unless ``show_secret``."""
    remaining = token.remaining()
    described: dict[str, Any] = {
        "vendor": vendor,
        "token_type": token.token_type,
        "scope": token.scope,
        "expires_at": None if token.expires_at is None else _iso(token.expires_at),
        "expires_in": None if remaining is None else max(0, round(remaining)),
        "refreshable": token.can_refresh(),
    }
    if show_secret:
        described["access_token"] = token.access_token
    return described


def _iso(timestamp: float) -> str:
    moment = datetime.datetime.fromtimestamp(timestamp, tz=datetime.UTC)
    return moment.isoformat(timespec="seconds").replace("+00:00", "Z")


async def run_call(args: argparse.Namespace) -> int:
    """Send one authenticated request and print the answer's body (JSON when it is)."""
    params = parse_params(args.param or [])
    body = parse_body(args.json) if args.json is not None else None
    async with open_client(args.vendor, sandbox=args.sandbox, profile=args.profile,
                           cache_tokens=not args.no_cache) as client:
        response = await client.request(args.method, args.path, params=params or None,
                                        json=body)
        token = client.token
        if token is not None:
            remember_secrets((token.access_token, token.refresh_token))
    if not response.content.strip():
        print_json({"status": response.status})
        return 0
    try:
        print_json(response.json())
    except ValueError:  # not JSON: print the text as it came (redacted all the same)
        print_json(response.text)
    return 0


async def run_logout(args: argparse.Namespace) -> int:
    """Revoke the token at the vendor (where it can be) and drop it from the token cache."""
    async with open_client(args.vendor, sandbox=args.sandbox, profile=args.profile) as client:
        revoked = await client.logout()
    print_json({"vendor": args.vendor, "revoked": revoked})
    return 0


def parse_params(pairs: list[str]) -> dict[str, str | int | float]:
    """``["k=v", ...]`` -> ``{"k": "v"}``; a repeated key keeps its last value."""
    params: dict[str, str | int | float] = {}
    for pair in pairs:
        name, sep, value = pair.partition("=")
        if not sep or not name:
            raise ConfigurationError(f"--param takes NAME=VALUE, got {pair!r}")
        params[name] = value
    return params


def parse_body(text: str) -> Any:
    """The ``--json`` body: JSON text, or ``@path`` to read it from a file."""
    source = "--json"
    if text.startswith("@"):
        source = text[1:]
        try:
            text = Path(source).read_text()
        except OSError as exc:
            raise ConfigurationError(f"--json: cannot read {source}: {exc.strerror}") from None
    try:
        return json.loads(text)
    except ValueError as exc:
        raise ConfigurationError(f"{source} is not valid JSON ({exc})") from None
