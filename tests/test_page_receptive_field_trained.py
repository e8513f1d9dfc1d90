"""AppTest: the learner's trained network is a preset of the receptive-field page, with its real
input size, its layer table and its trained effective receptive field next to a random one's."""

from __future__ import annotations

import torch
from pagetest import app_test

from cnnlab import runs
from cnnlab.models import PRESETS, build_model
from cnnlab.receptive_field import analyse_stack, trained_receptive_field
from cnnlab.runs import SqliteRunStore, default_data_dir
from cnnlab.trained import list_trained, load_trained, receptive_field_stack, stack_prefix

PAGE = "pages/receptive_field.py"
OWNER = "ab" * 16


def _finished_run(owner: str = OWNER) -> str:
    """A finished run of the "fast" network on 28×28 grey images, weights on disk."""
    store = SqliteRunStore(default_data_dir())  # the per-test CNNLAB_DATA_DIR
    spec = PRESETS["fast"]
    torch.manual_seed(3)
    model = build_model(spec, (1, 28, 28), 10)
    meta = {
        "input_shape": [1, 28, 28],
        "classes": [str(i) for i in range(10)],
        "mean": [0.2],
        "std": [0.3],
    }
    run_id = store.create_run(
        owner, dataset="shapes", config={}, spec=spec.to_dict(), meta=meta, name="fast on shapes"
    )
    runs.save_weights(store.run_dir(run_id) / runs.WEIGHTS_FILE, model.state_dict())
    store.finish(run_id, "finished", final={"test_accuracy": 0.875})
    return run_id


def _page(owner: str = OWNER):
    at = app_test(PAGE, timeout=120)
    at.session_state["owner.id"] = owner
    at.run()
    assert not at.exception, [e.value for e in at.exception]
    return at


def _table(at):
    (table,) = [df for df in at.dataframe if df.editing_mode == "read_only"]
    return table.value


def test_a_trained_network_is_a_preset_with_its_table_and_trained_erf():
    run_id = _finished_run()
    at = _page()
    (label,) = [o for o in at.selectbox(key="rf.preset").options if run_id[:6] in o]
    assert label == f"fast on shapes · {run_id[:6]} (87.5%)"
    assert not any("trained network" in m.label for m in at.metric)  # Small CNN: no trained ERF

    at.selectbox(key="rf.preset").set_value(label).run()
    assert not at.exception, [e.value for e in at.exception]
    assert at.number_input(key="rf.size").value == 28  # the run's real input size
    stack = receptive_field_stack(PRESETS["fast"])
    fields = analyse_stack(stack.layers, 28)
    table = _table(at)
    assert list(table["RF size"]) == [str(f.rows.rf) for f in fields]
    assert list(table["Output"]) == [f"{h}×{w}" for h, w in (f.output_hw for f in fields)]
    assert table["Output"].tolist()[-1] == "5×5"  # 28 → 12 (5×5, stride 2) → 10 (3×3) → 5 (pool)

    # The trained ERF, at the last layer (the default), equals the engine's on the real weights.
    store = SqliteRunStore(default_data_dir())
    trained = load_trained(store, OWNER, run_id)
    index = len(fields) - 1
    samples = at.session_state["rf.erf_for"][3]
    expected = trained_receptive_field(
        stack_prefix(trained.model, stack, index), fields, index, 1, samples=samples
    )
    shown = {m.label: m.value for m in at.metric}
    assert shown["Your trained network: 95 % of the gradient in"] == (
        f"{expected.mass_share:.0%} of the field"
    )
    assert "Randomly initialised: 95 % of the gradient in" in shown
    assert "Your trained network" in [s.value for s in at.subheader]

    # An earlier layer: the trained network is cut there.
    at.selectbox(key="rf.layer").set_value(0).run()
    assert not at.exception
    assert any(m.label.startswith("Your trained network") for m in at.metric)

    # Editing a row makes it another network: no trained ERF, and the page says why.
    at.session_state[f"rf.editor.{at.session_state['rf.editor_version']}"] = {
        "edited_rows": {0: {"kernel": 7}},  # the fast preset starts with a 5×5 conv
        "added_rows": [],
        "deleted_rows": [],
    }
    at.run()
    assert not at.exception
    assert not any(m.label.startswith("Your trained network") for m in at.metric)
    assert any("no longer matches the network you trained" in i.value for i in at.info)


def test_another_learners_network_is_not_offered():
    run_id = _finished_run(owner="cd" * 16)
    at = _page()
    assert not [o for o in at.selectbox(key="rf.preset").options if run_id[:6] in o]
    assert list_trained(SqliteRunStore(default_data_dir()), OWNER) == []


def test_a_chosen_network_deleted_meanwhile_falls_back_to_a_classic():
    run_id = _finished_run()
    at = _page()
    (label,) = [o for o in at.selectbox(key="rf.preset").options if run_id[:6] in o]
    at.selectbox(key="rf.preset").set_value(label).run()
    SqliteRunStore(default_data_dir()).delete_run(OWNER, run_id)
    at.run()
    assert not at.exception, [e.value for e in at.exception]
    assert at.selectbox(key="rf.preset").value == "Small CNN"
