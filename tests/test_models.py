"""Every registered test_* model builds, trains a step, saves and reloads; streaming contract holds."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from training.registry import InputKind, create_model, get_entry, list_models, load_keras_model, make_config

TEST_MODELS = [n for n in list_models() if n.startswith("test_")]
STREAMABLE_TESTS = [n for n in TEST_MODELS if get_entry(n).streamable]


def _batch(name: str, n: int = 4, steps: int = 7, seed: int = 0) -> tuple[np.ndarray, np.ndarray, int]:
    """Random float inputs of the model's input kind and shape, labels."""
    entry = get_entry(name)
    cfg = entry.config_cls()
    rng = np.random.default_rng(seed)
    if entry.input_kind is InputKind.CLIP:
        shape = (n, cfg.frames, cfg.height, cfg.width, cfg.channels)
    elif entry.input_kind is InputKind.IMAGE:
        shape = (n, cfg.height, cfg.width, cfg.channels)
    else:
        shape = (n, cfg.timesteps or steps, cfg.features)
    return rng.uniform(0, 1, shape).astype(np.float32), rng.integers(0, cfg.num_classes, n), cfg.num_classes


def _jiggle(model, seed: int = 1) -> None:
    """Random non-zero weights everywhere (fresh biases are zero, which hides padding bugs)."""
    rng = np.random.default_rng(seed)
    for w in model.weights:
        value = np.asarray(w.numpy())
        if "moving_variance" in w.path:
            w.assign(rng.uniform(0.5, 1.5, value.shape).astype(value.dtype))
        else:
            w.assign(value + rng.normal(0, 0.3, value.shape).astype(value.dtype))


def test_registry_lists_kinds_and_variants() -> None:
    assert {"cnn", "rnn", "rnn_bidir", "cnn_lstm", "cnn_gru"} <= set(list_models(include_tests=False))
    assert {"test_cnn", "test_rnn", "test_rnn_gru", "test_cnn_lstm", "test_cnn_gru"} <= set(TEST_MODELS)
    assert get_entry("rnn").input_kind is InputKind.SEQUENCE and get_entry("rnn").streamable
    assert get_entry("cnn").input_kind is InputKind.IMAGE and not get_entry("cnn").streamable
    assert get_entry("cnn_gru").input_kind is InputKind.CLIP
    assert not get_entry("rnn_bidir").streamable
    assert "rnn_bidir" not in list_models(streamable=True)
    assert list_models(include_tests=False, input_kind="sequence") == ["rnn", "rnn_bidir", "tcn"]
    assert get_entry("tcn").streamable and get_entry("tcn").fit.schedule == "cosine"


@pytest.mark.parametrize("name", TEST_MODELS)
def test_build_train_one_step_save_reload(name: str, tmp_path: Path) -> None:
    import keras

    keras.utils.set_random_seed(0)
    model = create_model(name)
    x, y, classes = _batch(name)
    model.compile(optimizer="adam", loss="sparse_categorical_crossentropy")
    before = [np.array(w) for w in model.trainable_weights]
    model.fit(x, y, epochs=1, batch_size=len(y), verbose=0)
    assert any(not np.array_equal(b, np.array(w)) for b, w in zip(before, model.trainable_weights))
    probs = model.predict(x, verbose=0)
    assert probs.shape == (len(y), classes)
    np.testing.assert_allclose(probs.sum(axis=1), 1.0, rtol=1e-5)
    model.save(tmp_path / "m.keras")
    again = load_keras_model(tmp_path / "m.keras")
    np.testing.assert_allclose(again.predict(x, verbose=0), probs, atol=1e-6)
    names = [layer.name for layer in model.layers]
    assert "classifier" in names
    if get_entry(name).input_kind is not InputKind.IMAGE:
        assert "rnn_0" in names or {"conv_0", "pool"} <= set(names)


def test_mobilenet_backbone_has_no_hidden_rescaling() -> None:
    """include_preprocessing=False: inputs are the [0, 1] floats every model gets."""
    import keras

    model = create_model("cnn", make_config("cnn", {"backbone": "mobilenet_v3_small", "height": "32", "width": "32", "alpha": "0.75"}))
    seen = []

    def walk(m):
        for layer in m.layers:
            seen.append(type(layer).__name__)
            if isinstance(layer, keras.Model):
                walk(layer)

    walk(model)
    assert "Rescaling" not in seen and "DepthwiseConv2D" in seen
    assert model.get_layer("frame_encoder").get_layer("mobilenet_v3_small").count_params() > 10_000  # the backbone, not a stub


@pytest.mark.parametrize("backbone", ["mobilenet_v3_small", "mobilenet_v1", "mobilenet_v2"])
def test_application_backbones_use_fast_settling_batchnorm(backbone: str) -> None:
    """keras.applications' BatchNorm momentum (0.99/0.999) is lowered to 0.9 so small runs do not collapse."""
    import keras

    model = create_model("cnn", make_config("cnn", {"backbone": backbone, "height": "32", "width": "32", "alpha": "0.5"}))
    net = model.get_layer("frame_encoder").get_layer(backbone)
    momenta = {layer.momentum for layer in net.layers if isinstance(layer, keras.layers.BatchNormalization)}
    assert momenta == {0.9}
    assert model.output.shape[-1] == make_config("cnn").num_classes


