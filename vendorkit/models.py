"""Typed models: one cattrs converter, configured once, for every vendor's JSON.

Vendors document their answers loosely, so models are tolerant: a field's JSON key is
its name unless declared with :func:`key`; a missing optional field takes its default;
and every key a model does not know is kept in its ``extra`` mapping (when it has
one, declared with :func:`extra_field`) instead of failing the call.
"""

from __future__ import annotations

import types
import typing
from collections.abc import Callable, Mapping
from typing import Any, TypeVar

import attrs
import cattrs
from cattrs.gen import make_dict_structure_fn, override

from .errors import ResponseParseError

__all__ = ["converter", "extra_field", "key", "model", "structure", "structure_list"]

T = TypeVar("T")

converter = cattrs.Converter(forbid_extra_keys=False)


def _is_optional(type_: Any) -> bool:
    args = typing.get_args(type_)
    return (
        typing.get_origin(type_) in (typing.Union, types.UnionType)
        and len(args) == 2
        and type(None) in args
    )


def _optional_hook(type_: Any) -> Callable[[Any, Any], Any]:
    """``X | None``: X's hook looked up once, when the model is registered.

    cattrs' own optional hook looks X's hook up again for every value, which was most
    of the time spent structuring a list of models (benchmarks/README.md).
    """
    (inner_type,) = (arg for arg in typing.get_args(type_) if arg is not type(None))
    try:
        inner = converter.get_structure_hook(inner_type)
    except RecursionError:  # a model that refers to itself: look it up late, as cattrs does
        inner = converter.structure

    def structure_optional(value: Any, _: Any) -> Any:
        return None if value is None else inner(value, inner_type)

    structure_optional.inner = inner  # type: ignore[attr-defined]  # read by _fast_structure
    return structure_optional


converter.register_structure_hook_factory(_is_optional, _optional_hook)

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
        def by_cattrs(value: Any) -> T:
            return base(_mapping(value), cls)
    else:
        def by_cattrs(value: Any) -> T:
            data = _mapping(value)
            extra = {k: v for k, v in data.items() if k not in known}
            return base({**data, _EXTRA_KEY: extra}, cls)

    fast = _fast_structure(cls, known)
    _TWINS[cls] = (fast, by_cattrs)

    def structure_hook(value: Any, _: Any) -> T:
        if fast is not None and type(value) is dict:
            try:
                return fast(value)
            except Exception:  # the cattrs function says what is wrong
                pass
        return by_cattrs(value)

    converter.register_structure_hook(cls, structure_hook)
    return cls


#: Each model's generated fast function and its cattrs function; tests check they agree.
_TWINS: dict[type, tuple[Callable[[dict[str, Any]], Any] | None, Callable[[Any], Any]]] = {}


_STRUCTURE_CALL = getattr(cattrs.BaseConverter, "_structure_call", None)  # cattrs' ``cl(obj)``
_MISSING = object()


def _fast_structure(cls: type[T], known: set[str]) -> Callable[[dict[str, Any]], T] | None:
    """A faster twin of the cattrs function of a model, generated once: the ``cl(obj)``
    hooks (``str``, ``int``... and their ``| None``) inlined, defaults passed directly.

    It returns only what the cattrs function would return for the same dict; whatever
    it does not expect (a missing required key, a value a hook refuses) raises, and the
    caller then runs the cattrs function for the usual result or error. It halves the
    cost of a typed list of models (benchmarks/README.md).
    """
    namespace: dict[str, Any] = {"_cls": cls, "_known": frozenset(known), "_missing": _MISSING}
    lines, arguments = [], []
    for i, field in enumerate(attrs.fields(cls)):  # type: ignore[arg-type]
        if not field.init:
            continue
        hook = converter.get_structure_hook(field.type)
        namespace[f"_h{i}"], namespace[f"_t{i}"] = hook, field.type
        if field.metadata.get("json_extra"):
            comprehension = "{k: v for k, v in o.items() if k not in _known}"
            arguments.append(f"{field.alias}=_h{i}({comprehension}, _t{i})")
            continue
        if hook is _STRUCTURE_CALL:
            convert = f"_t{i}(v)"
        elif getattr(hook, "inner", None) is _STRUCTURE_CALL and _is_optional(field.type):
            (namespace[f"_t{i}"],) = (a for a in typing.get_args(field.type) if a is not None
                                      and a is not type(None))
            convert = f"(None if v is None else _t{i}(v))"
        else:
            convert = f"_h{i}(v, _t{i})"
        json_key = field.metadata.get("json_key", field.name)
        default = field.default
        if default is attrs.NOTHING:
            lines.append(f"    v = o[{json_key!r}]\n    a{i} = {convert}")
        else:
            if isinstance(default, attrs.Factory):  # type: ignore[arg-type]
                if default.takes_self:
                    return None
                namespace[f"_d{i}"], missing = default.factory, f"_d{i}()"
            else:
                namespace[f"_d{i}"], missing = default, f"_d{i}"
            lines.append(f"    v = o.get({json_key!r}, _missing)\n"
                         f"    a{i} = {missing} if v is _missing else {convert}")
        arguments.append(f"{field.alias}=a{i}")
    source = "def fast(o):\n{}\n    return _cls({})\n".format("\n".join(lines),
                                                            ", ".join(arguments))
    exec(compile(source, f"<vendorkit structure {cls.__qualname__}>", "exec"), namespace)
    fast: Callable[[dict[str, Any]], T] = namespace["fast"]
    return fast


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
    hook = converter.get_structure_hook(cls)  # once per list, not once per item
    try:
        return [hook(item, cls) for item in value]
    except (cattrs.BaseValidationError, TypeError, ValueError, KeyError, AttributeError):
        pass
    return [structure(item, cls, what=what) for item in value]  # raises the item's error
