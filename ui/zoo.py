"""Architecture zoo widgets and renderers: cached analyses, the block diagram, the tables."""

from __future__ import annotations

from typing import Any

import pandas as pd
import streamlit as st

from cnnlab import anatomy, zoo
from cnnlab.export import architecture_code

SIDES = (32, 64, 96, 112, 128, 160, 192, 224, 256, 320, 384, 448, 512)
BLOCK_COLOURS = {
    "": "#ffffff",
    "residual": "#dbeafe",
    "inverted residual": "#dcfce7",
    "separable": "#fef3c7",
}


def shape_text(shape: tuple[int, ...]) -> str:
    """``(64, 56, 56)`` → ``64×56×56``."""
    return "×".join(str(n) for n in shape)


def human(n: float) -> str:
    """1,814,073,344 → ``1.814 G``; 11,689,512 → ``11.69 M``; small numbers as they are."""
    for unit, size in (("G", 1e9), ("M", 1e6), ("k", 1e3)):
        if abs(n) >= size:
            digits = 3 if unit == "G" else 2
            return f"{n / size:.{digits}f} {unit}"
    return f"{n:,.0f}"


def _designed_side(key: str) -> None:
    """Architecture changed: its input side starts at the size it was designed for."""
    st.session_state[f"{key}.side"] = zoo.INPUT_SHAPES[st.session_state[f"{key}.arch"]][1]


def pick_architecture(key: str) -> tuple[str, int]:
    """The architecture and input side the learner picked."""
    cols = st.columns([2, 1])
    name = cols[0].selectbox(
        "Architecture",
        zoo.NAMES,
        format_func=lambda n: zoo.PUBLISHED[n].title,
        index=zoo.NAMES.index("resnet18"),
        key=f"{key}.arch",
        on_change=_designed_side,
        args=(key,),
    )
    designed = zoo.INPUT_SHAPES[name][1]
    side = cols[1].select_slider(
        "Input side (pixels)",
        SIDES,
        value=zoo.INPUT_SHAPES["resnet18"][1],  # then the designed size of the one chosen
        key=f"{key}.side",
        help=f"{zoo.PUBLISHED[name].title} was designed for {designed}×{designed}.",
    )
    return name, int(side)


@st.cache_data(max_entries=64, show_spinner=False)
def analysis(name: str, side: int) -> anatomy.Anatomy:
    """The per-layer analysis (built on meta once per server and size, then read from cache)."""
    return anatomy.analyse_zoo(name, side)


@st.cache_data(max_entries=64, show_spinner=False)
def diagram_dot(name: str, side: int) -> str:
    """Graphviz source of the layer sequence: one box per layer or block, shapes on the edges."""
    c = zoo.INPUT_SHAPES[name][0]
    boxes = anatomy.diagram(anatomy.meta_model(name), (c, side, side))
    lines = [
        "digraph G {",
        "rankdir=TB; nodesep=0.2; ranksep=0.25;",
        'node [shape=box, style="rounded,filled", fontname="sans-serif", fontsize=11];',
        'edge [fontname="sans-serif", fontsize=10];',
        'in [label="input", shape=plaintext, style=""];',
    ]
    previous, shape = "in", (c, side, side)
    for i, box in enumerate(boxes):
        repeat = f" ×{box.repeat}" if box.repeat > 1 else ""
        kind = f"{box.block} block" + "\\n" if box.block else ""
        colour = BLOCK_COLOURS[box.block]
        lines.append(f'n{i} [label="{kind}{box.label}{repeat}", fillcolor="{colour}"];')
        lines.append(f'{previous} -> n{i} [label=" {shape_text(shape)}"];')
        previous, shape = f"n{i}", box.output_shape
    lines.append('out [label="class scores", shape=plaintext, style=""];')
    lines.append(f'{previous} -> out [label=" {shape_text(shape)}"];')
    lines.append("}")
    return "\n".join(lines)


