"""The COCO keypoint reader on every real fixture file, and on broken files."""

from __future__ import annotations

import json
import shutil

import numpy as np
import pytest

from keypoint_corrupt.datasets import (
    CocoIndex,
    CocoKeypoints,
    ImageDecodeError,
    Sample,
    load_coco_index,
    load_image,
)

FIXTURE_SETS = ("freihand", "onehand10k", "panoptic", "rhd")


def coco_file(fixtures_dir, name):
    (path,) = sorted((fixtures_dir / "hands" / name).glob("*.json"))
    return path


def test_every_fixture_file_is_covered(fixtures_dir):
    assert {p.parent.name for p in (fixtures_dir / "hands").glob("*/*.json")} == set(FIXTURE_SETS)


@pytest.mark.parametrize("name", FIXTURE_SETS)
def test_reads_fixture(fixtures_dir, name):
    path = coco_file(fixtures_dir, name)
    raw = json.loads(path.read_text())
    ds = CocoKeypoints(path)
    assert len(ds) == len(raw["annotations"])
    assert ds.joint_names == tuple(raw["categories"][0]["keypoints"]) and len(ds.joint_names) == 21
    assert len(set(ds.ids)) == len(ds)
    images = {im["id"]: im for im in raw["images"]}
    for sample, ann in zip(ds, raw["annotations"], strict=True):
        expected = np.asarray(ann["keypoints"], dtype=np.float64).reshape(-1, 3)
        im = images[ann["image_id"]]
        assert isinstance(sample, Sample)
        assert sample.id == f"{im['file_name']}#{ann['id']}"
        assert sample.image_path == path.parent / im["file_name"]
        np.testing.assert_array_equal(sample.keypoints, expected[:, :2])
        np.testing.assert_array_equal(sample.visibility, expected[:, 2] > 0)
        assert sample.meta["annotation_id"] == ann["id"] and sample.meta["image_id"] == ann["image_id"]
        img = load_image(sample)
        assert img.dtype == np.uint8 and img.shape == (im["height"], im["width"], 3)
        vis = sample.keypoints[sample.visibility]
        assert (vis >= 0).all() and (vis[:, 0] <= im["width"]).all() and (vis[:, 1] <= im["height"]).all()


def test_nested_and_flat_layouts(fixtures_dir):
    rhd = json.loads(coco_file(fixtures_dir, "rhd").read_text())
    assert isinstance(rhd["annotations"][0]["keypoints"][0], list)  # nested [[x, y, v], ...]
    fh = json.loads(coco_file(fixtures_dir, "freihand").read_text())
    assert not isinstance(fh["annotations"][0]["keypoints"][0], list)  # flat [x, y, v, ...]


def test_invisible_joints(fixtures_dir):
    ds = CocoKeypoints(coco_file(fixtures_dir, "onehand10k"))
    hidden = [(s.id, j) for s in ds for j in np.flatnonzero(~s.visibility)]
    assert hidden, "onehand10k has joints annotated 0, 0, 0"
    for s in ds:
        np.testing.assert_array_equal(s.meta["v"] == 0, ~s.visibility)


def test_load_image_is_rgb(fixtures_dir):
    import cv2

    s = CocoKeypoints(coco_file(fixtures_dir, "rhd"))[0]
    np.testing.assert_array_equal(load_image(s), cv2.imread(str(s.image_path))[..., ::-1])


def test_image_root(tmp_path, fixtures_dir):
    src = coco_file(fixtures_dir, "freihand")
    shutil.copy(src, tmp_path / "ann.json")
    ds = CocoKeypoints(tmp_path / "ann.json", image_root=src.parent)
    assert ds[0].image_path.parent == src.parent
    load_image(ds[0])
    with pytest.raises(FileNotFoundError, match=r"image file not found: .*\.jpg"):
        load_image(CocoKeypoints(tmp_path / "ann.json")[0])


# -- the shared index -----------------------------------------------------------------------


def every_coco_fixture(fixtures_dir):
    """Every COCO keypoint document of the fixtures (MPII and the detections list are not COCO files)."""
    paths = sorted(fixtures_dir.glob("*/*/*.json"))
    return [p for p in paths if isinstance(json.loads(p.read_text()), dict) and "mpii" not in p.parts]


