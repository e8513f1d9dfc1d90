"""AppTest of training on the learner's own images: upload a zip of class folders, see the classes
and samples, train on it in a real worker; a corrupt zip is explained, never a traceback."""

from __future__ import annotations

import io
import time
import zipfile

import pytest
from class_zip import class_zip
from pagetest import app_test

from cnnlab import jobs


@pytest.fixture(autouse=True)
def _scheduler():
    yield
    jobs.shutdown_scheduler()


def _upload_page(data: bytes, name: str = "mine.zip"):
    at = app_test("pages/train.py", timeout=120).run()
    assert not at.exception, [e.value for e in at.exception]
    at.selectbox(key="train.data.name").set_value("upload").run()
    assert not at.exception
    assert at.button(key="train.start").disabled  # nothing to train on yet
    at.file_uploader(key="train.data.zip").set_value((name, data, "application/zip")).run()
    assert not at.exception, [e.value for e in at.exception]
    return at


def _text(at) -> str:
    return " ".join(m.value for m in at.markdown)


def test_train_on_an_uploaded_zip_and_see_the_results():
    at = _upload_page(class_zip(("cat", "dog"), per_class=20))
    assert not at.error, [e.value for e in at.error]
    assert "Classes found: **cat** (20), **dog** (20)" in _text(at)
    assert any("32 training and 8 test images of 1×28×28, 2 classes" in c.value for c in at.caption)
    assert at.get("image"), "sample images per class are shown"
    at.select_slider(key="train.data.size").set_value(16)
    at.number_input(key="train.hp.epochs").set_value(3)
    at.select_slider(key="train.hp.batch_size").set_value(16)
    at.run()
    assert any("of 1×16×16" in c.value for c in at.caption)
    at.button(key="train.start").click().run()
    assert not at.exception, [e.value for e in at.exception]
    deadline = time.monotonic() + 120
    while "finished" not in _text(at) and time.monotonic() < deadline:
        time.sleep(0.3)
        at.run()
        assert not at.exception, [e.value for e in at.exception]
    assert "finished" in _text(at), _text(at)
    assert "fast on your images" in _text(at)
    accuracy = next(m.value for m in at.metric if m.label == "Test accuracy")
    assert accuracy.endswith("%")
    assert len(at.get("plotly_chart")) >= 3  # curves, per-class accuracy, confusion matrix


def _damaged_member() -> bytes:
    """A real zip whose one compressed image no longer inflates."""
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", zipfile.ZIP_DEFLATED) as archive:
        for member in ("a/1.png", "a/2.png", "b/1.png", "b/2.png"):
            archive.writestr(member, b"\x89PNG" + bytes(range(256)) * 8)
    data = bytearray(buf.getvalue())
    data[40:60] = b"\xff" * 20  # inside the first member's deflate stream
    return bytes(data)


@pytest.mark.parametrize(
    ("data", "message"),
    [
        (class_zip()[:200], "not a zip archive"),
        (_damaged_member(), "damaged or uses an unsupported format"),
        (class_zip(("only",)), "1 class folder; a classifier needs at least 2"),
    ],
)
def test_a_bad_zip_is_explained_and_the_page_goes_on(data, message):
    at = _upload_page(data, "bad.zip")
    assert any(message in e.value for e in at.error), [e.value for e in at.error]
    assert at.button(key="train.start").disabled
    assert at.selectbox(key="train.model.preset").value  # the rest of the page is still there
