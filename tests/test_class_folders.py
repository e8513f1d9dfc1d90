"""Decoding a zip of class folders in-process, under its caps (the sandboxed path is in
test_data.py and the hostile corpus)."""

from __future__ import annotations

import numpy as np
import pytest
from hostile_cases import classes_zip, png_bomb, tiny_png

from cnnlab.class_folders import display_name, read_class_folders, serve, unserve


def test_a_zip_reads_into_split_arrays_and_survives_serialisation():
    folders = read_class_folders(classes_zip(3), size=12, seed=1)
    assert folders.classes == ("a", "b")
    assert folders.train_x.shape[1:] == (1, 12, 12)
    assert len(folders.train_y) + len(folders.test_y) == 6
    back = unserve(serve(classes_zip(3), {"size": 12, "seed": 1}))
    assert back.classes == folders.classes
    assert np.array_equal(back.train_x, folders.train_x)
    assert np.array_equal(back.test_y, folders.test_y)


def test_pixels_are_counted_across_images():
    data = classes_zip(2, png_bomb(2000, 2000))  # 4 images of 4 megapixels each
    assert len(read_class_folders(data, max_pixels=16_000_000).train_y) == 2
    with pytest.raises(ValueError, match=r"more than 15 million pixels in all"):
        read_class_folders(data, max_pixels=15_999_999)


def test_inflated_bytes_are_counted_across_members():
    data = classes_zip(2, tiny_png(side=64))
    with pytest.raises(ValueError, match=r"unpacks to more than"):
        read_class_folders(data, max_bytes=200)


@pytest.mark.parametrize(
    ("name", "shown"),
    [("cats/1.png", "cats/1.png"), ("a\x1b[2Jb", "a?[2Jb"), ("x" * 100, "x" * 29 + "…" + "x" * 30)],
)
def test_member_names_are_shown_safely(name: str, shown: str):
    assert display_name(name) == shown
