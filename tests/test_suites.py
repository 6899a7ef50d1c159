"""The published suites end to end: the suites API, their registry rows, the ImageNetC and
PoseBench transforms in albumentations pipelines, the docs tables and ``list --suite``.

The per-class contract of the two transforms (serialisation, validation, layouts, seeding,
DataLoader workers) runs in ``test_transform_contract.py`` from their rows in
``transform_definitions.py``; here are the suite-specific behaviours.
"""

from __future__ import annotations

import json
import re
from pathlib import Path

import albumentations as A
import cv2
import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st
from transform_definitions import row_for

import keypoint_corrupt as kc
from keypoint_corrupt import functional as F
from keypoint_corrupt.cli.main import main
from keypoint_corrupt.registry import format_parameter
from keypoint_corrupt.suites import Suite, parse_severities

DATA = Path(__file__).resolve().parent / "data"
DOCS = Path(__file__).resolve().parents[1] / "docs" / "corruptions.md"

# imagecorruptions 1.1.2's get_corruption_names("common") and ("validation"), and PoseBench's
# corruptions #1 to #10 on its project page: written out here, not read from the package.
IMAGENET_C = (
    "gaussian_noise", "shot_noise", "impulse_noise", "defocus_blur", "glass_blur", "motion_blur",
    "zoom_blur", "snow", "frost", "fog", "brightness", "contrast", "elastic_transform", "pixelate",
    "jpeg_compression",
)  # fmt: skip
IMAGENET_C_EXTRA = ("speckle_noise", "gaussian_blur", "spatter", "saturate")
POSEBENCH = (
    "motion_blur", "gaussian_noise", "impulse_noise", "pixelate", "jpeg_compression", "color_quant",
    "brightness", "darkness", "contrast", "mask",
)  # fmt: skip


def _coco_person():
    """The first COCO val2017 fixture person: RGB image (425x640), (17, 2) xy, (17,) visible flags."""
    coco = json.loads((DATA / "body" / "coco" / "test_coco.json").read_text())
    ann = next(a for a in coco["annotations"] if a["num_keypoints"] >= 10)
    image = next(im for im in coco["images"] if im["id"] == ann["image_id"])
    bgr = cv2.imread(str(DATA / "body" / "coco" / image["file_name"]), cv2.IMREAD_COLOR)
    kps = np.asarray(ann["keypoints"], np.float64).reshape(-1, 3)
    return bgr[..., ::-1].copy(), kps[:, :2], kps[:, 2]


@pytest.fixture(scope="module")
def person():
    return _coco_person()


@pytest.fixture(scope="module")
def crop(person):
    """A 96x128 crop of the person (keypoints shifted into it), for the many small cases."""
    image, kps, vis = person
    x0, y0 = int(kps[vis > 0, 0].min()) - 10, int(kps[vis > 0, 1].min()) - 10
    return np.ascontiguousarray(image[y0 : y0 + 96, x0 : x0 + 128]), kps - (x0, y0), vis


def _call_rng(t, image, seed):
    """The generator a seeded suite transform draws from in a pipeline, derived independently:
    one draw of ``default_rng(seed)``, the image's CRC-32 and the family's (see docs/corruptions.md)."""
    return row_for(type(t)).pipeline_rng(t, image, seed)


def _needs_frost_textures(corruption):
    if corruption == "frost":
        try:
            F.imagenet_c.frost(np.zeros((8, 8, 3), np.uint8), 1, rng=0)
        except FileNotFoundError as exc:
            pytest.skip(f"frost textures not installed: {exc}")


# --- the suites API -----------------------------------------------------------------------------


def test_builtin_suites_in_order_with_their_corruptions():
    assert kc.available_suites()[:4] == ("costa2021", "imagenet-c", "imagenet-c-extra", "posebench")
    assert kc.get_suite("imagenet-c").corruptions == IMAGENET_C
    assert kc.get_suite("imagenet-c-extra").corruptions == IMAGENET_C_EXTRA
    assert kc.get_suite("posebench").corruptions == POSEBENCH
    for name in ("imagenet-c", "imagenet-c-extra", "posebench"):
        assert kc.get_suite(name).severities == (1, 2, 3, 4, 5)