def test_index_equals_pycocotools_reading_the_file(fixtures_dir, capsys):
    from pycocotools.coco import COCO

    paths = every_coco_fixture(fixtures_dir)
    assert {p.parent.name for p in paths} == {*FIXTURE_SETS, "coco", "ap10k"}
    for path in paths:
        index = load_coco_index(path)
        assert capsys.readouterr().out == ""  # pycocotools' progress prints are swallowed
        ref = COCO(str(path))  # the reference: pycocotools parsing the file itself
        capsys.readouterr()
        assert index.coco.imgs == ref.imgs and index.coco.anns == ref.anns and index.coco.cats == ref.cats
        assert index.coco.getAnnIds() == ref.getAnnIds()  # file order
        for image_id in ref.getImgIds():
            assert index.annotations_of(image_id) == ref.imgToAnns[image_id]
            assert index.image(image_id) == ref.loadImgs(image_id)[0]
        for cat in ref.loadCats(ref.getCatIds()):
            assert index.joint_names(cat["id"]) == tuple(cat["keypoints"])
            assert index.skeleton(cat["id"]) == cat.get("skeleton")
        assert [a["id"] for a in index.annotations] == [a["id"] for a in ref.dataset["annotations"]]


def test_body_and_wholebody_fixtures_read_as_samples(fixtures_dir):
    body = fixtures_dir / "body" / "coco"
    ds = CocoKeypoints(body / "test_coco.json")
    assert len(ds) == 14 and len(ds.joint_names) == 17
    whole = CocoKeypoints(
        body / "test_coco_wholebody.json",
        keypoint_field="lefthand_kpts",
        joint_names=list("abcdefghijklmnopqrstu"),
    )
    assert len(whole) == 14 and whole[0].keypoints.shape == (21, 2)


def test_readers_share_one_cached_parse(tmp_path):
    path = write(tmp_path, minimal())
    first = CocoKeypoints(path)
    assert first.coco_index is CocoKeypoints(path).coco_index is load_coco_index(path)
    path.write_text(json.dumps(minimal(keypoints=[9, 9, 2, 3, 4, 0])))  # rewritten in place
    again = CocoKeypoints(path)
    assert again.coco_index is not first.coco_index and again[0].keypoints[0].tolist() == [9.0, 9.0]
    # a reader over an index built from an already parsed document
    from_doc = CocoKeypoints(CocoIndex(minimal(), path))
    assert from_doc[0] == first[0] and from_doc.annotation_file == path


# -- broken files ---------------------------------------------------------------------------


def minimal(**ann_overrides):
    ann = {"id": 7, "image_id": 1, "category_id": 1, "keypoints": [1, 2, 2, 3, 4, 0]}
    ann.update(ann_overrides)
    return {
        "images": [{"id": 1, "file_name": "a.png", "width": 10, "height": 10}],
        "categories": [{"id": 1, "name": "hand", "keypoints": ["wrist", "tip"]}],
        "annotations": [ann],
    }


def write(tmp_path, data, name="ann.json"):
    path = tmp_path / name
    path.write_text(data if isinstance(data, str) else json.dumps(data))
    return path


def test_minimal_file(tmp_path):
    s = CocoKeypoints(write(tmp_path, minimal()))[0]
    assert s.id == "a.png#7" and s.visibility.tolist() == [True, False]
    nested = CocoKeypoints(write(tmp_path, minimal(keypoints=[[1, 2, 2], [3, 4, 0]])))[0]
    assert nested == s


