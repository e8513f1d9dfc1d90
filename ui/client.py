"""The network address of a browser, as the fair-use caps on the training queue count it."""

from __future__ import annotations

import streamlit as st

from cnnlab.jobs import client_key


def client_address() -> str | None:
    """This session's address (the one our proxy saw, behind ``scripts/serve.sh``'s nginx), or
    None on this machine itself and where no request is known (AppTest)."""
    headers = st.context.headers
    forwarded = headers.get("X-Forwarded-For") if headers else None
    return client_key(st.context.ip_address, forwarded if isinstance(forwarded, str) else None)
