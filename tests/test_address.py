"""Strict address and network parsing: vectors in tests/vectors/address.yaml."""
from __future__ import annotations

import ipaddress
from pathlib import Path

import pytest
import yaml
from hypothesis import given
from hypothesis import strategies as st

from threatnet.address import (
    KEY_LAST, V4_MAPPED_FIRST, V4_MAPPED_LAST, AddressError, Network, format_ip, is_ipv4,
    parse_ip, parse_network,
)

VECTORS = yaml.safe_load((Path(__file__).parent / "vectors" / "address.yaml").read_text("utf-8"))
IPS = VECTORS["parse_ip"]
NETWORKS = VECTORS["parse_network"]

keys = st.integers(0, KEY_LAST)
v4_keys = st.integers(V4_MAPPED_FIRST, V4_MAPPED_LAST)
any_keys = st.one_of(v4_keys, keys)


@pytest.mark.parametrize("case", IPS["valid"], ids=lambda c: c["text"])
def test_parse_ip_valid(case: dict) -> None:
    key = parse_ip(case["text"])
    assert format_ip(key) == case["canonical"]
    assert key == case.get("key", key)
    assert parse_ip(case["canonical"]) == key


@pytest.mark.parametrize("case", IPS["invalid"], ids=lambda c: repr(c["text"]))
def test_parse_ip_invalid(case: dict) -> None:
    with pytest.raises(AddressError) as err:
        parse_ip(case["text"])
    assert case["reason"] in str(err.value)


@pytest.mark.parametrize("case", NETWORKS["valid"], ids=lambda c: c["text"])
def test_parse_network_valid(case: dict) -> None:
    net = parse_network(case["text"])
    assert net == Network(parse_ip(case["first"]), parse_ip(case["last"]), case["canonical"])
    assert parse_network(net.text) == net


@pytest.mark.parametrize("case", NETWORKS["invalid"], ids=lambda c: repr(c["text"]))
def test_parse_network_invalid(case: dict) -> None:
    with pytest.raises(AddressError) as err:
        parse_network(case["text"])
    assert case["reason"] in str(err.value)


def test_is_ipv4() -> None:
    assert is_ipv4(parse_ip("0.0.0.0")) and is_ipv4(parse_ip("255.255.255.255"))
    assert not is_ipv4(parse_ip("::1")) and not is_ipv4(parse_ip("::1.2.3.4"))
    assert not is_ipv4(parse_ip("::1:0:0:0"))  # just past ::ffff:255.255.255.255


def test_format_ip_rejects_out_of_range_keys() -> None:
    for key in (-1, KEY_LAST + 1):
        with pytest.raises(AddressError):
            format_ip(key)


@given(any_keys)
def test_format_parse_round_trip(key: int) -> None:
    assert parse_ip(format_ip(key)) == key


@given(any_keys)
def test_format_ip_matches_ipaddress(key: int) -> None:
    """RFC 5952 as the stdlib writes it: pins the libc inet_ntop we rely on."""
    expected = (str(ipaddress.IPv4Address(key & 0xFFFFFFFF)) if is_ipv4(key)
                else ipaddress.IPv6Address(key).compressed)
    assert format_ip(key) == expected


near_addresses = st.one_of(
    st.text(alphabet="0123456789.", max_size=20),
    st.text(alphabet="0123456789abcdefABCDEF:.", max_size=45),
    any_keys.map(lambda k: ipaddress.IPv6Address(k).exploded),
    st.tuples(st.integers(0, 999), st.integers(0, 999), st.integers(0, 999),
              st.integers(0, 999)).map(lambda t: ".".join(map(str, t))),
)


@given(near_addresses)
def test_parse_ip_agrees_with_ipaddress(text: str) -> None:
    """inet_pton's strictness, pinned against the stdlib's (strict since 3.9.5)."""
    try:
        expected = int(ipaddress.ip_address(text))
    except ValueError:
        with pytest.raises(AddressError):
            parse_ip(text)
        return
    if ":" not in text:
        expected |= V4_MAPPED_FIRST
    assert parse_ip(text) == expected


@given(st.text())
def test_parse_ip_raises_only_address_error(text: str) -> None:
    try:
        parse_ip(text)
    except AddressError as e:
        reason = str(e)
        assert reason and len(reason) < 60 and reason.isprintable()


@given(any_keys, st.integers(0, 128))
def test_parse_network_round_trip(key: int, prefix: int) -> None:
    host_mask = (1 << (128 - prefix)) - 1
    first = key & ~host_mask
    text = f"{ipaddress.IPv6Address(first).exploded}/{prefix}"
    net = parse_network(text)
    assert (net.first, net.last) == (first, first | host_mask)
    assert parse_network(net.text) == net


@given(v4_keys, st.integers(0, 32))
def test_parse_network_suggests_the_network(key: int, prefix: int) -> None:
    text = f"{format_ip(key)}/{prefix}"
    try:
        net = parse_network(text)
    except AddressError as e:
        suggestion = str(e).rpartition("did you mean ")[2].rstrip("?")
        net = parse_network(suggestion)
        assert net.first <= key <= net.last
    else:
        assert net.first == key
