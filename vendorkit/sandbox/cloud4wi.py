"""Cloud4Wi emulator: JSON login for an HS256 JWT, logout, organizations of a customer.

Unlike the others, Cloud4Wi answers 403 (not 401) once a token has expired. As the seed
shows, the token comes in the JSON body only. The seed shows no organizations answer:
by default a JSON list; the variants answer other plausible ways.
"""

from __future__ import annotations

import datetime
import random
import uuid

import attrs
from aiohttp import web

from vendorkit.sandbox._core import (
    Call,
    Refusal,
    SandboxState,
    Variant,
    Vendor,
    api,
    auth,
    build_app,
    json_object,
    refuse,
    reply,
    token_reply,
    token_variants,
)

LOGIN_FIELDS = ("clientKey", "clientSecret")
SORT_KEYS = ("created_absolute", "name")
TAGS = ("retail", "hospitality", "stadium", "airport", "pilot", "emea", "us", "franchise")
BRANDS = ("Aurora", "Bellavista", "Cortina", "Dolomiti", "Etna", "Fiorano", "Garda", "Ischia")
KINDS = ("Cafes", "Hotels", "Outlets", "Malls", "Arenas", "Markets", "Lounges")
#: The customer id the "forbidden-cid" variant refuses this key (a lasting 403).
FORBIDDEN_CID = "cid-forbidden"

VARIANTS: dict[str, Variant] = {
    "token-in-header": Variant(
        "the token in an Authorization response header as well as the body",
        {"token_in_header": True},
    ),
    "single-object": Variant(
        "organizations answered as one JSON object (the first), not a list",
        {"organizations": "object"},
    ),
    "envelope": Variant(
        'organizations inside {"code": 0, "data": {"records": [...]}}',
        {"organizations": "envelope"},
    ),
    "null-data": Variant('organizations answered {"data": null}', {"organizations": "null"}),
    "forbidden-cid": Variant(
        f"customer {FORBIDDEN_CID!r} is answered 403 with a valid token, lastingly",
        {"forbidden_cid": FORBIDDEN_CID},
    ),
    # The seed's answer has no optional field to be odd; it may still come wrapped.
    "data-wrapped": token_variants(renamed=None, scope=False)["data-wrapped"],
}


async def login(call: Call) -> web.StreamResponse:
    """POST /v1/sts/login/services: {"clientKey", "clientSecret"} as JSON, nothing else."""
    state, request = call.state, call.request
    if request.content_type != "application/json":
        return refuse(state, (415, {"error": "Unsupported Media Type: use application/json"}))
    body = await json_object(request)
    if body is None:
        return refuse(state, (400, {"error": "Request body must be a JSON object"}))
    for field in LOGIN_FIELDS:
        if not isinstance(body.get(field), str) or not body[field]:
            return refuse(state, (400, {"error": f"Missing required field: {field}"}))
    unexpected = sorted(set(body) - set(LOGIN_FIELDS))
    if unexpected:
        return refuse(state, (400, {"error": f"Unexpected field: {unexpected[0]}"}))
    expected = (state.credentials["client_key"], state.credentials["client_secret"])
    if (body["clientKey"], body["clientSecret"]) != expected:
        return refuse(state, (401, {"error": "Invalid clientKey or clientSecret"}))
    token = state.login(expected[0]).access.value
    if state.settings.token_in_header:
        return token_reply(state, {"token": token}, Authorization=f"Bearer {token}")
    return token_reply(state, {"token": token})


async def logout(call: Call) -> web.StreamResponse:
    """POST /v1/sts/logout: revokes the bearer token."""
    call.state.revoke(call.bearer.value)
    call.state.counters.logouts += 1
    return reply(200, {"message": "Token revoked"})


