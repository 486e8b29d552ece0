"""Wokelo emulator: Django OAuth Toolkit token endpoint, company search, async enrichment.

The docs say the token endpoint takes form-data; a JSON or urlencoded body is refused the way
DOT refuses a body it cannot read grant_type from. Refreshing rotates the refresh token and,
as in DOT, revokes the access token it replaces. The seed's curl sends JSON where its prose
says form-data: the "json-login" variant is a server that takes only the curl's JSON.
"""

from __future__ import annotations

import itertools
import random
import time
import uuid
from functools import cache

import attrs
from aiohttp import web

from vendorkit.sandbox._core import (
    Call,
    Grant,
    OAuthDialect,
    Refusal,
    SandboxState,
    Variant,
    Vendor,
    api,
    auth,
    build_app,
    json_object,
    oauth_token_endpoint,
    refresh_variants,
    reply,
    seconds,
    token_variants,
)

SEARCH_BY = ("name", "domain", "permalink")
COMPANY_TYPES = ("all", "public", "private")
FAILING_COMPANY = "fail-me"
PENDING_FOR, PROCESSING_UNTIL = 0.1, 0.3  # seconds after creation
PREFIXES = (
    "Acme",
    "Nova",
    "Quantum",
    "Blue",
    "Vertex",
    "Helio",
    "Lumen",
    "Orbit",
    "Pine",
    "Silver",
    "Atlas",
    "Cobalt",
)
SUFFIXES = (
    "Labs",
    "AI",
    "Robotics",
    "Health",
    "Pay",
    "Grid",
    "Bio",
    "Logistics",
    "Analytics",
    "Energy",
)
INDUSTRIES = (
    "Software",
    "Fintech",
    "Healthcare",
    "Climate",
    "Logistics",
    "Semiconductors",
    "Biotech",
    "Retail",
    "Security",
    "Media",
)
PLACES = (
    ("US", "United States", ("San Francisco", "New York", "Austin", "Boston")),
    ("GB", "United Kingdom", ("London", "Cambridge")),
    ("DE", "Germany", ("Berlin",)),
    ("IN", "India", ("Bengaluru", "Pune")),
    ("FR", "France", ("Paris", "Lyon")),
)
ROUNDS = ("Seed", "Series A", "Series B", "Series C", "Series D")


def _token_fields(state: SandboxState, grant: Grant) -> dict[str, object]:
    assert grant.refresh is not None
    return {
        "access_token": grant.access.value,
        "expires_in": seconds(state.token_lifetime),
        "token_type": "Bearer",
        "scope": "read write",
        "refresh_token": grant.refresh.value,
    }


DIALECT = OAuthDialect(
    content_type="multipart/form-data",
    unreadable=(400, {"error": "unsupported_grant_type"}),
    unsupported=(400, {"error": "unsupported_grant_type"}),
    bad_client=(401, {"error": "invalid_client"}),
    bad_user=(400, {"error": "invalid_grant", "error_description": "Invalid credentials given."}),
    dead_refresh=(400, {"error": "invalid_grant"}),
    missing=lambda name: (
        400,
        {"error": "invalid_request", "error_description": f"Request is missing {name} parameter."},
    ),
    token_fields=_token_fields,
    rotation_revokes_access=True,
)


VARIANTS: dict[str, Variant] = {
    "json-login": Variant(
        "the token endpoint takes only the JSON of the seed's curl; multipart is answered 415",
        {"token_request": "json"},
    ),
    **refresh_variants(),
    **token_variants(renamed=("expires-in-camel", "expiresIn"), scope=True),
}


@attrs.frozen
class Company:
    name: str
    permalink: str
    domain: str
    founded_year: int
    public: bool
    ticker: str | None
    country_code: str
    country: str
    city: str
    industries: tuple[str, ...]
    last_round: tuple[str, int, str] | None  # type, amount in USD, announced on

    def to_json(self) -> dict[str, object]:
        funding = (
            None
            if self.last_round is None
            else dict(zip(("type", "amount_usd", "announced_on"), self.last_round, strict=True))
        )
        return {
            "name": self.name,
            "permalink": self.permalink,
            "short_description": f"{self.name} builds {self.industries[0].lower()} products.",
            "founded_year": self.founded_year,
            "ipo_status": "public" if self.public else "private",
            "hq": f"{self.city}, {self.country}",
            "industries": list(self.industries),
            "website": f"https://www.{self.domain}",
            "ticker": self.ticker,
            "country_code": self.country_code,
            "country": self.country,
            "domain": self.domain,
            "last_funding_round": funding,
        }

    def matches(self, query: str, search_by: str) -> bool:
        field = {"name": self.name, "domain": self.domain, "permalink": self.permalink}[search_by]
        return query.lower() in field.lower()


@cache
def companies() -> tuple[Company, ...]:
    """60 companies, the same on every run."""
    rng = random.Random("wokelo")
    names = rng.sample([f"{a} {b}" for a, b in itertools.product(PREFIXES, SUFFIXES)], 60)
    seeded = []
    for name in sorted(names):
        code, country, cities = rng.choice(PLACES)
        public = rng.random() < 0.25
        last_round = (
            None
            if public or rng.random() < 0.2
            else (
                rng.choice(ROUNDS),
                rng.randrange(1, 300) * 1_000_000,
                f"{rng.randint(2018, 2025)}-{rng.randint(1, 12):02d}-{rng.randint(1, 28):02d}",
            )
        )
        seeded.append(
            Company(
                name=name,
                permalink=name.lower().replace(" ", "-"),
                domain=name.lower().replace(" ", "") + ".com",
                founded_year=rng.randint(1990, 2022),
                public=public,
                ticker=name.replace(" ", "")[:4].upper() if public else None,
                country_code=code,
                country=country,
                city=rng.choice(cities),
                industries=tuple(rng.sample(INDUSTRIES, rng.randint(1, 3))),
                last_round=last_round,
            )
        )
    return tuple(seeded)


