"""`keypoint-corrupt materialize --data` on MMPose's MPII JSON: recognised by content, every person kept.

The source is the real MPII fixture (``tests/data/body/mpii``: 5 images, one person each) at half its
size, plus a sixth person on one of the images (another fixture person's joints, moved), so that an
image holds two people. The written files are checked against the source file read directly with
``json`` (keypoints, flags, centre, scale), the pixels against an independent recomputation
(``apply_corruption`` with the image's or the person's own random stream), and the tree against
``verify``, a resumed run and ``--repair``.
"""

from __future__ import annotations

import json
import shutil

import cv2
import numpy as np
import pytest
from kc_cli_helpers import tree_digest

from keypoint_corrupt.cli.data import open_data
from keypoint_corrupt.cli.main import main
from keypoint_corrupt.datasets import CocoKeypoints, sample_rng
from keypoint_corrupt.datasets.mpii import MpiiPeople
from keypoint_corrupt.registry import apply_corruption
from keypoint_corrupt.schema import get_schema

FACTOR = 2
#: The suite subsets checked pixel by pixel (one noise, one blur) and the whole tree's folders.
SEVERITIES = "1-2"


def written(root):
    """Every file's SHA-256 but the manifest's (it records times and the output's place)."""
    digest = tree_digest(root)
    digest.pop("manifest.json")
    return digest


def load(path):
    return json.loads(path.read_text(encoding="utf-8"))


def decode_rgb(path):
    bgr = cv2.imread(str(path), cv2.IMREAD_COLOR)
    assert bgr is not None, path
    return cv2.cvtColor(bgr, cv2.COLOR_BGR2RGB)


