"""From classifier to detector: slide a classifier over a scene, then non-maximum suppression."""

from __future__ import annotations

import streamlit as st

from cnnlab.data import SHAPE_CLASSES
from cnnlab.single_shot import GRID, SIDE
from ui import detection as ui
from ui import experiments, picture, url_state
from ui.navigation import ensure_app_navigation

ensure_app_navigation()
st.title("From classifier to detector")
experiments.shared_view(("detector",), "det.exp", ui.single_shot_result)
st.markdown(
    "A classifier answers *what* is in an image; a detector answers *what* and *where*, for "
    "every object. The oldest way to turn one into the other: **slide the classifier over the "
    "scene**, keep the windows it is sure about, and remove duplicate boxes with **non-maximum "
    "suppression** (NMS). Every box, score and IoU below is computed by the engine."
)
clf = ui.window_classifier()
st.caption(
    f"The classifier: the *fast* preset trained once per server on {clf.train_images:,} "
    f"28×28 images of the 10 shapes **plus a background class** (crops of empty canvas), seed "
    f"{ui.CLASSIFIER_SEED}, {clf.train_seconds:.1f} s; test accuracy {clf.test_accuracy:.1%}. "
    "Without the background class every empty window would still get a confident shape: a "
    "classifier has no way to say *nothing here*."
)

st.header("1. A scene")
cols = st.columns(2)
seed = cols[0].number_input("Scene seed", 0, 9999, 7, key="det.seed")
count = cols[1].slider("Objects", 1, 8, 5, key="det.count")
canvas = ui.scene(int(seed), int(count))
drawn, legend = ui.truth_file(int(seed), int(count))
picture.image(
    drawn,
    alt=f"A black canvas with {len(canvas.boxes)} white shapes, each in a green box",
    caption=ui.legend_caption(
        f"{len(canvas.boxes)} shapes on a {ui.CANVAS_SIDE}×{ui.CANVAS_SIDE} canvas, true "
        "boxes in green (the tight box of each shape's bright pixels).",
        legend,
    ),
)


