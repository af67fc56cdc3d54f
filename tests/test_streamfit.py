"""Stream training: state carried across clips, exact carry, determinism, saved model stays non-stateful."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from conftest import run_test_split
from edge.errors import HybridEdgeError
from training.registry import create_model, load_keras_model, make_config
from training.streamfit import StreamFitConfig, build_stream_model, stream_accuracy, stream_fit
from training.train import TrainConfig, seed_everything, train

QUIET = lambda msg: None  # noqa: E731
CLIPS = "synthetic-actions:classes=4,frames=6,size=24,clips=8,seed=3"


def _data(n: int, shape: tuple[int, ...], seed: int) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    return rng.normal(size=(n, *shape)).astype(np.float32), rng.integers(0, 3, n).astype(np.int32)


def _tiny_rnn(seed: int = 0, **overrides):
    seed_everything(seed)
    return create_model("test_rnn", make_config("test_rnn", {"timesteps": 7, **overrides}))


def test_state_entering_a_clip_is_the_state_leaving_the_previous_one() -> None:
    model = _tiny_rnn()
    x, y = _data(12, (7, 3), 1)
    seen: list[tuple[list[np.ndarray], list[np.ndarray]]] = []
    stream_fit(model, x, y, StreamFitConfig(epochs=2, batch_size=4, reset_share=0.0), progress=QUIET,
               on_clip=lambda k, s_in, s_out: seen.append(([a.copy() for a in s_in], [a.copy() for a in s_out])))
    steps = 3  # 12 clips / 4 streams per epoch
    assert len(seen) == 2 * steps
    for epoch in range(2):
        first_in = seen[epoch * steps][0]
        assert all(not s.any() for s in first_in)  # every epoch starts from zero
        for k in range(epoch * steps, (epoch + 1) * steps - 1):
            for s_out, s_next in zip(seen[k][1], seen[k + 1][0]):
                assert s_out.any() and np.array_equal(s_out, s_next)  # carried, not reset
    # two stacked LSTM layers (8 and 6 units): h and c for each
    assert [s.shape for s in seen[0][1]] == [(4, 8), (4, 8), (4, 6), (4, 6)]


def test_reset_share_one_means_every_clip_starts_from_zero() -> None:
    model = _tiny_rnn()
    x, y = _data(8, (7, 3), 2)
    seen: list[list[np.ndarray]] = []
    stream_fit(model, x, y, StreamFitConfig(epochs=1, batch_size=4, reset_share=1.0), progress=QUIET,
               on_clip=lambda k, s_in, s_out: seen.append(s_in))
    assert len(seen) == 2 and all(not s.any() for states in seen for s in states)


def test_stream_model_carry_equals_one_long_sequence() -> None:
    """Clip B played after clip A with A's final state == the model reading A then B as one sequence."""
    seed_everything(0)
    model = create_model("test_rnn_gru", make_config("test_rnn_gru", {"units": (8, 5)}))
    stream = build_stream_model(model)
    (a, b), _ = _data(2, (7, 3), 3)
    out_a = stream.model([a[None], *stream.zero_states(1)], training=False)
    out_b = stream.model([b[None], *[np.asarray(s) for s in out_a[1:]]], training=False)
    whole = model(np.concatenate([a, b])[None], training=False)
    np.testing.assert_allclose(np.asarray(out_b[0])[0, -1], np.asarray(whole)[0], atol=1e-5)
    fresh = model(b[None], training=False)
    assert not np.allclose(np.asarray(out_b[0])[0, -1], np.asarray(fresh)[0], atol=1e-3)  # the carried state matters


