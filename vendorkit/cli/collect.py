"""``vendorkit collect``: every item of a listing to JSON Lines, page by page, resumable.

Memory stays constant: one page is held at a time. Each page is written in one piece and
then recorded in ``<out>.progress`` (replaced atomically), so after Ctrl-C, a crash or a
network failure the file holds whole pages only, and ``--resume`` cuts anything written
after the last recorded page, then asks for the next one. The record is removed once
the listing is complete.

A fleet: ``--shard K/N`` collects one N-th of the pages (see :mod:`.shard`) to its own
file, ``OUT`` with ``-K-of-N`` before its suffix, resumable on its own; ``--rate`` limits
the requests of the credential, and ``--redis URL`` shares the token and that limit (the
client's ``RedisTokenStore``) between processes on any host. Without ``--redis`` the
token cache file shares them between the processes of one host.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import os
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import attrs

from ..client import VendorClient
from ..errors import ConfigurationError
from ..pagination import Page
from ..ratelimit import RateLimit
from ..stores.base import TokenStore
from ..vendors import CloudCXClient, WogeezClient
from .clients import open_client
from .output import note, remember_secrets
from .progress import PageProgress, RateStatus
from .shard import Shard

__all__ = ["COLLECTIONS", "run_collect"]

#: The variable ``--redis`` defaults to: a URL with a password is better kept out of ``ps``.
REDIS_URL_VARIABLE = "VENDORKIT_REDIS_URL"


@attrs.frozen
class Collection:
    """One listing the command can walk: ``fetch(client, args, index, size)`` one page."""

    vendor: str
    resource: str
    first_page: int
    default_page_size: int
    fetch: Callable[[Any, argparse.Namespace, int, int], Awaitable[Page[Any]]]
    keywords: bool = False


def _cloudcx_users(client: CloudCXClient, args: argparse.Namespace, index: int,
                   size: int) -> Awaitable[Page[Any]]:
    return client.get_user_page(page_index=index, page_size=size, keywords=args.keywords)


def _wogeez_companies(client: WogeezClient, args: argparse.Namespace, index: int,
                      size: int) -> Awaitable[Page[Any]]:
    return client.list_companies(page=index, size=size)


COLLECTIONS = {
    ("cloudcx", "users"): Collection("cloudcx", "users", 1, 100, _cloudcx_users, keywords=True),
    ("wogeez", "companies"): Collection("wogeez", "companies", 0, 100, _wogeez_companies),
}


@attrs.define
class Checkpoint:
    """``<out>.progress``: what the last whole page left behind, and what produced it."""

    vendor: str
    resource: str
    keywords: str | None
    page_size: int
    next_page: int
    items: int = 0
    size: int = 0  # bytes of the output file up to the end of the last whole page
    total: int | None = None  # items of this shard (of the listing, unsharded)
    shard: str = "1/1"

    def matches(self, other: Checkpoint) -> str | None:
        """The name of the first setting that differs from ``other``, or None."""
        for name in ("vendor", "resource", "keywords", "page_size", "shard"):
            if getattr(self, name) != getattr(other, name):
                return name
        return None


async def run_collect(args: argparse.Namespace) -> int:
    """Write every item of the listing to ``args.out``, resuming when asked."""
    collection = COLLECTIONS.get((args.vendor, args.resource))
    if collection is None:
        known = ", ".join(f"{v} {r}" for v, r in COLLECTIONS)
        raise ConfigurationError(f"cannot collect {args.vendor} {args.resource}; "
                                 f"collectable: {known}")
    if args.keywords is not None and not collection.keywords:
        raise ConfigurationError(f"--keywords does not apply to {args.vendor} {args.resource}")
    if args.page_size is None:
        args.page_size = collection.default_page_size
    if args.page_size < 1:
        raise ConfigurationError("--page-size must be at least 1")
    shard: Shard = args.shard or Shard()
    rate_limit = _rate_limit(args)
    out = shard_path(Path(args.out), shard)
    fresh = Checkpoint(collection.vendor, collection.resource, args.keywords, args.page_size,
                       next_page=shard.start(collection.first_page), shard=str(shard))
    checkpoint = _starting_point(out, _progress_path(out), fresh, resume=args.resume,
                                 overwrite=args.overwrite)
    label = f"{args.vendor} {args.resource}" + (f" {shard}" if shard.count > 1 else "")
    started = time.monotonic()
    async with _shared_store(args.redis or os.environ.get(REDIS_URL_VARIABLE)) as store, \
            open_client(args.vendor, sandbox=args.sandbox, profile=args.profile,
                        shared_store=store, rate_limit=rate_limit) as client:
        status = RateStatus(client.stats, client.session.limiter)
        with _output(out, checkpoint.size) as file:
            async with PageProgress(label, checkpoint.items, checkpoint.total, status) as bar:
                try:
                    await _walk(client, collection, args, shard, checkpoint, file, out, bar)
                except BaseException as exc:
                    if checkpoint.items or isinstance(
                            exc, asyncio.CancelledError | KeyboardInterrupt):
                        bar.stop()
                        note(f"vendorkit: stopped after {checkpoint.items} {args.resource} "
                             f"({out} holds whole pages only); run the same command with "
                             "--resume to continue")
                    raise
    _progress_path(out).unlink(missing_ok=True)
    elapsed = time.monotonic() - started
    print(f"wrote {checkpoint.items} {args.resource} to {out} in {elapsed:.1f} s", flush=True)
    return 0



def shard_path(out: Path, shard: Shard) -> Path:
    """Shard K of N writes ``OUT`` with ``-K-of-N`` before its suffix (users-2-of-8.jsonl),
    so that no two shards of one command line share a file; unsharded, ``OUT`` itself."""
    if shard.count == 1:
        return out
    return out.with_name(f"{out.stem}-{shard.index}-of-{shard.count}{out.suffix}")


def _rate_limit(args: argparse.Namespace) -> RateLimit | None:
    """``--rate R [--burst B]``; without ``--rate``, None: the client's adaptive default."""
    if args.rate is None:
        if args.burst is not None:
            raise ConfigurationError("--burst needs --rate")
        return None
    return RateLimit(args.rate, burst=args.burst)


