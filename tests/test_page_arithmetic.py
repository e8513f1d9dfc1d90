"""AppTest of the stride, padding & dilation page: calculator, picture stepping, chain, quiz."""

from __future__ import annotations

import json

import pytest
import torch
import torch.nn.functional as F
from pagetest import app_test

from cnnlab import arithmetic as ar

PAGE = "pages/arithmetic.py"


@pytest.fixture
def at():
    at = app_test(PAGE, timeout=90).run()
    assert not at.exception, [e.value for e in at.exception]
    return at


def metric(at, label: str) -> str:
    return next(m.value for m in at.metric if m.label == label)


def test_default_is_the_issue_example_verified_by_torch(at):
    assert metric(at, "Output size") == "13×13"
    assert any(r"\frac{28 + 2\cdot1 - 1\cdot(5-1) - 1}{2}" in x.value for x in at.latex)
    assert any(
        "Verified: PyTorch's `F.conv2d`" in s.value and "13, 13" in s.value for s in at.success
    )
    # 28 + 2 − 5 = 25 is odd: the remainder is explained.
    assert any("mod 2 = **1**" in m.value for m in at.markdown)


def test_controls_drive_every_operation(at):
    at.selectbox(key="arith.op").set_value("conv_transpose").run()
    at.radio(key="arith.ndim").set_value(1).run()
    at.number_input(key="arith.size.width").set_value(7).run()
    at.number_input(key="arith.kernel.all").set_value(3).run()
    at.number_input(key="arith.output_padding.all").set_value(1).run()
    assert not at.exception
    expected = ar.conv_transpose_output_size(7, 3, stride=2, padding=1, output_padding=1)
    assert metric(at, "Output size") == str(expected) == "14"
    assert any("F.conv_transpose1d" in s.value for s in at.success)
    assert any("as a stride-1 convolution" in m.value for m in at.markdown)

    at.selectbox(key="arith.op").set_value("max_pool").run()
    at.number_input(key="arith.size.width").set_value(4).run()
    at.number_input(key="arith.kernel.all").set_value(2).run()
    at.number_input(key="arith.stride.all").set_value(3).run()
    at.checkbox(key="arith.ceil_mode").check().run()
    assert metric(at, "Output size") == "2"  # ceil would give 3, but that window starts in padding
    assert any(r"\right\rceil + 1 - 1 = 2" in x.value for x in at.latex)
    assert any("PyTorch drops it" in m.value for m in at.markdown)


def test_same_padding_with_an_even_kernel_shows_the_split(at):
    at.number_input(key="arith.kernel.all").set_value(4).run()
    at.number_input(key="arith.stride.all").set_value(1).run()
    at.radio(key="arith.padding_mode").set_value("same").run()
    assert metric(at, "Output size") == "28×28"
    assert any("1 on the left/top and **2 on the right/bottom**" in m.value for m in at.markdown)
    assert any("Verified" in s.value for s in at.success)


def test_per_dimension_hyper_parameters(at):
    at.toggle(key="arith.square").set_value(False).run()
    at.number_input(key="arith.size.width").set_value(32).run()
    at.number_input(key="arith.stride.width").set_value(1).run()
    assert metric(at, "Output size") == "13×30"
    assert any("Verified" in s.value and "(1, 1, 13, 30)" in s.value for s in at.success)


@pytest.mark.parametrize(
    ("key", "value", "message"),
    [
        ("arith.stride.all", 0, "Stride must be at least 1"),
        ("arith.kernel.all", 40, "larger than the padded input"),
        ("arith.padding.all", -2, "can't be negative"),
    ],
)
def test_bad_values_show_the_engine_message_and_keep_the_page(at, key, value, message):
    at.number_input(key=key).set_value(value).run()
    assert not at.exception
    assert any(message in e.value for e in at.error), [e.value for e in at.error]
    assert not any(m.label == "Output size" for m in at.metric)
    # The other tabs are untouched.
    assert any("nn.Sequential" in s.value for s in at.success)
    assert at.button(key="arith.quiz.check")


def test_same_padding_with_stride_two_is_refused_in_words(at):
    at.radio(key="arith.padding_mode").set_value("same").run()
    assert any("'same' padding needs stride 1 in PyTorch" in e.value for e in at.error)


