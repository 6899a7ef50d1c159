"""PoseBench corruptions: parameters, image contract, formulas and keypoint-aware masks on real fixtures."""

from __future__ import annotations

import itertools
import json
import math

import cv2
import numpy as np
import pytest
from PIL import Image, ImageOps
from scipy import stats
from scipy.special import ndtr

from keypoint_corrupt.functional import imagenet_c, posebench
from keypoint_corrupt.functional.occlusion import keypoint_roi
from keypoint_corrupt.functional.posebench import NAMES, PARAMS

SEVERITIES = (1, 2, 3, 4, 5)
SHARED = (
    "motion_blur",
    "gaussian_noise",
    "impulse_noise",
    "pixelate",
    "jpeg_compression",
    "brightness",
    "contrast",
)
OWN = ("color_quant", "darkness", "mask")
RANDOM = ("motion_blur", "gaussian_noise", "impulse_noise", "darkness", "mask")


def _run(name, image, severity, rng=0, keypoints=None, visibility=None):
    if name == "mask":
        return posebench.mask(image, severity, rng, keypoints=keypoints, visibility=visibility)
    return posebench.CORRUPTIONS[name](image, severity, rng)


def _load_coco_people(fixtures_dir):
    """Each COCO fixture image with all its people's keypoints: (RGB uint8, (N, 2) xy, (N,) visible)."""
    coco_dir = fixtures_dir / "body" / "coco"
    coco = json.loads((coco_dir / "test_coco.json").read_text())
    out = []
    for im in coco["images"]:
        anns = [a for a in coco["annotations"] if a["image_id"] == im["id"]]
        kps = np.concatenate([np.asarray(a["keypoints"], np.float64).reshape(-1, 3) for a in anns])
        rgb = cv2.imread(str(coco_dir / im["file_name"]), cv2.IMREAD_COLOR)[..., ::-1].copy()
        out.append((rgb, kps[:, :2], kps[:, 2] > 0))
    return out


@pytest.fixture(scope="module")
def people(fixtures_dir):
    people = _load_coco_people(fixtures_dir)
    assert len(people) == 4 and all(vis.any() for _, _, vis in people)
    return people


@pytest.fixture(scope="module")
def small(people):
    """A real COCO frame at a third of its size (213x142), with its keypoints scaled alike."""
    rgb, kps, vis = people[0]
    h, w = rgb.shape[:2]
    sw, sh = round(w / 3), round(h / 3)
    return cv2.resize(rgb, (sw, sh), interpolation=cv2.INTER_AREA), kps * (sw / w, sh / h), vis


@pytest.fixture(scope="module")
def stb(fixtures_dir):
    return cv2.imread(str(fixtures_dir / "stb" / "SK_color_0.png"), cv2.IMREAD_COLOR)[..., ::-1].copy()


# --- Names and parameters ----------------------------------------------------------------------------


def test_names_groups_and_params_are_the_papers_table():
    assert NAMES == (
        "motion_blur",
        "gaussian_noise",
        "impulse_noise",
        "pixelate",
        "jpeg_compression",
        "color_quant",
        "brightness",
        "darkness",
        "contrast",
        "mask",
    )
    assert tuple(PARAMS) == NAMES and tuple(posebench.CORRUPTIONS) == NAMES
    assert all(len(PARAMS[name]) == 5 for name in NAMES)
    assert sum(posebench.GROUPS.values(), ()) == NAMES
    assert [len(g) for g in posebench.GROUPS.values()] == [3, 3, 3, 1]
    for name in SHARED:  # the same rows as ImageNet-C's, not copies that could drift
        assert PARAMS[name] is imagenet_c.PARAMS[name]
    assert PARAMS["color_quant"] == (5, 4, 3, 2, 1)


def test_own_rows_grow_stronger_with_severity():
    gammas, levels, photons, sigmas = zip(*PARAMS["darkness"], strict=True)
    assert set(gammas) == {2.0}
    assert all(a > b for a, b in itertools.pairwise(levels))
    assert all(a > b for a, b in itertools.pairwise(photons))
    assert all(a < b for a, b in itertools.pairwise(sigmas))
    counts, sides = zip(*PARAMS["mask"], strict=True)
    assert set(counts) == {5} and all(a < b for a, b in itertools.pairwise(sides))