def totals(result: anatomy.Anatomy, name: str) -> None:
    """Parameters, multiply-adds, FLOPs and memory as metrics, then the published check."""
    cols = st.columns(4)
    cols[0].metric("Parameters", f"{result.params:,}")
    cols[1].metric("Multiply-adds / image", human(result.macs), help=f"{result.macs:,}")
    cols[2].metric("FLOPs / image", human(result.flops), help=f"{result.flops:,} = 2 × MACs")
    cols[3].metric("Layer outputs (float32)", f"{result.activation_bytes / 2**20:,.1f} MB")
    pub = zoo.PUBLISHED[name]
    designed = zoo.INPUT_SHAPES[name][1]
    checks = []
    if pub.params:
        checks.append(f"published parameters **{pub.params}**")
    if pub.gmacs and result.input_shape[1] == designed:
        checks.append(
            f"published multiply-adds **{pub.gmacs} G** (computed {result.macs / 1e9:.3f} G)"
        )
    if checks:
        st.caption(f"{pub.source}: " + "; ".join(checks) + ".")
    st.caption(
        f"**Variant.** {pub.variant} **Counting.** One multiply-add = 2 FLOPs; multiply-adds "
        "count convolutions and fully connected layers (biases, batch norm, activations, pooling "
        "and residual additions are left out, as in the published figures and in PyTorch's "
        "FlopCounterMode, which the tests compare with). Memory: each layer's output for one "
        "image in float32, summed (what training keeps for the backward pass if nothing is "
        "computed in place)."
    )


def layer_frame(result: anatomy.Anatomy) -> pd.DataFrame:
    """The per-layer table with a total row."""
    rows = [
        {
            "layer": r.name,
            "type": r.kind,
            "output": shape_text(r.output_shape),
            "parameters": r.params,
            "multiply-adds": r.macs,
            "output memory (KB)": round(r.activation_bytes / 1024, 1),
            "receptive field": "whole image"
            if r.receptive_field is None
            else str(r.receptive_field),
        }
        for r in result.rows
    ]
    rows.append(
        {
            "layer": "total",
            "type": "",
            "output": shape_text(result.output_shape),
            "parameters": result.params,
            "multiply-adds": result.macs,
            "output memory (KB)": round(result.activation_bytes / 1024, 1),
            "receptive field": "",
        }
    )
    return pd.DataFrame(rows)


@st.cache_data(max_entries=32, show_spinner=False)
def code(name: str, num_classes: int) -> str:
    """The architecture's standalone PyTorch source."""
    return architecture_code(name, num_classes)


@st.cache_data(max_entries=64, show_spinner=False)
def dense_vs_conv_rows(shape: tuple[int, int, int]) -> list[anatomy.DenseVsConv]:
    """The textbook network's layers next to their dense stand-ins (modules built on meta:
    ~10 ms that a rerun changing nothing else spent again)."""
    return anatomy.network_dense_vs_conv(shape)


