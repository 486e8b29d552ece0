"""Typed models: one cattrs converter, configured once, for every vendor's JSON.

Vendors document their answers loosely, so models are tolerant, and never silently wrong:

- a field's JSON key is its name unless declared with :func:`key`; a missing optional
  field takes its default; every key a model does not know is kept in its ``extra``
  mapping (declared with :func:`extra_field`) instead of failing the call;
- numbers and numeric strings convert both ways (``1`` -> ``"1"``, ``"42"`` -> ``42``); a
  JSON ``null`` for a list (or object) field is an empty one;
- any other wrong-typed value (``"a,b"`` for a ``list[str]``, an object for a ``str``) is
  never forced into the type: the field keeps its default, the raw value goes to
  ``extra`` under its JSON key, and one WARNING per model and field says so. Only a
  required field that is missing or wrong fails the model;
- a typed list (:func:`structure_list`) takes a bare list, a single object, or any
  envelope of :mod:`vendorkit.envelope`; an item that cannot be read at all is left out
  of the list, logged, and kept in ``.skipped``.
"""

from __future__ import annotations

import contextlib
import logging
import math
import re
import types
import typing
from collections.abc import Callable, Iterable, Mapping
from typing import Any, Generic, TypeVar
from urllib.parse import urlsplit

import attrs
import cattrs
from cattrs.errors import AttributeValidationNote
from cattrs.gen import make_dict_structure_fn, override

from .envelope import open_envelope
from .errors import ResponseParseError

if typing.TYPE_CHECKING:
    from .response import Response

__all__ = [
    "ItemList",
    "as_int",
    "converter",
    "extra_field",
    "key",
    "model",
    "structure",
    "structure_list",
]

T = TypeVar("T")

logger = logging.getLogger("vendorkit")

converter = cattrs.Converter(forbid_extra_keys=False)


class _Mismatch(TypeError):
    """A value that does not fit its type. The message names types and fields, never the
    value, so it is safe in a log line or an exception."""

    def __init__(self, message: str, *, model: str | None = None,
                 field: str | None = None) -> None:
        super().__init__(message)
        self.model = model
        self.field = field


def _json_type(value: object) -> str:
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "boolean"
    if isinstance(value, int | float):
        return "number"
    if isinstance(value, str):
        return "string"
    if isinstance(value, list | tuple):
        return "array"
    if isinstance(value, Mapping):
        return "object"
    return type(value).__name__


def _type_name(type_: Any) -> str:
    return getattr(type_, "__name__", None) or str(type_).replace("typing.", "")


# --- scalars: numbers and numeric strings convert both ways, nothing else does ----------

_INTEGER = re.compile(r"\s*[+-]?[0-9]+\s*")
_DECIMAL = re.compile(r"\s*[+-]?([0-9]+\.?[0-9]*|\.[0-9]+)([eE][+-]?[0-9]+)?\s*")


def as_int(value: object) -> int:
    """An int from a JSON integer, an integral float or an integer string; else a TypeError."""
    if type(value) is int:
        return value
    if isinstance(value, float) and value.is_integer():
        return int(value)
    if isinstance(value, str) and _INTEGER.fullmatch(value):
        try:
            return int(value)
        except ValueError:  # more digits than int() takes from a string
            pass
    raise _Mismatch(f"expected an integer, got a JSON {_json_type(value)}")


def _to_int(value: object, _: object) -> int:
    return as_int(value)


def _to_float(value: object, _: object) -> float:
    if isinstance(value, float):
        return value  # as the fast path passes it, infinities included
    if (isinstance(value, int) and not isinstance(value, bool)) or (
            isinstance(value, str) and _DECIMAL.fullmatch(value)):
        with contextlib.suppress(OverflowError):  # an int too large for a float
            return float(value)
    raise _Mismatch(f"expected a number, got a JSON {_json_type(value)}")


def _to_str(value: object, _: object) -> str:
    if isinstance(value, str):
        return value
    if isinstance(value, int | float) and not isinstance(value, bool):
        try:
            if isinstance(value, int) or math.isfinite(value):
                return str(value)
        except ValueError:  # more digits than str() writes
            pass
    raise _Mismatch(f"expected a string, got a JSON {_json_type(value)}")