# --- Every corruption at every severity on real images ------------------------------------------------


@pytest.mark.parametrize("severity", SEVERITIES)
@pytest.mark.parametrize("name", NAMES)
def test_each_corruption_and_severity_on_a_real_frame(name, severity, small):
    rgb, kps, vis = small
    before = rgb.copy()
    out = _run(name, rgb, severity, 3, kps, vis)
    assert out.shape == rgb.shape and out.dtype == np.uint8
    assert np.array_equal(rgb, before)  # input untouched
    assert not np.array_equal(out, rgb)  # something changed


@pytest.mark.parametrize("name", NAMES)
def test_stronger_severity_deviates_more(name, small):
    rgb, kps, vis = small
    ref = rgb.astype(np.float64)
    mad = [np.abs(_run(name, rgb, s, 11, kps, vis) - ref).mean() for s in SEVERITIES]
    assert all(a < b for a, b in itertools.pairwise(mad)), mad


@pytest.mark.parametrize("name", NAMES)
def test_full_size_hand_frame(name, stb):
    out = _run(name, stb, 3, 5, [[320, 240], [350, 260]])
    assert out.shape == (480, 640, 3) and out.dtype == np.uint8


@pytest.mark.parametrize("name", SHARED)
def test_shared_corruptions_are_imagenet_c_themselves(name):
    assert posebench.CORRUPTIONS[name] is getattr(imagenet_c, name)


# --- The image contract -----------------------------------------------------------------------------


def _layouts(rgb):
    grey = cv2.cvtColor(rgb, cv2.COLOR_RGB2GRAY)
    alpha = np.linspace(0, 255, rgb.shape[0] * rgb.shape[1]).reshape(rgb.shape[:2]).astype(np.uint8)
    return {
        "HxW": grey,
        "HxWx1": grey[:, :, None].copy(),
        "HxWx3": rgb,
        "HxWx4": np.dstack([rgb, alpha]),
    }


@pytest.mark.parametrize("dtype", [np.uint8, np.float32])
@pytest.mark.parametrize("layout", ["HxW", "HxWx1", "HxWx3", "HxWx4"])
@pytest.mark.parametrize("name", NAMES)
def test_dtypes_and_layouts(name, layout, dtype, small):
    rgb, kps, vis = small
    image = _layouts(rgb[:48, :64])[layout]
    if dtype == np.float32:
        image = (image / 255.0).astype(np.float32)
    before = image.copy()
    out = _run(name, image, 4, 1, kps[vis][:3].clip(0, 47), None)
    assert out.shape == image.shape and out.dtype == image.dtype
    assert np.array_equal(image, before)
    if dtype == np.float32:
        assert 0.0 <= out.min() and out.max() <= 1.0
    if layout == "HxWx4" and name != "mask":  # photometric corruptions pass alpha through
        assert np.array_equal(out[:, :, 3], image[:, :, 3])


@pytest.mark.parametrize("name", NAMES)
def test_deterministic_for_a_seed_and_driven_by_it(name, small):
    rgb, kps, vis = small
    first = _run(name, rgb, 3, 42, kps, vis)
    assert np.array_equal(first, _run(name, rgb, 3, 42, kps, vis))
    assert np.array_equal(first, _run(name, rgb, 3, np.random.default_rng(42), kps, vis))
    if name in RANDOM:
        assert not np.array_equal(first, _run(name, rgb, 3, 43, kps, vis))


@pytest.mark.parametrize("name", NAMES)
def test_bad_severity_and_rng_are_named(name, small):
    rgb = small[0][:16, :16]
    for bad in (0, 6, -1):
        with pytest.raises(ValueError, match=rf"severity must be in 1\.\.5, got {bad}"):
            _run(name, rgb, bad)
    for bad in (2.5, True, "3", None):
        with pytest.raises(TypeError, match="severity"):
            _run(name, rgb, bad)
    bad_sources = ("seed", 1.5) if name in SHARED else ("seed", 1.5, np.random.RandomState(0))
    for bad in bad_sources:
        with pytest.raises(TypeError, match="rng"):
            _run(name, rgb, 2, bad)
    with pytest.raises(ValueError, match="rng seed must be >= 0, got -3"):
        _run(name, rgb, 2, -3)


