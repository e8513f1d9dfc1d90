"""Links that open a page's settings: the codec (pure), and every page opened through a link in
AppTest (valid values reach the widgets, junk falls back to the default with a notice, the
declared defaults and ranges match the widgets), and settings kept across page visits."""

from __future__ import annotations

import math

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from pagetest import app_test

from ui.layer_rows import Column, RowFormat, Stack
from ui.link_codec import Choice, Flag, Place, Real, Setting, Whole, decode, encode, token
from ui.navigation import PAGES
from ui.page_links import PAGE_SETTINGS, RF_STACK, ZOO_STACK
from ui.url_state import VIEW, settings_of

SCRIPTS = {"home": "app.py", **{p.url_path: p.path for p in PAGES}}
ALL = [("any", s) for s in VIEW] + [
    (page, s) for page in PAGE_SETTINGS for s in PAGE_SETTINGS[page]
]


def cells(column: Column) -> st.SearchStrategy:
    """What a cell of ``column`` can hold that a link carries (its blank default apart)."""
    number = st.integers(-3, 300)
    if column.form == "text":
        return st.one_of(number.map(str), st.sampled_from(("same", "valid")))
    if column.form == "real":  # up to 6 decimals, as typed
        return st.integers(-(10**6), 10**7).map(lambda n: n / 10**6)
    if column.form == "flag":
        return st.booleans()
    return number.map(float)


@st.composite
def stack_rows(draw, fmt: RowFormat) -> list[dict]:
    """Editor rows of any kinds, each cell its kind's blank default or a value of its column
    (whole numbers as the float the editor holds, padding words, fractions, ticks); named or
    not."""
    rows = []
    for _ in range(draw(st.integers(1, 5))):
        kind = draw(st.sampled_from(fmt.kinds))
        row = {fmt.kind_column: kind}
        for column in fmt.columns:
            row[column.name] = draw(st.one_of(st.just(fmt.default(kind, column)), cells(column)))
        if fmt.name_column:
            row[fmt.name_column] = draw(st.text("ab1_. (é)", max_size=8)).strip()
        rows.append(row)
    return rows


def values_of(setting: Setting) -> st.SearchStrategy:
    """Every value the widget behind ``setting`` can hold."""
    if isinstance(setting, Choice):
        return st.sampled_from(setting.shared)
    if isinstance(setting, Stack):
        spelled = stack_rows(setting.rows).map(setting.of_rows)
        names = [name for name, _ in setting.named]
        return st.one_of(st.sampled_from(names), spelled) if names else spelled
    if isinstance(setting, Place):
        n = setting.high - setting.low
        return st.integers(0, n).map(lambda i: setting.low + i - setting.first)
    if isinstance(setting, Whole):
        n = (setting.high - setting.low) // setting.step
        return st.integers(0, n).map(lambda i: setting.low + i * setting.step)
    if isinstance(setting, Real):
        if setting.step is None:
            return st.floats(setting.low, setting.high, allow_nan=False)
        n = round((setting.high - setting.low) / setting.step)
        return st.integers(0, n).map(lambda i: setting._snap(setting.low + i * setting.step))
    assert isinstance(setting, Flag)
    return st.booleans()


@st.composite
def page_values(draw) -> tuple[str, dict]:
    page = draw(st.sampled_from(sorted(PAGE_SETTINGS)))
    chosen = draw(st.lists(st.sampled_from(settings_of(page)), unique=True)) if page else []
    return page, {s.key: draw(values_of(s)) for s in chosen}


@settings(max_examples=25, deadline=None)
@given(page_values())
def test_encode_then_decode_gives_the_same_settings(case):
    page, values = case
    query = encode(settings_of(page), values)
    decoded, problems = decode(settings_of(page), query)
    assert not problems
    defaults = {s.key: s.default for s in settings_of(page)}
    assert decoded == {k: v for k, v in values.items() if v != defaults[k]}
    stacks = {s.name for s in settings_of(page) if isinstance(s, Stack)}
    short = {k: v for k, v in query.items() if k not in stacks}
    assert all(len(k) + len(v) < 40 for k, v in short.items()), "short, readable parameters"


STACKS = [s for page in PAGE_SETTINGS.values() for s in page if isinstance(s, Stack)]


@pytest.mark.parametrize("stack", STACKS, ids=[s.key for s in STACKS])
def test_a_stack_reads_back_as_the_rows_it_spells(stack):
    @settings(max_examples=20, deadline=None)
    @given(stack_rows(stack.rows))
    def check(rows):
        text = stack.rows.spell(rows)
        assert text is not None
        assert stack.rows.read(stack.name, text) == rows
        assert stack.decode(text) in (text, *(name for name, _ in stack.named))

    check()