@pytest.mark.parametrize("suite, prefix", [("imagenet-c", "imagenet-c"), ("imagenet-c-extra", "imagenet-c")])
def test_imagenet_c_configurations_keep_the_labels_as_published(suite, prefix):
    s = kc.get_suite(suite)
    for corruption in s.corruptions:
        for severity in s.severities:
            name = s.config(corruption, severity)
            assert name == f"{prefix}.{corruption}-{severity}"
            cfg = kc.get_config(name)
            assert cfg.family == cfg.rng_stream == f"{prefix}.{corruption}"
            t = kc.make_corruption(name)
            assert type(t) is kc.ImageNetC and t.p == 1.0
            assert (t.corruption, t.severity, t.move_keypoints) == (corruption, severity, False)
    protocol = kc.get_suite("imagenet-c").protocol
    assert (
        "labels as published: elastic_transform moves the image content but not the annotations" in protocol
    )


def test_posebench_configurations():
    s = kc.get_suite("posebench")
    assert s.configs(severities=[5])[-1] == "posebench.mask-5"
    for corruption in s.corruptions:
        for severity in s.severities:
            cfg = kc.get_config(s.config(corruption, severity))
            assert cfg.family == cfg.rng_stream == f"posebench.{corruption}"
            t = cfg.build()
            assert type(t) is kc.PoseBench and (t.corruption, t.severity) == (corruption, severity)
    assert "mRR" in s.protocol and "arXiv 2406.14367" in s.protocol


def test_configs_are_corruption_major_and_filter_by_severity_and_corruption():
    s = kc.get_suite("imagenet-c")
    everything = s.configs()
    assert len(everything) == 75 and len(set(everything)) == 75
    assert everything[:6] == (
        *(f"imagenet-c.gaussian_noise-{k}" for k in range(1, 6)),
        "imagenet-c.shot_noise-1",
    )
    assert s.configs(severities=[5, 1], corruptions=["fog", "snow"]) == (
        "imagenet-c.fog-5",
        "imagenet-c.fog-1",
        "imagenet-c.snow-5",
        "imagenet-c.snow-1",
    )
    with pytest.raises(ValueError, match=r"severities of suite 'imagenet-c' are 1..5, got \[6\]"):
        s.configs(severities=[1, 6])
    with pytest.raises(
        ValueError, match=r"suite 'imagenet-c' has no corruption 'mask'; valid: gaussian_noise"
    ):
        s.configs(corruptions=["mask"])


def test_locate_is_the_inverse_of_config():
    for name in kc.available_suites():
        s = kc.get_suite(name)
        for config in s.configs():
            corruption, severity = s.locate(config)
            assert s.config(corruption, severity) == config
    with pytest.raises(ValueError, match=r"configuration 'motion-15' is not in suite 'posebench'"):
        kc.get_suite("posebench").locate("motion-15")
    with pytest.raises(ValueError, match=r"severity of 'fog' in suite 'imagenet-c' must be in 1..5, got 0"):
        kc.get_suite("imagenet-c").config("fog", 0)
    with pytest.raises(TypeError, match=r"severity must be an int, got True"):
        kc.get_suite("imagenet-c").config("fog", True)
    # numpy integers are severities too (e.g. from np.arange)
    assert kc.get_suite("imagenet-c").configs(severities=np.arange(1, 3), corruptions=["fog"]) == (
        "imagenet-c.fog-1",
        "imagenet-c.fog-2",
    )


def test_a_huge_severity_range_is_refused_before_it_is_built():
    with pytest.raises(ValueError, match=r"severities must be at most 100, got '1-1000000000'"):
        kc.suites.parse_severities("1-1000000000")


