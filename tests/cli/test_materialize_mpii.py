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
from kc_cli_helpers import decode_rgb, tree_digest, write_mmpose_head_boxes
from kc_cli_helpers import load_json as load

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


# --- mpii.json: MMPose's MPII JSON beside every annotations.json ----------------------------------


def expected_people(mpii, image_of):
    """The source's people as mpii.json must list them: every field kept, ``image`` the output's."""
    out = []
    for i, p in enumerate(load(mpii)):
        person = {**p, "image": image_of(p["image"], i)}
        out.append({**person, "source_id": f"{p['image']}#{i}", "source_image": p["image"]})
    return out


def suite_folders(root):
    return sorted(p.parent for p in (root / "val").glob("*/*/mpii.json"))


def test_mpii_json_lists_the_source_people_with_the_outputs_images(suite_out, mpii):
    folders = suite_folders(suite_out)
    assert len(folders) == 30  # 15 corruptions x severities 1-2
    clean = load(suite_out / "val" / "clean" / "mpii.json")
    assert clean == expected_people(mpii, lambda name, i: f"images/{name}")
    want = expected_people(mpii, lambda name, i: f"images/{name[:-4]}.png")
    original = MpiiPeople(mpii)
    for folder in [*folders, suite_out / "val" / "clean"]:
        people = load(folder / "mpii.json")
        if folder.name != "clean":
            assert people == want  # every person of every image, the source's order
        coco = load(folder / "annotations.json")  # the same people and joints as the COCO-style file
        by_source = {a["source_id"]: a for a in coco["annotations"]}
        names = {im["id"]: im["file_name"] for im in coco["images"]}
        for p in people:
            a = by_source[p["source_id"]]
            assert names[a["image_id"]] == p["image"]
            assert np.asarray(a["keypoints"], float).reshape(-1, 3)[:, :2].tolist() == p["joints"]
        read = MpiiPeople(folder / "mpii.json")  # --images is the subset folder (the default here)
        assert [s.id for s in read] == [s.id for s in original]
        assert [s.meta["image_id"] for s in read] == [s.meta["image_id"] for s in original]
        for r, o in zip(read, original, strict=True):
            np.testing.assert_array_equal(r.keypoints, o.keypoints)
            np.testing.assert_array_equal(r.visibility, o.visibility)
            assert (r.meta["center"], r.meta["scale"]) == (o.meta["center"], o.meta["scale"])
            assert r.image_path.is_file() and r.image_path.parent == folder / "images"
    records = [r for r in load(suite_out / "manifest.json")["annotation_files"] if r.get("format") == "mpii"]
    assert len(records) == 31 and {(r["images"], r["people"]) for r in records} == {(5, 6)}


def test_per_person_subsets_list_each_output_and_its_person(mpii, tmp_path):
    out = tmp_path / "out"
    assert (
        main(mpii_args(mpii, out, "--configs", "defocus-7", "--fraction", "0.5", "--workers", "1", "-q")) == 0
    )
    people = load(out / "val" / "defocus-7" / "mpii.json")
    coco = load(out / "val" / "defocus-7" / "annotations.json")
    assert len(people) == len(coco["annotations"]) == 3  # round(0.5 * 6) people, one file each
    want = expected_people(mpii, lambda name, i: f"images/{name[:-4]}_{i}.png")
    index = [int(p["source_id"].rsplit("#", 1)[1]) for p in people]
    assert index == sorted(index) and people == [want[i] for i in index]
    assert main(["verify", str(out)]) == 0


