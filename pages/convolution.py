"""Convolution & kernels: slide a kernel over an image, see the feature map, check every number."""

from __future__ import annotations

import streamlit as st

from cnnlab import conv
from ui import convolution as ui
from ui import url_state
from ui.image_source import ImageSource, image_picker
from ui.navigation import ensure_app_navigation

ensure_app_navigation()

st.title("Convolution & kernels")
st.markdown(
    "A **kernel** is a small grid of weights. Convolution slides it over the image and, at every "
    "position, multiplies the pixels under it by the weights and adds the products up: one number "
    "per position, together a **feature map**. Pick an image and a kernel, change the settings, "
    "and check every number in the *Step by step* tab. Pixel values are 0–255."
)

image_col, kernel_col = st.columns(2, gap="large")
with image_col:
    source = image_picker("conv.image")
with kernel_col:
    try:
        choice: ui.KernelChoice | None = ui.kernel_picker()
    except ValueError as error:
        st.error(str(error), icon=":material/error:")
        choice = None
    flip = ui.operation_picker()
    channels = ui.channels_picker()


# A fragment: a change of stride, padding, bias or the step-by-step crop reruns only the settings
# and the open tab; the title, the image picker and the kernel picker are not sent again. Tabs
# that track state run only the open one: every element in the fragment costs browser time.
@url_state.fragment
def lab(
    source: ImageSource, choice: ui.KernelChoice | None, channels: ui.Channels, flip: bool
) -> None:
    """The settings, then the input and feature map, the step-by-step view or the maths."""
    options = ui.options_panel(channels, flip)
    try:
        if choice is None:
            raise ValueError("Fix the kernel above to see the feature map.")
        bank = ui.filters_for(choice, options)
        x = ui.pixels(source, bank.gray)
        patch = ui.patch_location(x, source.digest)
        view = ui.layer_view(source, bank, options.bias, options.settings)
    except ValueError as error:
        st.error(str(error), icon=":material/error:")
        return

    maps_tab, step_tab, maths_tab = st.tabs(ui.VIEWS, key="conv.view", on_change="rerun")
    if maps_tab.open:
        with maps_tab:
            # One markdown for shape and summary: each element costs browser time on a rerun.
            summary = ui.markdown_escape(ui.summary_text(source.name, bank, options))
            st.markdown(f"**{ui.shape_text(view.shape)}** · {summary}")
            left, right = st.columns(2, gap="medium")
            with left:
                st.image(
                    ui.input_preview(source, bank.gray, patch),
                    width=ui.display_width(*x.shape[1:]),
                    caption=f"Input {x.shape[0]} × {x.shape[1]} × {x.shape[2]} (channels × "
                    "height × width); blue frame: the crop of the step-by-step view",
                    alt=f"The input image, {source.name}, with the step-by-step crop framed",
                )
            with right:
                ui.show_output(view)
            ui.show_map_grid(view)
    if step_tab.open:
        with step_tab:
            ui.step_by_step(x, bank, options, patch)
    if maths_tab.open:
        with maths_tab:
            kernel_hw = (int(bank.weight.shape[2]), int(bank.weight.shape[3]))
            counts = conv.parameter_counts(tuple(x.shape), view.shape, kernel_hw, bank.groups)
            pad = conv.pad_amounts(kernel_hw, options.settings)
            st.markdown(ui.maths_text(tuple(x.shape), view.shape, kernel_hw, options, pad, counts))


lab(source, choice, channels, flip)