@pytest.mark.parametrize(
    "mutate, match",
    [
        (lambda d: d.pop("annotations"), "missing or non-list field 'annotations'"),
        (lambda d: d.pop("categories"), "missing or non-list field 'categories'"),
        (lambda d: d["annotations"][0].pop("keypoints"), r"annotations\[0\]: missing field 'keypoints'"),
        (lambda d: d["annotations"][0].pop("image_id"), "missing field 'image_id'"),
        (lambda d: d["images"][0].pop("file_name"), r"images\[0\]: missing field 'file_name'"),
        (lambda d: d["categories"][0].pop("keypoints"), "has no 'keypoints' joint names"),
        (
            lambda d: d["annotations"][0].update(keypoints=[1, 2, 2]),
            "has 1 keypoints but its category defines 2",
        ),
        (lambda d: d["annotations"][0].update(keypoints=[1, 2, 2, 3]), "x, y, v triples, got 4 values"),
        (lambda d: d["annotations"][0].update(keypoints=[[1, 2], [3, 4]]), "rows must be"),
        (lambda d: d["annotations"][0].update(keypoints=[1, "a", 2, 3, 4, 0]), "numbers only"),
        (lambda d: d["annotations"][0].update(image_id=99), "unknown image_id 99"),
        (lambda d: d["annotations"][0].update(category_id=5), "unknown category_id 5"),
        (lambda d: d["annotations"].append(dict(d["annotations"][0])), "repeats an annotation id"),
        (lambda d: d["annotations"][0].update(keypoints=[1, 2, 2, 3, float("nan"), 1]), "NaN or infinite"),
        (lambda d: d["annotations"][0].update(keypoints=[float("inf"), 2, 2, 3, 4, 0]), "NaN or infinite"),
        (lambda d: d["annotations"][0].update(keypoints=[1, 2, float("nan"), 3, 4, 0]), "NaN or infinite"),
        (lambda d: d["images"].append(dict(d["images"][0])), r"images\[1\]: repeats image id 1"),
        (lambda d: d["annotations"][0].update(id=[7]), r"'id' must be a number or a string"),
    ],
)
def test_broken_files_name_the_file(tmp_path, mutate, match):
    data = minimal()
    mutate(data)
    path = write(tmp_path, data)
    with pytest.raises(ValueError, match=match) as err:
        CocoKeypoints(path)
    assert str(path) in str(err.value)


@pytest.mark.parametrize("bad", [float("nan"), float("inf"), -float("inf")])
def test_non_finite_coordinates_of_an_unlabelled_joint_read_as_invisible_zeros(tmp_path, bad):
    """docs/corruptions.md: NaN means invisible. With v = 0 such a joint reads as 0, 0, 0."""
    path = write(tmp_path, minimal(keypoints=[1, 2, 2, bad, bad, 0]))
    assert "NaN" in path.read_text() or "Infinity" in path.read_text()  # as json.dumps writes it
    s = CocoKeypoints(path)[0]
    assert s.keypoints.tolist() == [[1.0, 2.0], [0.0, 0.0]] and s.visibility.tolist() == [True, False]
    assert s.meta["v"].tolist() == [2.0, 0.0]
    nested = CocoKeypoints(write(tmp_path, minimal(keypoints=[[1, 2, 2], [3, bad, 0]])))[0]
    assert nested.keypoints.tolist() == [[1.0, 2.0], [0.0, 0.0]]


def test_nan_at_a_labelled_joint_names_the_joint(tmp_path):
    path = write(tmp_path, minimal(keypoints=[1, 2, 2, 3, float("nan"), 2]))
    with pytest.raises(
        ValueError, match=r"annotation 7: 'keypoints' holds NaN or infinite values at labelled joint\(s\) 1"
    ):
        CocoKeypoints(path)


def test_not_json_and_missing(tmp_path):
    with pytest.raises(ValueError, match=r"ann\.json: not a JSON file"):
        CocoKeypoints(write(tmp_path, "{oops"))
    with pytest.raises(ValueError, match="JSON object"):
        CocoKeypoints(write(tmp_path, "[]"))
    with pytest.raises(FileNotFoundError, match=r"nope\.json"):
        CocoKeypoints(tmp_path / "nope.json")


def test_other_keypoint_field(tmp_path):
    """COCO-WholeBody: hands live in ``lefthand_kpts`` while the category names body joints."""
    data = minimal(lefthand_kpts=[5, 6, 1] * 3)
    path = write(tmp_path, data)
    with pytest.raises(ValueError, match="has 3 keypoints but its category defines 2"):
        CocoKeypoints(path, keypoint_field="lefthand_kpts")
    ds = CocoKeypoints(path, keypoint_field="lefthand_kpts", joint_names=["a", "b", "c"])
    assert ds.joint_names == ("a", "b", "c") and ds[0].keypoints.shape == (3, 2)


# -- image decoding -------------------------------------------------------------------------