def test_same_seed_same_weights_and_stream_metric_counts_steps() -> None:
    x, y = _data(12, (7, 3), 4)
    weights = []
    for _ in range(2):
        model = _tiny_rnn(seed=5)
        hist = stream_fit(model, x, y, StreamFitConfig(epochs=2, batch_size=4, tail_share=0.3, state_penalty=0.1,
                                                       feature_noise=0.1, seed=9), x[:6], y[:6], progress=QUIET)
        weights.append(model.get_weights())
    assert all(np.array_equal(a, b) for a, b in zip(*weights))
    assert len(hist) == 2 and {"loss", "val_accuracy", "val_stream_accuracy_per_step"} <= set(hist[0])
    other = _tiny_rnn(seed=5)
    stream_fit(other, x, y, StreamFitConfig(epochs=2, batch_size=4, tail_share=0.3, seed=10), progress=QUIET)
    assert not all(np.array_equal(a, b) for a, b in zip(weights[0], other.get_weights()))
    padded = x.copy()
    padded[:, :2] = 0.0  # front padding (the mask value) is not scored
    acc = stream_accuracy(build_stream_model(other), padded, y)
    assert acc["steps"] == 12 * 5 and acc["clips"] == 12
    stream, hits = build_stream_model(other), 0  # the same stream played by hand: padding unscored
    states = stream.zero_states(1)
    for i in range(len(padded)):
        outs = stream.model([padded[i : i + 1], *states])
        states = [np.asarray(s) for s in outs[1:]]
        hits += int(np.sum(np.asarray(outs[0])[0, 2:].argmax(-1) == y[i]))
    assert acc["accuracy_per_step"] == pytest.approx(hits / acc["steps"])


def test_train_with_stream_epochs_saves_a_normal_model(tmp_path: Path) -> None:
    import keras

    run = train("test_cnn_lstm", CLIPS, tmp_path / "run", TrainConfig(epochs=2, batch_size=4, stream_epochs=2, seed=1), progress=QUIET)
    card = json.loads((run / "model_card.json").read_text())
    stream = card["metrics"]["test_stream"]
    assert card["metrics"]["stream_epochs_run"] == 2 and stream["steps"] == stream["clips"] * 6
    saved, x_test, y_test = run_test_split(run)
    again = stream_accuracy(build_stream_model(saved), x_test, y_test)
    assert {k: stream[k] for k in again} == pytest.approx(again, abs=1e-6)
    assert len(json.loads((run / "history.json").read_text())["stream"]) == 2
    assert json.loads((run / "config.json").read_text())["train"]["stream_epochs"] == 2
    model = load_keras_model(run / "model.keras")
    rnns = [l for l in model.layers if isinstance(l, keras.layers.RNN)]
    assert [type(l).__name__ for l in rnns] == ["LSTM"] and not any(l.stateful or l.return_state for l in rnns)
    assert [l.name for l in model.layers] == [l.name for l in create_model("test_cnn_lstm", make_config(
        "test_cnn_lstm", {"num_classes": 4})).layers]
    off = train("test_cnn_lstm", CLIPS, tmp_path / "off", TrainConfig(epochs=2, batch_size=4, stream_epochs=0, seed=1), progress=QUIET)
    off_card = json.loads((off / "model_card.json").read_text())
    assert off_card["metrics"]["stream_epochs_run"] == 0 and "test_stream" in off_card["metrics"]  # measured either way
    with pytest.raises(HybridEdgeError, match="stream_epochs"):
        train("test_cnn_lstm", CLIPS, tmp_path / "bad", TrainConfig(epochs=1, stream_epochs=-1), progress=QUIET)


def test_stream_training_and_the_step_model_name_states_alike() -> None:
    """One layer walker: stream training carries the states the bundle names (its conv buffers restart per clip)."""
    from converters.streaming import build_step_model

    model = _tiny_rnn()
    stream, step = build_stream_model(model), build_step_model(model)
    assert [t.name for t in stream.model.inputs[1:]] == [s.name for s in step.states if s.kind != "conv_buffer"]
    assert stream.state_shapes == [s.shape[1:] for s in step.states if s.kind != "conv_buffer"]
    assert stream.has_conv_buffer == any(s.kind == "conv_buffer" for s in step.states)
    bidir = create_model("rnn_bidir", make_config("rnn_bidir", {"features": "3", "num_classes": "3"}))
    with pytest.raises(HybridEdgeError, match="Bidirectional: its backward half reads future frames; the model cannot be stream-trained"):
        build_stream_model(bidir)
