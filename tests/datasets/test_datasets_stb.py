"""The STB reader against projections computed by hand from the figures in stb-format.md."""

from __future__ import annotations

import shutil

import numpy as np
import pytest
from scipy.io import loadmat, savemat
from scipy.spatial.transform import Rotation

from keypoint_corrupt.datasets import STB, STB_SEQUENCES, load_image, load_stb_labels, stb_joint_names

# The official figures, written out again here so the test does not trust the library's constants.
FX_BB, FY_BB, CX_BB, CY_BB = 822.79041, 822.79041, 318.47345, 250.31296
FX_SK, FY_SK, CX_SK, CY_SK = 607.92271, 607.88192, 314.78337, 236.42484
BASELINE = 120.054
R_SK = Rotation.from_rotvec([0.00531, -0.01196, 0.00301]).as_matrix()
T_SK = np.array([-24.0381, -0.4563, -1.2326])
KP_DICT = {0: 0, 1: 20, 2: 19, 3: 18, 4: 17, 5: 16, 6: 15, 7: 14, 8: 13, 9: 12, 10: 11,
           11: 10, 12: 9, 13: 8, 14: 7, 15: 6, 16: 5, 17: 4, 18: 3, 19: 2, 20: 1}  # fmt: skip


def hand_project(seq_root, seq, frame, camera, joint=None):
    """Project one STB joint (STB order) of one frame by the documented formulas."""
    kind = "SK" if camera == "SK_color" else "BB"
    para = loadmat(str(seq_root / "labels" / f"{seq}_{kind}.mat"))["handPara"]
    x, y, z = para[:, joint, frame]
    if camera == "BB_right":
        x = x - BASELINE
    if camera == "SK_color":
        x, y, z = (np.array([x, y, z]) - T_SK) @ R_SK
        return FX_SK * x / z + CX_SK, FY_SK * y / z + CY_SK
    return FX_BB * x / z + CX_BB, FY_BB * y / z + CY_BB


def test_split_sizes_and_order(bundled_root):
    train, val, every = STB(bundled_root, "train"), STB(bundled_root, "val"), STB(bundled_root, "all")
    assert (len(train), len(val), len(every)) == (40, 8, 48)
    assert val.ids == [f"B1{k}/{cam}_{f}" for k in ("Counting", "Random") for cam in ("BB_left", "BB_right")
                       for f in range(2)]  # fmt: skip
    assert {i.split("/")[0] for i in train.ids} == set(STB_SEQUENCES[2:])
    assert len(set(every.ids)) == 48
    assert [s.id for s in val] == val.ids


@pytest.mark.parametrize("camera", ["BB_left", "BB_right", "SK_color"])
def test_projection_matches_hand_computation(bundled_root, camera):
    ds = STB(bundled_root, "all", cameras=[camera], joint_order="stb")
    for sample in ds:
        seq, rest = sample.id.split("/")
        frame = int(rest.rsplit("_", 1)[1])
        expected = np.array([hand_project(bundled_root, seq, frame, camera, j) for j in range(21)])
        np.testing.assert_allclose(sample.keypoints, expected, rtol=0, atol=1e-9)
        assert sample.visibility.all() and sample.visibility.dtype == bool
        assert sample.meta["camera"] == camera and sample.meta["frame"] == frame
        assert sample.image_path == bundled_root / "images" / seq / f"{camera}_{frame}.png"


def test_rhd_reordering_and_names(bundled_root):
    stb = STB(bundled_root, "val", joint_order="stb")
    rhd = STB(bundled_root, "val", joint_order="rhd")
    for a, b in zip(stb, rhd, strict=True):
        for new, old in KP_DICT.items():
            np.testing.assert_array_equal(b.keypoints[new], a.keypoints[old])
            np.testing.assert_array_equal(b.meta["xyz"][new], a.meta["xyz"][old])
    names = stb_joint_names("rhd")
    assert names[0] == "palm" and names[1:5] == ("thumb_tip", "thumb_dip", "thumb_pip", "thumb_mcp")
    assert names[17:] == ("little_tip", "little_dip", "little_pip", "little_mcp")
    assert rhd.joint_names == names and rhd[0].meta["joint_names"] == names


