"""Wokelo.

Login: ``POST /auth/token/`` as multipart/form-data with client_id, client_secret,
username, password and ``grant_type=password`` -> an OAuth2 token with a refresh token.
No revocation endpoint is documented.
"""

from __future__ import annotations

import asyncio
import time
from typing import Any, Unpack

import attrs

from ..auth import OAuth2PasswordGrant, require
from ..client import SessionOptions, VendorClient
from ..errors import TimeoutError
from ..models import extra_field, model, structure

__all__ = [
    "Company",
    "CompanySearch",
    "RequestResult",
    "RequestStatus",
    "WokeloClient",
]

BASE_URL = "https://api.wokelo.ai"
FINAL_STATUSES = frozenset({"COMPLETED", "FAILED", "CANCELLED"})


@model
@attrs.frozen
class Company:
    name: str
    permalink: str | None = None
    short_description: str | None = None
    founded_year: int | None = None
    ipo_status: str | None = None
    hq: str | None = None
    industries: list[str] = attrs.field(factory=list)
    website: str | None = None
    ticker: str | None = None
    country_code: str | None = None
    country: str | None = None
    domain: str | None = None
    last_funding_round: dict[str, Any] | None = None
    extra: dict[str, Any] = extra_field()


@model
@attrs.frozen
class CompanySearch:
    status: str
    data: list[Company]
    count: int | None = None
    extra: dict[str, Any] = extra_field()


@model
@attrs.frozen
class RequestStatus:
    """Where an asynchronous request stands: PENDING, PROCESSING, COMPLETED, FAILED, CANCELLED."""

    request_id: str
    status: str
    extra: dict[str, Any] = extra_field()

    @property
    def done(self) -> bool:
        return self.status.upper() in FINAL_STATUSES


@model
@attrs.frozen
class RequestResult:
    request_id: str
    status: str
    data: dict[str, Any] | None = None
    extra: dict[str, Any] = extra_field()


class WokeloClient(VendorClient):
    """Async client for the Wokelo enterprise API."""

    env_name = "WOKELO"

    def __init__(
        self,
        client_id: str,
        client_secret: str,
        username: str,
        password: str,
        base_url: str = BASE_URL,
        **options: Unpack[SessionOptions],
    ) -> None:
        auth = OAuth2PasswordGrant(
            vendor="wokelo",
            token_url="/auth/token/",
            client_id=require("client_id", client_id),
            client_secret=require("client_secret", client_secret),
            username=require("username", username),
            password=require("password", password),
            # The docs' prose says "Submit the following parameters as form-data"; their
            # curl example sends JSON. Multipart first; JSON if the server refuses it.
            encoding="multipart",
            fallback_encoding="json",
        )
        super().__init__(base_url, auth, **options)

    async def logout(self) -> bool:
        """Forget the token here and in the token store. Wokelo documents no revocation
        endpoint, so the token stays valid at Wokelo until it expires. Returns False."""
        return await super().logout()

    async def search_companies(
        self, query: str, *, search_by: str = "name", company_type: str = "all"
    ) -> CompanySearch:
        """``GET /api/enterprise/company/search``."""
        response = await self.request(
            "GET",
            "/api/enterprise/company/search",
            params={"query": query, "search_by": search_by, "company_type": company_type},
        )
        return structure(response.json(), CompanySearch, what="company search",
                         response=response)

    async def enrich_company(self, company: str) -> RequestStatus:
        """``POST /api/enterprise/company/enrich/``: starts an asynchronous enrichment."""
        response = await self.request(
            "POST", "/api/enterprise/company/enrich/", json={"company": require("company", company)}
        )
        # If the answer does not fit, the job was still created: the error's
        # ``response.json()`` holds what the server said, its id included.
        return structure(response.json(), RequestStatus, what="enrichment request",
                         response=response)

    async def get_request_status(self, request_id: str) -> RequestStatus:
        """``GET /api/enterprise/request/status/?request_id=``."""
        response = await self.request(
            "GET", "/api/enterprise/request/status/", params={"request_id": request_id}
        )
        return structure(response.json(), RequestStatus, what="request status",
                         response=response)

    async def get_request_result(self, request_id: str) -> RequestResult:
        """``GET /api/enterprise/request/result/?request_id=`` (a completed request's data)."""
        response = await self.request(
            "GET", "/api/enterprise/request/result/", params={"request_id": request_id}
        )
        return structure(response.json(), RequestResult, what="request result",
                         response=response)

    async def wait_for_request(
        self,
        request_id: str,
        *,
        poll_interval: float = 2.0,
        timeout: float = 600.0,  # noqa: ASYNC109 - a deadline for the whole polling
    ) -> RequestStatus:
        """Poll until the request is COMPLETED, FAILED or CANCELLED; returns that status.

        Raises :class:`vendorkit.TimeoutError` if it is still running after ``timeout``.
        """
        deadline = time.monotonic() + timeout
        while True:
            status = await self.get_request_status(request_id)
            if status.done:
                return status
            if time.monotonic() + poll_interval > deadline:
                raise TimeoutError(
                    f"Wokelo request {request_id} still {status.status} after {timeout:.0f} s"
                )
            await asyncio.sleep(poll_interval)