def test_severity_parameters_errors_follow_the_constructor():
    with pytest.raises(TypeError, match="severity must be an int"):
        kc.ImageNetC.severity_parameters("snow", "2")
    with pytest.raises(ValueError, match=r"severity must be in 1\.\.5, got 6"):
        kc.ImageNetC.severity_parameters("snow", 6)


def test_costa2021_is_the_eleven_reference_configurations():
    s = kc.get_suite("costa2021")
    assert s.configs() == kc.CONFIGS
    assert s.corruptions == ("defocus", "motion", "occlusion", "noise-gaussian", "noise-saltpepper")
    assert s.configs(severities=[2]) == ("defocus-13", "motion-30", "occlusion-20")
    assert s.configs(severities=[1]) == (
        "defocus-7",
        "motion-15",
        "occlusion-10",
        "noise-gaussian",
        "noise-saltpepper",
    )
    assert s.locate("noise-saltpepper") == ("noise-saltpepper", 1)


def test_users_register_and_unregister_suites():
    s = kc.register_suite(
        "my-blur",
        {
            "defocus": ["defocus-7", "defocus-21"],
            "fog": ["imagenet-c.fog-1", "imagenet-c.fog-3", "imagenet-c.fog-5"],
        },
        description="d",
        protocol="p",
    )
    try:
        assert isinstance(s, Suite) and kc.get_suite("my-blur") is s and "my-blur" in kc.available_suites()
        assert s.configs(severities=[3]) == ("imagenet-c.fog-5",)  # defocus has two levels only
        assert s.configs(severities=[2]) == ("defocus-21", "imagenet-c.fog-3")
        with pytest.raises(ValueError, match="suite 'my-blur' is already registered"):
            kc.register_suite("my-blur", {"a": ["motion-15"]})
        kc.register_suite("my-blur", {"a": ["motion-15"]}, replace=True)
        assert kc.get_suite("my-blur").configs() == ("motion-15",)
    finally:
        kc.unregister_suite("my-blur")
    assert "my-blur" not in kc.available_suites()
    with pytest.raises(ValueError, match=r"unknown suite 'my-blur'; valid suites: costa2021, imagenet-c, "):
        kc.get_suite("my-blur")


@pytest.mark.parametrize(
    "call, exc, match",
    [
        (lambda: kc.register_suite("imagenet-c", {"a": ["motion-15"]}, replace=True), ValueError, "built-in"),
        (lambda: kc.unregister_suite("posebench"), ValueError, "built-in suite and cannot be removed"),
        (lambda: kc.unregister_suite("nope"), ValueError, "suite 'nope' is not registered"),
        (
            lambda: kc.register_suite("Bad Name", {"a": ["motion-15"]}),
            ValueError,
            "suite name must be lower-case",
        ),
        (lambda: kc.register_suite("x", {}), ValueError, "needs at least one corruption"),
        (lambda: kc.register_suite("x", {"a": []}), ValueError, "needs at least one corruption"),
        (lambda: kc.register_suite("x", {"a": ["motion-15"], "b": ["motion-15"]}), ValueError, "twice"),
        (
            lambda: kc.register_suite("x", {"a": ["blur-99"]}),
            ValueError,
            r"unknown corruption configuration 'blur-99'.*imagenet-c\.\* \(95 names",
        ),
    ],
)
def test_suite_registration_errors(call, exc, match):
    with pytest.raises(exc, match=match):
        call()
    assert "x" not in kc.available_suites()


@pytest.mark.parametrize(
    "text, expected",
    [
        ("1-5", (1, 2, 3, 4, 5)),
        ("1,3,5", (1, 3, 5)),
        ("2", (2,)),
        (" 3 - 4 , 1 ", (1, 3, 4)),
        ("2,2-3", (2, 3)),
    ],
)
def test_parse_severities(text, expected):
    assert parse_severities(text) == expected


