"""Typed models: tolerant of unknown keys (kept in ``extra``), strict about wrong shapes."""

from __future__ import annotations

from typing import Any

import attrs
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from vendorkit import ResponseParseError, models
from vendorkit.models import extra_field, key, model, structure


@model
@attrs.frozen
class Role:
    name: str
    level: int = 0


@model
@attrs.frozen
class User:
    id: int
    user_name: str = key("userName")
    email: str | None = None
    roles: list[Role] = attrs.Factory(list)
    extra: dict[str, Any] = extra_field()


@model
@attrs.frozen
class Plain:
    id: int


def test_known_keys_are_read_and_unknown_keys_kept_in_extra() -> None:
    user = structure(
        {"id": 7, "userName": "ann", "roles": [{"name": "admin", "level": 3}],
         "tenant": "t1", "flags": {"beta": True}},
        User,
    )

    assert user == User(id=7, user_name="ann", roles=[Role("admin", 3)],
                        extra={"tenant": "t1", "flags": {"beta": True}})
    assert user.email is None


def test_key_renames_and_the_python_name_is_not_a_json_key() -> None:
    with pytest.raises(ResponseParseError, match="User"):
        structure({"id": 1, "user_name": "ann"}, User)  # the JSON key is userName


def test_model_without_extra_ignores_unknown_keys() -> None:
    assert structure({"id": 1, "surprise": [1, 2]}, Plain) == Plain(1)


@pytest.mark.parametrize(
    "value",
    [
        {"userName": "ann"},  # id missing
        {"id": "seven", "userName": "ann"},  # id not a number
        {"id": 1, "userName": "ann", "roles": {"name": "admin"}},  # roles not a list
        {"id": 1, "userName": "ann", "roles": [{"level": 1}]},  # nested: name missing
        ["id", 1],
        "user",
        None,
    ],
)
def test_wrong_shapes_raise_response_parse_error(value: object) -> None:
    with pytest.raises(ResponseParseError) as caught:
        structure(value, User, what="user answer")

    assert str(caught.value).startswith("user answer does not fit User")


def test_a_list_of_models() -> None:
    assert structure([{"id": 1}, {"id": 2}], list[Plain]) == [Plain(1), Plain(2)]
    with pytest.raises(ResponseParseError):
        structure([{"id": 1}, {"name": "no id"}], list[Plain])


# --- the generated fast path and the cattrs path agree ------------------------------------

_json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(max_size=8),
    lambda inner: (
        st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=5), inner, max_size=3)
    ),
    max_leaves=6,
)


def _vendor_models() -> list[type]:
    import vendorkit.vendors  # noqa: F401 - registers every vendor model

    return [cls for cls, (fast, _) in models._TWINS.items() if fast is not None]


@pytest.mark.parametrize("cls", _vendor_models(), ids=lambda cls: cls.__qualname__)
@settings(max_examples=150, deadline=None)
@given(data=st.data())
def test_generated_fast_path_gives_what_cattrs_gives(cls: type, data: st.DataObject) -> None:
    fast, by_cattrs = models._TWINS[cls]
    assert fast is not None
    keys = [f.metadata.get("json_key", f.name) for f in attrs.fields(cls)
            if not f.metadata.get("json_extra")]
    value = data.draw(st.fixed_dictionaries(
        {}, optional={k: _json_values for k in [*keys, "unknownKey"]}
    ))
    try:
        expected: object = by_cattrs(value)
    except Exception as exc:  # the fast path must then fail too (and defer to cattrs)
        with pytest.raises(Exception):  # noqa: B017
            fast(value)
        assert exc is not None
        return
    try:
        got: object = fast(value)
    except Exception:
        return  # the fast path may decline; the hook then uses cattrs' answer
    assert got == expected