def _to_bool(value: object, _: object) -> bool:
    if isinstance(value, bool):
        return value
    raise _Mismatch(f"expected a boolean, got a JSON {_json_type(value)}")


#: Types whose values the fast path passes through when they already have that class.
_EXACT: tuple[type, ...] = (str, int, float, bool)

converter.register_structure_hook(str, _to_str)
converter.register_structure_hook(int, _to_int)
converter.register_structure_hook(float, _to_float)
converter.register_structure_hook(bool, _to_bool)


# --- containers: a JSON null is empty; a value of another kind is never iterated ---------


def _hook_for(type_: Any) -> Callable[[Any, Any], Any]:
    try:
        return converter.get_structure_hook(type_)
    except RecursionError:  # a model that refers to itself: look it up late, as cattrs does
        return converter.structure


def _is_list(type_: Any) -> bool:
    return type_ is list or typing.get_origin(type_) is list


def _list_hook(type_: Any) -> Callable[[Any, Any], list[Any]]:
    (item_type,) = typing.get_args(type_) or (Any,)
    item = None if item_type is Any else _hook_for(item_type)
    exact = item_type if item_type in _EXACT else None

    def structure_list_value(value: Any, _: Any) -> list[Any]:
        if value is None:
            return []
        if not isinstance(value, list | tuple):
            raise _Mismatch(f"expected an array, got a JSON {_json_type(value)}")
        if item is None:
            return list(value)
        if exact is not None:
            return [v if v.__class__ is exact else item(v, exact) for v in value]
        return [item(v, item_type) for v in value]

    return structure_list_value


def _is_dict(type_: Any) -> bool:
    return type_ is dict or typing.get_origin(type_) is dict


def _dict_hook(type_: Any) -> Callable[[Any, Any], dict[Any, Any]]:
    key_type, value_type = typing.get_args(type_) or (Any, Any)
    keys = None if key_type in (Any, str) else _hook_for(key_type)
    values = None if value_type is Any else _hook_for(value_type)

    def structure_dict_value(value: Any, _: Any) -> dict[Any, Any]:
        if value is None:
            return {}
        if not isinstance(value, Mapping):
            raise _Mismatch(f"expected an object, got a JSON {_json_type(value)}")
        if keys is None and values is None:
            return dict(value)
        return {
            (k if keys is None else keys(k, key_type)):
                (v if values is None else values(v, value_type))
            for k, v in value.items()
        }

    return structure_dict_value


def _is_optional(type_: Any) -> bool:
    args = typing.get_args(type_)
    return (
        typing.get_origin(type_) in (typing.Union, types.UnionType)
        and len(args) == 2
        and type(None) in args
    )


def _optional_inner(type_: Any) -> Any:
    return next(arg for arg in typing.get_args(type_) if arg is not type(None))


def _optional_hook(type_: Any) -> Callable[[Any, Any], Any]:
    """``X | None``: X's hook looked up once, when the model is registered.

    cattrs' own optional hook looks X's hook up again for every value, which was most
    of the time spent structuring a list of models (benchmarks/README.md).
    """
    inner_type = _optional_inner(type_)
    inner = _hook_for(inner_type)

    def structure_optional(value: Any, _: Any) -> Any:
        return None if value is None else inner(value, inner_type)

    structure_optional.inner = inner  # type: ignore[attr-defined]  # read by _fast_structure
    return structure_optional


converter.register_structure_hook_factory(_is_list, _list_hook)
converter.register_structure_hook_factory(_is_dict, _dict_hook)
converter.register_structure_hook_factory(_is_optional, _optional_hook)


# --- models ------------------------------------------------------------------------------

_EXTRA_KEY = "\0extra"


def _mapping(value: object) -> Mapping[str, Any]:
    if not isinstance(value, Mapping):
        raise _Mismatch(f"expected a JSON object, got a JSON {_json_type(value)}")
    return value


def key(name: str, **kwargs: Any) -> Any:
    """An attrs field read from the JSON key ``name`` (e.g. ``userName``)."""
    metadata = {**kwargs.pop("metadata", {}), "json_key": name}
    return attrs.field(metadata=metadata, **kwargs)