@pytest.mark.parametrize("name, suffix", [("rhd", ".png"), ("freihand", ".jpg")])
@pytest.mark.parametrize("cut", [1, 16, 2000])
def test_truncated_images_raise(tmp_path, fixtures_dir, name, suffix, cut):
    src = next((fixtures_dir / "hands" / name).glob(f"*{suffix}"))
    data = src.read_bytes()
    bad = tmp_path / f"cut{suffix}"
    bad.write_bytes(data[: len(data) - cut])
    with pytest.raises(ImageDecodeError, match=f"cannot decode image .*cut{suffix}"):
        load_image(bad)


def test_unreadable_images_raise(tmp_path):
    (tmp_path / "empty.png").write_bytes(b"")
    (tmp_path / "junk.jpg").write_bytes(b"this is not an image")
    with pytest.raises(ImageDecodeError, match=r"empty\.png: the file is empty"):
        load_image(tmp_path / "empty.png")
    with pytest.raises(ImageDecodeError, match=r"junk\.jpg: corrupt"):
        load_image(tmp_path / "junk.jpg")
    with pytest.raises(ImageDecodeError, match="directory"):
        load_image(tmp_path)
    with pytest.raises(FileNotFoundError, match=r"missing\.png"):
        load_image(tmp_path / "missing.png")


# -- keypoint schemas ------------------------------------------------------------------------


@pytest.mark.parametrize(
    "path, schema",
    [
        ("hands/freihand/test_freihand.json", "hand21"),
        ("hands/onehand10k/test_onehand10k.json", "hand21"),
        ("hands/panoptic/test_panoptic.json", "hand21"),
        ("hands/rhd/test_rhd.json", "hand21"),  # by its (misleading) names; see the next test
        ("body/coco/test_coco.json", "coco17"),
        ("animal/ap10k/test_ap10k.json", "ap10k"),
    ],
)
def test_fixtures_carry_the_schema_their_names_match(fixtures_dir, path, schema):
    ds = CocoKeypoints(fixtures_dir / path)
    assert ds.schema is not None and ds.schema.name == schema
    assert len(ds.schema) == ds[0].keypoints.shape[0]
    assert ds.schema_of(ds[0].meta["category_id"]) is ds.schema


def test_rhd_fixture_takes_its_schema_from_the_caller(fixtures_dir):
    from keypoint_corrupt.schema import get_schema

    path = coco_file(fixtures_dir, "rhd")
    plain = CocoKeypoints(path)
    ds = CocoKeypoints(path, schema="rhd")
    assert ds.schema is get_schema("rhd")
    assert CocoKeypoints(path, schema=get_schema("rhd")).schema is ds.schema
    # the override changes only the schema: points and names are the file's
    assert ds.joint_names == plain.joint_names
    np.testing.assert_array_equal(ds[0].keypoints, plain[0].keypoints)


def test_a_schema_of_the_wrong_size_is_refused(fixtures_dir):
    with pytest.raises(ValueError, match=r"test_coco\.json.*has 17 joints but schema 'rhd' has 21"):
        CocoKeypoints(fixtures_dir / "body" / "coco" / "test_coco.json", schema="rhd")
    with pytest.raises(ValueError, match="unknown keypoint schema 'hand42'"):
        CocoKeypoints(fixtures_dir / "body" / "coco" / "test_coco.json", schema="hand42")


def test_unmatched_names_give_a_generic_schema_from_the_file(tmp_path):
    data = minimal()
    data["categories"][0]["skeleton"] = [[1, 2]]
    ds = CocoKeypoints(write(tmp_path, data))
    names = tuple(data["categories"][0]["keypoints"])
    assert ds.schema.joints == names and ds.schema.name == data["categories"][0]["name"]
    assert ds.schema.edges == ((names[0], names[1]),)


def test_wholebody_hands_read_with_a_schema(fixtures_dir):
    path = fixtures_dir / "body" / "coco" / "test_coco_wholebody.json"
    ds = CocoKeypoints(path, keypoint_field="lefthand_kpts", schema="hand21")
    assert ds.schema.name == "hand21" and ds[0].keypoints.shape == (21, 2)
    assert ds.joint_names == ds.schema.joints