@pytest.mark.parametrize("name", NAMES)
def test_bad_image_is_named(name, small):
    rgb = small[0][:16, :16]
    with pytest.raises(TypeError, match=r"image must be a numpy\.ndarray"):
        _run(name, rgb.tolist(), 2)
    with pytest.raises(TypeError, match="image must have dtype uint8 or float32, got dtype float64"):
        _run(name, rgb / 255.0, 2)
    with pytest.raises(ValueError, match="float32 image must hold finite values in"):
        _run(name, np.full((8, 8, 3), 1.5, np.float32), 2)
    with pytest.raises(ValueError, match="image must have 1, 3 or 4 channels"):
        _run(name, np.zeros((8, 8, 2), np.uint8), 2)


# --- Colour quantisation --------------------------------------------------------------------------


@pytest.mark.parametrize("severity", SEVERITIES)
def test_color_quant_is_pil_posterize(severity, stb, small):
    bits = 6 - severity
    for rgb in (stb, small[0]):
        want = np.asarray(ImageOps.posterize(Image.fromarray(rgb), bits))
        assert np.array_equal(posebench.color_quant(rgb, severity), want)
    grey = cv2.cvtColor(small[0], cv2.COLOR_RGB2GRAY)
    want = np.asarray(ImageOps.posterize(Image.fromarray(grey), bits))
    assert np.array_equal(posebench.color_quant(grey, severity), want)


