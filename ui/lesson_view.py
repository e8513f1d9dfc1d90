"""How a page is shown: presenter mode for a projector, controls or explanations hidden for a
lesson (TF Playground style, with a visible way back), and the page styles every screen needs.

The three switches sit in the sidebar and in the link (``?present=on&controls=hide&text=hide``,
``ui.url_state.VIEW``); the styles are injected once per run by :func:`apply`.
"""

from __future__ import annotations

import streamlit as st

# Every screen: wide content (a filled formula, a table, a matrix) scrolls inside its own box
# instead of pushing the page sideways on a 390-pixel phone.
BASE_CSS = """
.katex-display { overflow-x: auto; overflow-y: hidden; padding-bottom: 2px; }
[data-testid=stMarkdownContainer] table, [data-testid=stTable] { display: block; overflow-x: auto; }
[data-testid=stHtml] { overflow-x: auto; }
[data-testid=stImageContainer] { max-width: 100%; }
[data-testid=stImageContainer] img { max-width: 100%; height: auto; }
"""

# A projector: everything larger (Streamlit sizes in rem), the content using the whole width.
# (Streamlit's own global style sets the root size after ours: hence !important.) HTML blocks
# (kernel matrices, grids) are drawn in pixels, so they are zoomed by the same 22/16.
PRESENTER_CSS = """
html { font-size: 22px !important; }
[data-testid=stMainBlockContainer] { max-width: none; padding-left: 2rem; padding-right: 2rem; }
[data-testid=stMain] [data-testid=stHtml] { zoom: 1.375; }
"""

# The widgets of the page (not of the sidebar, which keeps the way back).
_CONTROLS = ", ".join(
    f"[data-testid=stMain] [data-testid={testid}]"
    for testid in (
        "stSlider", "stSelectbox", "stRadio", "stNumberInput", "stCheckbox", "stToggle",
        "stButton", "stFileUploader", "stMultiSelect", "stTextInput", "stButtonGroup",
        "stCameraInput", "stDownloadButton", "stSelectSlider",
    )
)  # fmt: skip
# The note's own button is the way back: it stays.
HIDE_CONTROLS_CSS = (
    f"{_CONTROLS} {{ display: none; }}\n"
    ".st-key-view_controls_note [data-testid=stButton] { display: block !important; }\n"
)
# Prose: paragraphs and captions; titles, headers, numbers, figures and alerts stay.
HIDE_TEXT_CSS = (
    "[data-testid=stMain] [data-testid=stMarkdown]:not(:has(h1, h2, h3, table)), "
    "[data-testid=stMain] [data-testid=stCaptionContainer] { display: none; }\n"
)


def _show_controls() -> None:
    st.session_state["view.hide_controls"] = False


def apply() -> None:
    """The sidebar switches, the styles they ask for, and a way back when controls are hidden."""
    # Folded away: a sidebar taller than the window becomes a scroller that Chromium focuses
    # as one stop, and Tab then skips the page links inside it.
    state = st.session_state
    switched_on = any(
        state.get(k) for k in ("view.present", "view.hide_text", "view.hide_controls")
    )
    with st.sidebar.expander("Lesson view", expanded=switched_on, icon=":material/co_present:"):
        st.toggle(
            "Presenter mode",
            key="view.present",
            help="Large type and the full width, for a projector. The link keeps it.",
        )
        st.toggle("Hide explanations", key="view.hide_text", help="Keep figures and numbers.")
        st.toggle(
            "Hide controls", key="view.hide_controls", help="For a lesson: show results only."
        )
    css = BASE_CSS
    if state.get("view.present"):
        css += PRESENTER_CSS
    if state.get("view.hide_text"):
        css += HIDE_TEXT_CSS
    if state.get("view.hide_controls"):
        css += HIDE_CONTROLS_CSS
        with st.container(key="view_controls_note"):
            st.info("The controls of this page are hidden for the lesson.", icon=":material/tune:")
            st.button("Show the controls", key="view.show_controls", on_click=_show_controls)
    st.html(f"<style>{css}</style>")
