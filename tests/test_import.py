"""``hybrid-edge import``: foreign .tflite files written by the plain TensorFlow converter become bundles
that inspect, run, eval and bench serve; a streaming model's state is fed back exactly; bad files are
one line and exit 2."""

from __future__ import annotations

import json
import subprocess
import sys
import zipfile
from pathlib import Path

import numpy as np
import pytest

from edge.bundle import InputKind, Mode, read_bundle
from edge.errors import ModelImportError
from edge.importer import ImportOptions, import_model, pair_states
from edge.flatbuffer import read_model

BLOCK_TF = "import sys; sys.modules['tensorflow'] = None; sys.modules['keras'] = None; from edge.cli import main; sys.exit(main(sys.argv[1:]))"
LABELS = ("left", "right", "still")


def cli(*args: str) -> subprocess.CompletedProcess:
    """The CLI in a fresh process where TensorFlow cannot be imported."""
    return subprocess.run([sys.executable, "-c", BLOCK_TF, *args], capture_output=True, text=True, timeout=300)


def _convert(model, representative=None) -> bytes:
    import tensorflow as tf

    conv = tf.lite.TFLiteConverter.from_keras_model(model)
    if representative is not None:
        conv.optimizations = [tf.lite.Optimize.DEFAULT]
        conv.representative_dataset = representative
        conv.target_spec.supported_ops = [tf.lite.OpsSet.TFLITE_BUILTINS_INT8]
        conv.inference_input_type = conv.inference_output_type = tf.int8
    return conv.convert()


def _metadata(labels_file: str, mean: float, std: float) -> bytes:
    """A ``ModelMetadata`` flatbuffer (tflite-support schema, identifier M001): input normalization, output labels."""
    import flatbuffers

    b = flatbuffers.Builder(0)

    def vector(items, prepend, size=4):
        b.StartVector(size, len(items), size)
        for item in reversed(items):
            prepend(item)
        return b.EndVector()

    fname = b.CreateString(labels_file)
    b.StartObject(5)
    b.PrependUOffsetTRelativeSlot(0, fname, 0)
    b.PrependInt8Slot(2, 2, 0)  # TENSOR_AXIS_LABELS
    labels = b.EndObject()
    means, stds = vector([mean] * 3, b.PrependFloat32), vector([std] * 3, b.PrependFloat32)
    b.StartObject(2)
    b.PrependUOffsetTRelativeSlot(0, means, 0)
    b.PrependUOffsetTRelativeSlot(1, stds, 0)
    norm = b.EndObject()
    b.StartObject(2)
    b.PrependUint8Slot(0, 1, 0)  # ProcessUnitOptions.NormalizationOptions
    b.PrependUOffsetTRelativeSlot(1, norm, 0)
    unit = b.EndObject()
    units, files = vector([unit], b.PrependUOffsetTRelative), vector([labels], b.PrependUOffsetTRelative)
    in_name, model_name = b.CreateString("image"), b.CreateString("shapes classifier")
    b.StartObject(7)
    b.PrependUOffsetTRelativeSlot(0, in_name, 0)
    b.PrependUOffsetTRelativeSlot(4, units, 0)
    tin = b.EndObject()
    b.StartObject(7)
    b.PrependUOffsetTRelativeSlot(6, files, 0)
    tout = b.EndObject()
    ins, outs = vector([tin], b.PrependUOffsetTRelative), vector([tout], b.PrependUOffsetTRelative)
    b.StartObject(10)
    b.PrependUOffsetTRelativeSlot(2, ins, 0)
    b.PrependUOffsetTRelativeSlot(3, outs, 0)
    subgraph = b.EndObject()
    subgraphs = vector([subgraph], b.PrependUOffsetTRelative)
    b.StartObject(8)
    b.PrependUOffsetTRelativeSlot(0, model_name, 0)
    b.PrependUOffsetTRelativeSlot(3, subgraphs, 0)
    b.Finish(b.EndObject(), file_identifier=b"M001")
    return bytes(b.Output())