def test_picture_steps_through_positions(at):
    at.number_input(key="arith.size.height").set_value(8).run()  # 8×8, k5 s2 p1 → 3×3
    at.number_input(key="arith.size.width").set_value(8).run()
    assert any("Position 1 of 9" in m.value for m in at.markdown)
    at.button(key="arith.next").click().run()
    assert any("Position 2 of 9" in m.value and "Output (0, 1)" in m.value for m in at.markdown)
    at.slider(key="arith.pos").set_value(9).run()
    assert any("Position 9 of 9" in m.value for m in at.markdown)
    at.button(key="arith.next").click().run()  # wraps around
    assert any("Position 1 of 9" in m.value for m in at.markdown)
    at.button(key="arith.prev").click().run()
    assert any("Position 9 of 9" in m.value for m in at.markdown)
    assert not at.exception


def chain_table(at):
    return next(d.value for d in at.dataframe if "output shape" in d.value.columns)


def test_chain_defaults_to_the_textbook_example(at):
    table = chain_table(at)
    shapes = list(table["output shape"])
    assert shapes[0] == "3×32×32"
    assert [s for s, kind in zip(shapes, table["layer"], strict=True) if kind != "relu"] == [
        "3×32×32", "16×32×32", "16×16×16", "32×16×16", "32×8×8", "2048", "128", "10",
    ]  # fmt: skip
    at.number_input(key="arith.chain.height").set_value(64).run()
    shapes = list(chain_table(at)["output shape"])
    assert "4096" in shapes  # 32 × 16 × 8
    assert any("nn.Sequential" in s.value for s in at.success)


def test_chain_error_is_shown_not_raised(at):
    at.number_input(key="arith.chain.height").set_value(2).run()
    assert not at.exception
    assert any(e.value.startswith("Layer 6 (max_pool)") for e in at.error), [
        e.value for e in at.error
    ]


def _answer(at):
    """The quiz's answer box (one per question: its key names difficulty and seed)."""
    (box,) = [n for n in at.number_input if n.key.startswith("arith.quiz.answer.")]
    return box


def test_quiz_scores_a_right_and_a_wrong_answer(at):
    seed = at.number_input(key="arith.quiz.seed").value
    question = ar.make_question(seed, "easy")
    assert any(question.prompt() == m.value for m in at.markdown)
    _answer(at).set_value(question.answer).run()
    at.button(key="arith.quiz.check").click().run()
    assert any(s.value.startswith("Right") for s in at.success)
    assert any(x.value.strip("$\n").endswith(f"= {question.answer}") for x in at.latex)
    assert metric(at, "Score") == "1 / 1"

    at.button(key="arith.quiz.new").click().run()
    assert at.number_input(key="arith.quiz.seed").value == seed + 1
    assert _answer(at).value is None
    nxt = ar.make_question(seed + 1, "easy")
    _answer(at).set_value(nxt.answer + 1).run()
    at.button(key="arith.quiz.check").click().run()
    assert any(f"the output is {nxt.answer}" in e.value for e in at.error)
    assert metric(at, "Score") == "1 / 2"
    # Checking the same question again gives feedback but does not count twice.
    _answer(at).set_value(nxt.answer).run()
    at.button(key="arith.quiz.check").click().run()
    assert metric(at, "Score") == "1 / 2"


def test_quiz_seed_and_difficulty_reproduce_a_question(at):
    at.radio(key="arith.quiz.difficulty").set_value("hard").run()
    at.number_input(key="arith.quiz.seed").set_value(42).run()
    assert any(ar.make_question(42, "hard").prompt() == m.value for m in at.markdown)
    assert not at.exception


@pytest.mark.parametrize("change", ["difficulty", "seed"])
def test_an_answer_is_scored_only_against_its_own_question(at, change):
    easy = ar.make_question(1, "easy")
    _answer(at).set_value(easy.answer).run()
    if change == "difficulty":
        at.radio(key="arith.quiz.difficulty").set_value("hard").run()
    else:
        at.number_input(key="arith.quiz.seed").set_value(2).run()
    assert _answer(at).value is None  # the new question starts with an empty box
    at.button(key="arith.quiz.check").click().run()
    assert any("Type a number first" in w.value for w in at.warning)
    assert not [s for s in at.success if s.value.startswith("Right")]
    assert not [e for e in at.error if e.value.startswith("Not quite")]
    assert metric(at, "Score") == "0 / 0"