@pytest.mark.parametrize("order, ring", [("rhd", 16), ("stb", 5)])
def test_wrist_option(bundled_root, order, ring):
    palm = STB(bundled_root, "val", joint_order=order)
    wrist = STB(bundled_root, "val", joint_order=order, root_joint="wrist")
    for p, w in zip(palm, wrist, strict=True):
        kp, xyz = p.keypoints, p.meta["xyz"]
        np.testing.assert_allclose(w.keypoints[0], kp[ring] + 2 * (kp[0] - kp[ring]))
        np.testing.assert_allclose(w.meta["xyz"][0], xyz[ring] + 2 * (xyz[0] - xyz[ring]))
        np.testing.assert_array_equal(w.keypoints[1:], kp[1:])
    assert wrist.joint_names[0] == "wrist"


def test_keypoints_land_on_the_drawn_hand(bundled_root):
    """The generated images show the hand where the labels project: the palm is not background."""
    for cam in ("BB_left", "BB_right", "SK_color"):
        for s in STB(bundled_root, "val", cameras=[cam]):
            img = load_image(s)
            assert img.shape == (480, 640, 3)
            x, y = np.round(s.keypoints[0]).astype(int)
            r, g, b = img[y, x].astype(int)
            assert r > g > b, (s.id, img[y, x])  # every skin tone: red > green > blue


def test_roots_with_and_without_images_level(tmp_path, bundled_root):
    flat = tmp_path / "flat"
    shutil.copytree(bundled_root / "labels", flat / "labels")
    for seq in ("B1Counting", "B1Random"):
        shutil.copytree(bundled_root / "images" / seq, flat / seq)
    a, b = STB(bundled_root, "val"), STB(flat, "val")
    assert a.ids == b.ids
    assert b[0].image_path == flat / "B1Counting" / "BB_left_0.png"
    np.testing.assert_array_equal(load_image(a[3]), load_image(b[3]))
    via_images = STB(bundled_root / "images", "val")
    assert via_images.root == bundled_root and via_images[0].image_path == a[0].image_path


def test_full_size_counts_without_images(tmp_path):
    """30,000 / 6,000 from label files alone: listing must not need the 36,000 images."""
    rng = np.random.default_rng(0)
    (tmp_path / "labels").mkdir()
    for seq in STB_SEQUENCES:
        (tmp_path / "images" / seq).mkdir(parents=True)
        for kind in ("BB", "SK"):
            para = rng.normal(0, 50, (3, 21, 1500)) + np.array([0.0, 0.0, 500.0])[:, None, None]
            savemat(str(tmp_path / "labels" / f"{seq}_{kind}.mat"), {"handPara": para})
    train, val = STB(tmp_path, "train"), STB(tmp_path, "val")
    assert len(train) == 30000 and len(val) == 6000
    assert len(STB(tmp_path, "all", cameras=("BB_left", "BB_right", "SK_color"))) == 54000
    assert len(set(train.ids)) == 30000 and not set(train.ids) & set(val.ids)
    last = train[-1]
    assert last.id == "B6Random/BB_right_1499" and last.keypoints.shape == (21, 2)
    x, y, z = loadmat(str(tmp_path / "labels" / "B6Random_BB.mat"))["handPara"][:, 0, 1499]
    np.testing.assert_allclose(last.keypoints[0], [FX_BB * (x - BASELINE) / z + CX_BB, FY_BB * y / z + CY_BB])
    with pytest.raises(FileNotFoundError, match=r"BB_left_0\.png"):
        load_image(val[0])


def test_sequence_protocol(bundled_root):
    ds = STB(bundled_root, "val")
    assert ds[-1] == ds[len(ds) - 1] and ds[np.int64(2)] == ds[2]
    assert [s.id for s in ds[1:3]] == ds.ids[1:3]
    with pytest.raises(IndexError, match="out of range"):
        ds[8]
    with pytest.raises(TypeError, match="integers or slices"):
        ds["0"]
    assert "split='val'" in repr(ds)


def test_sample_is_immutable(bundled_root):
    s = STB(bundled_root, "val")[0]
    with pytest.raises(ValueError, match="read-only"):
        s.keypoints[0, 0] = 1.0
    with pytest.raises(TypeError):
        s.meta["frame"] = 3
    with pytest.raises(AttributeError):
        s.id = "x"


# -- bad input ------------------------------------------------------------------------------


