"""Training choices, measured: losses, optimisers, learning rates and augmentation."""

from __future__ import annotations

import streamlit as st

from cnnlab.choices import LANDSCAPES, OPTIMIZER_LABELS, OPTIMIZERS
from ui import choices as ui
from ui import experiments, figure_text, url_state
from ui.navigation import ensure_app_navigation

ensure_app_navigation()
st.title("Training choices")
experiments.shared_view(ui.EXPERIMENTS, "ch.exp", None)
st.markdown(
    "The same network learns fast, slowly or not at all depending on choices that never "
    "appear in its diagram: the loss, the optimiser, the learning rate, the augmentation. "
    "Each section measures one of them — gradients from autograd, steps from `torch.optim`."
)


@url_state.fragment
def losses() -> None:
    """Three classification losses as functions of one logit."""
    st.header("1. Loss functions")
    cols = st.columns(2)
    classes = cols[0].slider("Classes", 2, 10, 3, key="ch.classes")
    moving = cols[1].radio("Move the logit of", ("the true class", "a wrong class"),
                           horizontal=True, key="ch.moving")  # fmt: skip
    correct = moving == "the true class"
    results = ui.curves(classes, correct)
    figure_text.plotly_chart(ui.losses_figure(classes, correct), key="ch.loss_chart")
    ce, mse = results["cross_entropy"], results["mse"]
    st.markdown(
        f"One example, {classes} classes, the other logits at 0. When the true class's logit "
        f"is very low (a confident mistake) cross-entropy still pulls with a gradient of "
        f"**{ce.grad[0]:.3f}**, mean squared error on the softmax with only "
        f"**{mse.grad[0]:.1e}**: MSE barely corrects the mistakes that matter most, which is "
        "why classifiers use cross-entropy. Binary cross-entropy treats each class as its own "
        "yes/no question (sigmoids that need not sum to 1): what multi-label problems use."
    )


losses()


@url_state.fragment
def optimisers() -> None:
    """Optimiser paths on a 2-D landscape, step by step."""
    st.header("2. Optimisers on a loss landscape")
    landscape = st.selectbox("Landscape", list(LANDSCAPES), format_func=ui.LANDSCAPE_LABELS.get,
                             key="ch.landscape")  # fmt: skip
    chosen = st.multiselect("Optimisers", OPTIMIZERS, list(OPTIMIZERS),
                            format_func=OPTIMIZER_LABELS.get, key="ch.optimizers")  # fmt: skip
    cols = st.columns(3)
    sgd_lr = cols[0].select_slider("SGD learning rate", (1e-4, 3e-4, 1e-3, 3e-3, 1e-2, 3e-2),
                                   1e-3, key="ch.sgd_lr")  # fmt: skip
    adaptive_lr = cols[1].select_slider("RMSprop/Adam learning rate", (1e-3, 3e-3, 1e-2, 3e-2, 0.1),
                                        3e-2, key="ch.adaptive_lr")  # fmt: skip
    steps = cols[2].slider("Steps", 10, 500, 200, 10, key="ch.steps")
    if not chosen:
        st.info("Pick at least one optimiser.", icon=":material/info:")
        return
    lrs = tuple(sgd_lr if o in ("sgd", "momentum") else adaptive_lr for o in chosen)
    results = ui.paths(landscape, tuple(chosen), lrs, steps)
    step = st.slider("Show the paths up to step", 0, steps, steps, key="ch.step")
    figure_text.plotly_chart(
        ui.paths_figure(landscape, tuple(chosen), lrs, steps, step), key="ch.paths"
    )
    st.dataframe(
        {
            "optimiser": [OPTIMIZER_LABELS[p.optimizer] for p in results],
            "learning rate": [f"{lr:g}" for lr in lrs],
            "loss at start": [f"{p.losses[0]:.4g}" for p in results],
            f"loss at step {min(step, steps)}": [
                f"{p.losses[min(step, len(p.losses) - 1)]:.4g}" for p in results
            ],
            "where": [
                "diverged" if p.diverged else f"({p.points[-1][0]:.3f}, {p.points[-1][1]:.3f})"
                for p in results
            ],
        },
        hide_index=True,
    )
    st.caption(
        "Grey contours: the landscape's loss (log scale). The table is the chart in numbers. "
        "SGD steps along the gradient, so in a narrow valley it zig-zags across and crawls "
        "along; momentum accumulates speed along the valley; RMSprop and Adam divide each "
        "coordinate's step by its recent gradient size, so steep and flat directions move "
        "alike; AdamW also shrinks the weights towards 0 (decoupled weight decay)."
    )


optimisers()


@st.fragment
def learning_rate() -> None:
    """The learning-rate range test on the fast preset."""
    st.header("3. Finding a learning rate")
    cols = st.columns(2)
    seed = cols[0].number_input("Seed", 0, 9999, 0, key="ch.lr_seed")
    steps = cols[1].slider("Steps", 30, 200, 80, 10, key="ch.lr_steps")
    result = ui.range_test(int(seed), steps)
    figure_text.plotly_chart(ui.range_figure(int(seed), steps), key="ch.range")
    st.markdown(
        f"Train for {len(result.lrs)} steps while the learning rate grows exponentially from "
        f"{result.lrs[0]:.0e} to {result.lrs[-1]:.2g} (Smith 2017): too small, and the loss "
        f"does not move; too large, and it explodes (the test stops there). The loss falls "
        f"fastest at **{result.suggestion:.2g}**; a good constant rate is usually a little "
        "below that, and one-cycle schedules peak near it."
    )
    st.caption(
        f"The fast preset on {ui.RANGE_IMAGES:,} built-in shapes, batch 32, SGD with momentum "
        f"0.9, seed {seed}; the loss is smoothed (moving average)."
    )


learning_rate()


@url_state.fragment
def augmentation() -> None:
    """The training loop's own augmentation, on real examples."""
    st.header("4. Data augmentation")
    cols = st.columns(3)
    shift = cols[0].slider("Largest shift (pixels)", 0, 6, 2, key="ch.shift")
    flip = cols[1].toggle("Random horizontal flip", True, key="ch.flip")
    seed = cols[2].number_input("Seed", 0, 9999, 0, key="ch.aug_seed")
    st.image(
        ui.augmented(int(seed), shift, flip),
        alt="Eight shapes in the top row, the same eight shifted and flipped below",
        caption="Top: eight training images. Bottom: the same images as the training loop "
        "augments them (`cnnlab.data.augment`, the function the Train page uses): each batch "
        "sees a new shifted, maybe mirrored copy, so the network cannot memorise pixels.",
    )
    st.markdown(
        "Flips only suit classes that mirror into themselves: a mirrored arrow is still an "
        "arrow, a mirrored 7 is not a digit — which is why the Train page flips shapes and "
        "CIFAR-10 but never MNIST."
    )


augmentation()


st.header("5. Train with each choice")
st.markdown(
    "The sections above measure one step or a toy landscape; here real networks train in the "
    "training queue, one after another on the same built-in shapes from the same seed, each "
    "differing from the others in **one** choice: the optimiser, the loss, the learning rate "
    "and batch size, or a regulariser. *Overfitting* trains on only a few hundred images for "
    "many epochs, so training accuracy (thin dotted line) races ahead of validation accuracy "
    "(with markers); each cure (the augmentation shown in section 4, dropout, weight decay, "
    "L1, early stopping) is one more line on the same chart, with its own colour, dash and "
    "marker."
)
experiments.launcher("ch.exp", ui.EXPERIMENTS, ui.EXPERIMENT_LABELS)
