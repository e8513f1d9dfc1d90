"""A Streamlit client without a browser: one session over ``/_stcore/stream``, in protobuf.

It speaks what the browser speaks: opens the websocket with the ``streamlit`` subprotocol, asks for
a page with a ``rerun_script`` BackMsg, and reads ForwardMsgs until ``script_finished``. It
remembers the widgets the page drew (their ids, their fragment, a value to change them to), so a
caller can change one the way a learner would and time the rerun. Light enough to simulate a class
on one machine; used by the warm-up (``serving.warmup``) and the benchmarks.
"""

from __future__ import annotations

import http.cookiejar
import time
import urllib.request
from dataclasses import dataclass, field
from typing import Any

from streamlit.proto.BackMsg_pb2 import BackMsg
from streamlit.proto.ClientState_pb2 import ClientState
from streamlit.proto.ForwardMsg_pb2 import ForwardMsg
from streamlit.proto.WidgetStates_pb2 import WidgetState
from websockets.sync.client import ClientConnection, connect

_DONE = {
    ForwardMsg.ScriptFinishedStatus.FINISHED_SUCCESSFULLY,
    ForwardMsg.ScriptFinishedStatus.FINISHED_FRAGMENT_RUN_SUCCESSFULLY,
    ForwardMsg.ScriptFinishedStatus.FINISHED_WITH_COMPILE_ERROR,
}
# The widget kinds a simulated learner changes, with the WidgetState field the frontend fills.
_CHANGEABLE = ("slider", "checkbox", "number_input", "selectbox", "radio")
_KINDS = (*_CHANGEABLE, "button")


@dataclass(frozen=True)
class Widget:
    """A widget as the page drew it: enough to send the frontend's message for a new value."""

    kind: str
    id: str
    label: str
    fragment_id: str
    element: Any  # the widget's own protobuf message (slider, checkbox, ...)

    def state(self, changed: bool) -> WidgetState:
        """The frontend's message for this widget at its default, or moved one step off it."""
        e = self.element
        state = WidgetState(id=self.id)
        if self.kind == "button":
            state.trigger_value = changed  # a click; the frontend sends it for one run only
        elif self.kind == "checkbox":
            state.bool_value = e.default != changed
        elif self.kind == "slider" and e.type == e.SELECT_SLIDER:
            # The frontend sends the chosen options' labels; defaults are option indices.
            indices = [int(i) for i in e.default]
            indices[0] = (indices[0] + int(changed)) % len(e.options)
            state.string_array_value.data.extend(e.options[i] for i in indices)
        elif self.kind == "slider":
            value = e.default[0]
            if changed:
                value = value + e.step if value + e.step <= e.max else e.min
            state.double_array_value.data.extend([value, *e.default[1:]])
        elif self.kind == "number_input":
            value = e.default
            if changed:
                step = e.step or 1
                value = value - step if e.has_max and value + step > e.max else value + step
            state.double_value = value
        else:  # selectbox, radio: the frontend sends the chosen option's label
            options = list(e.options)
            current = e.default if isinstance(e.default, int) else e.default[0]
            state.string_value = options[(current + int(changed)) % len(options)]
        return state

    @property
    def changeable(self) -> bool:
        """True when changing it is a meaningful learner action (more than one value)."""
        e = self.element
        if self.kind == "button":
            return False  # a click is an action of its own (see StreamlitSession.click)
        if self.kind in ("selectbox", "radio"):
            return len(e.options) > 1
        if self.kind == "slider" and e.type == e.SELECT_SLIDER:
            return len(e.options) > 1
        if self.kind == "slider":
            return e.data_type in (e.INT, e.FLOAT) and e.max > e.min
        return not getattr(e, "disabled", False)


@dataclass
class RunResult:
    """One script run as the client saw it: how long, what failed, what it drew."""

    seconds: float
    page_script_hash: str
    exceptions: list[str] = field(default_factory=list)
    widgets: list[Widget] = field(default_factory=list)
    messages: int = 0


@dataclass(frozen=True)
class Page:
    """A page of the app's navigation, as the server announced it."""

    name: str
    url_path: str
    page_script_hash: str


