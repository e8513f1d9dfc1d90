"""Settings that stay and links that share them: each page's settings (``ui.page_links``) are
kept for the browser session across page visits and mirrored in the URL's query string.

``app.py`` calls :func:`open_page` before running the page: a link's parameters seed the
widgets (junk ones are reported, never passed on), and widgets Streamlit forgot while another
page was shown get their last value back from a session copy. Streamlit drops a widget's state
when a run does not draw it, so the copy is taken on every run that does: the page's full runs
(here) and its fragment runs (:func:`fragment`, used instead of ``st.fragment`` by fragments
that hold shared settings).
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from typing import Any

import streamlit as st

from ui.link_codec import Flag, Setting, decode, encode
from ui.page_links import PAGE_SETTINGS, PASSED_THROUGH

# How the page is shown rather than what it computes: on every page, set from the sidebar.
VIEW: tuple[Setting, ...] = (
    Flag("present", "view.present", False),
    Flag("controls", "view.hide_controls", False, on="hide", off="show"),
    Flag("text", "view.hide_text", False, on="hide", off="show"),
)
_SHADOW = "links.shadow"  # key -> last value seen, for widgets Streamlit forgot
_WRITTEN = "links.written"  # the query string this session last put in the URL
_PAGE = "links.page"  # the page the settings belong to (fragment runs do not know it)


def settings_of(page: str) -> tuple[Setting, ...]:
    """The view flags and the page's own settings (``page`` is its ``url_path``)."""
    return (*VIEW, *PAGE_SETTINGS.get(page, ()))


def open_page(page: str) -> list[str]:
    """Seed ``page``'s widgets from the link or the session copy; the link's problems, if any."""
    state = st.session_state
    settings = settings_of(page)
    shadow = state.setdefault(_SHADOW, {})
    query = st.query_params.to_dict()
    problems: list[str] = []
    # A query string this session did not write is a link being opened (a new tab, a reload).
    # Streamlit clears the query string on a page switch: an empty one keeps the session's values.
    if query and query != state.get(_WRITTEN):
        own = {k: v for k, v in query.items() if k not in PASSED_THROUGH.get(page, ())}
        values, problems = decode(settings, own)
        for key, value in values.items():
            state[key] = shadow[key] = value
    for setting in settings:
        if setting.key not in state and setting.key in shadow:
            state[setting.key] = shadow[setting.key]
    state[_PAGE] = page
    sync()
    return problems


def sync() -> None:
    """Copy the current page's settings into the session copy and the URL."""
    state = st.session_state
    page = state.get(_PAGE)
    if page is None:  # a page script run on its own, not through app.py: no link to keep
        return
    settings = settings_of(page)
    values = {s.key: state[s.key] for s in settings if s.key in state}
    state.setdefault(_SHADOW, {}).update(values)
    passed = PASSED_THROUGH.get(page, ())
    kept = {k: v for k, v in st.query_params.to_dict().items() if k in passed}
    query = {**encode(settings, values), **kept}
    if query != st.query_params.to_dict():
        st.query_params.from_dict(query)
    state[_WRITTEN] = query


def fragment(func: Callable | None = None, *, run_every: float | None = None) -> Any:
    """``st.fragment`` that also updates the link after each run of the fragment."""

    def decorate(body: Callable) -> Callable:
        @functools.wraps(body)
        def run(*args: Any, **kwargs: Any) -> Any:
            result = body(*args, **kwargs)
            sync()
            return result

        return st.fragment(run, run_every=run_every)

    return decorate(func) if func is not None else decorate


def forget(*keys: str) -> None:
    """Drop settings from the session and its copy, so their widgets start from their defaults
    (a preset replaced what they were about)."""
    for key in keys:
        st.session_state.pop(key, None)
        st.session_state.get(_SHADOW, {}).pop(key, None)
