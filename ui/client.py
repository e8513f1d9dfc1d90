"""The network address of a browser, as the fair-use caps on the training queue count it."""

from __future__ import annotations

import ipaddress
import os

import streamlit as st

from cnnlab.jobs import client_key


def client_address() -> str | None:
    """This session's address (the one our proxy saw, behind ``scripts/serve.sh``'s nginx or a
    trusted proxy), or None on this machine itself and where no request is known (AppTest)."""
    headers = st.context.headers
    forwarded = headers.get("X-Forwarded-For") if headers else None
    peer = st.context.ip_address
    peer = peer if isinstance(peer, str) else None  # AppTest has no real request
    if peer and trusted_proxy(peer, os.environ.get("CNNLAB_TRUSTED_PROXIES", "")):
        peer = None  # the proxy itself: count the address it appended instead
    return client_key(peer, forwarded if isinstance(forwarded, str) else None)


def trusted_proxy(peer: str, networks: str) -> bool:
    """True when ``peer`` lies in one of the comma-separated ``networks``.

    ``CNNLAB_TRUSTED_PROXIES`` lists them where the proxy is another machine (the nginx container
    of ``deploy/compose.yaml``, a Kubernetes ingress controller): without it, every learner
    would count as the proxy's one address and share its fair-use cap. A proxy on this machine
    (``scripts/serve.sh``) needs no setting: loopback is always trusted.
    """
    try:
        address = ipaddress.ip_address(peer.strip("[]"))
        trusted = [ipaddress.ip_network(n.strip()) for n in networks.split(",") if n.strip()]
    except ValueError as exc:
        raise ValueError(
            f"CNNLAB_TRUSTED_PROXIES={networks!r} is not a comma-separated list of networks "
            f"such as 10.0.0.0/8 ({exc})."
        ) from None
    return any(address.version == net.version and address in net for net in trusted)
