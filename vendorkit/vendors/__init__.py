"""One module per vendor: base URL, login shape, typed models, endpoint methods."""

from __future__ import annotations

from ..client import VendorClient
from .cambyopro import CambyoProClient
from .cloud4wi import Cloud4WiClient
from .cloudcx import CloudCXClient
from .wogeez import WogeezClient
from .wokelo import WokeloClient

__all__ = ["CLIENTS", "CambyoProClient", "Cloud4WiClient", "CloudCXClient", "WogeezClient",
           "WokeloClient"]

#: Every client by its vendor name, as the CLI and the sandbox name them.
CLIENTS: dict[str, type[VendorClient]] = {
    "cloud4wi": Cloud4WiClient,
    "wokelo": WokeloClient,
    "cloudcx": CloudCXClient,
    "cambyopro": CambyoProClient,
    "wogeez": WogeezClient,
}