async def organizations(call: Call) -> web.StreamResponse:
    """GET /v2/customers/organizations/{cid}?sortBy=&sortReverse="""
    cid, query = call.request.match_info["cid"], call.request.query
    sort_by = query.get("sortBy", "created_absolute")
    if sort_by not in SORT_KEYS:
        return reply(400, {"error": f"Invalid sortBy: must be one of {', '.join(SORT_KEYS)}"})
    reverse = query.get("sortReverse", "false")
    if reverse not in ("true", "false"):
        return reply(400, {"error": "Invalid sortReverse: must be true or false"})
    if cid == "missing":
        return reply(404, {"error": "Customer not found"})
    settings = call.state.settings
    if cid == settings.forbidden_cid:
        return reply(403, {"error": "Forbidden: no access to this customer"})
    orgs = sorted(
        seed_organizations(cid), key=lambda org: org.sort_key(sort_by), reverse=reverse == "true"
    )
    rows = [org.to_json() for org in orgs]
    if settings.organizations == "object":
        return web.json_response(rows[0])
    if settings.organizations == "envelope":
        return web.json_response({"code": 0, "data": {"records": rows}})
    if settings.organizations == "null":
        return web.json_response({"data": None})
    return web.json_response(rows)


@attrs.frozen
class Organization:
    id: str
    name: str
    cid: str
    created_ms: int
    updated_ms: int
    status: str
    tags: tuple[str, ...]
    color: str

    def sort_key(self, sort_by: str) -> str | int:
        return self.name if sort_by == "name" else self.created_ms

    def to_json(self) -> dict[str, object]:
        return {
            "id": self.id,
            "name": self.name,
            "cid": self.cid,
            "created": _iso(self.created_ms),
            "created_absolute": self.created_ms,
            "updated": _iso(self.updated_ms),
            "status": self.status,
            "tags": list(self.tags),
            "portalTheme": {
                "primaryColor": self.color,
                "layout": "split",
                "logoUrl": f"https://cdn.cloud4wi.test/logos/{self.id}.png",
            },
        }


def seed_organizations(cid: str) -> list[Organization]:
    """3 to 7 organizations, the same for a given cid on every run."""
    rng = random.Random(f"cloud4wi:{cid}")
    orgs = []
    for _ in range(rng.randint(3, 7)):
        created = 1_600_000_000_000 + rng.randrange(150_000_000_000)
        orgs.append(
            Organization(
                id=str(uuid.UUID(int=rng.getrandbits(128), version=4)),
                name=f"{rng.choice(BRANDS)} {rng.choice(KINDS)} {rng.randint(1, 99)}",
                cid=cid,
                created_ms=created,
                updated_ms=created + rng.randrange(10_000_000_000),
                status=rng.choice(("active", "active", "active", "suspended")),
                tags=tuple(rng.sample(TAGS, rng.randint(0, 3))),
                color=f"#{rng.randrange(0x1000000):06x}",
            )
        )
    return orgs


def _iso(epoch_ms: int) -> str:
    moment = datetime.datetime.fromtimestamp(epoch_ms / 1000, tz=datetime.UTC)
    return moment.strftime("%Y-%m-%dT%H:%M:%S.") + f"{epoch_ms % 1000:03d}Z"


def reject(refusal: Refusal) -> web.Response:
    if refusal == "expired":
        return reply(403, {"error": "Token expired"})
    return reply(401, {"error": "Unauthorized"})


def make_app(state: SandboxState) -> web.Application:
    return build_app(
        state,
        [
            auth("POST", "/v1/sts/login/services", login),
            auth("POST", "/v1/sts/logout", logout, protected=True),
            api("GET", "/v2/customers/organizations/{cid}", organizations),
        ],
        reject,
    )


VENDOR = Vendor(
    name="cloud4wi",
    credentials={"client_key": "ck-sandbox", "client_secret": "cs_Yfi8JTUp9Yl6Fugd7j5La4aQZ0wd5"},
    token_lifetime=86400,
    make_app=make_app,
    token_style="jwt",
    variants=VARIANTS,
)