def test_the_zoo_stack_spells_only_what_differs_from_each_kind():
    rows = [
        {"kind": "conv", "out": 8.0, "kernel": 3.0, "padding": "same", "bias": False},
        {"kind": "dropout", "p": 0.25},
        {"kind": "maxpool", "kernel": 2.0, "padding": "0"},
        {"kind": "linear", "out": math.nan, "bias": True},
    ]
    assert ZOO_STACK.of_rows(rows) == "conv.o8.b0,dropout.r0_25,maxpool,linear"
    assert ZOO_STACK.rows.spell([{"kind": "dropout", "p": 1 / 3}]) is None  # 7+ decimals
    assert ZOO_STACK.to_rows("dropout.r0_25")[0]["p"] == 0.25
    with pytest.raises(ValueError, match="bias '2' is not 0 or 1"):
        ZOO_STACK.decode("conv.b2")
    with pytest.raises(ValueError, match="p 'half' is not a number such as 0_25"):
        ZOO_STACK.decode("dropout.rhalf")


def test_a_stack_a_link_cannot_hold_is_left_out():
    row = {"name": "", "kind": "conv", "kernel": 2.5}
    assert RF_STACK.rows.spell([row]) is None  # a fraction is refused on the page, in words
    assert RF_STACK.rows.spell([{**row, "kernel": 3.0, "kind": None}]) is None
    assert RF_STACK.rows.spell([]) is None
    assert RF_STACK.rows.spell([{**row, "kernel": 3.0}]) == "conv.k3"
    with pytest.raises(ValueError, match="layer 2 is 'pool'"):
        RF_STACK.decode("conv.k3,pool.k2")
    with pytest.raises(ValueError, match="'q2' is not one of k"):
        RF_STACK.decode("conv.q2")


JUNK = ["", "abc", "nan", "inf", "-inf", "1e999", "9" * 30, "0x10", "1,5", "<script>", "on off"]


@pytest.mark.parametrize(("page", "setting"), ALL, ids=[f"{p}-{s.name}" for p, s in ALL])
def test_junk_is_refused_with_a_sentence_naming_the_parameter(page, setting):
    for text in JUNK:
        with pytest.raises(ValueError, match=f"`{setting.name}="):
            setting.decode(text)
    if isinstance(setting, Whole | Real):
        for outside in (setting.low - 1, setting.high + 1):
            with pytest.raises(ValueError, match="outside"):
                setting.decode(str(outside))


def test_values_outside_a_setting_are_left_out_of_the_link():
    stride = Whole("stride", "k", 1, low=1, high=8)
    assert encode([stride], {"k": 9}) == {}
    assert encode([Choice("source", "s", "Sample", options=("Sample",))], {"s": "Upload"}) == {}
    assert encode([Real("t", "t", 1.0, low=0.1, high=10.0)], {"t": math.nan}) == {}
    assert decode([stride], {"stride": "3", "who": "me"}) == (
        {"k": 3},
        ["`who` is not a setting of this page."],
    )


def test_tokens_and_names_are_unambiguous():
    view_names = {s.name for s in VIEW}
    for page, declared in PAGE_SETTINGS.items():
        names = [s.name for s in declared]
        assert len(set(names)) == len(names), page
        assert not view_names & set(names), page
        assert len({s.key for s in declared}) == len(declared), page
        for s in declared:
            if isinstance(s, Choice):
                tokens = [s.spell(o) for o in s.options]
                assert len(set(tokens)) == len(tokens), (page, s.name)
                assert all(tokens), (page, s.name)
                assert s.default in s.options, (page, s.name)
            elif isinstance(s, Place) and s.default is None:
                continue  # the page chooses (a layer's top channel)
            elif isinstance(s, Whole | Real):
                assert s.low <= s.default + getattr(s, "first", 0) <= s.high, (page, s.name)
    assert [token("Sobel x"), token(1e-3), token(True)] == ["sobel_x", "0.001", "on"]


# -- every page through a link (AppTest) --------------------------------------------------------
# Values that would make the page fetch a data set from the internet are not sent.
KEEP_DEFAULT = {("train", "data")}
# A value a teacher would send where the next one up is not (one training image).
SENT = {("train", "images"): 500}
WIDGET_KINDS = (
    "slider",
    "select_slider",
    "selectbox",
    "radio",
    "number_input",
    "checkbox",
    "toggle",
)


def other_value(setting: Setting):
    """A valid value other than the default, so the widget shows it came from the link."""
    if isinstance(setting, Stack):  # the first preset less its last layer, or a small network
        return setting.named[0][1].rsplit(",", 1)[0] if setting.named else "conv.o8,relu,flatten"
    if isinstance(setting, Place):  # one down: the default is the last layer, the centre neuron
        if setting.default is None:
            return 1
        down = setting.default - 1
        return down if down + setting.first >= setting.low else setting.default + 1
    if isinstance(setting, Choice):
        options = setting.shared
        return options[(options.index(setting.default) + 1) % len(options)]
    if isinstance(setting, Flag):
        return not setting.default
    step = setting.step or (setting.high - setting.low) / 4
    up = setting.default + step
    value = up if up <= setting.high else setting.default - step
    return setting._snap(value) if isinstance(setting, Real) else value