async def search(call: Call) -> web.StreamResponse:
    """GET /api/enterprise/company/search?query=&search_by=&company_type="""
    query = call.request.query
    text = query.get("query", "").strip()
    search_by, company_type = query.get("search_by", "name"), query.get("company_type", "all")
    if not text:
        return _error(400, "query is required")
    if search_by not in SEARCH_BY:
        return _error(400, f"search_by must be one of {', '.join(SEARCH_BY)}")
    if company_type not in COMPANY_TYPES:
        return _error(400, f"company_type must be one of {', '.join(COMPANY_TYPES)}")
    found = [
        c.to_json()
        for c in companies()
        if c.matches(text, search_by)
        and company_type in ("all", "public" if c.public else "private")
    ]
    return web.json_response({"status": "success", "data": found, "count": len(found)})


@attrs.frozen
class Enrichment:
    """One enrichment request; its status advances with time alone."""

    request_id: str
    company: str
    created: float = attrs.field(factory=time.monotonic)

    def status(self) -> str:
        age = time.monotonic() - self.created
        if age < PENDING_FOR:
            return "PENDING"
        if age < PROCESSING_UNTIL:
            return "PROCESSING"
        return "FAILED" if self.company.lower() == FAILING_COMPANY else "COMPLETED"


REQUESTS = web.AppKey("wokelo_requests", dict[str, Enrichment])


async def enrich(call: Call) -> web.StreamResponse:
    """POST /api/enterprise/company/enrich/ with JSON {"company": name, permalink or domain}."""
    request = call.request
    if request.content_type != "application/json":
        detail = f'Unsupported media type "{request.content_type}" in request.'
        return reply(415, {"detail": detail})
    body = await json_object(request)
    company = body.get("company") if body is not None else None
    if not isinstance(company, str) or not company.strip():
        return _error(400, "company is required")
    job = Enrichment(str(uuid.uuid4()), company.strip())
    request.app[REQUESTS][job.request_id] = job
    return reply(202, {"request_id": job.request_id, "status": "PENDING"})


async def request_status(call: Call) -> web.StreamResponse:
    """GET /api/enterprise/request/status/?request_id="""
    job = _job(call)
    if isinstance(job, web.Response):
        return job
    return web.json_response({"request_id": job.request_id, "status": job.status()})


async def request_result(call: Call) -> web.StreamResponse:
    """GET /api/enterprise/request/result/?request_id= (409 until it has finished)."""
    job = _job(call)
    if isinstance(job, web.Response):
        return job
    status = job.status()
    if status in ("PENDING", "PROCESSING"):
        return _error(409, "Request not completed")
    if status == "FAILED":
        return web.json_response(
            {
                "request_id": job.request_id,
                "status": status,
                "data": None,
                "message": f"Enrichment failed for {job.company!r}",
            }
        )
    return web.json_response(
        {"request_id": job.request_id, "status": status, "data": enrichment(job.company)}
    )


def enrichment(company: str) -> dict[str, object]:
    """What an enrichment returns: the seeded company if known, else one made up for the name."""
    wanted = company.lower()
    known = [c for c in companies() if wanted in (c.name.lower(), c.permalink, c.domain)]
    rng = random.Random(f"wokelo:{wanted}")
    profile = known[0].to_json() if known else {"name": company, "ipo_status": "private"}
    return profile | {
        "employee_count": rng.randint(10, 20_000),
        "revenue_range_usd": rng.choice(("<1M", "1M-10M", "10M-50M", "50M-250M", ">250M")),
        "competitors": [c.name for c in rng.sample(companies(), 3)],
        "summary": f"{profile['name']} is a company tracked by the Wokelo sandbox.",
    }


def _job(call: Call) -> Enrichment | web.Response:
    request_id = call.request.query.get("request_id", "")
    if not request_id:
        return _error(400, "request_id is required")
    job = call.request.app[REQUESTS].get(request_id)
    return job if job is not None else _error(404, "Request not found")


def _error(status: int, message: str) -> web.Response:
    return reply(status, {"status": "error", "message": message})


def reject(refusal: Refusal) -> web.Response:
    return reply(
        401,
        {"detail": "Authentication credentials were not provided."},
        **{"WWW-Authenticate": 'Bearer realm="api"'},
    )


def make_app(state: SandboxState) -> web.Application:
    app = build_app(
        state,
        [
            auth("POST", "/auth/token/", oauth_token_endpoint(DIALECT)),
            api("GET", "/api/enterprise/company/search", search),
            api("POST", "/api/enterprise/company/enrich/", enrich),
            api("GET", "/api/enterprise/request/status/", request_status),
            api("GET", "/api/enterprise/request/result/", request_result),
        ],
        reject,
    )
    app[REQUESTS] = {}
    return app


VENDOR = Vendor(
    name="wokelo",
    credentials={
        "client_id": "wk-sandbox-client",
        "client_secret": "WH7qPPrCyB9dBZF7TyUMqMnT_Hl85bVb",
        "username": "analyst@sandbox.test",
        "password": "rjl7N_X5Wgwih8YgxUF3",
    },
    token_lifetime=2628288,
    make_app=make_app,
    variants=VARIANTS,
)