@contextlib.asynccontextmanager
async def _shared_store(url: str | None) -> AsyncIterator[TokenStore | None]:
    """The ``RedisTokenStore`` at ``url`` (closed after), or None without one."""
    if not url:
        yield None
        return
    remember_secrets([urlsplit(url).password])
    try:
        from ..stores.redis import RedisTokenStore
    except ImportError:
        raise ConfigurationError("--redis needs redis-py: pip install 'vendorkit[redis]'") from None
    store = RedisTokenStore(url)
    try:
        yield store
    finally:
        await store.aclose()


async def _walk(client: VendorClient, collection: Collection, args: argparse.Namespace,
                shard: Shard, checkpoint: Checkpoint, file: Any, out: Path,
                bar: PageProgress) -> None:
    def fetch(index: int, size: int) -> Awaitable[Page[Any]]:
        return collection.fetch(client, args, index, size)

    async for page in shard.pages(fetch, first=collection.first_page,
                                  start=checkpoint.next_page, size=args.page_size):
        lines = "".join(json.dumps(to_json(item), ensure_ascii=False) + "\n"
                        for item in page.items)
        data = lines.encode()
        file.write(data)  # one write per page, then flush, then the checkpoint
        file.flush()
        checkpoint.items += len(page.items)
        checkpoint.size += len(data)
        checkpoint.next_page = page.page_index + shard.count
        checkpoint.total = (None if page.total is None
                            else shard.items(page.total, page.page_size))
        _save(_progress_path(out), checkpoint)
        bar.update(checkpoint.items, checkpoint.total)


def to_json(item: object) -> Any:
    """A typed model back to the vendor's JSON: its keys as the vendor spells them, and
    the keys the model did not know (kept in ``extra``) where they were."""
    if not attrs.has(type(item)):
        return item
    data: dict[str, Any] = {}
    extra: dict[str, Any] = {}
    cls: Any = type(item)
    for field in attrs.fields(cls):
        value = getattr(item, field.name)
        if field.metadata.get("json_extra"):
            extra = value
        else:
            data[field.metadata.get("json_key", field.name)] = to_json(value)
    return data | extra


def _progress_path(out: Path) -> Path:
    return out.with_name(out.name + ".progress")


def _starting_point(out: Path, progress: Path, fresh: Checkpoint, *, resume: bool,
                    overwrite: bool) -> Checkpoint:
    """Where to start: from scratch, or after the last page a previous run recorded."""
    if not resume:
        if out.exists() and not overwrite:
            raise ConfigurationError(f"{out} exists: pass --resume to continue it, "
                                     "or --overwrite to start again")
        progress.unlink(missing_ok=True)
        return fresh
    if not progress.exists():
        if out.exists():
            raise ConfigurationError(
                f"{out} has no progress record ({progress.name}): it is complete or was not "
                "written by vendorkit collect; remove it, or pass --overwrite without --resume")
        return fresh
    saved = _load(progress)
    differs = saved.matches(fresh)
    if differs is not None:
        raise ConfigurationError(f"--resume: {differs} differs from the interrupted run "
                                 f"({getattr(saved, differs)!r}); use the same settings")
    if not out.exists() or out.stat().st_size < saved.size:
        raise ConfigurationError(f"--resume: {out} is shorter than its progress record says; "
                                 "pass --overwrite without --resume to start again")
    return saved


@contextlib.contextmanager
def _output(out: Path, size: int) -> Iterator[Any]:
    """The output file, cut to ``size`` bytes (the end of the last recorded page)."""
    out.parent.mkdir(parents=True, exist_ok=True)
    with out.open("ab") as file:
        file.truncate(size)
        yield file


def _save(path: Path, checkpoint: Checkpoint) -> None:
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_text(json.dumps(attrs.asdict(checkpoint)))
    os.replace(tmp, path)


def _load(path: Path) -> Checkpoint:
    try:
        return Checkpoint(**json.loads(path.read_text()))
    except (OSError, ValueError, TypeError) as exc:
        raise ConfigurationError(f"--resume: cannot read {path} ({type(exc).__name__}); "
                                 "pass --overwrite without --resume to start again") from None
