"""The synthetic STB generator, the synth-stb command and the bundled sample."""

from __future__ import annotations

import os

import numpy as np
import pytest
from scipy.io import loadmat
from scipy.spatial.transform import Rotation

from keypoint_corrupt.cli.main import main
from keypoint_corrupt.datasets import (
    BUNDLED_SAMPLE_ARGS,
    STB,
    STB_SEQUENCES,
    load_image,
    synth_sequence,
    write_synthetic_stb,
)

IMAGE_KINDS = ("BB_left", "BB_right", "SK_color")  # the views STB reads; no SK_depth


def tree_files(root):
    return sorted(p.relative_to(root).as_posix() for p in root.rglob("*") if p.is_file())


def assert_same_tree(a, b):
    assert tree_files(a) == tree_files(b)
    for rel in tree_files(a):
        if rel.endswith(".mat"):
            # .mat headers hold a creation date, so compare the arrays, not the bytes
            np.testing.assert_allclose(
                loadmat(str(a / rel))["handPara"], loadmat(str(b / rel))["handPara"], rtol=0, atol=1e-9
            )
        else:
            x, y = load_image(a / rel), load_image(b / rel)
            assert x.shape == y.shape
            # exact here; a different OpenCV build may rasterise an edge pixel differently
            assert np.mean(np.any(x != y, axis=-1)) < 1e-3, rel


def test_bundled_sample_is_small_and_complete(bundled_root):
    files = tree_files(bundled_root)
    size = sum((bundled_root / f).stat().st_size for f in files)
    assert size < 2 * 1024 * 1024, f"bundled sample is {size} bytes"
    frames = BUNDLED_SAMPLE_ARGS["frames_per_sequence"]
    expected = [f"images/{s}/{k}_{i}.png" for s in STB_SEQUENCES for k in IMAGE_KINDS for i in range(frames)]
    expected += [f"labels/{s}_{k}.mat" for s in STB_SEQUENCES for k in ("BB", "SK")]
    assert files == sorted(expected)


def test_bundled_sample_is_what_synth_stb_writes(tmp_path, bundled_root):
    out = tmp_path / "regen"
    assert main(["synth-stb", "--out", str(out)]) == 0  # the defaults are the bundled arguments
    assert_same_tree(bundled_root, out)


def test_label_files_layout_and_depth_transform(bundled_root):
    bb = loadmat(str(bundled_root / "labels" / "B2Random_BB.mat"))["handPara"]
    sk = loadmat(str(bundled_root / "labels" / "B2Random_SK.mat"))["handPara"]
    assert bb.shape == sk.shape == (3, 21, BUNDLED_SAMPLE_ARGS["frames_per_sequence"])
    assert (bb[2] > 300).all() and (bb[2] < 1000).all()  # millimetres, hand in front of the camera
    # SK holds depth-camera coordinates: the documented transform takes them to the colour camera
    rot = Rotation.from_rotvec([0.00531, -0.01196, 0.00301]).as_matrix()
    color = (sk.transpose(2, 1, 0) - np.array([-24.0381, -0.4563, -1.2326])) @ rot
    offset = color - bb.transpose(2, 1, 0)
    assert np.ptp(offset, axis=(0, 1)).max() < 1e-9  # a rigid shift of the BB points
    # a plausible hand: bones 15-60 mm, all fingers attached near the palm
    pts = bb[:, :, 0].T
    for f in range(5):
        chain = pts[[0, 1 + 4 * f, 2 + 4 * f, 3 + 4 * f, 4 + 4 * f]]
        bones = np.linalg.norm(np.diff(chain[1:], axis=0), axis=1)
        assert ((bones > 15) & (bones < 60)).all()
        assert np.linalg.norm(chain[1] - chain[0]) < 60


def test_hand_size_in_pixels(bundled_root):
    for s in STB(bundled_root, "all"):
        extent = np.ptp(s.keypoints, axis=0).max()
        assert 60 < extent < 300, (s.id, extent)
        assert (
            (s.keypoints >= 0).all() and (s.keypoints[:, 0] < 640).all() and (s.keypoints[:, 1] < 480).all()
        )


def test_sequences_are_independent_of_each_other(tmp_path, bundled_root):
    alone = write_synthetic_stb(tmp_path, 2, ["B4Random"], seed=0)
    np.testing.assert_array_equal(
        loadmat(str(alone / "labels" / "B4Random_BB.mat"))["handPara"],
        loadmat(str(bundled_root / "labels" / "B4Random_BB.mat"))["handPara"],
    )
    np.testing.assert_array_equal(
        load_image(alone / "images" / "B4Random" / "BB_right_1.png"),
        load_image(bundled_root / "images" / "B4Random" / "BB_right_1.png"),
    )