@pytest.fixture(scope="module")
def mpii(tmp_path_factory, fixtures_dir):
    """The MPII fixture at half size, saved as ``people.data`` (no .json: the content decides), 6 people."""
    src = fixtures_dir / "body" / "mpii"
    root = tmp_path_factory.mktemp("mpii")
    people = load(src / "test_mpii.json")
    for name in {p["image"] for p in people}:
        bgr = cv2.imread(str(src / name), cv2.IMREAD_COLOR)
        small = cv2.resize(
            bgr, (bgr.shape[1] // FACTOR, bgr.shape[0] // FACTOR), interpolation=cv2.INTER_AREA
        )
        assert cv2.imwrite(str(root / name), small, [cv2.IMWRITE_JPEG_QUALITY, 95])
    for p in people:
        p["joints"] = [[x / FACTOR, y / FACTOR] for x, y in p["joints"]]
        p["center"] = [v / FACTOR for v in p["center"]]
        p["scale"] = p["scale"] / FACTOR
    extra = json.loads(json.dumps(people[2]))  # a second person on the first image, 60 px to the left
    extra["image"] = people[0]["image"]
    extra["joints"] = [[x - 60.0, y] for x, y in extra["joints"]]
    extra["joints_vis"][9] = 0  # one joint not labelled
    extra["center"][0] -= 60.0
    people.append(extra)
    (root / "people.data").write_text(json.dumps(people))
    return root / "people.data"


def mpii_args(data, out, *extra):
    return ["materialize", "--data", str(data), "--images", str(data.parent), "--out", str(out), *extra]


@pytest.fixture(scope="module")
def suite_out(tmp_path_factory, mpii):
    out = tmp_path_factory.mktemp("mpii_suite") / "out"
    argv = mpii_args(mpii, out, "--suite", "imagenet-c", "--severities", SEVERITIES, "--workers", "2", "-q")
    assert main(argv) == 0
    return out


def expected_annotations(mpii):
    """Each person as the COCO-style file must list it, built from the source JSON directly."""
    out = []
    for i, p in enumerate(load(mpii)):
        flat = []
        for (x, y), v in zip(p["joints"], p["joints_vis"], strict=True):
            flat.extend((float(x), float(y), 2 if v else 0))
        out.append(
            {"source_id": f"{p['image']}#{i}", "keypoints": flat, "center": p["center"], "scale": p["scale"]}
        )
    return out


def test_mpii_json_is_read_by_content_and_anything_else_is_refused_clearly(
    mpii, fixtures_dir, tmp_path, capsys
):
    people, materialized = open_data(str(mpii), str(mpii.parent))
    assert isinstance(people, MpiiPeople) and not materialized and len(people) == 6
    assert people.schema is get_schema("mpii16")
    coco = tmp_path / "people.json"  # a COCO file under an MPII-looking name is still COCO
    shutil.copy(fixtures_dir / "body" / "coco" / "test_coco.json", coco)
    assert isinstance(open_data(str(coco), str(tmp_path))[0], CocoKeypoints)
    bad = {
        "object.json": ({"people": []}, "a JSON object without 'images' or 'annotations'"),
        "list.json": ([{"image": "a.jpg", "joints": []}], "first entry lacks joints_vis, center, scale"),
        "empty.json": ([], "an empty list"),
        "number.json": (3, "COCO: a JSON object; MPII: a JSON list of people"),
    }
    for name, (doc, why) in bad.items():
        (tmp_path / name).write_text(json.dumps(doc))
        code = main(mpii_args(tmp_path / name, tmp_path / "o", "--workers", "1"))
        err = capsys.readouterr().err
        assert code == 2 and "neither a COCO keypoint file nor MMPose's MPII JSON" in err and why in err, err
        assert not (tmp_path / "o").exists()


def test_the_other_format_under_dataset_is_refused_naming_the_fix(mpii, fixtures_dir, tmp_path, capsys):
    coco = fixtures_dir / "body" / "coco" / "test_coco.json"
    for argv, want in [
        (
            ["--dataset", "coco", "--annotations", str(mpii)],
            "is MMPose's MPII JSON, not a COCO keypoint file",
        ),
        (
            ["--dataset", "mpii", "--annotations", str(coco)],
            "is a COCO keypoint file, not MMPose's MPII JSON",
        ),
        (["--data", str(mpii), "--dataset", "mpii"], "--data excludes --dataset"),
    ]:
        assert main(["materialize", *argv, "--out", str(tmp_path / "o")]) == 2
        assert want in capsys.readouterr().err


def test_per_person_configs_write_one_file_per_person_with_its_own_stream(mpii, tmp_path):
    out = tmp_path / "out"
    configs = "defocus-7,occlusion-20"
    assert main(mpii_args(mpii, out, "--configs", configs, "--fraction", "1", "--workers", "1", "-q")) == 0
    source = load(mpii)
    want = expected_annotations(mpii)
    clean = load(out / "val" / "clean" / "annotations.json")
    assert [{k: a[k] for k in want[0]} for a in clean["annotations"]] == want
    assert len(clean["images"]) == 5  # six people on five images: one clean copy per image
    assert clean["categories"][0]["keypoints"] == list(get_schema("mpii16").joints)
    for config in configs.split(","):
        subset = load(out / "val" / config / "annotations.json")
        assert len(subset["images"]) == len(subset["annotations"]) == 6
        for im, ann in zip(subset["images"], subset["annotations"], strict=True):
            i = int(ann["source_id"].rsplit("#", 1)[1])
            assert im["file_name"] == f"images/{source[i]['image'][:-4]}_{i}.png"
            assert {k: ann[k] for k in want[0]} == want[i]
            person = source[i]
            joints = np.asarray(person["joints"], float)
            expected, _ = apply_corruption(
                config,
                decode_rgb(mpii.parent / person["image"]),
                joints,
                visibility=np.asarray(person["joints_vis"]) > 0,
                rng=sample_rng(0, f"{person['image']}#{i}", config),
            )
            np.testing.assert_array_equal(decode_rgb(out / "val" / config / im["file_name"]), expected)
    assert main(["verify", str(out)]) == 0


def test_suite_layout_keeps_every_person_of_every_image(suite_out, mpii):
    from pycocotools.coco import COCO

    corruptions = sorted(p.name for p in (suite_out / "val").iterdir() if p.name != "clean")
    assert len(corruptions) == 15 and "gaussian_noise" in corruptions
    clean = load(suite_out / "val" / "clean" / "annotations.json")
    want = expected_annotations(mpii)
    assert [{k: a[k] for k in want[0]} for a in clean["annotations"]] == want
    first = load(mpii)[0]["image"]
    on_first = [a for a in clean["annotations"] if a["source_id"].startswith(first + "#")]
    assert len(on_first) == 2 and len({a["image_id"] for a in on_first}) == 1
    labelled = load(mpii)[-1]["joints_vis"]
    assert on_first[1]["keypoints"][9 * 3 + 2] == 0 and on_first[1]["num_keypoints"] == sum(labelled) < 16
    for corruption in corruptions:
        for severity in (1, 2):
            path = suite_out / "val" / corruption / str(severity) / "annotations.json"
            subset = load(path)
            assert sorted(subset["annotations"], key=lambda a: a["id"]) == clean["annotations"]
            assert len(subset["images"]) == 5 and len(COCO(str(path)).getAnnIds()) == 6
    manifest = load(suite_out / "manifest.json")
    assert manifest["dataset"]["kind"] == "mpii" and manifest["suite"] == "imagenet-c"
    assert manifest["severities"] == [1, 2]


def test_suite_images_are_corrupted_whole_with_the_images_stream_and_all_people(suite_out, mpii):
    source = load(mpii)
    for name in sorted({p["image"] for p in source}):
        mine = [p for p in source if p["image"] == name]
        kps = np.concatenate([np.asarray(p["joints"], float) for p in mine])
        vis = np.concatenate([np.asarray(p["joints_vis"]) > 0 for p in mine])
        image = decode_rgb(mpii.parent / name)
        for corruption, config in [("gaussian_noise", "imagenet-c.gaussian_noise-2"), ("motion_blur", None)]:
            config = config or "imagenet-c.motion_blur-1"
            severity = config.rsplit("-", 1)[1]
            want, _ = apply_corruption(config, image, kps, visibility=vis, rng=sample_rng(0, name, config))
            got = decode_rgb(
                suite_out / "val" / corruption / severity / "images" / name.replace(".jpg", ".png")
            )
            np.testing.assert_array_equal(got, want)


def test_the_written_centre_and_scale_rebuild_the_mpii_people(suite_out, mpii, tmp_path):
    """The COCO-style file converted back to MMPose's MPII JSON reads as the source does: same joints,
    flags, centre and scale, so --protocol mpii's crops (from centre and scale) are the same."""
    doc = load(suite_out / "val" / "gaussian_noise" / "1" / "annotations.json")
    names = {im["id"]: im["file_name"] for im in doc["images"]}
    back = []
    for a in sorted(doc["annotations"], key=lambda a: a["id"]):  # ids: the people's order in the source
        kp = np.asarray(a["keypoints"], float).reshape(-1, 3)
        back.append(
            {
                "image": names[a["image_id"]],
                "joints": kp[:, :2].tolist(),
                "joints_vis": (kp[:, 2] > 0).astype(int).tolist(),
                "center": a["center"],
                "scale": a["scale"],
            }
        )
    (tmp_path / "back.json").write_text(json.dumps(back))
    rebuilt = MpiiPeople(tmp_path / "back.json", suite_out / "val" / "gaussian_noise" / "1")
    original = MpiiPeople(mpii)
    assert len(rebuilt) == len(original) == 6
    for r, o in zip(rebuilt, original, strict=True):
        np.testing.assert_array_equal(r.keypoints, o.keypoints)
        np.testing.assert_array_equal(r.visibility, o.visibility)
        assert (r.meta["center"], r.meta["scale"]) == (o.meta["center"], o.meta["scale"])
        assert r.image_path.is_file()


def test_an_interrupted_run_resumes_to_the_same_bytes_and_repair_restores_a_file(
    suite_out, mpii, tmp_path, capsys
):
    out = tmp_path / "out"
    args = mpii_args(mpii, out, "--suite", "imagenet-c", "--severities", SEVERITIES, "--workers", "2")
    assert main([*args, "--shard", "1/3", "-q"]) == 0  # a third written, no manifest: as if stopped
    assert not (out / "manifest.json").exists()
    capsys.readouterr()
    assert main(args) == 0
    assert "already on disk" in capsys.readouterr().out
    assert written(out) == written(suite_out)
    damaged = out / "val" / "snow" / "2" / "images" / "052475643.png"
    damaged.write_bytes(b"not a png")
    assert main(["verify", str(out)]) == 1
    assert main(["materialize", "--out", str(out), "--repair", "-q"]) == 0
    assert written(out) == written(suite_out)
