"""Decoding an answer's JSON against turning it into typed models, for three answer shapes.

    python -m benchmarks.structuring [--repeat 7] [--json out.json]

Issue 15 asks that structuring a 200-user CloudCX page cost no more than decoding its
JSON. Each shape is timed in this one process, best of ``--repeat`` (the minimum is the
figure least moved by other processes on a loaded machine), in microseconds per answer:

- ``decode``: ``json.loads`` of the body (what ``Response.json()`` does), and
  ``orjson.loads`` when orjson is installed (``vendorkit[speed]``);
- ``structure``: the decoded body to models, as the vendor client does it (a page: the
  envelope opened and its items structured, as pagination does; a list:
  ``structure_list``; one object: ``structure``).

The bodies are the sandbox's, byte for byte: a CloudCX user page (200 users in its
``{"code", "msg", "data": {"list"}}`` envelope), Cloud4Wi's six organizations (what
``benchmarks.run`` fetches), and one organization.
"""

from __future__ import annotations

import argparse
import importlib
import json
import sys
import timeit
from collections.abc import Callable
from pathlib import Path
from typing import Any

if __package__ in (None, ""):  # run as a script: python benchmarks/structuring.py
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from vendorkit.models import find_list, structure, structure_items, structure_list
from vendorkit.sandbox._paging import PageRequest, page_body
from vendorkit.sandbox._variants import Settings
from vendorkit.sandbox.cloud4wi import seed_organizations
from vendorkit.sandbox.cloudcx import users
from vendorkit.vendors.cloud4wi import Organization
from vendorkit.vendors.cloudcx import User

orjson: Any
try:
    orjson = importlib.import_module("orjson")
except ImportError:  # the speed extra is not installed: stdlib figures only
    orjson = None


def shapes() -> dict[str, tuple[bytes, Callable[[Any], object]]]:
    """Each shape's body and the function that structures its decoded form."""
    page = page_body(Settings(), "cloudcx", users(), PageRequest(1, 200, first_index=1))
    orgs = [org.to_json() for org in seed_organizations("customer-42")]

    def user_page(body: Any) -> object:
        raw, _ = find_list(body, User, what="users")
        return structure_items(raw, User, what="users")

    return {
        "CloudCX page, 200 users": (json.dumps(page).encode(), user_page),
        "Cloud4Wi list, 6 organizations": (
            json.dumps(orgs).encode(),
            lambda body: structure_list(body, Organization, what="organizations"),
        ),
        "Cloud4Wi, 1 organization": (
            json.dumps(orgs[0]).encode(),
            lambda body: structure(body, Organization, what="organization"),
        ),
    }


def best_us(function: Callable[[], object], repeat: int) -> float:
    """Microseconds per call, best of ``repeat`` rounds of about 0.2 s each."""
    timer = timeit.Timer(function)
    number, _ = timer.autorange()
    return min(timer.repeat(repeat=repeat, number=number)) / number * 1e6


def measure(repeat: int) -> list[dict[str, Any]]:
    rows = []
    for name, (body, structure_fn) in shapes().items():
        decoded = json.loads(body)
        row: dict[str, Any] = {
            "shape": name,
            "bytes": len(body),
            "json_us": best_us(lambda b=body: json.loads(b), repeat),  # type: ignore[misc]
            "orjson_us": None,
            "structure_us": best_us(lambda f=structure_fn, d=decoded: f(d), repeat),  # type: ignore[misc]
        }
        if orjson is not None:
            row["orjson_us"] = best_us(lambda b=body: orjson.loads(b), repeat)  # type: ignore[misc]
        rows.append(row)
    return rows


def render(rows: list[dict[str, Any]]) -> str:
    lines = [
        "| Answer | bytes | json.loads us | orjson.loads us | structure us "
        "| structure / json.loads | structure / orjson |",
        "|---|---:|---:|---:|---:|---:|---:|",
    ]
    for r in rows:
        orj, cost = r["orjson_us"], r["structure_us"]
        orj_us = "-" if orj is None else f"{orj:.1f}"
        orj_ratio = "-" if orj is None else f"{cost / orj:.2f}x"
        lines.append(
            f"| {r['shape']} | {r['bytes']:,} | {r['json_us']:.1f} | {orj_us} | {cost:.1f} | "
            f"{cost / r['json_us']:.2f}x | {orj_ratio} |"
        )
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.structuring",
                                     description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--repeat", type=int, default=7, help="rounds; the best is reported")
    parser.add_argument("--json", type=Path, default=None, help="also write the rows here")
    args = parser.parse_args(argv)
    rows = measure(max(1, args.repeat))
    print(render(rows))
    if args.json is not None:
        args.json.write_text(json.dumps(rows, indent=2) + "\n")


if __name__ == "__main__":
    main()