def extra_field() -> Any:
    """The field that collects every JSON key the model does not declare."""
    return attrs.field(factory=dict, metadata={"json_extra": True})


def _json_key(field: attrs.Attribute[Any]) -> str:
    return str(field.metadata.get("json_key", field.name))


def model(cls: type[T]) -> type[T]:
    """Register an attrs class with the converter (keys, defaults, ``extra``, tolerance)."""
    fields = attrs.fields(cls)  # type: ignore[arg-type]
    overrides = {}
    known: set[str] = set()
    has_extra = False
    for field in fields:
        if field.metadata.get("json_extra"):
            has_extra = True
            overrides[field.name] = override(rename=_EXTRA_KEY)
            continue
        json_key = _json_key(field)
        known.add(json_key)
        if json_key != field.name:
            overrides[field.name] = override(rename=json_key)
    base = make_dict_structure_fn(cls, converter, **overrides)  # type: ignore[arg-type]
    by_cattrs = _tolerant(cls, base, frozenset(known), has_extra)
    fast = _fast_structure(cls)
    _TWINS[cls] = (fast, by_cattrs)
    _KNOWN_KEYS[cls] = frozenset(known)

    def structure_hook(value: Any, _: Any) -> T:
        if fast is not None and value.__class__ is dict:
            try:
                return fast(value)
            except Exception:  # the cattrs function reads what the fast one would not
                pass
        return by_cattrs(value)

    structure_hook.fast = fast  # type: ignore[attr-defined]  # read by structure_items
    converter.register_structure_hook(cls, structure_hook)
    return cls


#: Each model's generated fast function and its cattrs function; tests check they agree.
_TWINS: dict[type, tuple[Callable[[dict[str, Any]], Any] | None, Callable[[Any], Any]]] = {}
#: Each model's JSON keys: a single object counts as a one-item list when it has one.
_KNOWN_KEYS: dict[type, frozenset[str]] = {}
#: (model, JSON key) pairs already warned about: one WARNING each, not one per item.
_WARNED: set[tuple[type, str]] = set()


def _tolerant(
    cls: type[T], base: Callable[[Mapping[str, Any], Any], T], known: frozenset[str],
    has_extra: bool,
) -> Callable[[Any], T]:
    """The cattrs function of a model, made tolerant: a field whose value does not fit
    keeps its default and the value goes to ``extra``; a required one fails the model."""
    by_name = {f.name: f for f in attrs.fields(cls)  # type: ignore[arg-type]
               if not f.metadata.get("json_extra")}
    name = cls.__name__

    def by_cattrs(value: Any) -> T:
        data = _mapping(value)
        extra = {k: v for k, v in data.items() if k not in known} if has_extra else {}
        try:
            return base({**data, _EXTRA_KEY: extra} if has_extra else data, cls)
        except cattrs.ClassValidationError as exc:
            failures = _failures(exc)
        kept = dict(data)
        for attribute, error in failures:
            field = by_name.get(attribute)
            if field is None:  # not one field's fault (a validator, say)
                raise _Mismatch(f"{name}: {_reason(error)}", model=name) from None
            json_key = _json_key(field)
            if field.default is attrs.NOTHING:
                problem = "missing" if isinstance(error, KeyError) else _reason(error)
                raise _Mismatch(f"{name}.{json_key}: {problem}", model=name,
                                field=json_key) from None
            extra[json_key] = kept.pop(json_key)
            _warn_once(cls, json_key, _reason(error), kept_in_extra=has_extra)
        try:
            return base({**kept, _EXTRA_KEY: extra} if has_extra else kept, cls)
        except cattrs.ClassValidationError as exc:
            raise _Mismatch(f"{name}: {_reason(exc)}", model=name) from None

    return by_cattrs


def _failures(exc: cattrs.ClassValidationError) -> list[tuple[str | None, Exception]]:
    """Each failed attribute of a model, with its error (None: no single attribute)."""
    found: list[tuple[str | None, Exception]] = []
    for error in exc.exceptions:
        notes = [note for note in getattr(error, "__notes__", ())
                 if isinstance(note, AttributeValidationNote)]
        found.append((notes[-1].name if notes else None, error))
    return found