@pytest.mark.parametrize("text", ["", "a", "1-", "-2", "3-1", "0", "0-2", "1,,2", "1.5", "1-2-3"])
def test_parse_severities_rejects_bad_input_naming_it(text):
    with pytest.raises(ValueError, match=rf"severities must .*{re.escape(repr(text))}"):
        parse_severities(text)


@given(st.sets(st.integers(1, 40), min_size=1))
def test_parse_severities_round_trips_any_set(levels):
    assert parse_severities(",".join(str(v) for v in sorted(levels, reverse=True))) == tuple(sorted(levels))


# --- ImageNetC in pipelines ---------------------------------------------------------------------


@pytest.mark.parametrize("corruption", IMAGENET_C + IMAGENET_C_EXTRA)
def test_every_imagenet_c_corruption_in_a_pipeline_equals_its_function_and_keeps_or_moves_keypoints(
    corruption, crop
):
    _needs_frost_textures(corruption)
    image, kps, vis = crop
    params = A.KeypointParams(format="xy", label_fields=["vis"], remove_invisible=False)
    t = kc.ImageNetC(corruption, severity=3)
    out = A.Compose([t], keypoint_params=params, seed=11)(image=image, keypoints=kps, vis=vis)
    gen = _call_rng(t, image, 11)
    if corruption == "elastic_transform":
        want, moved = F.imagenet_c.elastic_transform_with_keypoints(image, kps, 3, gen)
        np.testing.assert_array_equal(np.asarray(out["keypoints"]), moved)
        assert np.abs(moved - kps).max() > 0.1  # it did move them
    else:
        want = F.imagenet_c.CORRUPTIONS[corruption](image, 3, gen)
        np.testing.assert_array_equal(np.asarray(out["keypoints"]), kps)
    np.testing.assert_array_equal(out["image"], want)
    assert list(out["vis"]) == list(vis)
    assert t.params["severity"] == 3
    json.dumps(t.params["noise_rng"])  # a replay's parameters stay JSON


def test_elastic_keypoints_through_compose_on_a_full_frame_after_a_flip(person):
    image, kps, vis = person
    params = A.KeypointParams(format="xy", label_fields=["vis"], remove_invisible=False)
    t = kc.ImageNetC("elastic_transform", severity=5)
    pipe = A.Compose([A.HorizontalFlip(p=1.0), t, A.NoOp()], keypoint_params=params, seed=5)
    out = pipe(image=image, keypoints=kps, vis=vis)
    flipped = A.Compose([A.HorizontalFlip(p=1.0)], keypoint_params=params)(
        image=image, keypoints=kps, vis=vis
    )
    assert not np.array_equal(flipped["keypoints"], kps)
    want, moved = F.imagenet_c.elastic_transform_with_keypoints(
        flipped["image"], flipped["keypoints"], 5, _call_rng(t, flipped["image"], 5)
    )
    np.testing.assert_array_equal(out["image"], want)
    np.testing.assert_array_equal(np.asarray(out["keypoints"]), moved)
    assert len(out["keypoints"]) == len(kps) and list(out["vis"]) == list(vis)
    shift = np.hypot(*(np.asarray(out["keypoints"]) - np.asarray(flipped["keypoints"])).T)
    assert 0.5 < shift.max() < 20  # a few pixels on a 640x425 frame at severity 5


def test_elastic_with_move_keypoints_false_keeps_the_labels(crop):
    image, kps, _ = crop
    params = A.KeypointParams(format="xy", remove_invisible=False)
    t = kc.ImageNetC("elastic_transform", severity=5, move_keypoints=False)
    out = A.Compose([t], keypoint_params=params, seed=2)(image=image, keypoints=kps)
    np.testing.assert_array_equal(np.asarray(out["keypoints"]), kps)
    want = F.imagenet_c.elastic_transform(image, 5, _call_rng(t, image, 2))
    np.testing.assert_array_equal(out["image"], want)