def test_moved_joints_are_split_back_per_person(mpii, tmp_path):
    """A corruption that moves the content reports all the image's joints: each person gets its own."""
    from keypoint_corrupt.materialize.mpii_export import mpii_people
    from keypoint_corrupt.materialize.plan import DatasetSpec, build_plan

    spec = DatasetSpec("mpii", annotations=(("val", mpii),), images=mpii.parent)
    plan = build_plan(spec, (), ("imagenet-c.fog-1",), 1.0, 0, "png", suite="imagenet-c")
    source = load(mpii)
    first = source[0]["image"]
    done = {}
    for item in plan.by_subset[("val", "imagenet-c.fog-1")]:
        entry = {}
        if item.sample_id == first:  # people 0 and 5, in that order, moved by 0.5 and 1.5 px
            joints = [[x + 0.5, y] for x, y in source[0]["joints"]] + [
                [x + 1.5, y] for x, y in source[5]["joints"]
            ]
            entry["keypoints"] = joints
        done[item.path] = entry
    people = mpii_people(plan, "val", "imagenet-c.fog-1", done)
    assert [p["source_id"] for p in people] == [f"{p['image']}#{i}" for i, p in enumerate(source)]
    assert people[0]["joints"] == [[x + 0.5, y] for x, y in source[0]["joints"]]
    assert people[5]["joints"] == [[x + 1.5, y] for x, y in source[5]["joints"]]
    assert people[1]["joints"] == source[1]["joints"]
    del done[next(iter(done))]  # an output not written (yet): its people are not listed
    assert len(mpii_people(plan, "val", "imagenet-c.fog-1", done)) < 6


PIXEL_PREDICTOR = '''
import numpy as np
from keypoint_corrupt.benchmark.mpii_protocol import mpii_crop_box
from keypoint_corrupt.datasets.mpii import MpiiPeople


class NearTruth:
    """Each person's joints, moved by what the crop shows (a few px: the pixels decide some hits).

    The people come in file order in the first (standard) row, then by image (file order within
    one) in each corrupted row, as the protocol crops them.
    """

    schema = "mpii16"

    def __init__(self, data):
        self.file_order = list(MpiiPeople(data))
        first = {}
        for i, s in enumerate(self.file_order):
            first.setdefault(s.image_path.name, i)
        key = [(first[s.image_path.name], i) for i, s in enumerate(self.file_order)]
        self.by_image = [self.file_order[i] for _, i in sorted(key)]
        self.next = 0

    def __call__(self, crops):
        out = []
        n = len(self.file_order)
        for crop in crops:
            sample = (self.file_order if self.next < n else self.by_image)[self.next % n]
            self.next += 1
            h, w = crop.shape[:2]
            center, size = mpii_crop_box(sample.meta["center"], sample.meta["scale"], (w, h))
            shift = (crop[::7, ::7].astype(float).mean(axis=(0, 1)) - 100.0) / 4.0  # RGB means: 3 px
            kp = (sample.keypoints - center) * (w / size[0]) + np.array([w, h]) / 2
            kp[::2] += shift[:2]
            kp[1::3] -= shift[1:]
            out.append(kp)
        return np.stack(out), np.ones((len(crops), 16))
'''


def release_heads(path, people):
    """MPII's RELEASE layout: each image with its people's head boxes and joints (image names matter)."""
    from scipy.io import savemat

    def struct_array(records):
        arr = np.zeros((1, len(records)), dtype=[(k, object) for k in records[0]])
        for i, rec in enumerate(records):
            for k, v in rec.items():
                arr[0, i][k] = v
        return arr

    annolist = []
    for name in dict.fromkeys(p["image"] for p in people):
        rects = []
        for k, p in enumerate(q for q in people if q["image"] == name):
            joints = np.asarray(p["joints"], float)
            points = [
                {"id": j, "x": joints[j, 0], "y": joints[j, 1]} for j in range(16) if p["joints_vis"][j]
            ]
            x, y = joints[9]  # a made-up head box around the head top, one size per person
            rects.append({"x1": x - 20.0, "y1": y - 10.0, "x2": x + 20.0 + 5 * k, "y2": y + 35.0,
                          "annopoints": {"point": struct_array(points)}})  # fmt: skip
        annolist.append({"image": {"name": name}, "annorect": struct_array(rects)})
    savemat(path, {"RELEASE": {"annolist": struct_array(annolist)}})
    return path


def gt_heads(path, people):
    """MMPose's mpii_gt_val.mat layout (matched by joints alone), as the MPII protocol tests build it."""
    return write_mmpose_head_boxes(path, people, (0.0, 0.0, 30.0, 40.0))


