"""Dataset loaders on files written here in the real formats (.ts, OpenCV videos, PNG/JPG)."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import cv2
import numpy as np
import pytest

from edge.errors import DataError
from training.data import load_dataset
from training.data.video import sample_indices

HEADER = """# written by the test, in the UEA/UCR .ts format
@problemName {name}
@timeStamps false
@missing {missing}
@univariate {univariate}
@dimensions {dims}
@equalLength {equal}
@classLabel true walk run rest
@data
"""


def _case(rng: np.random.Generator, dims: int, length: int, label: str, missing: bool = False) -> str:
    base = {"walk": 1.0, "run": 3.0, "rest": 0.0}[label]
    parts = []
    for d in range(dims):
        vals = [f"{v:.4f}" for v in base * np.sin(np.arange(length) * (d + 1) / 3.0) + rng.normal(0, 0.1, length)]
        if missing and d == 0:
            vals[1] = "?"
            vals[-1] = "?"
        parts.append(",".join(vals))
    return ":".join(parts) + f":{label}"


def write_ts(folder: Path, name: str, dims: int = 2, lengths: dict[str, list[int]] | None = None, missing: bool = False) -> Path:
    """NAME_TRAIN.ts / NAME_TEST.ts with 3 classes; ``lengths[split]`` per case (cycled labels)."""
    rng = np.random.default_rng(0)
    folder.mkdir(parents=True, exist_ok=True)
    lengths = lengths or {"TRAIN": [20] * 12, "TEST": [20] * 6}
    for split, lens in lengths.items():
        equal = "true" if len(set(lens)) == 1 else "false"
        text = HEADER.format(name=name, missing=str(missing).lower(), univariate=str(dims == 1).lower(), dims=dims, equal=equal)
        if equal == "true":
            text = text.replace("@classLabel", f"@seriesLength {lens[0]}\n@classLabel")
        labels = ["walk", "run", "rest"]
        text += "\n".join(_case(rng, dims, n, labels[i % 3], missing and i == 1) for i, n in enumerate(lens)) + "\n"
        (folder / f"{name}_{split}.ts").write_text(text)
    return folder


def test_ucr_equal_length_multivariate(tmp_path: Path) -> None:
    folder = write_ts(tmp_path / "Walk", "Walk", dims=3)
    ds = load_dataset(f"ucr:{folder},val=0.25,seed=1")
    assert ds.kind == "sequence" and ds.label_names == ("walk", "run", "rest")
    assert ds.train.x.shape == (9, 20, 3) and ds.val.x.shape == (3, 20, 3) and ds.test.x.shape == (6, 20, 3)
    assert ds.train.x.dtype == np.float32 and not np.isnan(ds.train.x).any()
    assert sorted(np.bincount(ds.val.y).tolist()) == [1, 1, 1]
    assert ds.test.y.tolist() == [0, 1, 2, 0, 1, 2]
    assert len(ds.preprocessing.mean) == 3 and ds.preprocessing.extra["variable_length"] is False
    # ucr:DIR/NAME names the problem explicitly; the spec round-trips
    again = load_dataset(ds.spec)
    np.testing.assert_array_equal(again.train.x, ds.train.x)
    assert load_dataset(f"ucr:{folder}/Walk").test.x.shape == (6, 20, 3)


def test_ucr_holds_out_no_validation_when_classes_are_small(tmp_path: Path) -> None:
    """Below 10 TRAIN cases per class nothing is held out unless val= says so; the spec records the choice."""
    small = load_dataset(f"ucr:{write_ts(tmp_path / 'Small', 'Small')}")  # 4 per class
    assert len(small.train.y) == 12 and len(small.val.y) == 0 and ",val=0.0," in small.spec
    assert len(load_dataset(f"ucr:{tmp_path / 'Small'},val=0.25").val.y) == 3
    big = load_dataset(f"ucr:{write_ts(tmp_path / 'Big', 'Big', lengths={'TRAIN': [20] * 30, 'TEST': [20] * 6})}")  # 10 per class
    assert len(big.val.y) == 6 and ",val=0.2," in big.spec


def test_ucr_unequal_length_is_front_padded_with_lengths(tmp_path: Path) -> None:
    folder = write_ts(tmp_path / "Var", "Var", dims=2, lengths={"TRAIN": [5, 9, 7, 12, 6, 8], "TEST": [3, 15, 4]})
    ds = load_dataset(f"ucr:{folder},val=0")
    assert ds.train.x.shape == (6, 15, 2) and ds.test.lengths.tolist() == [3, 15, 4]
    first = ds.test.real_steps(0)
    assert first.shape == (3, 2) and not np.isnan(first).any()
    assert np.isnan(ds.test.x[0, :12]).all()  # padding is marked, never mistaken for data
    assert ds.preprocessing.extra["variable_length"] is True and ds.preprocessing.extra["padding"] == "front"


def test_ucr_missing_values_are_interpolated(tmp_path: Path) -> None:
    folder = write_ts(tmp_path / "Miss", "Miss", dims=2, missing=True)
    ds = load_dataset(f"ucr:{folder},val=0")
    assert ds.preprocessing.extra["missing_filled"] == 4  # two per affected case, one train and one test case
    assert not np.isnan(ds.train.x).any() and not np.isnan(ds.test.x).any()


def test_ucr_univariate_without_dimensions_tag(tmp_path: Path) -> None:
    """Also: Windows line endings and a UTF-8 byte-order mark, as some exporters write them."""
    folder = write_ts(tmp_path / "Uni", "Uni", dims=1)
    for f in folder.glob("*.ts"):
        f.write_bytes(b"\xef\xbb\xbf" + f.read_text().replace("@dimensions 1\n", "").replace("\n", "\r\n").encode())
    assert load_dataset(f"ucr:{folder}").train.x.shape[2] == 1


@pytest.mark.parametrize(
    "part, old, new, match",
    [
        ("head", "@dimensions 2", "@dimensions two", r"Bad_TRAIN.ts:\d+: malformed header: @dimensions"),
        ("head", "@data\n", "", r"Bad_TRAIN.ts:10: malformed header: expected an @tag before @data"),
        ("head", "@classLabel true walk run rest", "@classLabel false", r"malformed header: need '@classLabel true"),
        ("head", "@timeStamps false", "@timeStamps maybe", r"malformed header: @timestamps must be true or false"),
        ("data", ":rest\n", ":sleep\n", r"Bad_TRAIN.ts:\d+: unknown label 'sleep'"),
        ("data", ":walk\n", ":1.0,2.0:walk\n", r"Bad_TRAIN.ts:\d+: mixed dimensions: case has 3, expected 2"),
        ("data", "0.", "x.", r"Bad_TRAIN.ts:\d+: bad value"),
    ],
)
def test_ucr_bad_files_name_the_file_and_line(tmp_path: Path, part: str, old: str, new: str, match: str) -> None:
    folder = write_ts(tmp_path / "Bad", "Bad")
    path = folder / "Bad_TRAIN.ts"
    head, _, data = path.read_text().partition("@data\n")
    head += "@data\n"
    if part == "head":
        head = head.replace(old, new)
    else:
        data = data.replace(old, new, 1)
    path.write_text(head + data)
    with pytest.raises(DataError, match=match):
        load_dataset(f"ucr:{folder}")


def test_ucr_missing_files_and_ambiguous_folders(tmp_path: Path) -> None:
    folder = write_ts(tmp_path / "Two", "A")
    write_ts(folder, "B")
    with pytest.raises(DataError, match="several problems"):
        load_dataset(f"ucr:{folder}")
    assert load_dataset(f"ucr:{folder}/B").num_classes == 3
    (folder / "B_TEST.ts").unlink()
    with pytest.raises(DataError, match=r"B_TEST.ts: file not found"):
        load_dataset(f"ucr:{folder}/B")
    with pytest.raises(DataError, match="folder not found"):
        load_dataset(f"ucr:{tmp_path}/nowhere/X")
    # a TEST file with a different number of dimensions
    write_ts(tmp_path / "Dim", "Dim", dims=2)
    other = write_ts(tmp_path / "Dim3", "Dim", dims=3)
    (tmp_path / "Dim" / "Dim_TEST.ts").write_text((other / "Dim_TEST.ts").read_text())
    with pytest.raises(DataError, match="mixed dimensions"):
        load_dataset(f"ucr:{tmp_path / 'Dim'}")


def write_video(path: Path, fourcc: str, frames: int, label: int, size: tuple[int, int] = (40, 32)) -> None:
    """A real encoded video: a bright square moving left (0) or right (1)."""
    w, h = size
    writer = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*fourcc), 10, size)
    assert writer.isOpened(), f"OpenCV cannot write {fourcc} {path.suffix}"
    for t in range(frames):
        img = np.full((h, w, 3), 40, np.uint8)
        x = 4 + 2 * t if label == 1 else w - 12 - 2 * t
        img[10:20, max(0, x) : max(0, x) + 8] = (0, 0, 255)  # BGR red
        writer.write(img)
    writer.release()


@pytest.fixture()
def video_dir(tmp_path: Path) -> Path:
    root = tmp_path / "videos"
    for label, cls in enumerate(["left", "right"]):
        (root / cls).mkdir(parents=True)
        for i in range(4):
            fourcc, ext = (("MJPG", ".avi"), ("mp4v", ".mp4"))[i % 2]
            write_video(root / cls / f"v_{cls}_g0{i}{ext}", fourcc, 10 + 2 * i, label)
    return root


def test_video_folder_decodes_two_codecs_and_samples_with_stride(video_dir: Path) -> None:
    ds = load_dataset(f"video-folder:{video_dir},frames=5,stride=3,size=24,test=0.25,val=0.34,seed=0")
    assert ds.kind == "clip" and ds.label_names == ("left", "right")
    assert ds.train.x.shape[1:] == (5, 24, 24, 3) and ds.train.x.dtype == np.uint8
    assert len(ds.train.y) + len(ds.val.y) + len(ds.test.y) == 8 and len(ds.test.y) == 2
    clip = np.concatenate([ds.train.x, ds.val.x, ds.test.x])[0]
    red = clip[..., 0].astype(int) - clip[..., 2].astype(int)
    assert red.max() > 100  # RGB order: the red square is in channel 0
    assert ds.preprocessing.extra["short_clips"] == 4  # the 10- and 12-frame clips are shorter than (5-1)*3+1 = 13
    assert sample_indices(10, 5, 3).tolist() == [0, 3, 6, 9, 9] and sample_indices(40, 3, 2).tolist() == [17, 19, 21]
    # the moving square's column changes between sampled frames (stride is real time)
    cols = [np.argmax(f[..., 0].max(axis=0)) for f in clip]
    assert len(set(cols)) > 1
    again = load_dataset(ds.spec)  # the canonical spec (recorded in model cards) reloads the same splits
    np.testing.assert_array_equal(again.test.x, ds.test.x)
    np.testing.assert_array_equal(again.train.y, ds.train.y)


def test_video_folder_split_file(video_dir: Path) -> None:
    (video_dir / "testlist01.txt").write_text("left/v_left_g01.mp4\nRight/V_RIGHT_G02.avi\n")
    ds = load_dataset(f"video-folder:{video_dir},frames=3,stride=1,size=16,val=0")
    assert len(ds.test.y) == 2 and sorted(ds.test.y.tolist()) == [0, 1]
    assert len(ds.train.y) == 6 and ds.preprocessing.extra["split_file"] == "testlist01.txt"


def test_video_folder_errors(video_dir: Path) -> None:
    (video_dir / "right" / "v_right_g00.avi").write_bytes(b"RIFF\x00\x00\x00\x00AVI garbage" * 10)
    with pytest.raises(DataError, match=r"v_right_g00.avi: unreadable"):
        load_dataset(f"video-folder:{video_dir},frames=2,size=16")
    (video_dir / "right" / "v_right_g00.avi").unlink()
    (video_dir / "empty").mkdir()
    with pytest.raises(DataError, match=r"empty: empty class folder"):
        load_dataset(f"video-folder:{video_dir},frames=2,size=16")
    with pytest.raises(DataError, match="folder not found"):
        load_dataset(f"video-folder:{video_dir}/nope")


def _write_images(root: Path, classes: dict[str, int]) -> None:
    rng = np.random.default_rng(0)
    for cls, n in classes.items():
        (root / cls).mkdir(parents=True, exist_ok=True)
        for i in range(n):
            img = rng.integers(0, 255, (20 + i, 30, 3), dtype=np.uint8)
            assert cv2.imwrite(str(root / cls / f"{i}.{'png' if i % 2 else 'jpg'}"), img)


def test_image_folder_png_jpg_and_errors(tmp_path: Path) -> None:
    root = tmp_path / "imgs"
    _write_images(root, {"cat": 8, "dog": 8})
    ds = load_dataset(f"image-folder:{root},size=16,test=0.25,val=0.2")
    assert ds.kind == "image" and ds.label_names == ("cat", "dog") and ds.train.x.shape[1:] == (16, 16, 3)
    assert len(ds.test.y) == 4 and len(ds.train.y) + len(ds.val.y) == 12
    np.testing.assert_array_equal(load_dataset(ds.spec).val.x, ds.val.x)
    (root / "bird").mkdir()
    with pytest.raises(DataError, match="bird: empty class folder"):
        load_dataset(f"image-folder:{root}")
    (root / "bird" / "0.png").write_bytes(b"not a png")
    with pytest.raises(DataError, match=r"0.png: unreadable or corrupt image"):
        load_dataset(f"image-folder:{root}")


def test_image_folder_train_test_layout(tmp_path: Path) -> None:
    _write_images(tmp_path / "split" / "train", {"a": 5, "b": 5})
    _write_images(tmp_path / "split" / "test", {"a": 2, "b": 2})
    ds = load_dataset(f"image-folder:{tmp_path / 'split'},size=8,val=0.2")
    assert len(ds.test.y) == 4 and len(ds.train.y) == 8 and len(ds.val.y) == 2


def test_synthetic_shapes_deterministic() -> None:
    spec = "synthetic-shapes:classes=8,size=24,images=5,seed=2"
    a, b = load_dataset(spec), load_dataset(spec)
    np.testing.assert_array_equal(a.test.x, b.test.x)
    assert a.kind == "image" and a.num_classes == 8 and a.train.x.shape[1:] == (24, 24, 3)
    assert np.bincount(np.concatenate([a.train.y, a.val.y, a.test.y])).tolist() == [5] * 8
    with pytest.raises(DataError, match="unknown options"):
        load_dataset("synthetic-shapes:colour=1")


def test_loaders_never_import_tensorflow(tmp_path: Path, video_dir: Path) -> None:
    folder = write_ts(tmp_path / "NoTf", "NoTf")
    code = (
        "import sys; sys.modules['tensorflow'] = None; sys.modules['keras'] = None\n"
        "from training.data import load_dataset\n"
        f"print(load_dataset('ucr:{folder}').num_classes, load_dataset('video-folder:{video_dir},frames=2,size=8').num_classes,"
        " load_dataset('synthetic-shapes:images=4').num_classes)\n"
    )
    env = {**os.environ, "PYTHONPATH": str(Path(__file__).resolve().parents[1])}
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env, timeout=120)
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.split() == ["3", "2", "6"]
