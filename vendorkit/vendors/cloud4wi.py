"""Cloud4Wi Explore.

Login: ``POST /v1/sts/login/services`` with JSON ``{"clientKey", "clientSecret"}`` ->
``{"token": "<JWT>"}``; the JWT's ``exp`` gives its lifetime, else one day. Logout:
``POST /v1/sts/logout`` with the token. An expired token is answered 403, not 401.
"""

from __future__ import annotations

from typing import Any, Unpack

import attrs

from ..auth import JSONLogin, require
from ..client import SessionOptions, VendorClient
from ..models import ItemList, extra_field, model, structure_list

__all__ = ["Cloud4WiClient", "Organization"]

BASE_URL = "https://explore.cloud4wi.com"
TOKEN_LIFETIME = 86_400  # "The JWT token expires after one day"


@model
@attrs.frozen
class Organization:
    """An organization of a Cloud4Wi customer. The body is not publicly documented: the
    known fields are typed, everything else is kept in ``extra``."""

    id: str | None = None
    name: str | None = None
    cid: str | None = None
    created: str | None = None
    #: Creation time in epoch milliseconds (what ``sortBy=created_absolute`` sorts on).
    created_absolute: int | None = None
    updated: str | None = None
    status: str | None = None
    tags: list[str] = attrs.field(factory=list)
    extra: dict[str, Any] = extra_field()


class Cloud4WiClient(VendorClient):
    """Async client for the Cloud4Wi Explore API."""

    env_name = "CLOUD4WI"

    def __init__(
        self,
        client_key: str,
        client_secret: str,
        base_url: str = BASE_URL,
        **options: Unpack[SessionOptions],
    ) -> None:
        auth = JSONLogin(
            vendor="cloud4wi",
            login_path="/v1/sts/login/services",
            body={
                "clientKey": require("client_key", client_key),
                "clientSecret": require("client_secret", client_secret),
            },
            identity_field="clientKey",
            default_lifetime=TOKEN_LIFETIME,
            logout_path="/v1/sts/logout",
            rejection_statuses=frozenset({401, 403}),  # 403 = expired token
        )
        super().__init__(base_url, auth, **options)

    async def get_organizations(
        self, cid: str, *, sort_by: str = "created_absolute", sort_reverse: bool = False
    ) -> ItemList[Organization]:
        """``GET /v2/customers/organizations/{cid}``: the customer's organizations.

        The answer may be a list, one object or an envelope; an organization that cannot
        be read at all is logged and kept, raw, in the result's ``skipped``."""
        response = await self.request(
            "GET",
            "/v2/customers/organizations/{cid}",
            path_params={"cid": require("cid", cid)},
            params={"sortBy": sort_by, "sortReverse": "true" if sort_reverse else "false"},
        )
        return structure_list(response.json(), Organization, what="organizations",
                              response=response)