def _with_metadata(flatbuffer: bytes, path: Path, labels: tuple[str, ...]) -> Path:
    """Add a TFLITE_METADATA buffer and pack labels.txt, as the TFLite metadata populator does."""
    from tensorflow.lite.python import schema_py_generated as schema
    from tensorflow.lite.tools import flatbuffer_utils

    model = flatbuffer_utils.read_model_from_bytearray(bytearray(flatbuffer))
    buf = schema.BufferT()
    buf.data = np.frombuffer(_metadata("labels.txt", 127.5, 127.5), np.uint8)
    model.buffers.append(buf)
    md = schema.MetadataT()
    md.name, md.buffer = "TFLITE_METADATA", len(model.buffers) - 1
    model.metadata = [*(model.metadata or []), md]
    path.write_bytes(bytes(flatbuffer_utils.convert_object_to_bytearray(model)))
    with zipfile.ZipFile(path, "a") as z:
        z.writestr("labels.txt", "\n".join(labels) + "\n")
    return path


@pytest.fixture(scope="module")
def foreign(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """Three foreign models: a keras.applications classifier (float32, full int8, with metadata) and a step
    model with an explicit recurrent state, all written by the plain TF converter."""
    import keras

    root = tmp_path_factory.mktemp("foreign")
    keras.utils.set_random_seed(0)
    net = keras.applications.MobileNet(input_shape=(32, 32, 3), alpha=0.25, weights=None, classes=3)
    rng = np.random.default_rng(0)

    def representative():
        for _ in range(8):
            yield [rng.uniform(-1, 1, (1, 32, 32, 3)).astype(np.float32)]

    out = {"float32": root / "mobilenet_f32.tflite", "int8": root / "mobilenet_int8.tflite"}
    out["float32"].write_bytes(_convert(net))
    out["int8"].write_bytes(_convert(net, representative))
    out["metadata"] = _with_metadata(_convert(net), root / "mobilenet_meta.tflite", LABELS)

    frame = keras.Input((16, 16, 3), batch_size=1, name="frame")
    h = keras.Input((8,), batch_size=1, name="h")
    x = keras.layers.Conv2D(4, 3, strides=2, activation="relu")(frame)
    x = keras.layers.GlobalAveragePooling2D()(x)
    h_out = keras.layers.Activation("tanh", name="h_out")(keras.layers.Add()([keras.layers.Dense(8)(x), keras.layers.Dense(8)(h)]))
    probs = keras.layers.Dense(3, activation="softmax", name="probs")(h_out)
    out["step"] = root / "step.tflite"
    out["step"].write_bytes(_convert(keras.Model([frame, h], [probs, h_out])))
    return out


def _video(path: Path, frames: int = 12) -> Path:
    import cv2

    writer = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*"MJPG"), 10, (40, 30))
    assert writer.isOpened()
    for t in range(frames):
        img = np.full((30, 40, 3), 30, np.uint8)
        img[8:20, 2 + 3 * t: 10 + 3 * t] = (0, 200, 255)
        writer.write(img)
    writer.release()
    return path


def _clips(path: Path, shape: tuple[int, ...], n: int = 6) -> Path:
    rng = np.random.default_rng(1)
    np.savez(path, clips=rng.integers(0, 256, (n, *shape), dtype=np.uint8), labels=np.arange(n) % 3,
             label_names=np.array(LABELS))
    return path


