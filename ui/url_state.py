"""Settings that stay and links that share them: each page's settings (``ui.page_links``) are
kept for the browser session across page visits and mirrored in the URL's query string.

``app.py`` calls :func:`open_page` before running the page: a link's parameters seed the
widgets (junk ones are reported, never passed on), and widgets Streamlit forgot while another
page was shown get their last value back from a session copy. Streamlit drops a widget's state
when a run does not draw it, so the copy is taken on every run that does: the page's full runs
(here) and its fragment runs (:func:`fragment`, used instead of ``st.fragment`` by fragments
that hold shared settings).

A :class:`~ui.link_codec.Place` (a layer of the stack, a neuron) can only be checked by the page,
once it knows the range the other settings leave: it calls :func:`fit`, which puts what a link
sent outside that range in the same notice as the link's other problems (:func:`notice`).
"""

from __future__ import annotations

import functools
from collections.abc import Callable, Sequence
from types import ModuleType
from typing import Any

import streamlit as st

from ui.link_codec import Flag, Place, Setting, decode, encode

# How the page is shown rather than what it computes: on every page, set from the sidebar.
VIEW: tuple[Setting, ...] = (
    Flag("present", "view.present", False),
    Flag("controls", "view.hide_controls", False, on="hide", off="show"),
    Flag("text", "view.hide_text", False, on="hide", off="show"),
)
_SHADOW = "links.shadow"  # key -> last value seen, for widgets Streamlit forgot
_WRITTEN = "links.written"  # the query string this session last put in the URL
_PAGE = "links.page"  # the page the settings belong to (fragment runs do not know it)
# Positions a link opened on this run sent, by key (the link's text), until the page fits them.
_UNFITTED = "links.unfitted"
_NOTICE = "links.notice"  # this run's notice: its place on the page and its sentences
_CHOSEN = "links.chosen"  # key -> the position the page chose itself when it last fitted it
_NOTICE_LEAD = "Some settings in this link could not be used, so the page shows their defaults: "


def _declared() -> ModuleType:
    """``ui.page_links``, imported on first use: it imports widget modules that call fit()."""
    from ui import page_links

    return page_links


def settings_of(page: str) -> tuple[Setting, ...]:
    """The view flags and the page's own settings (``page`` is its ``url_path``)."""
    return (*VIEW, *_declared().PAGE_SETTINGS.get(page, ()))


def open_page(page: str) -> list[str]:
    """Seed ``page``'s widgets from the link or the session copy; the link's problems, if any."""
    state = st.session_state
    settings = settings_of(page)
    shadow = state.setdefault(_SHADOW, {})
    query = st.query_params.to_dict()
    problems: list[str] = []
    state[_UNFITTED] = {}
    # A query string this session did not write is a link being opened (a new tab, a reload).
    # Streamlit clears the query string on a page switch: an empty one keeps the session's values.
    if query and query != state.get(_WRITTEN):
        own = {k: v for k, v in query.items() if k not in _declared().PASSED_THROUGH.get(page, ())}
        values, problems = decode(settings, own)
        for key, value in values.items():
            state[key] = shadow[key] = value
        state[_UNFITTED] = {
            s.key: own[s.name] for s in settings if isinstance(s, Place) and s.key in values
        }
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
    # A position the page would choose itself (the last layer, the centre neuron) is left out
    # like a default: a link opening without it gets the same choice.
    chosen = state.get(_CHOSEN, {})
    shared = {k: v for k, v in values.items() if k not in chosen or chosen[k] != v}
    passed = _declared().PASSED_THROUGH.get(page, ())
    kept = {k: v for k, v in st.query_params.to_dict().items() if k in passed}
    query = {**encode(settings, shared), **kept}
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


def notice(problems: list[str]) -> None:
    """The link's notice where the page starts: its problems now, and the positions :func:`fit`
    finds outside their range once the page has run (:func:`close_page`)."""
    box = st.empty()
    if problems:
        box.warning(_NOTICE_LEAD + " ".join(problems), icon=":material/link_off:")
    st.session_state[_NOTICE] = (box, list(problems), len(problems))


def close_page() -> None:
    """The page's full run is over: the notice names what :func:`fit` found too (drawn here,
    not by ``fit``: a fragment may not write above itself), and the link holds what the page
    fitted. Fragment reruns that follow open no link, so nothing is left to fit."""
    box, problems, drawn = st.session_state.pop(_NOTICE, (None, [], 0))
    if len(problems) > drawn:
        box.warning(_NOTICE_LEAD + " ".join(problems), icon=":material/link_off:")
    st.session_state[_UNFITTED] = {}
    sync()


def fit(key: str, allowed: Sequence[int], fallback: int, where: str) -> int:
    """The position held under ``key`` if ``allowed`` (what the other settings leave) holds it;
    else ``fallback``, stored in its place. A position a link opened on this run sent is named
    in the link's notice with what is used instead (``where`` says whose range: "for this
    stack")."""
    state = st.session_state
    sent = state.get(_UNFITTED, {}).pop(key, None)
    state.setdefault(_CHOSEN, {})[key] = fallback
    if key in state and state[key] in allowed:
        return state[key]
    state[key] = fallback  # stored: a widget without its own default would start at its first
    setting = next((s for s in settings_of(state.get(_PAGE, "")) if s.key == key), None)
    if sent is not None and isinstance(setting, Place) and _NOTICE in state:
        state[_NOTICE][1].append(
            f"`{setting.name}={sent}` is {_outside(allowed, setting.first)} {where}, "
            f"so `{setting.name}={fallback + setting.first}` is used."
        )
    return fallback


def _outside(allowed: Sequence[int], first: int) -> str:
    """ "outside 1–3" for a run of positions, "not one of 0, 2, 5" otherwise (as a link counts)."""
    shown = [a + first for a in allowed]
    if not shown:
        return "not available"
    if shown == list(range(shown[0], shown[-1] + 1)):
        return f"outside {shown[0]}–{shown[-1]}" if len(shown) > 1 else f"not {shown[0]}"
    return "not one of " + ", ".join(map(str, shown))