def test_seed_and_frame_prefix():
    a, b = synth_sequence("B3Counting", 4, seed=0), synth_sequence("B3Counting", 2, seed=0)
    np.testing.assert_array_equal(a[1].bb, b[1].bb)  # more frames only append
    c = synth_sequence("B3Counting", 2, seed=1)
    assert not np.allclose(a[0].bb, c[0].bb)


def test_labels_only_mode(tmp_path):
    write_synthetic_stb(tmp_path, 5, images=False)
    assert len(STB(tmp_path, "train")) == 100 and len(STB(tmp_path, "val")) == 20
    assert not list((tmp_path / "images").rglob("*.png"))


def test_cli_options(tmp_path, capsys):
    out = tmp_path / "t"
    args = [
        "synth-stb",
        "--out",
        str(out),
        "--frames-per-sequence",
        "1",
        "--sequences",
        "B1Counting",
        "B1Random",
    ]
    assert main([*args, "--seed", "4"]) == 0
    assert "2 sequences x 1 frames (6 images, 4 label files)" in capsys.readouterr().out
    assert len(STB(out, "val")) == 4
    assert main(args) == 2  # refuses to overwrite silently
    assert "--overwrite" in capsys.readouterr().err
    assert main([*args, "--overwrite"]) == 0


@pytest.mark.parametrize(
    "extra, message",
    [
        (["--frames-per-sequence", "0"], "--frames-per-sequence must be >= 1"),
        (["--sequences", "B7Counting"], "unknown sequence(s) B7Counting"),
        (["--sequences", "B1Random", "B1Random"], "repeats a sequence"),
        (["--seed", "-1"], "--seed must be >= 0"),
    ],
)
def test_cli_errors(tmp_path, capsys, extra, message):
    assert main(["synth-stb", "--out", str(tmp_path / "x"), *extra]) == 2
    err = capsys.readouterr().err
    assert err.startswith("keypoint-corrupt synth-stb: error: ") and message in err


def test_cli_out_is_a_file(tmp_path, capsys):
    (tmp_path / "f").write_text("x")
    assert main(["synth-stb", "--out", str(tmp_path / "f")]) == 2
    assert "is not a folder" in capsys.readouterr().err


def test_cli_out_inside_a_file_is_one_line(tmp_path, capsys):
    (tmp_path / "f").write_text("x")
    assert main(["synth-stb", "--out", str(tmp_path / "f" / "sub"), "--sequences", "B1Random"]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "Traceback" not in err, err
    assert f"--out {tmp_path / 'f' / 'sub'} is inside {tmp_path / 'f'}, which is not a folder" in err
    assert (tmp_path / "f").read_text() == "x"


def test_cli_write_failure_is_one_line(tmp_path, capsys, monkeypatch):
    import keypoint_corrupt.datasets.synth as synth

    def full(path, data, **kwargs):
        raise OSError(28, "No space left on device", str(path))

    monkeypatch.setattr(synth, "write_atomic", full)
    assert main(["synth-stb", "--out", str(tmp_path / "o"), "--sequences", "B1Random"]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "Traceback" not in err, err
    assert "cannot write " in err and "No space left on device" in err, err


def test_rewriting_never_writes_through_a_hard_link(tmp_path):
    """A materialize output's clean copies may be hard links to these files: --overwrite replaces them."""
    root = write_synthetic_stb(tmp_path / "stb", 1, ["B1Random"], seed=0)
    image = root / "images" / "B1Random" / "BB_left_0.png"
    label = root / "labels" / "B1Random_BB.mat"
    kept = tmp_path / "kept"
    kept.mkdir()
    for path in (image, label):
        os.link(path, kept / path.name)
    before = {p.name: p.read_bytes() for p in kept.iterdir()}
    write_synthetic_stb(root, 1, ["B1Random"], seed=5)
    assert {p.name: p.read_bytes() for p in kept.iterdir()} == before
    assert image.read_bytes() != before[image.name]  # the dataset itself has the new files
    assert not [p for p in root.rglob("*") if ".tmp-" in p.name]


def test_library_errors(tmp_path):
    with pytest.raises(ValueError, match="unknown STB sequence 'B9Random'"):
        write_synthetic_stb(tmp_path, 1, ["B9Random"])
    with pytest.raises(ValueError, match="frames_per_sequence"):
        write_synthetic_stb(tmp_path, 0)
    with pytest.raises(ValueError, match="distinct"):
        write_synthetic_stb(tmp_path, 1, ["B1Random", "B1Random"])