def benchmark_report(tmp_path, data, images, heads, name, source):
    out = tmp_path / name
    argv = ["benchmark", "--protocol", "mpii", "--data", str(data), "--images", str(images)]
    argv += ["--head-boxes", str(heads), "--predict", f"{tmp_path / 'near_truth.py'}:NearTruth"]
    argv += ["--predict-arg", f"data={source}", "--configs", "imagenet-c.gaussian_noise-2,imagenet-c.fog-1"]
    assert main([*argv, "--out", str(out), "--no-progress"]) == 0
    rows = load(out / "report.json")["rows"]
    import gzip

    predictions = json.loads(gzip.decompress((out / "mpii_predictions.json.gz").read_bytes()))["rows"]
    return rows, predictions


def test_protocol_mpii_on_the_clean_subset_is_the_source_report(suite_out, mpii, tmp_path):
    (tmp_path / "near_truth.py").write_text(PIXEL_PREDICTOR)
    clean = suite_out / "val" / "clean"
    for heads in (
        release_heads(tmp_path / "mpii_human_pose_v1_u12_1.mat", load(mpii)),
        gt_heads(tmp_path / "mpii_gt_val.mat", MpiiPeople(mpii)),
    ):
        want = benchmark_report(tmp_path, mpii, mpii.parent, heads, f"src-{heads.stem}", mpii)
        got = benchmark_report(tmp_path, clean / "mpii.json", clean, heads, f"clean-{heads.stem}", mpii)
        assert got == want  # every row: the standard one and the corrupted ones (the source's streams)
        figures = {row["name"]: row["pckh"] for row in want[0]}
        assert len(figures) == 3 and 0.0 < min(figures.values()) < 1.0, figures
        assert len(set(figures.values())) > 1  # the corruptions change the answers: an honest check
    noisy = suite_out / "val" / "gaussian_noise" / "2"  # the corrupted folder, scored as clean images
    _, predicted = benchmark_report(tmp_path, noisy / "mpii.json", noisy, heads, "noisy", mpii)

    def by_person(row):
        return dict(zip(row["people"], row["keypoints"], strict=True))

    on_folder = by_person(predicted["standard"])
    assert on_folder == by_person(want[1]["imagenet-c.gaussian_noise-2"])  # the streamed row's crops
    assert on_folder != by_person(want[1]["standard"])


def test_verify_and_repair_cover_mpii_json(suite_out, tmp_path, capsys):
    out = tmp_path / "out"
    shutil.copytree(suite_out, out)
    target = out / "val" / "fog" / "1" / "mpii.json"
    good = target.read_bytes()
    people = json.loads(good)
    people[3]["joints"][0][0] += 1.0
    target.write_text(json.dumps(people))
    (out / "val" / "clean" / "mpii.json").unlink()
    capsys.readouterr()
    assert main(["verify", str(out)]) == 1
    report = capsys.readouterr()
    text = report.out + report.err
    assert "val/fog/1/mpii.json: sha256 differs" in text and "val/clean/mpii.json: missing" in text, text
    assert main(["materialize", "--out", str(out), "--repair", "-q"]) == 0
    assert target.read_bytes() == good
    assert written(out) == written(suite_out)
    target.write_text(json.dumps([{"image": "images/x.png"}]))
    assert main(["verify", str(out)]) == 1
    assert "val/fog/1/mpii.json: not MMPose's MPII JSON" in "".join(capsys.readouterr())


def test_mpii_people_keep_the_recorded_source_names_and_refuse_broken_ones(suite_out, tmp_path):
    folder = suite_out / "val" / "fog" / "1"
    with pytest.raises(ValueError, match=f"the MPII JSON of this folder is {folder / 'mpii.json'}"):
        MpiiPeople(folder / "annotations.json")  # the COCO-style file names the one to read
    people = load(folder / "mpii.json")
    for change, match in [
        ({"source_image": None}, "source_id and source_image must both be non-empty strings"),
        ({"source_id": people[0]["source_id"]}, "persons 0 and 1 have the same id"),
    ]:
        broken = [people[0], {**people[1], **change}]
        if change.get("source_image", "") is None:
            del broken[1]["source_image"]
        (tmp_path / "p.json").write_text(json.dumps(broken))
        with pytest.raises(ValueError, match=match):
            MpiiPeople(tmp_path / "p.json", folder)
