"""CambyoPro cloudbreak.

Login: ``POST /api/no-auth/authentication/v1/login`` with JSON ``{"clientId",
"clientSecret"}`` -> ``{"success", "accessToken", "tokenType", "message", "expiresIn"}``.
No logout and no other endpoint is publicly documented: use :meth:`request`.
"""

from __future__ import annotations

from typing import Unpack

from ..auth import JSONLogin, require
from ..client import SessionOptions, VendorClient

__all__ = ["CambyoProClient"]

BASE_URL = "https://cloudbreak.cambyopro.com"
TOKEN_LIFETIME = 86_400  # "the access token is valid for 24 hours"


class CambyoProClient(VendorClient):
    """Async client for CambyoPro cloudbreak; every documented request needs its Bearer token."""

    env_name = "CAMBYOPRO"

    def __init__(
        self,
        client_id: str,
        client_secret: str,
        base_url: str = BASE_URL,
        **options: Unpack[SessionOptions],
    ) -> None:
        auth = JSONLogin(
            vendor="cambyopro",
            login_path="/api/no-auth/authentication/v1/login",
            body={
                "clientId": require("client_id", client_id),
                "clientSecret": require("client_secret", client_secret),
            },
            identity_field="clientId",
            default_lifetime=TOKEN_LIFETIME,
        )
        super().__init__(base_url, auth, **options)