def test_rnn_trains_with_noise_on_its_front_end_that_the_step_model_leaves_out() -> None:
    import keras

    from converters.streaming import build_step_model

    model = create_model("rnn", make_config("rnn", {"features": "3", "num_classes": "3"}))
    names = [layer.name for layer in model.layers]
    assert names.index("mask") < names.index("noise") < names.index("conv_bn")
    assert isinstance(model.get_layer("noise"), keras.layers.GaussianNoise) and model.get_layer("noise").stddev == 0.1
    assert "noise" not in {layer.name for layer in build_step_model(model).model.layers}  # identity at inference
    quiet = create_model("rnn", make_config("rnn", {"features": "3", "num_classes": "3", "noise": "0"}))
    assert "noise" not in {layer.name for layer in quiet.layers}


@pytest.mark.parametrize("name", ["test_rnn", "test_rnn_gru", "rnn", "test_tcn", "tcn"])
def test_front_padded_masked_sequence_equals_real_steps_alone(name: str) -> None:
    """The variable-length rule: output(padded + masked) == output(real steps only, zero state)."""
    from edge.preprocess import Preprocessing

    model = create_model(name, make_config(name, {"features": "3", "num_classes": "3"}))
    _jiggle(model)
    rng = np.random.default_rng(2)
    lengths = [9, 4, 1, 6]
    T = 12
    raw = np.full((len(lengths), T, 3), np.nan, np.float32)  # loaders mark padding as NaN
    for i, n in enumerate(lengths):
        raw[i, T - n :] = rng.normal(3.0, 2.0, (n, 3))
    pre = Preprocessing(scale=1.0, mean=(3.0, 3.0, 3.0), std=(2.0, 2.0, 2.0), pad_value=0.0)
    x = pre.normalize(raw)
    assert np.all(x[0, : T - 9] == 0.0)
    batched = model.predict(x, verbose=0)
    alone = [model.predict(x[i : i + 1, T - n :], verbose=0)[0] for i, n in enumerate(lengths)]
    np.testing.assert_allclose(batched, np.stack(alone), atol=1e-5)
    # without the mask the padding would matter: a zero step still moves the state
    unmasked = model.predict(np.concatenate([np.full((1, 3, 3), 0.5, np.float32), x[1:2]], axis=1), verbose=0)[0]
    assert np.abs(unmasked - alone[1]).max() > 1e-4


def _stream(step, model_input: np.ndarray) -> np.ndarray:
    """Feed a sequence one step at a time through a step model from zero state."""
    feeds = {inp.name: np.zeros([1 if d is None else d for d in inp.shape], np.float32) for inp in step.model.inputs}
    out = None
    for t in range(model_input.shape[0]):
        feeds[step.frame_input] = model_input[t][None]
        outs = step.model(feeds, training=False)
        outs = [np.asarray(o) for o in (outs if isinstance(outs, (list, tuple)) else [outs])]
        out = outs[0]
        for s in step.states:
            feeds[s.name] = outs[s.output_index]
    return out[0]


@pytest.mark.parametrize("name", STREAMABLE_TESTS)
def test_streamable_models_build_as_step_models(name: str) -> None:
    """Same weights, one step at a time == the whole sequence in Keras."""
    from converters.streaming import build_step_model

    model = create_model(name)
    _jiggle(model, seed=3)
    x, _, _ = _batch(name, n=1, steps=6)
    step = build_step_model(model)
    assert step.states, "a streamable model carries state"
    np.testing.assert_allclose(_stream(step, x[0]), model.predict(x, verbose=0)[0], atol=1e-5)


def test_models_command_lists_the_registry_without_tensorflow() -> None:
    import os
    import subprocess
    import sys

    code = "import sys; sys.modules['tensorflow'] = None; sys.modules['keras'] = None\nfrom edge.cli import main\nmain(['models', '--tests'])"
    env = {**os.environ, "PYTHONPATH": str(Path(__file__).resolve().parents[1])}
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env, timeout=60)
    assert proc.returncode == 0, proc.stderr
    rows = {line.split()[0]: line.split()[1:3] for line in proc.stdout.splitlines()[1:]}
    assert set(rows) == set(list_models())
    assert rows["rnn"] == ["sequence", "yes"] and rows["rnn_bidir"] == ["sequence", "no"] and rows["cnn"] == ["image", "no"]


def test_precise_bn_normalises_the_real_steps_exactly() -> None:
    """After recalibration each BatchNorm's inference output over the real (unpadded) steps has mean beta and std |gamma|."""
    import keras

    from training.precise_bn import recalibrate

    keras.utils.set_random_seed(0)
    model = create_model("test_tcn")
    _jiggle(model)
    for layer in model.layers:  # far-off statistics, as an unsettled moving average leaves them
        if isinstance(layer, keras.layers.BatchNormalization):
            layer.moving_mean.assign(np.full(layer.moving_mean.shape, 5.0, np.float32))
    rng = np.random.default_rng(3)
    x = rng.normal(size=(20, 16, 3)).astype(np.float32)
    x[::2, :6] = 0.0  # front padding in every other sequence
    assert recalibrate(model, x, batch_size=7) == 2
    real = np.any(x != 0.0, axis=-1)
    for name in ("bn_0", "bn_1"):
        bn = model.get_layer(name)
        out = keras.Model(model.inputs, bn.output).predict(x, verbose=0)[real]
        np.testing.assert_allclose(out.mean(axis=0), bn.beta.numpy(), atol=2e-3)
        np.testing.assert_allclose(out.std(axis=0), np.abs(bn.gamma.numpy()), rtol=2e-2, atol=2e-3)
