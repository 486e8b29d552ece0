"""URL rules: base URLs, loopback, origins, path segments and header values."""

from __future__ import annotations

import pytest

from vendorkit.errors import ConfigurationError
from vendorkit.urls import (
    check_base_url,
    check_header_value,
    is_loopback,
    origin,
    path_param,
    same_origin,
)

# --- base URLs ------------------------------------------------------------------------------


@pytest.mark.parametrize("url", [
    "https://vendor.example@evil.example",
    "https://user:hunter2-pass@vendor.example",
    "http://vendor.example@127.0.0.1:9",
    "https://evil.example\\@vendor.example",
])
def test_a_base_url_with_userinfo_is_refused_without_quoting_it(url: str) -> None:
    with pytest.raises(ConfigurationError) as caught:
        check_base_url("base_url", url)

    message = str(caught.value)
    assert message.startswith("base_url must not hold a user name or password")
    assert "hunter2" not in message and "evil" not in message


@pytest.mark.parametrize("url", [
    "http://evil.localhost", "http://localhost.evil.example", "http://localhost.",
    "http://127.0.0.1.nip.io", "http://127.1", "http://0x7f000001",
])
def test_plain_http_to_a_name_that_only_looks_like_loopback_is_refused(url: str) -> None:
    with pytest.raises(ConfigurationError, match="allow_insecure_http=True"):
        check_base_url("base_url", url)


@pytest.mark.parametrize("url", [
    "http://localhost:8080", "http://LOCALHOST", "http://127.0.0.1", "http://127.9.8.7:1",
    "http://[::1]:9/api",
])
def test_plain_http_to_loopback_is_accepted_and_trailing_slashes_dropped(url: str) -> None:
    assert check_base_url("base_url", f"  {url}/ ") == url


def test_plain_http_elsewhere_is_accepted_only_when_the_caller_allows_it() -> None:
    assert check_base_url("issuer", "http://192.0.2.10/realms/x/",
                          allow_insecure_http=True) == "http://192.0.2.10/realms/x"
    with pytest.raises(ConfigurationError, match=r"^issuer uses plain http://"):
        check_base_url("issuer", "http://192.0.2.10/realms/x")


@pytest.mark.parametrize(("url", "problem"), [
    ("", "base_url is required"), ("   ", "base_url is required"),
    ("vendor.example", "must be an absolute http(s) URL"),
    ("ftp://vendor.example", "must be an absolute http(s) URL"),
    ("https://", "must be an absolute http(s) URL"),
    ("https://vendor.example:99999", "base_url has an invalid port"),
])
def test_a_base_url_that_is_not_an_absolute_http_url_is_refused(url: str, problem: str) -> None:
    with pytest.raises(ConfigurationError) as caught:
        check_base_url("base_url", url)

    assert problem in str(caught.value)


@pytest.mark.parametrize(("host", "loopback"), [
    ("localhost", True), ("LocalHost", True), ("127.0.0.1", True), ("127.255.0.1", True),
    ("::1", True), ("[::1]", True),
    ("evil.localhost", False), ("localhost.", False), ("localhost.example", False),
    ("10.0.0.1", False), ("::", False), ("example.com", False), ("", False),
])
def test_only_localhost_and_loopback_ip_literals_are_loopback(host: str, loopback: bool) -> None:
    assert is_loopback(host) is loopback


# --- origins --------------------------------------------------------------------------------


@pytest.mark.parametrize(("url", "expected"), [
    ("https://Vendor.Example/v1/x?q=1", "https://vendor.example"),
    ("https://vendor.example:443/", "https://vendor.example"),
    ("http://vendor.example:80", "http://vendor.example"),
    ("https://vendor.example:8443/a", "https://vendor.example:8443"),
    ("HTTP://[::1]:9/a", "http://[::1]:9"),
    ("https://user@vendor.example/", "https://vendor.example"),
])
def test_an_origin_is_scheme_host_and_port_with_default_ports_left_out(
    url: str, expected: str
) -> None:
    assert origin(url) == expected


@pytest.mark.parametrize(("a", "b", "same"), [
    ("https://vendor.example/login", "https://VENDOR.example:443/api?x=1", True),
    ("http://127.0.0.1:80/a", "http://127.0.0.1/b", True),
    ("https://vendor.example", "http://vendor.example", False),  # a downgrade
    ("https://vendor.example", "https://vendor.example:8443", False),
    ("https://vendor.example", "https://evil.example", False),
    ("https://vendor.example", "https://vendor.example.evil.example", False),
    ("https://vendor.example", "/relative/path", False),
    ("https://vendor.example", "ftp://vendor.example", False),
    ("https://vendor.example", "https://vendor.example:bad", False),
])
def test_same_origin_compares_scheme_host_and_port(a: str, b: str, same: bool) -> None:
    assert same_origin(a, b) is same
    assert same_origin(b, a) is same


def test_origin_of_something_that_is_not_an_absolute_url_is_a_configuration_error() -> None:
    with pytest.raises(ConfigurationError, match="absolute http"):
        origin("/v2/customers")


# --- path parameters ------------------------------------------------------------------------


@pytest.mark.parametrize(("value", "segment"), [
    ("cid-1", "cid-1"), ("a/b", "a%2Fb"), ("x?y#z", "x%3Fy%23z"), ("../etc", "..%2Fetc"),
    ("%2e%2e", "%252e%252e"), ("...", "..."), ("a b", "a%20b"), ("é", "%C3%A9"),
])
def test_a_path_parameter_is_one_percent_encoded_segment(value: str, segment: str) -> None:
    assert path_param("cid", value) == segment


@pytest.mark.parametrize("value", ["", "  ", ".", ".."])
def test_a_path_parameter_that_would_name_another_path_is_refused_by_its_name(
    value: str,
) -> None:
    with pytest.raises(ConfigurationError) as caught:
        path_param("cid", value)

    assert str(caught.value).startswith("cid ")


# --- header values --------------------------------------------------------------------------


@pytest.mark.parametrize("value", [
    "q7Zk\r\nX-Injected: 1", "q7Zk\n", "q7Zk\r", "q7Zk\x00", "q7Zk\x1b[31m", "q7Zk\x7f",
])
def test_a_header_value_with_a_control_character_is_refused_without_quoting_it(
    value: str,
) -> None:
    with pytest.raises(ConfigurationError) as caught:
        check_header_value(value, name="the access token")

    message = str(caught.value)
    assert message.startswith("the access token holds a control character")
    assert "q7Zk" not in message


@pytest.mark.parametrize("value", ["Bearer abc.def-ghi_jkl~", "a\tb", "wörd", ""])
def test_a_header_value_without_control_characters_passes_unchanged(value: str) -> None:
    assert check_header_value(value) == value