def _serve_everywhere(bundle: Path, tmp: Path, clip_shape: tuple[int, ...]) -> None:
    """inspect (self-test), run on a real video, eval and bench all work on an imported bundle."""
    proc = cli("inspect", str(bundle))
    assert proc.returncode == 0 and "self-test passed" in proc.stdout, proc.stderr
    summary = tmp / "run.json"
    proc = cli("run", str(bundle), "--source", str(_video(tmp / "clip.avi")), "--meter", "estimate:rpi4", "--summary-json", str(summary))
    assert proc.returncode == 0, proc.stderr
    assert json.loads(summary.read_text())["frames"] == 12
    clips = _clips(tmp / "clips.npz", clip_shape)
    report = tmp / "eval.json"
    proc = cli("eval", str(bundle), "--clips", str(clips), "--meter", "estimate:rpi4", "--json", str(report))
    assert proc.returncode == 0, proc.stderr
    r = json.loads(report.read_text())["bundles"][0]
    assert r["clips"] == 6 and r["labels"] == list(LABELS) and np.array(r["confusion"]).sum() == 6
    proc = cli("bench", str(bundle), "--clips", str(clips), "--runs", "20", "--min-seconds", "0.05", "--repeats", "1",
               "--warmup", "2", "--meter", "estimate:rpi4", "--out", str(tmp / "bench"))
    assert proc.returncode == 0, proc.stderr
    (result,) = json.loads((tmp / "bench" / "results.json").read_text())["results"]
    assert result["latency_ms"]["p50"] > 0 and result["items"] == 6


@pytest.mark.parametrize("kind", ["float32", "int8"])
def test_import_keras_applications_classifier(foreign: dict[str, Path], tmp_path: Path, kind: str) -> None:
    bundle = tmp_path / "b"
    proc = cli("import", str(foreign[kind]), "--out", str(bundle), "--labels", ",".join(LABELS),
               "--preprocess", "scale=1,mean=127.5,std=127.5")
    assert proc.returncode == 0, proc.stderr
    b = read_bundle(bundle)
    assert b.mode is Mode.SINGLE and b.manifest.input_kind is InputKind.IMAGE and b.labels == LABELS
    assert b.precision == kind and b.graphs[0].inputs[0].dtype == kind
    assert b.source.imported == foreign[kind].name and b.preprocessing.size == (32, 32)
    _serve_everywhere(bundle, tmp_path, (32, 32, 3))


def test_import_reads_labels_and_normalization_from_metadata(foreign: dict[str, Path], tmp_path: Path) -> None:
    info = read_model(foreign["metadata"])
    assert info.metadata_buffer("TFLITE_METADATA")[4:8] == b"M001"
    bundle = import_model(foreign["metadata"], tmp_path / "b")
    b = read_bundle(bundle)
    assert b.labels == LABELS and b.name == "shapes classifier"
    assert b.preprocessing.scale == 1.0 and b.preprocessing.mean == (127.5,) * 3 and b.preprocessing.std == (127.5,) * 3
    _serve_everywhere(bundle, tmp_path, (32, 32, 3))


def test_import_streaming_model_feeds_its_state_back(foreign: dict[str, Path], tmp_path: Path) -> None:
    from edge.interpreter import make_interpreter
    from edge.streaming import StreamingSession

    info = read_model(foreign["step"])
    # the converter names the outputs output_0 (probs) and output_1 (h_out): paired by shape and dtype
    assert pair_states(info.signature_io[0], ()) == (("h", "output_1"),)
    with pytest.raises(ModelImportError, match="--state h:output_0: shapes"):
        import_model(foreign["step"], tmp_path / "bad", ImportOptions(labels=LABELS, states=(("h", "output_0"),)))
    bundle = import_model(foreign["step"], tmp_path / "b", ImportOptions(labels=LABELS, preprocess={"scale": str(1 / 255)},
                                                                         states=(("h", "output_1"),)))
    b = read_bundle(bundle)
    assert b.mode is Mode.STREAMING and [(s.input, s.output) for s in b.states] == [("h", "output_1")]
    frames = np.random.default_rng(3).integers(0, 256, (10, 16, 16, 3), dtype=np.uint8)
    session = StreamingSession(b)
    got = [session.step(f).probabilities for f in frames]
    runner = make_interpreter(foreign["step"]).get_signature_runner()  # the same steps by hand
    h = np.zeros((1, 8), np.float32)
    for frame, probs in zip(frames, got):
        outs = runner(frame=(frame[None] / np.float32(255)).astype(np.float32), h=h)
        h = outs["output_1"]
        np.testing.assert_allclose(probs, outs["output_0"][0], atol=1e-6)
    assert np.abs(h).max() > 0.01  # the state really moved
    _serve_everywhere(bundle, tmp_path, (4, 16, 16, 3))


