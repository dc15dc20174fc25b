"""The client address: the TCP peer, or the last untrusted X-Forwarded-For entry when the
peer is a trusted proxy; malformed entries never become the address."""

from __future__ import annotations

import pytest

from service.addresses import client_address, parse_address, trusted_networks

PROXIES = trusted_networks("10.0.0.0/8, 192.0.2.1, 2001:db8::/32")


def test_without_trusted_proxies_the_peer_is_the_address_whatever_the_header_says():
    assert client_address("198.51.100.1", ["1.2.3.4"], ()) == "198.51.100.1"
    assert client_address("198.51.100.1", ["1.2.3.4"], PROXIES) == "198.51.100.1"


def test_a_trusted_peer_hands_over_to_the_last_untrusted_entry():
    assert client_address("10.1.1.1", ["6.6.6.6, 203.0.113.5"], PROXIES) == "203.0.113.5"
    assert client_address("10.1.1.1", ["6.6.6.6, 203.0.113.5, 10.2.2.2, 192.0.2.1"],
                          PROXIES) == "203.0.113.5"
    # Several headers are one list, in order.
    assert client_address("10.1.1.1", ["6.6.6.6", "203.0.113.9"], PROXIES) == "203.0.113.9"


@pytest.mark.parametrize("header", [
    "garbage, 203.0.113.5", "203.0.113.5, garbage", "203.0.113.5,,", "203.0.113.5, 300.1.1.1",
    "203.0.113.5, [::1", "203.0.113.5, " + "9" * 5000, "203.0.113.5, \x00\xff",
    "203.0.113.5 , unknown, _hidden", "203.0.113.5, 1.2.3.4:abc", "203.0.113.5, [::1]x",
])
def test_malformed_entries_are_skipped(header):
    assert client_address("10.1.1.1", [header], PROXIES) == "203.0.113.5"


def test_only_trusted_or_no_usable_entries():
    assert client_address("10.1.1.1", ["10.3.3.3, 10.4.4.4"], PROXIES) == "10.3.3.3"
    assert client_address("10.1.1.1", ["nonsense"], PROXIES) == "10.1.1.1"
    assert client_address("10.1.1.1", [], PROXIES) == "10.1.1.1"


def test_ports_brackets_zones_and_mapped_addresses_are_normalised():
    assert parse_address("203.0.113.5:8080") == parse_address("203.0.113.5")
    assert str(parse_address("[2001:db9::1]:443")) == "2001:db9::1"
    assert str(parse_address("fe80::1%eth0")) == "fe80::1"
    assert str(parse_address("::ffff:203.0.113.5")) == "203.0.113.5"
    assert client_address("::ffff:10.1.1.1", ["[2001:db9::7]:5"], PROXIES) == "2001:db9::7"


def test_a_peer_that_is_no_address_is_counted_as_it_is():
    assert client_address("testclient", ["203.0.113.5"], PROXIES) == "testclient"
    assert client_address(None, [], PROXIES) == "unknown"


def test_bad_trusted_proxies_are_a_configuration_error():
    for bad in ("10.0.0.0/33", "proxy.example", "1.2.3"):
        with pytest.raises(ValueError, match="FORUM_TRUSTED_PROXIES"):
            trusted_networks(bad)
    assert trusted_networks("") == ()
    assert trusted_networks(" 10.0.0.1 ,") == trusted_networks("10.0.0.1/32")
