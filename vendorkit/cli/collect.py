"""``vendorkit collect``: every item of a listing to JSON Lines, page by page, resumable.

Memory stays constant: one page is held at a time. Each page is written in one piece and
then recorded in ``<out>.progress`` (replaced atomically), so after Ctrl-C, a crash or a
network failure the file holds whole pages only, and ``--resume`` cuts anything written
after the last recorded page, then asks for the next one. The record is removed once
the listing is complete.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import os
import time
from collections.abc import AsyncIterator, Callable, Iterator
from pathlib import Path
from typing import Any

import attrs

from ..client import VendorClient
from ..errors import ConfigurationError
from ..pagination import Page
from ..vendors import CloudCXClient, WogeezClient
from .clients import open_client
from .output import note
from .progress import PageProgress

__all__ = ["COLLECTIONS", "run_collect"]


@attrs.frozen
class Collection:
    """One listing the command can walk: its pages, from a given page index."""

    vendor: str
    resource: str
    first_page: int
    default_page_size: int
    pages: Callable[[Any, argparse.Namespace, int], AsyncIterator[Page[Any]]]
    keywords: bool = False


def _cloudcx_users(client: CloudCXClient, args: argparse.Namespace,
                   start: int) -> AsyncIterator[Page[Any]]:
    return client.iter_user_pages(keywords=args.keywords, page_size=args.page_size, start=start)


def _wogeez_companies(client: WogeezClient, args: argparse.Namespace,
                      start: int) -> AsyncIterator[Page[Any]]:
    return client.iter_company_pages(size=args.page_size, start=start)


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
    total: int | None = None

    def matches(self, other: Checkpoint) -> str | None:
        """The name of the first setting that differs from ``other``, or None."""
        for name in ("vendor", "resource", "keywords", "page_size"):
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
    out = Path(args.out)
    fresh = Checkpoint(collection.vendor, collection.resource, args.keywords, args.page_size,
                       next_page=collection.first_page)
    checkpoint = _starting_point(out, _progress_path(out), fresh, resume=args.resume,
                                 overwrite=args.overwrite)
    started = time.monotonic()
    async with open_client(args.vendor, sandbox=args.sandbox, profile=args.profile) as client:
        with _output(out, checkpoint.size) as file, PageProgress(
                f"{args.vendor} {args.resource}", checkpoint.items, checkpoint.total) as bar:
            try:
                await _walk(client, collection, args, checkpoint, file, out, bar)
            except BaseException as exc:
                if checkpoint.items or isinstance(exc, asyncio.CancelledError | KeyboardInterrupt):
                    bar.stop()
                    note(f"vendorkit: stopped after {checkpoint.items} {args.resource} "
                         f"({out} holds whole pages only); run the same command with --resume "
                         "to continue")
                raise
    _progress_path(out).unlink(missing_ok=True)
    elapsed = time.monotonic() - started
    print(f"wrote {checkpoint.items} {args.resource} to {out} in {elapsed:.1f} s", flush=True)
    return 0


async def _walk(client: VendorClient, collection: Collection, args: argparse.Namespace,
                checkpoint: Checkpoint, file: Any, out: Path, bar: PageProgress) -> None:
    async for page in collection.pages(client, args, checkpoint.next_page):
        lines = "".join(json.dumps(to_json(item), ensure_ascii=False) + "\n"
                        for item in page.items)
        data = lines.encode()
        file.write(data)  # one write per page, then flush, then the checkpoint
        file.flush()
        checkpoint.items += len(page.items)
        checkpoint.size += len(data)
        checkpoint.next_page = page.page_index + 1
        checkpoint.total = page.total
        _save(_progress_path(out), checkpoint)
        bar.update(checkpoint.items, page.total)


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