def test_missing_items_are_one_line_each(foreign: dict[str, Path], tmp_path: Path) -> None:
    with pytest.raises(ModelImportError, match=r"labels: the file carries none; give --labels FILE or --labels a,b,c \(3 classes\)"):
        import_model(foreign["float32"], tmp_path / "a", ImportOptions(preprocess={"scale": "1"}))
    with pytest.raises(ModelImportError, match="preprocessing: the file carries no normalization metadata; give --preprocess"):
        import_model(foreign["float32"], tmp_path / "b", ImportOptions(labels=LABELS))
    with pytest.raises(ModelImportError, match="2 given but the model outputs 3 classes"):
        import_model(foreign["float32"], tmp_path / "c", ImportOptions(labels=LABELS[:2], preprocess={"scale": "1"}))
    with pytest.raises(ModelImportError, match="--mode streaming"):
        import_model(foreign["float32"], tmp_path / "d", ImportOptions(labels=LABELS, preprocess={"scale": "1"}, mode="streaming"))
    assert not any(tmp_path.iterdir())  # nothing half-written is left behind


def test_corrupt_or_unsupported_file_is_one_line(foreign: dict[str, Path], tmp_path: Path) -> None:
    junk = tmp_path / "junk.tflite"
    junk.write_bytes(b"not a model at all, just bytes" * 4)
    truncated = tmp_path / "cut.tflite"
    truncated.write_bytes(foreign["float32"].read_bytes()[:3000])
    for path, needle in ((junk, "not a TFLite flatbuffer"), (truncated, "malformed TFLite flatbuffer"),
                         (tmp_path / "absent.tflite", "file not found")):
        proc = cli("import", str(path), "--out", str(tmp_path / "x"), "--labels", "a,b,c")
        lines = proc.stderr.strip().splitlines()
        assert proc.returncode == 2 and len(lines) == 1 and needle in lines[0] and "Traceback" not in proc.stderr, proc.stderr


def _with_custom_op(flatbuffer: bytes, path: Path, custom_code: str) -> Path:
    """The same graph with its first operator turned into a custom op (as the Edge TPU compiler emits)."""
    from tensorflow.lite.python import schema_py_generated as schema
    from tensorflow.lite.tools import flatbuffer_utils

    model = flatbuffer_utils.read_model_from_bytearray(bytearray(flatbuffer))
    code = schema.OperatorCodeT()
    code.builtinCode = code.deprecatedBuiltinCode = schema.BuiltinOperator.CUSTOM
    code.customCode = custom_code
    code.version = 1
    model.operatorCodes.append(code)
    model.subgraphs[0].operators[0].opcodeIndex = len(model.operatorCodes) - 1
    path.write_bytes(bytes(flatbuffer_utils.convert_object_to_bytearray(model)))
    return path


def test_edgetpu_model_is_marked_and_needs_the_delegate(foreign: dict[str, Path], tmp_path: Path) -> None:
    tpu = _with_custom_op(foreign["int8"].read_bytes(), tmp_path / "model_edgetpu.tflite", "edgetpu-custom-op")
    bundle = import_model(tpu, tmp_path / "b", ImportOptions(labels=LABELS, preprocess={"scale": "1", "mean": "127.5", "std": "127.5"}))
    b = read_bundle(bundle)
    assert b.manifest.edgetpu_compiled and not (bundle / "golden.npz").exists()  # its golden pair is made on the board
    proc = cli("run", str(bundle), "--source", str(_video(tmp_path / "clip.avi")))
    lines = proc.stderr.strip().splitlines()
    assert proc.returncode == 2 and len(lines) == 1 and "compiled for the Edge TPU; run it with --delegate edgetpu" in lines[0]
    other = _with_custom_op(foreign["int8"].read_bytes(), tmp_path / "custom.tflite", "MyFancyOp")
    with pytest.raises(ModelImportError, match="custom op MyFancyOp has no kernel in this runtime"):
        import_model(other, tmp_path / "c", ImportOptions(labels=LABELS, preprocess={"scale": "1"}))