def widgets_by_key(at) -> dict:
    return {w.key: w for kind in WIDGET_KINDS for w in at.get(kind) if w.key}


def check_declaration(setting: Setting, widget) -> None:
    """The declared default and range are the widget's own (a changed widget fails here)."""
    proto = widget.proto
    if isinstance(setting, Place):
        return  # its range is the current stack's (the page clamps what a link sends)
    if isinstance(setting, Choice):
        assert len(proto.options) == len(setting.options), setting.name
        default = proto.default[0] if type(widget).__name__ == "SelectSlider" else proto.default
        assert setting.options[int(default)] == setting.default, setting.name
    elif isinstance(setting, Whole | Real):
        assert (proto.min, proto.max) == (setting.low, setting.high), setting.name
        default = proto.default[0] if widget.type == "slider" else proto.default
        assert math.isclose(default, setting.default), setting.name
    else:
        assert widget.value in (True, False)


@pytest.mark.parametrize("page", sorted(PAGE_SETTINGS))
def test_a_link_opens_the_page_with_its_settings(page):
    declared = [s for s in PAGE_SETTINGS[page] if (page, s.name) not in KEEP_DEFAULT]
    sent = {s.key: SENT.get((page, s.name), other_value(s)) for s in declared}
    junk = declared[-1] if declared else None
    if junk is not None:
        sent.pop(junk.key)
    at = app_test("app.py", timeout=180)
    for name, text in encode(declared, sent).items():
        at.query_params[name] = text
    at.query_params["nonsense"] = "1"
    if junk is not None:
        at.query_params[junk.name] = "not-a-value"
    if page != "home":
        at.switch_page(SCRIPTS[page])
    at.run()
    assert not at.exception, [e.value for e in at.exception]
    notices = " ".join(w.value for w in at.warning)
    assert "`nonsense` is not a setting of this page" in notices
    widgets = widgets_by_key(at)
    shown = 0
    for setting in declared:
        widget = widgets.get(setting.key)
        if isinstance(setting, Stack):  # the editor's rows, read back from what it shows
            assert at.session_state[setting.key] == sent[setting.key], setting.name
            shown += 1
            continue
        if widget is None:
            continue  # not drawn with these settings (e.g. the pattern size of a sample)
        shown += 1
        if setting is junk:
            assert f"`{junk.name}=not-a-value`" in notices
            assert setting.default is None or widget.value == setting.default, setting.name
        else:
            assert widget.value == sent[setting.key], setting.name
        check_declaration(setting, widget)  # the proto holds the code's default, not the value
    assert shown >= len(declared) // 2, "most of the page's settings are on the page"
    # Every chart and diagram has its text alternative (ui/figure_text.py) under it.
    figures = len(at.get("plotly_chart")) + len(at.get("graphviz_chart"))
    described = [e for e in at.expander if e.label.endswith(" as text")]
    assert len(described) == figures
    # The link is rewritten without the junk: what the page shows is what it shares.
    assert "nonsense" not in at.query_params
    assert junk is None or at.query_params.get(junk.name) != "not-a-value"


def test_settings_are_kept_across_page_visits_and_land_in_the_link():
    at = app_test("app.py", timeout=180)
    at.switch_page(SCRIPTS["pooling"]).run()
    at.slider(key="pool.stride").set_value(3).run()
    at.radio(key="pool.kind").set_value("avg").run()
    assert at.query_params["stride"] == "3"
    assert at.query_params["kind"] == "avg"
    at.switch_page(SCRIPTS["receptive_field"]).run()
    assert "stride" not in at.query_params
    # A stack editor's edits (kept by the page itself: the editor is not a plain widget).
    editor = f"rf.editor.{at.session_state['rf.editor_version']}"
    at.session_state[editor] = {"edited_rows": {0: {"kernel": 5}}, "deleted_rows": [7]}
    at.selectbox(key="rf.preset").set_value("LeNet-5").run()
    at.session_state[f"rf.editor.{at.session_state['rf.editor_version']}"] = {
        "edited_rows": {0: {"kernel": 7}}
    }
    at.run()
    stack = at.query_params["stack"]
    assert stack.startswith("conv.k7.c6~C1,avgpool.k2.s2~S2"), stack
    at.switch_page(SCRIPTS["pooling"]).run()
    assert at.slider(key="pool.stride").value == 3
    assert at.radio(key="pool.kind").value == "avg"
    assert at.query_params["stride"] == "3"
    at.switch_page(SCRIPTS["receptive_field"]).run()
    assert at.selectbox(key="rf.preset").value == "LeNet-5"
    assert at.query_params["stack"] == stack


def test_lesson_switches_come_from_the_link_and_the_way_back_clears_them():
    at = app_test("app.py")
    at.query_params["present"] = "on"
    at.query_params["controls"] = "hide"
    at.run()
    assert at.toggle(key="view.present").value
    assert at.toggle(key="view.hide_controls").value
    at.button(key="view.show_controls").click().run()
    assert not at.toggle(key="view.hide_controls").value
    assert dict(at.query_params) == {"present": "on"}