def dense_vs_conv_section(key: str) -> None:
    """MLP versus CNN for an input the learner picks: one first layer, then a whole network."""
    cols = st.columns(6)
    c = cols[0].number_input("Channels", 1, 16, 3, key=f"{key}.c")
    h = cols[1].number_input("Height", 4, 1024, 224, key=f"{key}.h")
    w = cols[2].number_input("Width", 4, 1024, 224, key=f"{key}.w")
    hidden = cols[3].number_input("Hidden units (MLP)", 1, 100_000, 1000, key=f"{key}.hidden")
    filters = cols[4].number_input("Filters (CNN)", 1, 4096, 64, key=f"{key}.filters")
    kernel = cols[5].number_input("Kernel", 1, 11, 3, key=f"{key}.kernel")
    shape = (int(c), int(h), int(w))
    dense, conv = anatomy.first_layer(shape, int(hidden), int(filters), int(kernel))
    features = c * h * w
    m = st.columns(3)
    m[0].metric("Input features", f"{features:,}", help=f"{c} × {h} × {w}")
    m[1].metric(
        "Fully connected first layer", f"{dense:,}", help=f"{features:,} × {hidden} + {hidden}"
    )
    m[2].metric(
        "Conv first layer",
        f"{conv:,}",
        help=f"{filters} × ({c} × {kernel} × {kernel}) + {filters}",
    )
    st.markdown(
        f"Every one of the {hidden:,} hidden units of the fully connected layer has its own "
        f"weight for each of the {features:,} input numbers. A conv filter looks at a "
        f"{kernel}×{kernel} window only (**local connectivity**: {c * kernel * kernel} weights) "
        f"and uses the same weights at every position (**weight sharing**), so {filters} "
        f"filters cost {conv:,} parameters whatever the image size: "
        f"{dense / conv:,.0f}× fewer here. The price: each filter sees only a small window, "
        "which is why CNNs stack layers to grow the receptive field."
    )
    st.markdown(
        "**A whole small network.** The textbook CNN on your input, each conv layer next to a "
        "layer with the same input and output shapes that is *locally connected* (its own "
        "weights at every position: no sharing) or *fully connected* (every output sees every "
        "input):"
    )
    if h != w:
        st.info("The textbook network takes square inputs: set height = width to compare it.")
        return
    try:
        rows = dense_vs_conv_rows(shape)
    except ValueError as error:
        st.error(str(error), icon=":material/error:")
        return
    frame = pd.DataFrame(
        [
            {
                "layer": r.name,
                "input → output": f"{shape_text(r.input_shape)} → {shape_text(r.output_shape)}",
                "fully connected": r.fully_connected,
                "locally connected": r.locally_connected,
                "convolution (shared)": r.convolution,
            }
            for r in rows
        ]
    )
    total = frame.select_dtypes("number").sum()
    frame.loc[len(frame)] = {"layer": "total", "input → output": "", **total.to_dict()}
    st.dataframe(frame, hide_index=True, width="stretch")
    st.caption(
        "Counts include biases and come from modules built on PyTorch's meta device (the fully "
        "connected stand-ins would need "
        f"{int(total['fully connected']) * 4 / 2**30:,.1f} GB of float32 weights)."
    )


@st.cache_data(max_entries=128, show_spinner=False)
def _stack(spec_json: str, shape: tuple[int, int, int], classes: int) -> tuple[Any, str]:
    """Summary and standalone source of an edited stack (cached: the same edits, the same code)."""
    from cnnlab.export import model_code
    from cnnlab.models import ModelSpec, summarize

    spec = ModelSpec.from_json(spec_json)
    source = model_code(spec, shape, classes)
    c, h, w = shape
    source = (
        f"import torch\nfrom torch import nn\n\n\n{source}\n\nmodel = Net()\n"
        f"print(model(torch.zeros(1, {c}, {h}, {w})).shape)\n"
    )
    return summarize(spec, shape, classes), source


def stack_section(key: str) -> None:
    """Edit any stack, read its summary and take it away as PyTorch code."""
    from ui.page_links import ZOO_STACK
    from ui.training import model_editor, summary_frame

    cols = st.columns(4)
    c = cols[0].number_input("Input channels", 1, 16, 1, key=f"{key}.c")
    h = cols[1].number_input("Input height", 4, 512, 28, key=f"{key}.h")
    w = cols[2].number_input("Input width", 4, 512, 28, key=f"{key}.w")
    classes = cols[3].number_input("Classes", 2, 1000, 10, key=f"{key}.classes")
    shape = (int(c), int(h), int(w))
    try:
        spec = model_editor(key, ZOO_STACK)
        summary, source = _stack(spec.to_json(), shape, int(classes))
    except ValueError as error:
        st.error(str(error), icon=":material/error:")
        return
    st.dataframe(summary_frame(summary), hide_index=True, width="stretch")
    st.code(source, language="python")
    st.download_button(
        "Download this stack as a .py file",
        source,
        file_name=f"{spec.name}.py",
        mime="text/x-python",
        key=f"{key}.download",
        icon=":material/download:",
    )
