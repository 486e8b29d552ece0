"""Typed models: unknown keys and wrong-typed values kept in ``extra``, never garbage;
lists read from any plausible shape of answer."""

from __future__ import annotations

import logging
import sys
from typing import Any

import attrs
import pytest
from hypothesis import given, settings, strategies as st

from vendorkit import ResponseParseError, models
from vendorkit.models import extra_field, key, model, structure, structure_list
from vendorkit.pagination import parse_page


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
    ("value", "field"),
    [
        ({"userName": "ann"}, "id"),  # id missing
        ({"id": "seven", "userName": "ann"}, "id"),  # id not a number
        ({"id": 1, "userName": {"first": "ann"}}, "userName"),  # required, and not a string
        (["id", 1], None),
        ("user", None),
        (None, None),
    ],
)
def test_wrong_shapes_raise_response_parse_error_naming_the_model_and_field(
    value: object, field: str | None
) -> None:
    with pytest.raises(ResponseParseError) as caught:
        structure(value, User, what="user answer")

    assert str(caught.value).startswith("user answer does not fit User")
    assert (caught.value.model, caught.value.field) == ("User", field)
    if field is not None:
        assert f"User.{field}" in str(caught.value)
    assert caught.value.response is None  # none was given


def test_a_list_of_models() -> None:
    assert structure([{"id": 1}, {"id": 2}], list[Plain]) == [Plain(1), Plain(2)]
    with pytest.raises(ResponseParseError):
        structure([{"id": 1}, {"name": "no id"}], list[Plain])


# --- wrong-typed values: converted when they are numbers, else kept aside, never garbage --


@model
@attrs.frozen
class Device:
    name: str | None = None
    serial: str | None = None
    port: int | None = None
    weight: float = 0.0
    online: bool = False
    tags: list[str] = attrs.Factory(list)
    labels: dict[str, Any] = attrs.Factory(dict)
    extra: dict[str, Any] = extra_field()


@model
@attrs.frozen
class Gadget:
    """Device's twin, so that its once-only warnings are its own."""

    name: str | None = None
    tags: list[str] = attrs.Factory(list)
    extra: dict[str, Any] = extra_field()


def test_numbers_and_numeric_strings_convert_both_ways() -> None:
    device = structure({"name": "d", "serial": 1042, "port": "8080", "weight": "2.5"}, Device)

    assert (device.serial, device.port, device.weight) == ("1042", 8080, 2.5)
    assert structure({"port": 80.0, "weight": 3}, Device).port == 80
    assert structure({"port": 80.0, "weight": 3}, Device).weight == 3.0
    assert device.extra == {}


@pytest.mark.parametrize(
    ("json_key", "value", "default"),
    [
        ("tags", "a,b", []),  # a string is not iterated into ['a', ',', 'b']
        ("tags", {"a": 1}, []),  # nor an object into its keys
        ("tags", [1, {"b": 2}], []),  # an item that is no string: the whole field is kept
        ("name", {"first": "Ann"}, None),  # never a Python repr
        ("name", ["Ann"], None),
        ("name", True, None),  # never "True"
        ("port", "80a", None),
        ("port", 80.5, None),  # never truncated
        ("port", True, None),
        ("weight", "heavy", 0.0),
        ("online", "false", False),  # never bool("false") == True
        ("online", 1, False),
        ("labels", ["x"], {}),
    ],
)
def test_a_wrong_typed_value_keeps_the_default_and_its_raw_value_in_extra(
    json_key: str, value: object, default: object
) -> None:
    device = structure({"name": "d", json_key: value}, Device)

    assert getattr(device, json_key) == default
    assert device.extra == {json_key: value}


def test_a_null_list_or_object_field_is_empty() -> None:
    device = structure({"tags": None, "labels": None}, Device)

    assert (device.tags, device.labels, device.extra) == ([], {}, {})


def test_a_wrong_typed_field_is_warned_once_per_model_and_field_not_per_item(
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.WARNING, logger="vendorkit")
    answer = [{"name": f"g{i}", "tags": "a,b"} for i in range(50)]

    gadgets = structure_list(answer, Gadget)
    structure_list(answer, Gadget)

    assert [g.extra for g in gadgets] == [{"tags": "a,b"}] * 50
    warnings = [r for r in caplog.records if r.levelno == logging.WARNING]
    assert len(warnings) == 1
    assert warnings[0].name == "vendorkit"
    assert "Gadget.tags" in warnings[0].getMessage()
    assert "a,b" not in warnings[0].getMessage()  # values are never logged


# --- typed lists: any plausible shape of a list answer ------------------------------------

ITEMS = [{"id": 1, "userName": "ann"}, {"id": 2, "userName": "bob"}]