def test_switching_dimensions_keeps_each_axis_size_and_its_name(at):
    at.number_input(key="arith.size.height").set_value(7).run()
    at.number_input(key="arith.size.width").set_value(9).run()
    labels = {n.key: n.label for n in at.number_input if n.key.startswith("arith.size.")}
    assert labels == {"arith.size.height": "Input height H", "arith.size.width": "Input width W"}
    at.radio(key="arith.ndim").set_value(1).run()
    assert [n.label for n in at.number_input if n.key.startswith("arith.size.")] == [
        "Input length L"
    ]
    assert at.number_input(key="arith.size.width").value == 9  # a 1-D row keeps the width
    at.radio(key="arith.ndim").set_value(3).run()
    sizes = {n.label: n.value for n in at.number_input if n.key.startswith("arith.size.")}
    # The height came back though the 1-D run did not draw it; the new depth starts at 28.
    assert sizes == {"Input depth D": 28, "Input height H": 7, "Input width W": 9}
    assert not at.exception


def test_the_transposed_convolution_note_adds_up_as_torch_computes(at):
    at.selectbox(key="arith.op").set_value("conv_transpose").run()
    at.radio(key="arith.ndim").set_value(1).run()
    at.number_input(key="arith.size.width").set_value(7).run()
    at.number_input(key="arith.kernel.all").set_value(3).run()
    at.number_input(key="arith.output_padding.all").set_value(1).run()
    note = next(m.value for m in at.markdown if "as a stride-1 convolution" in m.value)
    # Zero insertion, padding (output padding counted once, on the right) and the stride-1
    # convolution, each checked against PyTorch.
    inserted = torch.zeros(1, 1, 7)
    zeros = torch.zeros(1, 1, 13)
    zeros[..., ::2] = inserted
    assert "(7 − 1)·2 + 1 = 13 cells" in note
    assert "1·(3 − 1) − 1 = 1 on the left" in note
    assert "1 + 1 = 2 on the right" in note
    assert "13 + 1 + 2 = 16 cells" in note
    assert "16 − 3 + 1 = **14** outputs" in note
    padded = F.pad(zeros, (1, 2))
    assert padded.shape[-1] == 16
    assert F.conv1d(padded, torch.zeros(1, 1, 3)).shape[-1] == 14
    weight = torch.zeros(1, 1, 3)
    assert (
        F.conv_transpose1d(inserted, weight, stride=2, padding=1, output_padding=1).shape[-1] == 14
    )


def test_the_chain_editor_passes_on_what_is_typed(at):
    editor = next(d for d in at.dataframe if d.proto.editing_mode)
    configs = json.loads(editor.proto.columns)
    for column in ("out", "kernel", "stride", "dilation"):
        assert set(configs[column].get("type_config", {})) <= {"type", "format"}, column
    key = f"arith.chain.editor.{at.session_state['arith.chain.version']}"
    at.session_state[key] = {
        "edited_rows": {0: {"kernel": 2.5}},
        "added_rows": [],
        "deleted_rows": [],
    }
    at.run()
    assert any("Layer 1: 2.5 is not a whole number" in e.value for e in at.error)


def test_every_output_cell_is_bordered_so_13_by_13_can_be_counted():
    from ui.arithmetic import window_figure

    layer = ar.analyse("conv", (28, 28), (5, 5), (2, 2), (1, 1))
    figure = window_figure(layer, 0)  # one cell computed, 168 still white on white
    (borders,) = [t for t in figure.data if t.name == "output cell borders"]
    xs, ys = list(borders.x), list(borders.y)
    segments = [(xs[i : i + 2], ys[i : i + 2]) for i in range(0, len(xs), 3)]
    horizontal = sorted(y[0] for x, y in segments if y[0] == y[1])
    vertical = sorted(x[0] for x, y in segments if x[0] == x[1])
    assert horizontal == [i - 0.5 for i in range(14)]  # 13 rows need 14 lines
    assert len(vertical) == 14
    assert vertical[1] - vertical[0] == 1  # one line between each pair of columns


def test_padding_taps_are_written_with_a_true_minus(at):
    assert any(
        "taps at rows −1, 0, 1, 2, 3 × columns −1, 0, 1, 2, 3" in m.value for m in at.markdown
    )
