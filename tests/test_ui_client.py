"""Which peers count as our proxy (CNNLAB_TRUSTED_PROXIES), so fair-use caps count learners."""

from __future__ import annotations

from types import SimpleNamespace

import pytest

from ui import client
from ui.client import trusted_proxy


@pytest.mark.parametrize(
    ("peer", "networks", "trusted"),
    [
        ("172.18.0.5", "172.16.0.0/12", True),
        ("172.18.0.5", "10.0.0.0/8, 192.168.0.0/16", False),
        ("203.0.113.9", "0.0.0.0/0,::/0", True),
        ("2001:db8::7", "0.0.0.0/0", False),  # an IPv4 network never holds an IPv6 peer
        ("[2001:db8::7]", "2001:db8::/32", True),
        ("172.18.0.5", "", False),  # unset: only loopback (client_key) is a proxy
    ],
)
def test_a_peer_is_trusted_only_inside_the_listed_networks(peer, networks, trusted):
    assert trusted_proxy(peer, networks) is trusted


def test_behind_a_trusted_proxy_the_learner_is_the_address_it_appended(monkeypatch):
    # The first entry is whatever the client claimed; the last is what the proxy (the nginx
    # container, 172.18.0.5) appended.
    context = SimpleNamespace(
        ip_address="172.18.0.5", headers={"X-Forwarded-For": "198.51.100.1, 203.0.113.7"}
    )
    monkeypatch.setattr(client, "st", SimpleNamespace(context=context))
    monkeypatch.delenv("CNNLAB_TRUSTED_PROXIES", raising=False)
    assert client.client_address() == "172.18.0.5"  # untrusted: the whole class is one address
    monkeypatch.setenv("CNNLAB_TRUSTED_PROXIES", "172.16.0.0/12")
    assert client.client_address() == "203.0.113.7"


def test_a_malformed_setting_is_refused_with_its_name():
    with pytest.raises(ValueError, match=r"CNNLAB_TRUSTED_PROXIES='10\.0\.0\.0/33'"):
        trusted_proxy("10.0.0.1", "10.0.0.0/33")