def test_elastic_never_drops_a_keypoint_itself_but_compose_removes_those_pushed_off_the_image(crop):
    image, _, _ = crop
    h, w = image.shape[:2]
    edge = np.array([[0.05, 0.05], [w - 0.05, h - 0.05], [w / 2, 0.02], [w / 2, h / 2]])
    kept = A.Compose(
        [kc.ImageNetC("elastic_transform", 5)],
        keypoint_params=A.KeypointParams(format="xy", remove_invisible=False),
        seed=0,
    )(image=image, keypoints=edge)["keypoints"]
    assert len(kept) == len(edge)
    inside = [(0 <= x < w and 0 <= y < h) for x, y in np.asarray(kept)]
    filtered = A.Compose(
        [kc.ImageNetC("elastic_transform", 5)], keypoint_params=A.KeypointParams(format="xy"), seed=0
    )(image=image, keypoints=edge)["keypoints"]
    np.testing.assert_array_equal(np.asarray(filtered).reshape(-1, 2), np.asarray(kept)[inside])


def test_corrupt_reports_the_moved_keypoints_only_for_elastic_with_move_keypoints(crop):
    image, kps, _ = crop
    rows = np.column_stack([kps, np.arange(len(kps))])  # an extra column passes through
    out, info = kc.ImageNetC("elastic_transform", 4).corrupt(
        image, keypoints=rows, rng=np.random.default_rng(3)
    )
    want, moved = F.imagenet_c.elastic_transform_with_keypoints(image, rows, 4, np.random.default_rng(3))
    np.testing.assert_array_equal(out, want)
    np.testing.assert_array_equal(info["keypoints"], moved)
    assert sorted(info) == ["keypoints", "severity"] and info["keypoints"].shape == rows.shape
    assert kc.ImageNetC("elastic_transform", 4, move_keypoints=False).corrupt(image, keypoints=kps, rng=3)[
        1
    ] == {"severity": 4}
    assert kc.ImageNetC("elastic_transform", 4).corrupt(image, rng=3)[1] == {"severity": 4}
    assert kc.ImageNetC("fog", 4).corrupt(image, keypoints=kps, rng=3)[1] == {"severity": 4}


def test_apply_corruption_of_a_suite_configuration_equals_the_function(crop):
    image, kps, _ = crop
    out, info = kc.apply_corruption(
        "imagenet-c.elastic_transform-2", image, kps, rng=np.random.default_rng(8)
    )
    np.testing.assert_array_equal(out, F.imagenet_c.elastic_transform(image, 2, np.random.default_rng(8)))
    assert info == {"severity": 2}  # labels as published: no moved keypoints


def test_a_severity_range_draws_every_level_uniformly_and_applies_the_drawn_one():
    img = np.tile(np.arange(0, 250, 10, dtype=np.uint8), (8, 1))[..., None].repeat(3, axis=2)
    t = kc.ImageNetC("contrast", severity=(2, 4))
    pipe = A.Compose([t], seed=0)
    seen = []
    for _ in range(300):
        out = pipe(image=img)["image"]
        seen.append(t.params["severity"])
        np.testing.assert_array_equal(out, F.imagenet_c.contrast(img, seen[-1]))
    counts = np.bincount(seen, minlength=6)
    assert counts[[0, 1, 5]].sum() == 0 and counts[2:5].min() > 70  # 100 expected each, sd 8
    drawn = [kc.ImageNetC("contrast", (1, 5)).corrupt(img, rng=s)[1]["severity"] for s in range(200)]
    assert set(drawn) == {1, 2, 3, 4, 5}


def test_a_replay_reproduces_the_corruption_and_stays_json(crop):
    image, kps, _ = crop
    pipe = A.ReplayCompose([kc.ImageNetC("gaussian_noise", (1, 5)), kc.PoseBench("mask", (1, 5))])
    pipe.set_random_seed(4)
    first = pipe(image=image, keypoints=kps)
    replay = json.loads(json.dumps(first["replay"]))
    again = A.ReplayCompose.replay(replay, image=image, keypoints=kps)
    np.testing.assert_array_equal(again["image"], first["image"])