def _warn_once(cls: type, json_key: str, reason: str, *, kept_in_extra: bool) -> None:
    if (cls, json_key) in _WARNED:
        return
    _WARNED.add((cls, json_key))
    where = (f"its value is kept in extra[{json_key!r}]" if kept_in_extra
             else "the model has no extra field to keep its value")
    logger.warning(
        "%s.%s: %s; the field keeps its default and %s (said once per model and field)",
        cls.__name__, json_key, reason, where,
    )


def _reason(exc: BaseException) -> str:
    """What went wrong, in words that never quote the value."""
    if isinstance(exc, _Mismatch):
        return str(exc)
    if isinstance(exc, cattrs.BaseValidationError):
        return _summary(exc)
    if isinstance(exc, KeyError):
        return "missing"
    return type(exc).__name__


def _summary(exc: cattrs.BaseValidationError) -> str:
    leaves = [e for e in exc.exceptions if not isinstance(e, cattrs.BaseValidationError)]
    for group in (e for e in exc.exceptions if isinstance(e, cattrs.BaseValidationError)):
        leaves.extend(group.exceptions)
    notes = [
        "; ".join([*map(str, getattr(e, "__notes__", [])), _reason(e)]) for e in leaves[:3]
    ]
    return ", ".join(notes) or exc.message


_MISSING = object()


def _exact_convert(i: int, type_: type) -> str:
    """The expression for a value of an exact type: as is when it has that class (a JSON
    integer for a ``str`` field written as cattrs' hook writes it), else the hook."""
    if type_ is str:
        return f"(v if v.__class__ is str else str(v) if v.__class__ is int else _h{i}(v, _t{i}))"
    return f"(v if v.__class__ is _t{i} else _h{i}(v, _t{i}))"


def _slot_setters(cls: type) -> list[Callable[[Any, Any], None]] | None:
    """Each field's slot setter, in field order, when the class's ``__init__`` does nothing
    but store its arguments (slotted, every field in ``__init__``, no validator, converter,
    hook or cached hash); else None, and the fast path calls the class."""
    fields = attrs.fields(cls)
    plain = (
        "__slots__" in cls.__dict__
        and getattr(cls, "__new__", None) is object.__new__
        and "attrs generated" in str(getattr(getattr(cls, "__init__", None), "__code__", ""))
        and not any(hasattr(cls, name) for name in (
            "__attrs_pre_init__", "__attrs_post_init__", "_attrs_cached_hash"))
        and all(f.init and f.validator is None and f.converter is None
                and f.on_setattr in (None, attrs.setters.NO_OP) for f in fields)
    )
    if not plain:
        return None
    slots = [getattr(cls, f.name, None) for f in fields]
    if not all(isinstance(slot, types.MemberDescriptorType) for slot in slots):
        return None
    return [slot.__set__ for slot in slots]  # type: ignore[union-attr]


