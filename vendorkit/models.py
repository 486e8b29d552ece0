"""Typed models: one cattrs converter, configured once, for every vendor's JSON.

Vendors document their answers loosely, so models are tolerant: a field's JSON key is
its name unless declared with :func:`key`; a missing optional field takes its default;
and every key a model does not know is kept in its ``extra`` mapping (when it has
one, declared with :func:`extra_field`) instead of failing the call.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, TypeVar

import attrs
import cattrs
from cattrs.gen import make_dict_structure_fn, override

from .errors import ResponseParseError

__all__ = ["converter", "extra_field", "key", "model", "structure", "structure_list"]

T = TypeVar("T")

converter = cattrs.Converter(forbid_extra_keys=False)

_EXTRA_KEY = "\0extra"


def _mapping(value: object) -> Mapping[str, Any]:
    if not isinstance(value, Mapping):
        raise TypeError(f"expected a JSON object, got {type(value).__name__}")
    return value


def key(name: str, **kwargs: Any) -> Any:
    """An attrs field read from the JSON key ``name`` (e.g. ``userName``)."""
    metadata = {**kwargs.pop("metadata", {}), "json_key": name}
    return attrs.field(metadata=metadata, **kwargs)


def extra_field() -> Any:
    """The field that collects every JSON key the model does not declare."""
    return attrs.field(factory=dict, metadata={"json_extra": True})


def model(cls: type[T]) -> type[T]:
    """Register an attrs class with the converter (keys, defaults, ``extra``)."""
    fields = attrs.fields(cls)  # type: ignore[arg-type]
    overrides = {}
    known: set[str] = set()
    extra_name = None
    for field in fields:
        if field.metadata.get("json_extra"):
            extra_name = field.name
            overrides[field.name] = override(rename=_EXTRA_KEY)
            continue
        json_key = field.metadata.get("json_key", field.name)
        known.add(json_key)
        if json_key != field.name:
            overrides[field.name] = override(rename=json_key)
    base = make_dict_structure_fn(cls, converter, **overrides)  # type: ignore[arg-type]

    if extra_name is None:
        def structure_hook(value: Any, _: Any) -> T:
            return base(_mapping(value), cls)
    else:
        def structure_hook(value: Any, _: Any) -> T:
            data = _mapping(value)
            extra = {k: v for k, v in data.items() if k not in known}
            return base({**data, _EXTRA_KEY: extra}, cls)

    converter.register_structure_hook(cls, structure_hook)
    return cls


def structure(value: Any, cls: type[T], *, what: str = "") -> T:
    """JSON -> model; a :class:`ResponseParseError` (never a cattrs error) when it does not fit."""
    try:
        return converter.structure(value, cls)
    except (cattrs.BaseValidationError, TypeError, ValueError, KeyError, AttributeError) as exc:
        name = getattr(cls, "__name__", str(cls))
        raise ResponseParseError(
            f"{what or 'answer'} does not fit {name}: {_summary(exc)}"
        ) from None


def _summary(exc: BaseException) -> str:
    if isinstance(exc, cattrs.BaseValidationError):
        leaves = [e for e in exc.exceptions if not isinstance(e, cattrs.BaseValidationError)]
        nested = [e for e in exc.exceptions if isinstance(e, cattrs.BaseValidationError)]
        for group in nested:
            leaves.extend(group.exceptions)
        notes = [
            "; ".join(getattr(e, "__notes__", []) or [type(e).__name__]) for e in leaves[:3]
        ]
        return ", ".join(notes) or exc.message
    return type(exc).__name__


_LIST_KEYS = ("data", "items", "results", "list", "records", "rows", "content")


def structure_list(value: Any, cls: type[T], *, what: str = "") -> list[T]:
    """A JSON list of models, bare or under a common envelope key (``data``, ``items``...)."""
    if isinstance(value, Mapping):
        for name in _LIST_KEYS:
            if isinstance(value.get(name), list):
                value = value[name]
                break
    if not isinstance(value, list):
        raise ResponseParseError(
            f"{what or 'answer'}: expected a JSON list, got {type(value).__name__}"
        )
    return [structure(item, cls, what=what) for item in value]
