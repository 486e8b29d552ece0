"""Variants: named ways a real server may answer where the seeds are silent, declared as data.

Each vendor module declares ``VARIANTS``: a name -> :class:`Variant` mapping, each variant a
description and the :class:`Settings` it turns. Selected variants are merged over the
vendor's own settings into one ``Settings`` that the handlers read. With none selected an
emulator answers as its seed says; every knob's default is "no quirk".
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Literal

import attrs

TokenStyle = Literal["opaque", "jwt"]
PageStyle = Literal["cloudcx", "spring", "records", "list", "bare"]
RefreshRefusal = Literal["invalid_grant", "invalid_request", "token_not_valid"]
Lifetime = Literal["number", "suffixed", "empty", "true"]
Organizations = Literal["list", "object", "envelope", "null"]


@attrs.frozen(kw_only=True)
class Settings:
    """Every knob a variant may turn; the defaults are the seeds' behaviour."""

    # --- tokens (None: the vendor's declaration) ---
    token_lifetime: float | None = None
    token_style: TokenStyle | None = None
    #: OAuth: the login answer carries a refresh token (CloudCX's seed answer has none).
    refresh_token: bool = True
    #: How a token endpoint words a refused (dead) refresh token.
    refresh_refusal: RefreshRefusal = "invalid_grant"
    #: OAuth: the token request body the endpoint reads ("dialect": the vendor's own type).
    token_request: Literal["dialect", "json"] = "dialect"
    #: Cloud4Wi: the token in an ``Authorization`` response header too, not only the body.
    token_in_header: bool = False
    #: The lifetime field: a number of seconds, "3599s", "" or true.
    lifetime: Lifetime = "number"
    #: Rename the lifetime field (e.g. ``expiresIn`` beside ``access_token``).
    lifetime_key: str | None = None
    token_type_null: bool = False
    scope_list: bool = False
    #: The whole token answer inside ``{"data": {...}}``.
    wrapped: bool = False
    # --- listings ---
    #: The most rows a page holds whatever size is asked (the envelope says so).
    page_cap: int | None = None
    #: The page envelope (None: the vendor's own).
    page_style: PageStyle | None = None
    #: Cloud4Wi: the organizations answer: a list, one object, an envelope, {"data": null}.
    organizations: Organizations = "list"
    #: Cloud4Wi: a customer id this key may not read: a lasting 403 with a valid token.
    forbidden_cid: str | None = None


@attrs.frozen
class Variant:
    """One undocumented point answered one plausible way."""

    description: str
    settings: Mapping[str, object] = attrs.field(factory=dict)

    def __attrs_post_init__(self) -> None:
        Settings(**self.settings)  # type: ignore[arg-type]  # an unknown knob fails at import


def merge_settings(
    vendor: str,
    base: Mapping[str, object],
    declared: Mapping[str, Variant],
    names: Iterable[str],
) -> Settings:
    """The vendor's settings with the named variants applied; ValueError on an unknown
    name or two variants turning one knob two ways."""
    merged: dict[str, object] = dict(base)
    chosen: dict[str, str] = {}
    for name in names:
        if name not in declared:
            known = ", ".join(sorted(declared)) or "none"
            raise ValueError(f"unknown {vendor} variant {name!r}; {vendor} variants: {known}")
        for knob, value in declared[name].settings.items():
            if knob in chosen and merged[knob] != value:
                raise ValueError(f"{vendor} variants {chosen[knob]!r} and {name!r} both set {knob}")
            merged[knob], chosen[knob] = value, name
    return Settings(**merged)  # type: ignore[arg-type]


def variant_names(selection: str | Iterable[str] | None) -> tuple[str, ...]:
    """A selection as a tuple of names: one name, several, or none."""
    if selection is None:
        return ()
    names = (selection,) if isinstance(selection, str) else tuple(selection)
    return tuple(dict.fromkeys(names))


def token_variants(*, renamed: tuple[str, str] | None, scope: bool) -> dict[str, Variant]:
    """A token answer's odd optional fields, as each vendor with such an answer may send them.

    ``renamed``: (variant name, key) moving the lifetime to another key style; ``scope``:
    whether the answer has a scope to send as a list.
    """
    variants = {
        "expires-in-suffixed": Variant(
            'the lifetime as a string with a unit: "3599s"', {"lifetime": "suffixed"}
        ),
        "expires-in-empty": Variant('the lifetime as an empty string ""', {"lifetime": "empty"}),
        "expires-in-true": Variant("the lifetime as JSON true", {"lifetime": "true"}),
        "token-type-null": Variant("token_type: null", {"token_type_null": True}),
        "data-wrapped": Variant('the token answer inside {"data": {...}}', {"wrapped": True}),
    }
    if renamed is not None:
        name, key = renamed
        variants[name] = Variant(f"the lifetime under {key!r}", {"lifetime_key": key})
    if scope:
        variants["scope-list"] = Variant(
            'scope as a JSON list: ["read", "write"]', {"scope_list": True}
        )
    return variants


def refresh_variants(extra: Mapping[str, object] | None = None) -> dict[str, Variant]:
    """The ways a token endpoint may refuse a dead refresh token, one variant each;
    ``extra`` settings go with each (CloudCX must first issue refresh tokens)."""
    refusals = {
        "refresh-refused-401-detail": (
            "token_not_valid",
            '401 {"detail": "Token is invalid or expired", "code": "token_not_valid"}',
        ),
        "refresh-refused-invalid-request": ("invalid_request", '400 {"error": "invalid_request"}'),
        "refresh-refused-invalid-grant": ("invalid_grant", '400 {"error": "invalid_grant"}'),
    }
    return {
        name: Variant(
            f"a dead refresh token refused {answer}", {**(extra or {}), "refresh_refusal": refusal}
        )
        for name, (refusal, answer) in refusals.items()
    }
