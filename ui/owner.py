"""The anonymous owner id of a browser: whose runs a session may list, open and delete.

Why a cookie (and not ``st.query_params``): a cookie survives a reload and a new tab, reaches the
server with the websocket handshake (so ``st.context.cookies`` reads it with no round trip), and
is not copied when a learner shares the page's address; an id in the URL would hand their runs to
everyone they send the link to. The cookie is set once, by a tiny script in ``st.html`` (run in
the page itself, not in an iframe), when the browser arrives without one. Where no browser sends
cookies (AppTest), the id lives in the session only.
"""

from __future__ import annotations

import re

import streamlit as st

from cnnlab.runs import new_owner_id

COOKIE = "cnnlab_owner"
_KEY = "owner.id"
_VALID = re.compile(r"^[0-9a-f]{32}$")


def owner_id() -> str:
    """This browser's owner id: read from its cookie, or created (and the cookie set) once."""
    if _KEY in st.session_state:
        return st.session_state[_KEY]
    cookie = st.context.cookies.get(COOKIE, "")
    cookie = cookie if isinstance(cookie, str) else ""  # AppTest has no real request
    owner = cookie if _VALID.match(cookie) else new_owner_id()
    if owner != cookie:
        # A year; SameSite=Strict keeps it off cross-site requests. The id is random and only
        # ever compared, so it is safe to hold in a script-readable cookie.
        st.html(
            f"<script>document.cookie = '{COOKIE}={owner}; path=/; max-age=31536000; "
            f"SameSite=Strict';</script>",
            unsafe_allow_javascript=True,
        )
    st.session_state[_KEY] = owner
    return owner
