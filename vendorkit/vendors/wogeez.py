"""Wogeez, behind Keycloak (OpenID Connect).

Every auth endpoint comes from ``{issuer}/.well-known/openid-configuration``: the password
grant and the rotating refresh grant at ``token_endpoint``, logout at
``end_session_endpoint``, RFC 7009 revocation at ``revocation_endpoint``.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any, Unpack

import attrs

from ..auth import OIDCPasswordGrant, require
from ..client import SessionOptions, VendorClient
from ..models import extra_field, key, model, structure
from ..pagination import Page, Paginator, parse_page
from ..urls import check_base_url

__all__ = [
    "Company",
    "FilterDefinition",
    "FilterParameter",
    "Resource",
    "SearchFilter",
    "SearchFilters",
    "WogeezClient",
]

ISSUER = "https://auth.wogeez.com/realms/wogeez"
API_BASE_URL = "https://api-v2.wogeez.com"


@model
@attrs.frozen
class FilterParameter:
    name: str | None = None
    value: str | None = None
    count: int | None = None
    extra: dict[str, Any] = extra_field()


@model
@attrs.frozen
class FilterDefinition:
    type: str | None = None
    parameters: list[FilterParameter] = attrs.field(factory=list)
    extra: dict[str, Any] = extra_field()


@model
@attrs.frozen
class SearchFilter:
    field: str
    definition: FilterDefinition = attrs.field(factory=FilterDefinition)
    scope: str | None = None
    extra: dict[str, Any] = extra_field()


@model
@attrs.frozen
class SearchFilters:
    items: list[SearchFilter]
    extra: dict[str, Any] = extra_field()


@model
@attrs.frozen
class Company:
    id: str | None = None
    name: str | None = None
    country: str | None = None
    sector: str | None = None
    website: str | None = None
    founded_year: int | None = key("foundedYear", default=None)
    extra: dict[str, Any] = extra_field()


#: A search hit; today the search returns companies.
Resource = Company


class WogeezClient(VendorClient):
    """Async client for the Wogeez API; logs in against any OpenID Connect server."""

    env_name = "WOGEEZ"

    def __init__(
        self,
        username: str,
        password: str,
        *,
        client_id: str = "wogeez-api",
        client_secret: str | None = None,
        issuer: str = ISSUER,
        api_base_url: str = API_BASE_URL,
        **options: Unpack[SessionOptions],
    ) -> None:
        insecure = bool(options.get("allow_insecure_http", False))
        auth = OIDCPasswordGrant(
            vendor="wogeez",
            issuer=check_base_url("issuer", issuer, allow_insecure_http=insecure),
            client_id=require("client_id", client_id),
            client_secret=(
                None if client_secret is None else require("client_secret", client_secret)
            ),
            username=require("username", username),
            password=require("password", password),
            allow_insecure_http=insecure,
        )
        api_base_url = check_base_url("api_base_url", api_base_url, allow_insecure_http=insecure)
        super().__init__(api_base_url, auth, **options)

    async def get_search_filters(self) -> SearchFilters:
        """``GET /resources/search/filters``: each filterable field and its values."""
        response = await self.request("GET", "/resources/search/filters")
        return structure(response.json(), SearchFilters, what="search filters",
                         response=response)

    async def search_resources(
        self, *, page: int = 0, size: int = 20, **filters: str
    ) -> Page[Resource]:
        """``GET /resources/search?field=value&...``: one page of matches (``page`` from 0)."""
        params: dict[str, str | int | float] = {**filters, "page": page, "size": size}
        response = await self.request("GET", "/resources/search", params=params)
        return parse_page(response.json(), Resource, page_index=page, page_size=size,
                          first_index=0, what="Wogeez search page", response=response)

    async def list_companies(self, *, page: int = 0, size: int = 20) -> Page[Company]:
        """``GET /companies``: one page of companies (``page`` from 0)."""
        response = await self.request("GET", "/companies", params={"page": page, "size": size})
        return parse_page(response.json(), Company, page_index=page, page_size=size,
                          first_index=0, what="Wogeez company page", response=response)

    def iter_companies(self, *, size: int = 100) -> Paginator[Company]:
        """Every company, across all pages."""
        return Paginator(lambda index, page_size: self.list_companies(page=index, size=page_size),
                         first_index=0, page_size=size, what="Wogeez companies")

    def iter_company_pages(
        self, *, size: int = 100, start: int = 0
    ) -> AsyncIterator[Page[Company]]:
        """Every page of companies from page ``start``."""
        return self.iter_companies(size=size).pages(start=start)