@url_state.fragment
def scan_and_suppress() -> None:
    """Stride, thresholds and the NMS stepper: the student's part, rerun on its own."""
    st.header("2. Slide the classifier")
    cols = st.columns(2)
    stride = cols[0].select_slider("Stride (pixels)", (1, 2, 4, 7, 14), 4, key="det.stride")
    shown = cols[1].selectbox(
        "Heat map of", ("any object", *SHAPE_CLASSES), key="det.heat",
        help="'any object' is 1 − P(background) of each window.",
    )  # fmt: skip
    cols = st.columns(3)
    min_score = cols[0].slider("Minimum score", 0.3, 0.99, 0.6, 0.01, key="det.min_score")
    iou = cols[1].slider("NMS IoU threshold", 0.0, 1.0, 0.3, 0.05, key="det.iou")
    snap = cols[2].toggle(
        "Snap boxes to the ink", True, key="det.snap",
        help="A window only proposes boxes of its own size (28×28). Snapping shrinks each box "
        "to the bright pixels inside it: a hand-made stand-in for the box regression a real "
        "detector learns.",
    )  # fmt: skip
    settings = (int(seed), int(count), stride, min_score, iou, snap)
    found, score = ui.detections(*settings)
    rows, cols_ = found.scan.probs.shape[:2]
    cls = None if shown == "any object" else SHAPE_CLASSES.index(shown)
    picture.image(
        ui.heat_file(settings, cls),
        alt=f"Heat map of P({shown}) over the scene, bright where the classifier is sure",
        caption=f"{rows}×{cols_} = {rows * cols_:,} windows of 28×28, stride {stride}: "
        f"P({shown}) of each window painted at its centre (viridis: dark 0, yellow 1).",
    )

    st.header("3. Non-maximum suppression, step by step")
    if not found.steps:
        st.warning(
            f"No window reaches a score of {min_score:.2f}: lower the minimum score.",
            icon=":material/search_off:",
        )
        return
    st.markdown(
        f"**{len(found.candidates)} candidate boxes** reach a score of {min_score:.2f}; many "
        "cover the same shape. NMS takes the highest-scoring box, keeps it, and removes every "
        f"remaining box whose IoU with it is **greater than {iou:.2f}**; then the next "
        "highest that is left, until none is."
    )
    step = st.slider("Step", 1, len(found.steps), 1, key="det.step")
    current = found.steps[step - 1]
    drawn, legend = ui.nms_file(settings, step)
    picture.image(
        drawn,
        alt=f"The scene with the boxes of NMS step {step} drawn in colour",
        caption=ui.legend_caption(
            f"Step {step} of {len(found.steps)}: keeps candidate {current.kept} (orange) and "
            f"suppresses {len(current.suppressed)} (red, labelled with the IoU, or with #candidate "
            "where there is no room: the table below lists them all); blue were kept before, "
            "grey are still waiting.",
            legend,
        ),
    )
    if current.suppressed:
        st.dataframe(ui.step_table(found, step), hide_index=True)

    st.header("4. The detector's answer")
    drawn, legend = ui.result_file(settings)
    picture.image(
        drawn,
        alt="The scene with the detector's boxes in blue over the true boxes in green",
        caption=ui.legend_caption(
            "Kept boxes (blue) over the truth (green); the table below lists them.", legend
        ),
    )
    st.markdown(
        f"**mAP@0.5 = {score:.3f}** on this scene: for each class, predictions from the highest "
        "score down count as hits when they overlap a not-yet-matched true box with IoU ≥ 0.5; "
        "average precision is the area under that precision–recall curve, and mAP its mean "
        "over the classes present. Turn *snap* off to see why box shape matters as much as "
        "finding the object."
    )
    st.dataframe(ui.output_table(found), hide_index=True)
    st.caption(
        "This table is what every detector outputs: boxes (x1, y1, x2, y2 in pixels), labels "
        "and confidences."
    )


scan_and_suppress()

st.header("5. How real detectors replace the sliding window")
st.markdown(
    "Sliding a classifier costs one forward pass per window and only proposes boxes of the "
    "window's shape. Real detectors fix both:\n\n"
    "- **Region proposals (R-CNN family)**: a proposal step suggests a few thousand likely "
    "boxes of any shape; each is classified and its box refined. Fast/Faster R-CNN run the "
    "CNN once over the whole image and crop its *feature map* for each proposal; Faster R-CNN "
    "learns the proposals too (a region proposal network).\n"
    "- **Single-shot detectors (YOLO, SSD)**: one forward pass predicts, for every cell of a "
    "coarse grid (and a few anchor shapes per cell), a box (offsets from the cell), an "
    "objectness score and class scores. Every cell is a 'window', computed at once by "
    "convolution, and the box offsets are learned rather than snapped.\n\n"
    "Both end exactly as above: confidence threshold, then NMS, then boxes, labels and "
    "confidences, scored by mAP."
)


st.header("6. A single-shot detector, trained")
st.markdown(
    f"A small CNN turns the whole {SIDE}×{SIDE} canvas into a {GRID}×{GRID} grid in one "
    f"forward pass. Each cell predicts **an objectness score, a box** (its centre's offset "
    f"inside the cell, its width and height) **and scores for the 10 classes**; the cell "
    "that holds a true box's centre learns to predict that box, every other cell learns to "
    "say *nothing here*. A cell's confidence is objectness × its best class probability; "
    "boxes above a small threshold go through the same NMS as above and come out as boxes, "
    "labels and confidences. It trains in the training queue on canvases composed of "
    "shapes, and is scored on **held-out canvases** made of other shapes."
)
experiments.launcher("det.exp", ("detector",), render_result=ui.single_shot_result)