class StreamlitSession:
    """One browser-less session of a Streamlit app at ``base_url`` (``http://host:port``).

    Like a browser it first GETs the app's page (so a proxy can set its cookies, which it then
    sends with the websocket) and the health endpoint (which sets the XSRF cookie).
    """

    def __init__(self, base_url: str, timeout: float = 120.0) -> None:
        self.base_url = base_url.rstrip("/")
        self.timeout = timeout
        self.cookies = http.cookiejar.CookieJar()
        self.pages: list[Page] = []
        self.session_id = ""
        self._ws: ClientConnection | None = None
        self._widgets: dict[str, Widget] = {}
        self._changed: dict[str, bool] = {}  # widget id -> moved off its default
        # Fragments with run_every: fragment id -> seconds. The browser reruns them on a timer;
        # a caller that wants to act like it calls auto_rerun() when they are due.
        self.auto_reruns: dict[str, float] = {}
        self._page_hash = ""

    # -- connection --------------------------------------------------------------------------
    def open(self) -> StreamlitSession:
        """Fetch the app's HTML and health like a browser, then open the websocket."""
        opener = urllib.request.build_opener(urllib.request.HTTPCookieProcessor(self.cookies))
        for path in ("/", "/_stcore/health"):
            with opener.open(self.base_url + path, timeout=self.timeout) as response:
                response.read()
        cookie = "; ".join(f"{c.name}={c.value}" for c in self.cookies)
        # Entered as a context (websockets ≥ 17.1 deprecates a bare connect()); close() leaves it.
        self._ws = connect(
            self.base_url.replace("http", "ws", 1) + "/_stcore/stream",
            subprotocols=["streamlit"],  # type: ignore[list-item]
            additional_headers={"Cookie": cookie} if cookie else None,
            origin=self.base_url,  # type: ignore[arg-type]
            open_timeout=self.timeout,
            max_size=None,
        ).__enter__()
        return self

    def close(self) -> None:
        """Close the websocket; the server ends the session."""
        if self._ws is not None:
            self._ws.__exit__(None, None, None)  # closes it
            self._ws = None

    def __enter__(self) -> StreamlitSession:
        return self.open()

    def __exit__(self, *exc: object) -> None:
        self.close()

    def cookie(self, name: str) -> str | None:
        """The value of a cookie the server (or proxy) set, if any."""
        return next((c.value for c in self.cookies if c.name == name), None)

    # -- runs --------------------------------------------------------------------------------
    def run_page(self, url_path: str = "") -> RunResult:
        """Open a page by its URL path ("" for the home page), as a fresh navigation does."""
        page = next((p for p in self.pages if p.url_path == url_path), None)
        state = ClientState(page_script_hash=page.page_script_hash if page else "")
        if page is None:
            state.page_name = url_path
        self._widgets, self._changed = {}, {}
        return self._rerun(state)

    def change_widget(self, widget: Widget) -> RunResult:
        """Move ``widget`` one step (or back), sending every widget's value as the frontend does.

        A widget inside a fragment reruns only that fragment, as in the browser.
        """
        # The widget as last drawn: a full run may have moved it into another fragment, and a
        # rerun request for a fragment that is gone is never answered.
        widget = self._widgets.get(widget.id, widget)
        self._changed[widget.id] = not self._changed.get(widget.id, False)
        state = ClientState(page_script_hash=self._page_hash, fragment_id=widget.fragment_id)
        for wid, changed in self._changed.items():
            if wid in self._widgets:
                state.widget_states.widgets.append(self._widgets[wid].state(changed))
        if not widget.fragment_id:
            self._widgets = {}  # a full run draws every widget again
        return self._rerun(state)

    def click(self, label: str) -> RunResult:
        """Click the enabled button labelled ``label`` (``LookupError`` if the page has none)."""
        button = next(
            (w for w in self._widgets.values()
             if w.kind == "button" and w.label == label and not w.element.disabled),
            None,
        )  # fmt: skip
        if button is None:
            raise LookupError(f"no enabled button {label!r} on this page")
        state = ClientState(page_script_hash=self._page_hash, fragment_id=button.fragment_id)
        for wid, changed in self._changed.items():
            if wid in self._widgets:
                state.widget_states.widgets.append(self._widgets[wid].state(changed))
        state.widget_states.widgets.append(button.state(True))
        if not button.fragment_id:
            self._widgets = {}
        return self._rerun(state)

    def auto_rerun(self, fragment_id: str) -> RunResult:
        """Rerun a ``run_every`` fragment as the browser's timer does."""
        state = ClientState(
            page_script_hash=self._page_hash, fragment_id=fragment_id, is_auto_rerun=True
        )
        for wid, changed in self._changed.items():
            if wid in self._widgets:
                state.widget_states.widgets.append(self._widgets[wid].state(changed))
        return self._rerun(state)

    def widgets(self, changeable_only: bool = True) -> list[Widget]:
        """The widgets the page currently shows (those a learner could change, by default)."""
        return [w for w in self._widgets.values() if w.changeable or not changeable_only]

    def _rerun(self, state: ClientState) -> RunResult:
        assert self._ws is not None, "open() the session first"
        started = time.perf_counter()
        self._ws.send(BackMsg(rerun_script=state).SerializeToString())
        result = RunResult(seconds=0.0, page_script_hash=state.page_script_hash)
        deadline = time.monotonic() + self.timeout
        while True:
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                raise TimeoutError(f"no script_finished within {self.timeout} s")
            msg = ForwardMsg()
            msg.ParseFromString(self._ws.recv(timeout=remaining))  # type: ignore[arg-type]
            result.messages += 1
            kind = msg.WhichOneof("type")
            if kind == "new_session":
                self.session_id = msg.new_session.initialize.session_id or self.session_id
                self._page_hash = msg.new_session.page_script_hash or self._page_hash
                if not msg.metadata.run.fragment_ids:
                    self.auto_reruns = {}  # a full run: the browser drops its timers
            elif kind == "auto_rerun":
                self.auto_reruns[msg.auto_rerun.fragment_id] = msg.auto_rerun.interval
            elif kind == "stop_auto_rerun":
                for fragment_id in msg.stop_auto_rerun.fragment_ids:
                    self.auto_reruns.pop(fragment_id, None)
            elif kind == "navigation":
                self.pages = [
                    Page(p.page_name, p.url_pathname, p.page_script_hash)
                    for p in msg.navigation.app_pages
                ]
                self._page_hash = msg.navigation.page_script_hash or self._page_hash
            elif kind == "delta":
                self._read_delta(msg.delta, result)
            elif kind == "script_finished" and msg.script_finished in _DONE:
                result.seconds = time.perf_counter() - started
                result.page_script_hash = self._page_hash
                result.widgets = self.widgets()
                return result

    def _read_delta(self, delta: Any, result: RunResult) -> None:
        if delta.WhichOneof("type") != "new_element":
            return
        element = delta.new_element
        kind = element.WhichOneof("type")
        if kind == "exception":
            result.exceptions.append(f"{element.exception.type}: {element.exception.message}")
        elif kind in _KINDS:
            inner = getattr(element, kind)
            if inner.id:
                self._widgets[inner.id] = Widget(
                    kind, inner.id, inner.label, delta.fragment_id, inner
                )