def test_bad_arguments_name_the_argument(bundled_root):
    with pytest.raises(ValueError, match=r"split must be one of .*'test'"):
        STB(bundled_root, "test")
    with pytest.raises(ValueError, match=r"camera must be one of .*'SK_depth'"):
        STB(bundled_root, cameras=["BB_left", "SK_depth"])
    with pytest.raises(ValueError, match="repeat"):
        STB(bundled_root, cameras=["BB_left", "BB_left"])
    with pytest.raises(ValueError, match="at least one"):
        STB(bundled_root, cameras=[])
    with pytest.raises(ValueError, match="joint_order"):
        STB(bundled_root, joint_order="coco")
    with pytest.raises(ValueError, match="root_joint"):
        STB(bundled_root, root_joint="elbow")
    assert STB(bundled_root, "val", cameras="BB_left").cameras == ("BB_left",)


def test_wrong_roots(tmp_path):
    with pytest.raises(FileNotFoundError, match=r"STB root folder not found: .*nowhere"):
        STB(tmp_path / "nowhere")
    with pytest.raises(FileNotFoundError, match="no labels/ folder"):
        STB(tmp_path)


def test_missing_sequence_folder(labels_only_tree):
    shutil.rmtree(labels_only_tree / "images" / "B1Random")
    with pytest.raises(FileNotFoundError, match=r"sequence folder not found: .*images/B1Random"):
        STB(labels_only_tree, "val")
    assert len(STB(labels_only_tree, "train")) == 40  # other splits are unaffected


def test_missing_label_file(labels_only_tree):
    (labels_only_tree / "labels" / "B3Random_BB.mat").unlink()
    with pytest.raises(FileNotFoundError, match=r"label file not found: .*B3Random_BB\.mat"):
        STB(labels_only_tree, "train")
    assert len(STB(labels_only_tree, "train", cameras=["SK_color"])) == 20  # only _SK files needed


@pytest.mark.parametrize(
    "content, match",
    [
        ({"handPara": np.zeros((3, 20, 4))}, r"shape \(3, 21, frames\), got \(3, 20, 4\)"),
        ({"handPara": np.zeros((21, 3, 4))}, r"got \(21, 3, 4\)"),
        ({"other": np.zeros((3, 21, 4))}, "no 'handPara'"),
    ],
)
def test_malformed_label_files(labels_only_tree, content, match):
    path = labels_only_tree / "labels" / "B1Counting_BB.mat"
    savemat(str(path), content)
    with pytest.raises(ValueError, match=match) as err:
        STB(labels_only_tree, "val")
    assert "B1Counting_BB.mat" in str(err.value)


def test_unreadable_label_file(labels_only_tree):
    path = labels_only_tree / "labels" / "B1Random_SK.mat"
    path.write_bytes(b"not a mat file at all")
    with pytest.raises(ValueError, match=r"cannot read STB label file .*B1Random_SK\.mat"):
        STB(labels_only_tree, "val", cameras=["SK_color"])


def test_single_frame_label_file(tmp_path):
    """MATLAB saves a one-frame (3, 21, 1) array as (3, 21); it still reads as one frame."""
    savemat(str(tmp_path / "x.mat"), {"handPara": np.ones((3, 21))})
    assert load_stb_labels(tmp_path / "x.mat").shape == (3, 21, 1)


@pytest.mark.parametrize(
    "order, root, schema",
    [
        ("rhd", "palm", "stb_rhd"),
        ("rhd", "wrist", "rhd"),
        ("stb", "palm", "stb"),
        ("stb", "wrist", "stb_wrist"),
    ],
)
def test_every_reading_carries_its_schema(bundled_root, order, root, schema):
    from keypoint_corrupt.schema import canonical_joint_names, get_schema

    ds = STB(bundled_root, "val", joint_order=order, root_joint=root)
    assert ds.schema is get_schema(schema) and len(ds.schema) == len(ds[0].keypoints)
    # the schema's names are STB's own labels, normalised (STB's thumb mcp is hand3d's thumb base)
    assert canonical_joint_names(ds.joint_names) == ds.schema.joints
    assert ds.schema.joints[0] == root


def test_default_reading_keeps_hand3ds_crop_centre(bundled_root):
    ds = STB(bundled_root, "val")
    assert ds.schema.anchor_indices() == [12]  # middle mcp, hand3d's CENTER_JOINT