def _fast_structure(cls: type[T]) -> Callable[[dict[str, Any]], T] | None:
    """A faster twin of the cattrs function of a model, generated once: values that
    already have their field's class (``str``, ``int``... and their ``| None``) pass
    through without a call, defaults are passed directly.

    It returns only what the cattrs function would return for the same dict; whatever
    it does not expect (a missing required key, a value a hook refuses) raises, and the
    caller then runs the cattrs function for the tolerant result or the error. It halves
    the cost of a typed list of models (benchmarks/README.md).
    """
    namespace: dict[str, Any] = {"_cls": cls, "_missing": _MISSING, "_new": object.__new__,
                                 "_dict": dict}
    fields = attrs.fields(cls)  # type: ignore[arg-type]
    extras = [f for f in fields if f.metadata.get("json_extra")]
    json_keys = [_json_key(f) for f in fields if not f.metadata.get("json_extra")]
    if len(extras) > 1 or len(set(json_keys)) != len(json_keys):
        return None  # two extras, or two fields read from one key: cattrs alone
    setters = _slot_setters(cls)
    # With an extra field, the known keys are popped from a copy of the answer, and what
    # is left is ``extra``, in the answer's order: one dict copy in C instead of a set
    # difference and a comprehension (an Organization: 25.5k -> 18k instructions).
    source_dict = "r" if extras else "o"
    lines = ["    r = o.copy()"] if extras else []
    arguments = []
    for i, field in enumerate(fields):
        if field.metadata.get("json_extra"):
            arguments.append(f"{field.alias}=a{i}")
            continue
        json_key = _json_key(field)
        if not field.init:
            if extras:  # known, so never extra: cattrs leaves it out too
                lines.append(f"    r.pop({json_key!r}, None)")
            continue
        hook, type_ = converter.get_structure_hook(field.type), field.type
        if _is_optional(type_) and _optional_inner(type_) in _EXACT and hasattr(hook, "inner"):
            hook, type_ = hook.inner, _optional_inner(type_)
            convert = f"None if v is None else {_exact_convert(i, type_)}"
        elif type_ in _EXACT:
            convert = _exact_convert(i, type_)
        elif _is_list(type_) and typing.get_args(type_) and typing.get_args(type_)[0] in _EXACT:
            # list[str] and the like, inline: the list hook's work without its call.
            item_type = typing.get_args(type_)[0]
            namespace[f"_e{i}"], namespace[f"_i{i}"] = item_type, _hook_for(item_type)
            convert = (f"([] if not v else [e if e.__class__ is _e{i} else _i{i}(e, _e{i}) "
                       f"for e in v]) if v.__class__ is list else _h{i}(v, _t{i})")
        else:
            convert = f"_h{i}(v, _t{i})"
        namespace[f"_h{i}"], namespace[f"_t{i}"] = hook, type_
        read = "pop" if extras else "get"
        default = field.default
        if default is attrs.NOTHING:
            lookup = f"r.pop({json_key!r})" if extras else f"o[{json_key!r}]"
            lines.append(f"    v = {lookup}\n    a{i} = {convert}")
        elif default is None and convert.startswith("None if v is None"):
            # Missing and null both give None: one lookup and one test fewer.
            lines.append(f"    v = {source_dict}.{read}({json_key!r}, None)\n    a{i} = {convert}")
        else:
            if isinstance(default, attrs.Factory):  # type: ignore[arg-type]
                if default.takes_self:
                    return None
                namespace[f"_d{i}"], missing = default.factory, f"_d{i}()"
            else:
                namespace[f"_d{i}"], missing = default, f"_d{i}"
            lines.append(f"    v = {source_dict}.{read}({json_key!r}, _missing)\n"
                         f"    a{i} = {missing} if v is _missing else {convert}")
        arguments.append(f"{field.alias}=a{i}")
    for i, field in enumerate(fields):
        if field.metadata.get("json_extra"):
            # Rebuilt, not kept: a dict keeps its table when keys are popped (272 bytes
            # for one key left of eight, against 184 rebuilt), and models may be many.
            # One unknown key (an undocumented field) is the common case: no dict() call.
            lines.append(f"    n = len(r)\n"
                         f"    if n == 1:\n        k, v = r.popitem()\n        a{i} = {{k: v}}\n"
                         f"    else:\n        a{i} = _dict(r.items()) if n else {{}}")
    if setters is None:
        build = "    return _cls({})".format(", ".join(arguments))
    else:  # what the frozen __init__ does, minus object.__setattr__'s lookup per field
        namespace.update({f"_s{i}": setter for i, setter in enumerate(setters)})
        build = "    m = _new(_cls)\n{}\n    return m".format("\n".join(
            f"    _s{i}(m, a{i})" for i in range(len(setters))))
    source = "def fast(o):\n{}\n{}\n".format("\n".join(lines), build)
    exec(compile(source, f"<vendorkit structure {cls.__qualname__}>", "exec"), namespace)
    fast: Callable[[dict[str, Any]], T] = namespace["fast"]
    return fast


# --- reading an answer -------------------------------------------------------------------

#: An empty dict: indexing it raises, sending an item that is not a dict to the hook.
_NOT_FAST: dict[Any, Any] = {}
_ERRORS = (cattrs.BaseValidationError, TypeError, ValueError, KeyError, AttributeError,
           RecursionError)