def test_two_noise_corruptions_in_one_seeded_pipeline_draw_different_noise():
    img = np.full((64, 64, 3), 128, np.uint8)
    pipe = A.Compose([kc.ImageNetC("gaussian_noise", 2), kc.ImageNetC("gaussian_noise", 2)], seed=0)
    once = A.Compose([kc.ImageNetC("gaussian_noise", 2)], seed=0)(image=img)["image"]
    twice = pipe(image=img)["image"]
    first, second = once.astype(float) - img, twice.astype(float) - once
    assert np.std(second) > 10  # the second transform adds noise too...
    assert abs(np.corrcoef(first.ravel(), second.ravel())[0, 1]) < 0.1  # ...fresh, not the first's again


class _SuitePipelineDataset:
    """Identical images through one seeded pipeline held by the dataset, as the README shows."""

    def __init__(self, n):
        self.pipeline = A.Compose(
            [kc.ImageNetC("gaussian_noise", (1, 5)), kc.PoseBench("mask", (1, 5))],
            keypoint_params=A.KeypointParams(format="xy"),
            seed=0,
        )
        self.image = np.full((32, 48, 3), 128, np.uint8)
        self.n = n

    def __len__(self):
        return self.n

    def __getitem__(self, index):
        return self.pipeline(image=self.image, keypoints=[(10.0, 8.0), (38.0, 26.0)])["image"]


def test_dataloader_workers_draw_different_reproducible_streams():
    torch = pytest.importorskip("torch")

    def collect(workers):
        loader = torch.utils.data.DataLoader(_SuitePipelineDataset(6), batch_size=1, num_workers=workers)
        return torch.cat(list(loader)).numpy()

    first, second = collect(2), collect(2)
    np.testing.assert_array_equal(first, second)
    for k in range(3):  # worker 0 yields items 0, 2, 4 and worker 1 items 1, 3, 5
        assert np.mean(first[2 * k] == first[2 * k + 1]) < 0.5, k


# --- PoseBench in pipelines ---------------------------------------------------------------------


@pytest.mark.parametrize("corruption", POSEBENCH)
def test_every_posebench_corruption_in_a_pipeline_equals_its_function(corruption, crop):
    image, kps, vis = crop
    params = A.KeypointParams(format="xy", label_fields=["v"], remove_invisible=False)
    t = kc.PoseBench(corruption, severity=4, visibility_label="v")
    out = A.Compose([A.NoOp(), t], keypoint_params=params, seed=3)(image=image, keypoints=kps, v=vis)
    gen = _call_rng(t, image, 3)
    if corruption == "mask":
        want = F.posebench.mask(image, 4, gen, keypoints=kps, visibility=vis)
    else:
        want = F.posebench.CORRUPTIONS[corruption](image, 4, gen)
    np.testing.assert_array_equal(out["image"], want)
    np.testing.assert_array_equal(np.asarray(out["keypoints"]), kps)  # never moved or dropped


def test_posebench_mask_squares_sit_on_visible_keypoints_only(person):
    image, kps, vis = person
    params = A.KeypointParams(format="xy", label_fields=["v"], remove_invisible=False)
    t = kc.PoseBench("mask", 5, visibility_label="v")
    pipe = A.Compose([t], keypoint_params=params, seed=1)
    visible = kps[vis > 0]
    for _ in range(20):
        out = pipe(image=image, keypoints=kps, v=vis)
        boxes = t.params["boxes"]
        assert len(boxes) == 5
        centres = np.array([((x0 + x1) / 2, (y0 + y1) / 2) for x0, y0, x1, y1 in boxes])
        # each square is centred (to a pixel) on a visible keypoint, none on an invisible one
        assert np.abs(centres[:, None, :] - visible[None, :, :]).max(axis=2).min(axis=1).max() <= 1.0
        for x0, y0, x1, y1 in boxes:
            assert (out["image"][y0:y1, x0:x1] == 0).all()