@pytest.mark.parametrize(
    "answer",
    [
        ITEMS,
        {"data": ITEMS},
        {"items": ITEMS, "total": 2},
        {"code": 0, "data": {"records": ITEMS}},
        {"code": 0, "result": {"rows": ITEMS}},
        {"data": {"data": {"list": ITEMS}}},
    ],
    ids=["bare", "data", "items", "data.records", "result.rows", "data.data.list"],
)
def test_a_list_answer_is_read_bare_or_in_an_envelope_two_levels_deep(answer: object) -> None:
    users = structure_list(answer, User)

    assert [u.user_name for u in users] == ["ann", "bob"]
    assert users.skipped == []


@pytest.mark.parametrize(
    "answer", [{"id": 1, "userName": "ann"}, {"code": 0, "data": {"id": 1, "userName": "ann"}}]
)
def test_a_single_object_is_a_list_of_one(answer: object) -> None:
    assert structure_list(answer, User) == [User(1, "ann")]


@pytest.mark.parametrize(
    "answer", [None, [], {}, {"data": None}, {"data": {"list": None}}, {"code": 0, "data": {}}]
)
def test_null_or_empty_list_answers_are_empty(answer: object) -> None:
    assert structure_list(answer, User) == []


@pytest.mark.parametrize(
    ("answer", "says"),
    [
        ({"status": "ok", "message": "fine"}, "keys seen: message, status"),
        ("users", "got a JSON string"),
        (7, "got a JSON number"),
    ],
)
def test_an_answer_with_neither_a_list_nor_an_item_raises(answer: object, says: str) -> None:
    with pytest.raises(ResponseParseError, match=says):
        structure_list(answer, User, what="users")


def test_one_bad_item_never_fails_the_list_and_is_kept_in_skipped(
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.WARNING, logger="vendorkit")
    answer = [ITEMS[0], "not an object", {"userName": "no id"}, ITEMS[1]]

    users = structure_list(answer, User, what="users")

    assert users == [User(1, "ann"), User(2, "bob")]
    assert users.skipped == ["not an object", {"userName": "no id"}]
    [warning] = [r.getMessage() for r in caplog.records if r.levelno == logging.WARNING]
    assert warning.startswith("users: 2 of 4 items do not fit User")
    assert "User.id: missing" in warning


def test_lists_and_pages_pick_the_same_list_from_the_same_answer() -> None:
    answer = {"data": [{"id": 1, "userName": "in data"}],
              "list": [{"id": 2, "userName": "in list"}]}

    from_list = structure_list(answer, User)
    from_page = parse_page(answer, User, page_index=1, page_size=10)

    assert from_list == from_page.items


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
        {}, optional={k: _json_values for k in [*keys, "unknownKey", "zz", "aa"]}
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
    assert repr(got) == repr(expected)  # the same types (1 is not "1" nor 1.0), keys in order



def test_extra_from_the_fast_path_keeps_the_answers_order_and_takes_no_more_memory() -> None:
    from vendorkit.vendors.cloud4wi import Organization

    answer = [{"id": "o1", "name": "n", "cid": "c", "created": "t", "zeta": 1,
               "created_absolute": 1, "updated": "u", "status": "active", "alpha": [2],
               "tags": ["a", 3]},
              {"id": "o2", "name": "n", "cid": "c", "created": "t", "created_absolute": 1,
               "updated": "u", "status": "active", "tags": [], "theme": {"x": 1}},
              {"id": "o3", "name": "n", "cid": "c", "created": "t", "created_absolute": 1,
               "updated": "u", "status": "active", "tags": []}]

    two, one, none = structure_list(answer, Organization)

    assert list(two.extra.items()) == [("zeta", 1), ("alpha", [2])]
    assert two.tags == ["a", "3"]
    assert one.extra == {"theme": {"x": 1}}
    assert none.extra == {}
    for organization in (two, one, none):
        # Built fresh, not left over from a copy of the answer with the known keys popped
        # (a dict keeps its table when keys are removed: 272 bytes for one key, not 184).
        fresh = {k: v for k, v in organization.extra.items()}
        assert sys.getsizeof(organization.extra) == sys.getsizeof(fresh)

@model
@attrs.frozen
class _Checked:
    name: str = attrs.field(validator=attrs.validators.min_len(2))
    size: int = attrs.field(default=0, converter=abs)
    seen: list[str] = attrs.field(factory=list)

    def __attrs_post_init__(self) -> None:
        self.seen.append(self.name)


def test_a_model_with_validators_converters_and_post_init_gets_them_on_the_fast_path() -> None:
    items = structure_list([{"name": "ab", "size": -3}, {"name": "c"}], _Checked)

    assert [(item.name, item.size, item.seen) for item in items] == [("ab", 3, ["ab"])]
    assert len(items.skipped) == 1
    assert structure({"name": "xyz", "size": -1}, _Checked).seen == ["xyz"]
