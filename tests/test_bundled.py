"""The bundled networks load (safetensors + JSON spec) and score as their JSON documents; the
digits network also reads digits rendered from the system's fonts, through the page's own
MNIST-style preprocessing; the export of a run writes exactly what the loader reads."""

from __future__ import annotations

import glob
import json
import os
from pathlib import Path

import pytest
import torch
from PIL import Image, ImageDraw, ImageFont

from cnnlab.bundled import BUNDLED, MODELS_DIR, bundled_info, export_run, load_bundled
from cnnlab.data import load_dataset, make_shapes, normalize
from cnnlab.explorer import Explorable, preprocess
from cnnlab.models import PRESETS, build_model
from cnnlab.runs import WEIGHTS_FILE, SqliteRunStore, save_weights

MNIST_T10K = Path(__file__).resolve().parents[2] / "shared" / "data" / "mnist-t10k"
FONTS = sorted(glob.glob("/usr/share/fonts/truetype/*/*.ttf"))


def _accuracy(model, images, labels, mean, std) -> float:
    with torch.no_grad():
        predicted = model(normalize(images, mean, std)).argmax(1)
    return float((predicted == labels).float().mean())


@pytest.mark.parametrize("name", BUNDLED)
def test_each_bundled_network_loads_and_documents_how_it_was_made(name):
    info, model = load_bundled(name)
    assert not model.training
    assert info.command.startswith("python -m cnnlab.train --preset ")
    assert "--seed 0" in info.command
    assert f"--export assets/models/{name}" in info.command
    assert info.test_accuracy > 0.95
    assert model(torch.zeros(1, *info.input_shape)).shape == (1, len(info.classes))


def test_the_shapes_network_scores_as_documented_on_its_regenerated_test_set():
    info, model = load_bundled("shapes")
    data = make_shapes(6000, 1000, seed=0)  # the same set the documented command trained on
    accuracy = _accuracy(model, data.test_x, data.test_y, info.mean, info.std)
    assert accuracy == pytest.approx(info.test_accuracy, abs=1e-6)


@pytest.mark.skipif(not MNIST_T10K.is_dir(), reason="the MNIST t10k files are not on this machine")
def test_the_digits_network_scores_as_documented_on_mnist():
    info, model = load_bundled("digits")
    data = load_dataset("mnist", data_dir=MNIST_T10K)  # the documented 8,000 / 2,000 split
    accuracy = _accuracy(model, data.test_x, data.test_y, info.mean, info.std)
    assert accuracy == pytest.approx(info.test_accuracy, abs=1e-6)


@pytest.mark.skipif(not FONTS, reason="no TrueType fonts on this machine")
def test_the_digits_network_reads_digits_rendered_from_fonts():
    """Digits 0–9 in every installed TrueType font, drawn 200 px high on a 280×280 canvas like
    the page's, through the page's preprocessing. Measured on Debian's DejaVu + Liberation
    fonts: 93 % (the misses are "1"s with a serif foot, which MNIST writers rarely draw)."""
    info, model = load_bundled("digits")
    target = Explorable("d", "d", model, 1, 28, "digits", info.mean, info.std, info.classes)
    inputs, digits = [], []
    for path in FONTS:
        font = ImageFont.truetype(path, 200)
        for digit in range(10):
            canvas = Image.new("L", (280, 280))
            ImageDraw.Draw(canvas).text((140, 140), str(digit), fill=255, font=font, anchor="mm")
            inputs.append(preprocess(canvas, target).x)
            digits.append(digit)
    with torch.no_grad():  # one batch: 400 single-image passes took ~10× longer
        predicted = model(torch.cat(inputs)).argmax(1)
    assert float((predicted == torch.tensor(digits)).float().mean()) >= 0.85


def test_export_writes_what_the_loader_reads(tmp_path, monkeypatch):
    monkeypatch.setenv("CNNLAB_DATA_DIR", os.fspath(tmp_path / "data"))
    store = SqliteRunStore(tmp_path / "data")
    torch.manual_seed(0)
    model = build_model(PRESETS["fast"], (1, 28, 28), 10).eval()
    meta = {"input_shape": [1, 28, 28], "classes": list("0123456789"), "mean": [0.1]}
    meta["std"] = [0.3]
    run_id = store.create_run(
        "me", dataset="shapes", config={}, spec=PRESETS["fast"].to_dict(), meta=meta, name="x"
    )
    save_weights(store.run_dir(run_id) / WEIGHTS_FILE, model.state_dict())
    store.finish(run_id, "finished", final={"test_accuracy": 0.5})
    export_run(store, "me", run_id, tmp_path / "out" / "mine", ["--seed", "0"])
    info, loaded = load_bundled("mine", tmp_path / "out")
    assert info.command == "python -m cnnlab.train --seed 0"
    assert info.preprocess == "square"
    x = torch.randn(1, 1, 28, 28)
    torch.testing.assert_close(loaded(x), model(x))


def test_a_damaged_bundle_is_a_clear_error(tmp_path):
    (tmp_path / "bad.json").write_text(json.dumps({"name": "bad"}))
    with pytest.raises(ValueError, match="cannot be read"):
        bundled_info("bad", tmp_path)
    good = json.loads((MODELS_DIR / "digits.json").read_text())
    (tmp_path / "broken.json").write_text(json.dumps(good))
    (tmp_path / "broken.safetensors").write_bytes(b"not a safetensors file")
    with pytest.raises(ValueError, match="cannot be loaded"):
        load_bundled("broken", tmp_path)


def test_the_command_line_trains_and_exports_a_bundle(tmp_path, capsys):
    from cnnlab.train import build_config, main, parse_args

    argv = ["--dataset", "shapes", "--limit", "200", "--epochs", "1", "--max-steps", "3"]
    argv += ["--seed", "0", "--augment", "--export", str(tmp_path / "tiny")]
    assert build_config(parse_args(argv))["augment"] is True
    assert main(argv) == 0
    assert "exported to" in capsys.readouterr().out
    info, model = load_bundled("tiny", tmp_path)
    assert info.command == "python -m cnnlab.train " + " ".join(argv)
    assert info.classes[0] == "circle"
    assert model(torch.zeros(1, *info.input_shape)).shape == (1, 10)