def test_posebench_mask_uses_the_keypoints_after_a_geometric_transform(crop):
    image, kps, _ = crop
    params = A.KeypointParams(format="xy", remove_invisible=False)
    t = kc.PoseBench("mask", 3)
    A.Compose([A.HorizontalFlip(p=1.0), t], keypoint_params=params, seed=0)(image=image, keypoints=kps)
    flipped = A.Compose([A.HorizontalFlip(p=1.0)], keypoint_params=params)(image=image, keypoints=kps)
    gen = _call_rng(t, flipped["image"], 0)
    assert t.params["boxes"] == F.posebench.draw_mask(image.shape, 3, gen, keypoints=flipped["keypoints"])


def test_posebench_corrupt_reports_severity_and_boxes(crop):
    image, kps, vis = crop
    out, info = kc.PoseBench("mask", (2, 5)).corrupt(
        image, keypoints=kps, visibility=vis, rng=np.random.default_rng(6)
    )
    gen = np.random.default_rng(6)
    severity = int(gen.integers(2, 6))
    boxes = F.posebench.draw_mask(image.shape, severity, gen, keypoints=kps, visibility=vis)
    assert info == {"severity": severity, "boxes": [tuple(b) for b in boxes]}
    np.testing.assert_array_equal(out, F.posebench.apply_mask(image, boxes))
    assert kc.PoseBench("darkness", 3).corrupt(image, rng=1)[1] == {"severity": 3}


def test_severity_parameters_name_the_fields_of_params():
    assert kc.ImageNetC.severity_parameters("glass_blur", 5) == {
        "sigma": 1.5,
        "max_delta": 4,
        "iterations": 2,
    }
    assert kc.PoseBench.severity_parameters("mask", 1) == {"squares": 5, "side": 0.04}
    for cls, table in ((kc.ImageNetC, F.imagenet_c.PARAMS), (kc.PoseBench, F.posebench.PARAMS)):
        for corruption, levels in table.items():
            for severity, values in enumerate(levels, start=1):
                named = cls.severity_parameters(corruption, severity)
                flat = tuple(named.values())
                assert flat == (values if isinstance(values, tuple) and len(named) > 1 else (values,))
    with pytest.raises(ValueError, match="corruption must be one of"):
        kc.PoseBench.severity_parameters("fog", 1)
    with pytest.raises(ValueError, match=r"severity must be in 1\.\.5, got 6"):
        kc.ImageNetC.severity_parameters("fog", 6)


# --- docs tables and the CLI --------------------------------------------------------------------


def _docs_table(first_header: str) -> dict[str, list[str]]:
    lines = DOCS.read_text().splitlines()
    start = next(i for i, line in enumerate(lines) if line.startswith(first_header))
    rows = {}
    for line in lines[start + 2 :]:
        if not line.startswith("|"):
            break
        cells = [c.strip() for c in line.strip("|").split("|")]
        rows[cells[0]] = cells
    return rows


def _expected_cells(cls, corruption):
    levels = [cls.severity_parameters(corruption, s) for s in range(1, 6)]
    return [", ".join(levels[0])] + [", ".join(format_parameter(v) for v in p.values()) for p in levels]


def test_docs_imagenet_c_table_matches_the_parameters():
    rows = _docs_table("| corruption | group | parameters | 1 | 2 | 3 | 4 | 5 | agreement |")
    assert tuple(rows) == IMAGENET_C + IMAGENET_C_EXTRA
    groups = {c: g for g, cs in F.imagenet_c.GROUPS.items() for c in cs}
    for corruption, cells in rows.items():
        assert cells[1] == groups.get(corruption, "extra")
        assert cells[2:8] == _expected_cells(kc.ImageNetC, corruption), corruption