def _parse_error(
    message: str, response: Response | None, *, model: str | None = None,
    field: str | None = None,
) -> ResponseParseError:
    if response is not None:
        path = urlsplit(response.url).path  # never the query: it may carry a key
        message += f" ({response.method} {path} -> HTTP {response.status})"
    return ResponseParseError(message, response=response, model=model, field=field)


def structure(
    value: Any, cls: type[T], *, what: str = "", response: Response | None = None
) -> T:
    """JSON -> model; a :class:`ResponseParseError` (never a cattrs error) when it does not
    fit, naming the model and the field, and carrying ``response`` when given."""
    try:
        return converter.structure(value, cls)
    except _ERRORS as exc:
        name = _type_name(cls)
        raise _parse_error(
            f"{what or 'answer'} does not fit {name}: {_reason(exc)}", response,
            model=getattr(exc, "model", None) or name, field=getattr(exc, "field", None),
        ) from None


class ItemList(list[T], Generic[T]):
    """A typed list, and the raw items that could not be read as its type (``skipped``)."""

    __slots__ = ("skipped",)

    def __init__(self, items: Iterable[T] = (), skipped: Iterable[Any] = ()) -> None:
        super().__init__(items)
        #: Raw JSON items left out because they could not be read at all (see the log).
        self.skipped: list[Any] = list(skipped)


def find_list(
    body: Any, item_type: type[Any], *, what: str, response: Response | None = None
) -> tuple[list[Any], tuple[Mapping[str, Any], ...]]:
    """The raw items of a list answer (a bare list, an envelope, or one object) and the
    envelope objects around them, innermost first; else a :class:`ResponseParseError`."""
    envelope = open_envelope(body)
    if envelope.items is not None:
        return envelope.items, envelope.scopes
    if envelope.scopes:
        candidate = envelope.scopes[0]
        known = _KNOWN_KEYS.get(item_type)
        if known is None or not known.isdisjoint(candidate):  # one object: a list of one
            return [candidate], envelope.scopes[1:]
        keys = ", ".join(sorted(map(str, candidate))) or "none"
        raise _parse_error(f"{what}: no list of items and no {_type_name(item_type)} in the "
                           f"answer (keys seen: {keys})", response)
    raise _parse_error(f"{what}: expected a JSON list or object, got a JSON "
                       f"{_json_type(body)}", response)


def structure_items(
    raw: list[Any], item_type: type[T], *, what: str
) -> tuple[list[T], list[Any]]:
    """Each raw item as ``item_type``, and the items that could not be read at all (logged
    once for the answer): one bad item never fails the others."""
    hook = converter.get_structure_hook(item_type)  # once per list, not once per item
    fast = getattr(hook, "fast", None)
    if fast is not None:  # a model's fast twin on each item, one frame less; any surprise:
        try:              # the hook below, which gives the result or the error
            return [fast(item) if item.__class__ is dict else _NOT_FAST[item] for item in raw], []
        except Exception:
            pass
    try:
        return [hook(item, item_type) for item in raw], []
    except _ERRORS:
        pass
    items: list[T] = []
    skipped: list[Any] = []
    reasons: list[str] = []
    for index, item in enumerate(raw):
        try:
            items.append(hook(item, item_type))
        except _ERRORS as exc:
            skipped.append(item)
            reasons.append(f"item {index}: {_reason(exc)}")
    logger.warning(
        "%s: %d of %d items do not fit %s and were left out (kept in .skipped): %s%s",
        what, len(skipped), len(raw), _type_name(item_type), "; ".join(reasons[:3]),
        "; ..." if len(reasons) > 3 else "",
    )
    return items, skipped


def structure_list(
    value: Any, cls: type[T], *, what: str = "", response: Response | None = None
) -> ItemList[T]:
    """A list of models from a bare list, a single object, or any common envelope
    (:mod:`vendorkit.envelope`); a JSON ``null`` is an empty list."""
    what = what or "answer"
    raw, _ = find_list(value, cls, what=what, response=response)
    return ItemList(*structure_items(raw, cls, what=what))