def test_color_quant_levels_and_float_input(small):
    values = np.arange(256, dtype=np.uint8).reshape(16, 16)
    for severity in SEVERITIES:
        step = 2 ** (severity + 2)
        out = posebench.color_quant(values, severity)
        assert np.array_equal(out, values // step * step)  # the formula: floor to a multiple of 2**(8 - bits)
        assert len(np.unique(out)) == 2 ** (6 - severity)
        # a float image quantises as the uint8 image it rounds to
        want = (out.astype(np.float32) / np.float32(255.0)).astype(np.float32)
        for offset in (0.0, -0.49, 0.49):
            as_float = (np.clip(values + offset, 0, 255) / 255.0).astype(np.float32)
            assert np.array_equal(posebench.color_quant(as_float, severity), want)
    rgb = small[0]
    assert np.array_equal(posebench.color_quant(rgb, 2), posebench.color_quant(rgb, 2, rng=99))


# --- Darkness -------------------------------------------------------------------------------------


def test_dark_level_formula(small):
    rgb = small[0]
    lo, hi = float(rgb.min()), float(rgb.max())
    want = ((rgb.astype(np.float64) - lo) / (hi - lo)) ** 2 * 0.6
    np.testing.assert_allclose(posebench._dark_level(rgb, 2.0, 0.6), want, rtol=0, atol=1e-12)
    as_float = rgb.astype(np.float32) / np.float32(255.0) * np.float32(255.0)
    np.testing.assert_allclose(posebench._dark_level(as_float, 2.0, 0.6), want, rtol=0, atol=1e-5)
    assert not posebench._dark_level(np.full((4, 4, 3), 77, np.uint8), 2.0, 0.6).any()  # constant: 0


def _exact_dark_moments(d, photons, sigma):
    """Mean and SD of trunc(255 * clip(clip(Poisson(d * photons) / photons, 0, 1) + N(0, sigma), 0, 1))."""
    lam = d * photons
    k = np.arange(int(lam + 15 * math.sqrt(lam) + 30))
    pk = stats.poisson.pmf(k, lam)
    shot = np.minimum(k / photons, 1.0)
    thresholds = np.arange(1, 256) / 255.0  # the output is >= j when the noisy value is >= j / 255
    at_least = 1.0 - ndtr((thresholds[None, :] - shot[:, None]) / sigma)
    j = np.arange(1, 256)
    mean = pk @ at_least.sum(axis=1)
    second = pk @ (at_least * (2 * j - 1)).sum(axis=1)
    return mean, math.sqrt(second - mean**2)


@pytest.mark.parametrize("severity", SEVERITIES)
def test_darkness_matches_its_distribution(severity):
    gamma, level, photons, sigma = PARAMS["darkness"][severity - 1]
    image = np.zeros((202, 300, 3), np.uint8)
    image[0, 0] = 0
    image[1, 1] = 255  # pins lo = 0 and hi = 255
    image[2:102] = 255
    image[102:] = 170
    out = posebench.darkness(image, severity, rng=severity).astype(np.float64)
    for rows, value in ((slice(2, 102), 255), (slice(102, None), 170)):
        samples = out[rows].ravel()
        mean, sd = _exact_dark_moments((value / 255.0) ** gamma * level, photons, sigma)
        assert abs(samples.mean() - mean) < 5 * sd / math.sqrt(samples.size) + 0.01, (samples.mean(), mean)
        assert abs(samples.std() - sd) < 0.03 * sd, (samples.std(), sd)


def test_darkness_float_input_is_the_untruncated_result():
    image = np.full((200, 300, 3), 200, np.uint8)
    image[0, 0], image[0, 1] = 0, 255
    as_uint8 = posebench.darkness(image, 2, rng=0).astype(np.float64)
    as_float = posebench.darkness((image / 255.0).astype(np.float32), 2, rng=1).astype(np.float64) * 255
    assert abs(as_float.mean() - (as_uint8.mean() + 0.5)) < 0.2  # uint8 truncation costs half a level


# --- Mask -----------------------------------------------------------------------------------------


def _usable(kps, vis, h, w):
    inside = (kps[:, 0] >= 0) & (kps[:, 0] < w) & (kps[:, 1] >= 0) & (kps[:, 1] < h)
    return vis & np.isfinite(kps).all(axis=1) & inside


def _side(box):
    return box[2] - box[0], box[3] - box[1]


@pytest.mark.parametrize("severity", SEVERITIES)
def test_mask_squares_sit_on_distinct_visible_keypoints(severity, people):
    count, side = PARAMS["mask"][severity - 1]
    for index, (rgb, kps, vis) in enumerate(people):
        h, w = rgb.shape[:2]
        usable = _usable(kps, vis, h, w)
        boxes = posebench.draw_mask(rgb.shape, severity, index, keypoints=kps, visibility=vis)
        assert len(boxes) == min(count, usable.sum())
        roi = keypoint_roi(kps, rgb.shape, visibility=usable)
        want_side = side * math.sqrt((roi[2] - roi[0]) * (roi[3] - roi[1]))
        chosen = []
        for box in boxes:
            mid = np.array([(box[0] + box[2]) / 2, (box[1] + box[3]) / 2])
            dist = np.linalg.norm(kps - mid, axis=1)
            dist[~usable] = np.inf
            nearest = int(np.argmin(dist))
            chosen.append(nearest)
            x, y = kps[nearest]
            assert box[0] <= x < box[2] + 1 and box[1] <= y < box[3] + 1  # the keypoint is covered
            clipped = box[0] == 0 or box[1] == 0 or box[2] == w or box[3] == h
            if not clipped:
                assert all(abs(s - want_side) <= 1.0 for s in _side(box)), (box, want_side)
        assert len(set(chosen)) == len(chosen)  # distinct keypoints


def test_mask_never_centres_on_hidden_or_outside_keypoints(fixture_hands):
    rng = np.random.default_rng(0)
    for _, rgb, kps, vis in fixture_hands:
        h, w = rgb.shape[:2]
        shown = vis & (rng.random(len(kps)) < 0.5)
        outside = kps + np.array([3 * w, 0])  # every keypoint's twin, far right of the image
        both = np.concatenate([kps, outside])
        both_vis = np.concatenate([shown, np.ones(len(kps), bool)])
        boxes = posebench.draw_mask(rgb.shape, 5, 1, keypoints=both, visibility=both_vis)
        if not _usable(kps, shown, h, w).any():
            assert len(boxes) == 5  # none usable: squares over the whole image
            continue
        targets = kps[_usable(kps, shown, h, w)]
        for box in boxes:
            mid = np.array([(box[0] + box[2]) / 2, (box[1] + box[3]) / 2])
            assert np.linalg.norm(targets - mid, axis=1).min() <= 1.0


def test_mask_without_usable_keypoints_covers_the_whole_image(people):
    rgb, kps, _ = people[1]
    h, w = rgb.shape[:2]
    for severity in SEVERITIES:
        count, side = PARAMS["mask"][severity - 1]
        plain = posebench.draw_mask(rgb.shape, severity, 7)
        assert len(plain) == count
        hidden = posebench.draw_mask(rgb.shape, severity, 7, keypoints=kps, visibility=np.zeros(len(kps)))
        outside = posebench.draw_mask(rgb.shape, severity, 7, keypoints=kps - np.array([10 * w, 0]))
        assert plain == hidden == outside  # documented: the same as no keypoints
        for box in plain:
            assert 0 <= box[0] < box[2] <= w and 0 <= box[1] < box[3] <= h
            if 0 < box[0] and box[2] < w and 0 < box[1] and box[3] < h:
                assert all(abs(s - side * math.sqrt(h * w)) <= 1.0 for s in _side(box))
    boxes = [b for seed in range(200) for b in posebench.draw_mask((90, 160), 1, seed)]
    mids = np.array([((b[0] + b[2]) / 2, (b[1] + b[3]) / 2) for b in boxes])
    assert stats.kstest(mids[:, 0] / 160, "uniform").pvalue > 1e-3  # uniform over the image
    assert stats.kstest(mids[:, 1] / 90, "uniform").pvalue > 1e-3


def test_mask_centres_are_shared_by_severities_and_squares_nest(people):
    rgb, kps, vis = people[2]
    by_severity = [posebench.draw_mask(rgb.shape, s, 5, keypoints=kps, visibility=vis) for s in SEVERITIES]
    for weaker, stronger in itertools.pairwise(by_severity):
        assert len(weaker) == len(stronger)
        for a, b in zip(weaker, stronger, strict=True):
            assert b[0] <= a[0] and b[1] <= a[1] and a[2] <= b[2] and a[3] <= b[3]
            assert _side(b)[0] * _side(b)[1] > _side(a)[0] * _side(a)[1]


def test_mask_is_draw_then_apply_and_paints_only_the_boxes(people):
    rgb, kps, vis = people[0]
    boxes = posebench.draw_mask(rgb.shape, 4, 9, keypoints=kps, visibility=vis)
    out = posebench.mask(rgb, 4, 9, keypoints=kps, visibility=vis)
    assert np.array_equal(out, posebench.apply_mask(rgb, boxes))
    inside = np.zeros(rgb.shape[:2], bool)
    for x0, y0, x1, y1 in boxes:
        inside[y0:y1, x0:x1] = True
    assert inside.any() and (out[inside] == 0).all()
    assert np.array_equal(out[~inside], rgb[~inside])
    grey = posebench.apply_mask(rgb, boxes, fill=(10, 20, 30))
    assert (grey[inside] == (10, 20, 30)).all()
    as_float = posebench.apply_mask((rgb / 255.0).astype(np.float32), boxes, fill=1.0)
    assert (as_float[inside] == 1.0).all() and as_float.dtype == np.float32


def test_single_keypoint_is_masked(small):
    rgb = small[0]
    for severity in SEVERITIES:
        (box,) = posebench.draw_mask(rgb.shape, severity, 0, keypoints=[[100.4, 60.7]])
        assert box[0] <= 100 < box[2] and box[1] <= 60 < box[3]


def test_mask_argument_errors(small):
    rgb = small[0]
    with pytest.raises(ValueError, match="visibility was given without keypoints"):
        posebench.mask(rgb, 2, 0, visibility=[True])
    with pytest.raises(ValueError, match="keypoints must have shape"):
        posebench.mask(rgb, 2, 0, keypoints=[1, 2, 3])
    with pytest.raises(ValueError, match="visibility must have shape"):
        posebench.mask(rgb, 2, 0, keypoints=[[1, 2]], visibility=[True, False])
    with pytest.raises(ValueError, match="image_shape must have positive height"):
        posebench.draw_mask((0, 10), 2, 0)
    for bad in [(-1, 0, 4, 4), (0, 0, 999, 4), (5, 0, 4, 4), (0.5, 0, 4, 4)]:
        with pytest.raises(ValueError, match="boxes must hold integer"):
            posebench.apply_mask(rgb, [bad])
    for bad in [(0, 0, 4), ("a", 0, 4, 4)]:
        with pytest.raises(TypeError, match="boxes must hold"):
            posebench.apply_mask(rgb, [bad])
    with pytest.raises(ValueError, match="fill must lie in"):
        posebench.apply_mask(rgb, [(0, 0, 4, 4)], fill=300)