def test_docs_posebench_table_matches_the_parameters():
    rows = _docs_table("| corruption | group | parameters | 1 | 2 | 3 | 4 | 5 | source |")
    assert tuple(rows) == POSEBENCH
    groups = {c: g for g, cs in F.posebench.GROUPS.items() for c in cs}
    for corruption, cells in rows.items():
        assert cells[1] == groups[corruption]
        assert cells[2:8] == _expected_cells(kc.PoseBench, corruption), corruption


def test_list_stays_short_and_lists_each_suite_on_one_line(capsys):
    assert main(["list"]) == 0
    out = capsys.readouterr().out
    assert all(name in out for name in kc.CONFIGS) and "imagenet-c.fog-1" not in out
    for suite in kc.available_suites():
        assert len([line for line in out.splitlines() if line.strip().startswith(f"{suite} ")]) == 1
    assert len(out.splitlines()) < 25


def test_list_json_lists_every_configuration_and_its_suites(capsys):
    assert main(["list", "--json"]) == 0
    rows = json.loads(capsys.readouterr().out)
    assert [r["name"] for r in rows] == list(kc.available_configs())
    fog = next(r for r in rows if r["name"] == "imagenet-c.fog-3")
    assert fog["suites"] == [{"suite": "imagenet-c", "corruption": "fog", "severity": 3}]
    assert fog["params"] == {"corruption": "fog", "severity": 3, "move_keypoints": False}


@pytest.mark.parametrize("suite", ["costa2021", "imagenet-c", "imagenet-c-extra", "posebench"])
def test_list_suite_prints_the_corruption_by_severity_table(suite, capsys):
    s = kc.get_suite(suite)
    assert main(["list", "--suite", suite]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert lines[0].startswith(f"{suite}: ") and lines[1] == f"protocol: {s.protocol}"
    table = lines[lines.index(next(line for line in lines if line.startswith("corruption"))) + 1 :]
    assert [line.split()[2] for line in table] == list(s.configs())
    assert main(["list", "--suite", suite, "--json"]) == 0
    data = json.loads(capsys.readouterr().out)
    assert data["protocol"] == s.protocol and data["corruptions"] == list(s.corruptions)
    assert [r["name"] for r in data["configurations"]] == list(s.configs())


def test_list_suite_shows_the_severity_parameters(capsys):
    assert main(["list", "--suite", "imagenet-c"]) == 0
    out = capsys.readouterr().out
    assert re.search(
        r"^glass_blur\s+5\s+imagenet-c\.glass_blur-5\s+sigma=1\.5, max_delta=4, iterations=2$", out, re.M
    )
    assert main(["list", "--suite", "posebench", "--json"]) == 0
    rows = json.loads(capsys.readouterr().out)["configurations"]
    assert rows[-1]["parameters"] == {"squares": 5, "side": 0.2} and rows[-1]["transform"] == "PoseBench"


def test_list_unknown_suite_is_a_one_line_error(capsys):
    assert main(["list", "--suite", "nope"]) == 2
    err = capsys.readouterr().err.strip()
    assert err == (
        "keypoint-corrupt list: error: --suite: unknown suite 'nope'; valid suites: costa2021, imagenet-c, "
        "imagenet-c-extra, posebench"
    )


def test_the_docs_example_of_a_user_suite_runs():
    block = re.search(r"### Registering your own suite.*?```python\n(.*?)```", DOCS.read_text(), re.S).group(
        1
    )
    try:
        namespace: dict = {}
        exec(compile(block, str(DOCS), "exec"), namespace)
        assert "my-suite" not in kc.available_suites()
        assert kc.get_config("my.fog-3").params == {"corruption": "fog", "severity": 5}
    finally:
        for s in (1, 2, 3):
            if f"my.fog-{s}" in kc.available_configs():
                kc.unregister_config(f"my.fog-{s}")
