"""CloudCX (Cloudfon).

Two ways in, exactly one configured: OAuth2 ``password`` grant at ``POST /oauth/token``
(application/x-www-form-urlencoded; refreshed when a refresh token is returned), or an
API key sent with every request as the access token.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any, Unpack

import attrs

from ..auth import APIKeyAuth, AuthStrategy, OAuth2PasswordGrant, require
from ..client import SessionOptions, VendorClient
from ..errors import ConfigurationError
from ..models import extra_field, key, model
from ..pagination import Page, Paginator, parse_page

__all__ = ["CloudCXClient", "User"]

USER_PAGE_PATH = "/openapi/v2/user/page"


@model
@attrs.frozen
class User:
    id: str | None = None
    user_name: str | None = key("userName", default=None)
    display_name: str | None = key("displayName", default=None)
    email: str | None = None
    extension_number: str | None = key("extensionNumber", default=None)
    status: str | None = None
    create_time: str | None = key("createTime", default=None)
    extra: dict[str, Any] = extra_field()


def _auth(
    client_id: str | None,
    client_secret: str | None,
    username: str | None,
    password: str | None,
    api_key: str | None,
    api_key_header: str,
    api_key_scheme: str,
) -> AuthStrategy:
    oauth = (client_id, client_secret, username, password)
    if api_key is not None and any(v is not None for v in oauth):
        raise ConfigurationError(
            "CloudCXClient: configure exactly one mode: api_key, or client_id + client_secret "
            "+ username + password (both were given)"
        )
    if api_key is not None:
        return APIKeyAuth(
            vendor="cloudcx",
            api_key=require("api_key", api_key),
            header_name=require("api_key_header", api_key_header),
            scheme=api_key_scheme,
        )
    if all(v is None for v in oauth):
        raise ConfigurationError(
            "CloudCXClient: configure api_key, or client_id + client_secret + username + password"
        )
    return OAuth2PasswordGrant(
        vendor="cloudcx",
        token_url="/oauth/token",
        client_id=require("client_id", client_id),
        client_secret=require("client_secret", client_secret),
        username=require("username", username),
        password=require("password", password),
        encoding="form",
    )


class CloudCXClient(VendorClient):
    """Async client for the CloudCX open API. ``base_url`` is your CloudCX server."""

    env_name = "CLOUDCX"

    def __init__(
        self,
        base_url: str,
        *,
        client_id: str | None = None,
        client_secret: str | None = None,
        username: str | None = None,
        password: str | None = None,
        api_key: str | None = None,
        api_key_header: str = "Authorization",
        api_key_scheme: str = "Bearer",
        **options: Unpack[SessionOptions],
    ) -> None:
        # The public docs cut off before naming the API key header: both are configurable.
        auth = _auth(client_id, client_secret, username, password, api_key,
                     api_key_header, api_key_scheme)
        super().__init__(base_url, auth, **options)

    async def get_user_page(
        self, *, page_index: int = 1, page_size: int = 25, keywords: str | None = None
    ) -> Page[User]:
        """``GET /openapi/v2/user/page``: one page of users (``page_index`` counts from 1)."""
        params: dict[str, str | int | float] = {"pageIndex": page_index, "pageSize": page_size}
        if keywords:
            params["keywords"] = keywords
        response = await self.request("GET", USER_PAGE_PATH, params=params)
        return parse_page(response.json(), User, page_index=page_index, page_size=page_size,
                          first_index=1, what="CloudCX user page", response=response)

    def iter_users(self, *, keywords: str | None = None, page_size: int = 100) -> Paginator[User]:
        """Every user, across all pages: ``async for user in client.iter_users()``.

        ``page_size`` is asked for; a server that serves fewer per page still yields
        every user once (see :mod:`vendorkit.pagination`)."""
        return Paginator(
            lambda index, size: self.get_user_page(
                page_index=index, page_size=size, keywords=keywords
            ),
            first_index=1,
            page_size=page_size,
            what="CloudCX users",
        )

    def iter_user_pages(
        self, *, keywords: str | None = None, page_size: int = 100, start: int = 1
    ) -> AsyncIterator[Page[User]]:
        """Every page of users from page ``start``: ``async for page in ...``."""
        return self.iter_users(keywords=keywords, page_size=page_size).pages(start=start)
