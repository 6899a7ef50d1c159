"""ImageNet-C noise, colour and digital corruptions: the reference, exact distributions, any size and layout.

Measured on x86-64 (NumPy 2, scikit-image 0.26, Pillow 13, OpenCV 5):

* Given a ``RandomState``, gaussian, shot and speckle noise are bit-exact with imagecorruptions
  1.1.2; brightness, saturate, contrast and pixelate (no randomness) are bit-exact; JPEG comes
  out identical too (OpenCV and Pillow write byte-identical files), held here to the issue's
  bound for JPEG, PSNR >= 40 dB.
* With a ``Generator`` the noises are exact samples of the reference distributions: checked
  against the exact per-level probabilities and against the reference's own histograms.
* impulse_noise draws from scikit-image's own generator in imagecorruptions, so only its
  distribution can match: hit rate, salt/pepper split and channel independence are checked
  against scikit-image and the reference with binomial tolerances.
"""

from __future__ import annotations

import io
from concurrent.futures import ThreadPoolExecutor

import numpy as np
import PIL
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra.numpy import arrays
from ic_images import fixture_rgb
from imagenet_c_oracle import reference, require_oracle
from PIL import Image
from scipy import stats
from skimage.color import hsv2rgb, rgb2hsv
from skimage.util import random_noise

from keypoint_corrupt.functional import imagenet_c as ic
from keypoint_corrupt.functional.imagenet_c import digital
from keypoint_corrupt.functional.imagenet_c.params import PARAMS

NOISES = ("gaussian_noise", "shot_noise", "impulse_noise", "speckle_noise")
DETERMINISTIC = ("brightness", "contrast", "saturate", "pixelate", "jpeg_compression")
ALL = NOISES + DETERMINISTIC
# Bit-exact with the reference (given a RandomState for the noises).
EXACT = ("gaussian_noise", "shot_noise", "speckle_noise", "brightness", "contrast", "saturate", "pixelate")
# Pillow 13 resizes images more than twice as tall as wide vertically first; earlier releases
# went horizontally first, which rounds differently (pixelate follows Pillow 13).
PILLOW_13 = int(PIL.__version__.split(".")[0]) >= 13


def _psnr(a: np.ndarray, b: np.ndarray) -> float:
    mse = np.mean((a.astype(np.float64) - b) ** 2)
    return float("inf") if mse == 0 else 10 * np.log10(255.0**2 / mse)


def _assert_agrees(name: str, ours: np.ndarray, ref: np.ndarray, exact: bool = True) -> None:
    assert ours.shape == ref.shape and ours.dtype == ref.dtype == np.uint8
    if name == "jpeg_compression":
        assert _psnr(ours, ref) >= 40.0
        return
    diff = np.abs(ours.astype(np.int16) - ref)
    assert np.mean(diff == 0) >= 0.99 and diff.max() <= 2
    if exact:
        np.testing.assert_array_equal(ours, ref)


def _oracle_case(name: str, image_name: str, severity: int) -> None:
    require_oracle()
    image = fixture_rgb(image_name)
    seed = 100 * severity + len(image_name)
    ours = getattr(ic, name)(image, severity, rng=np.random.RandomState(seed))
    exact = name in EXACT and (PILLOW_13 or image_name != "coco_tall")
    _assert_agrees(name, ours, reference(name, image, severity, seed), exact)


# ---------------------------------------------------------------------------------------------
# Agreement with imagecorruptions on real images


@pytest.mark.parametrize("severity", [1, 2, 3, 4, 5])
@pytest.mark.parametrize("image_name", ["rhd", "coco_224", "mpii_odd", "coco_tall", "coco_tiny"])
@pytest.mark.parametrize("name", [n for n in ALL if n != "impulse_noise"])
def test_matches_the_reference(name, image_name, severity):
    _oracle_case(name, image_name, severity)


@pytest.mark.parametrize("name", [n for n in ALL if n != "impulse_noise"])
def test_matches_the_reference_on_the_640x480_frame(name):
    _oracle_case(name, "stb", 3)


@pytest.mark.parametrize("name", ["brightness", "pixelate", "jpeg_compression", "speckle_noise"])
def test_matches_the_reference_on_a_1280x720_frame(name):
    _oracle_case(name, "mpii_hd", 5)


@pytest.mark.parametrize("name", [n for n in ALL if n != "impulse_noise"])
def test_grey_input_is_corrupted_as_its_rgb_stack_like_the_reference(name):
    require_oracle()
    grey = np.ascontiguousarray(fixture_rgb("mpii_odd")[:, :, 1])
    ours = getattr(ic, name)(grey, 4, rng=np.random.RandomState(5))
    assert ours.shape == grey.shape
    _assert_agrees(name, ours, reference(name, grey, 4, 5)[:, :, 0], name in EXACT)


def test_brightness_of_grey_is_the_plain_shift():
    # imagecorruptions' own grey branch (x + c) is never reached through corrupt(); the HSV
    # round trip of a grey RGB stack gives the same values.
    grey = np.arange(256, dtype=np.uint8).reshape(16, 16)
    for severity in range(1, 6):
        shift = PARAMS["brightness"][severity - 1]
        expected = (np.clip(grey / 255.0 + shift, 0, 1) * 255).astype(np.uint8)
        np.testing.assert_array_equal(ic.brightness(grey, severity), expected)


@pytest.mark.parametrize("shape", [(32, 32, 3), (40, 48, 3), (33, 97, 3)])
def test_contrast_of_flat_images_is_bit_exact_too(shape):
    # A flat image puts table entries exactly on integers, where the reference's float64 mean
    # (with its summation error) decides the truncation: ours must follow it there as well.
    require_oracle()
    for value in range(256):
        flat = np.full(shape, value, np.uint8)
        for severity in range(1, 6):
            expected = reference("contrast", np.ascontiguousarray(flat), severity, 0)
            np.testing.assert_array_equal(
                ic.contrast(flat, severity), expected, err_msg=f"{value} {severity}"
            )


# ---------------------------------------------------------------------------------------------
# Colour: the HSV round trip is scikit-image's, value for value


def _skimage_hsv(image: np.ndarray, name: str, severity: int) -> np.ndarray:
    hsv = rgb2hsv(image / 255.0)
    if name == "brightness":
        hsv[..., 2] = np.clip(hsv[..., 2] + PARAMS["brightness"][severity - 1], 0, 1)
    else:
        factor, offset = PARAMS["saturate"][severity - 1]
        hsv[..., 1] = np.clip(hsv[..., 1] * factor + offset, 0, 1)
    return (np.clip(hsv2rgb(hsv), 0, 1) * 255).astype(np.uint8)


@settings(max_examples=60, deadline=None)
@given(
    pixels=arrays(np.uint8, st.tuples(st.integers(1, 12), st.integers(1, 12), st.just(3))),
    few=st.booleans(),
    name=st.sampled_from(["brightness", "saturate"]),
    severity=st.integers(1, 5),
)
def test_hsv_corruptions_are_skimages_round_trip(pixels, few, name, severity):
    if few:  # a small alphabet makes ties between channels (and greys) common
        pixels = (pixels % 3) * 127
    ours = getattr(ic, name)(pixels, severity)
    np.testing.assert_array_equal(ours, _skimage_hsv(pixels, name, severity))


def test_hsv_corruptions_cover_every_hue_sector_on_a_colour_wheel():
    hue = np.linspace(0, 1, 720, endpoint=False)
    wheel = (hsv2rgb(np.stack([hue, np.full(720, 0.8), np.full(720, 0.9)], axis=1)[None]) * 255).astype(
        np.uint8
    )
    for name in ("brightness", "saturate"):
        for severity in (1, 3, 5):
            np.testing.assert_array_equal(
                getattr(ic, name)(wheel, severity), _skimage_hsv(wheel, name, severity)
            )


# ---------------------------------------------------------------------------------------------
# Digital: Pillow's resampling and libjpeg, reproduced through NumPy and OpenCV


def _pillow_pixelate(image: np.ndarray, severity: int) -> np.ndarray:
    factor = PARAMS["pixelate"][severity - 1]
    height, width = image.shape[:2]
    small = Image.fromarray(image).resize((int(width * factor), int(height * factor)), Image.BOX)
    return np.asarray(small.resize((width, height), Image.NEAREST))


@settings(max_examples=60, deadline=None)
@given(
    height=st.integers(4, 90), width=st.integers(4, 90), severity=st.integers(1, 5), seed=st.integers(0, 99)
)
def test_pixelate_is_pillows_box_then_nearest(height, width, severity, seed):
    if not PILLOW_13 and height > 2 * width:
        pytest.skip("Pillow < 13 resizes tall images in the other order")
    image = np.random.default_rng(seed).integers(0, 256, (height, width, 3), dtype=np.uint8)
    np.testing.assert_array_equal(ic.pixelate(image, severity), _pillow_pixelate(image, severity))


def test_pixelate_follows_pillows_pass_order_on_tall_images():
    # Here the two pass orders disagree on about 10% of the values; Pillow 13 goes vertical first.
    tall = fixture_rgb("coco_tall")
    if PILLOW_13:
        np.testing.assert_array_equal(ic.pixelate(tall, 2), _pillow_pixelate(tall, 2))
    wide = np.ascontiguousarray(tall.transpose(1, 0, 2))
    np.testing.assert_array_equal(ic.pixelate(wide, 2), _pillow_pixelate(wide, 2))


def _pillow_pixelate_float(image: np.ndarray, severity: int) -> np.ndarray:
    """Pillow's BOX then NEAREST on each channel as a float32 ("F") image: float weights, no rounding."""
    factor = PARAMS["pixelate"][severity - 1]
    height, width = image.shape[:2]
    channels = []
    for channel in np.moveaxis(image, 2, 0):
        small = Image.fromarray(np.ascontiguousarray(channel)).resize(
            (int(width * factor), int(height * factor)), Image.BOX
        )
        channels.append(np.asarray(small.resize((width, height), Image.NEAREST)))
    return np.stack(channels, axis=2)


@pytest.mark.parametrize("image_name", ["mpii_odd", "coco_tall"])
def test_float_pixelate_is_pillows_float_box_then_nearest(image_name):
    # Pillow's float mode weighs each input 1/n in float64; ours divides a float32 sum by n.
    image = (fixture_rgb(image_name) / 255.0).astype(np.float32)
    for severity in range(1, 6):
        np.testing.assert_allclose(
            ic.pixelate(image, severity), _pillow_pixelate_float(image, severity), rtol=0, atol=1e-6
        )


def test_pixelate_work_arrays_carry_nothing_from_one_call_to_the_next(monkeypatch):
    # The passes run in work arrays kept per thread between calls. A smaller, taller, float or
    # grey image after a larger one must not see what the larger one left behind; with no
    # array kept (as for images past the size limit) every result must be the same.
    calls = [("stb", 1), ("coco_tiny", 5), ("coco_tall", 2), ("rhd", 4), ("mpii_odd", 3), ("stb_224", 2)]
    kept = []
    for image_name, severity in calls:
        image = fixture_rgb(image_name)
        out = ic.pixelate(image, severity)
        if PILLOW_13 or image_name != "coco_tall":
            np.testing.assert_array_equal(out, _pillow_pixelate(image, severity))
        as_float = (image / 255.0).astype(np.float32)
        kept.append((out, ic.pixelate(as_float, severity), ic.pixelate(image[:, :, 1], severity)))
    monkeypatch.setattr(digital, "_SCRATCH_MAX_BYTES", 0)
    for (image_name, severity), (out, out_float, out_grey) in zip(calls, kept, strict=True):
        image = fixture_rgb(image_name)
        np.testing.assert_array_equal(ic.pixelate(image, severity), out)
        np.testing.assert_array_equal(ic.pixelate((image / 255.0).astype(np.float32), severity), out_float)
        np.testing.assert_array_equal(ic.pixelate(image[:, :, 1], severity), out_grey)


def test_pixelate_gives_the_same_images_from_many_threads():
    # The work arrays are per thread and the compiled loop releases the GIL: threads running
    # at once must not write into each other's arrays.
    jobs = [
        (fixture_rgb(name), severity)
        for name in ("stb", "coco_tall", "mpii_odd", "rhd")
        for severity in (1, 3, 5)
    ]
    expected = [ic.pixelate(image, severity) for image, severity in jobs]
    with ThreadPoolExecutor(max_workers=4) as pool:
        for _ in range(20):
            results = list(pool.map(lambda job: ic.pixelate(*job), jobs))
            for got, want in zip(results, expected, strict=True):
                np.testing.assert_array_equal(got, want)


def test_pixelate_of_images_too_small_to_shrink_keeps_one_pixel():
    out = ic.pixelate(np.arange(6, dtype=np.uint8).reshape(2, 3), 5)  # 0.25 * 2 -> 0 rows: keep 1
    assert out.shape == (2, 3) and len(np.unique(out)) == 1
    np.testing.assert_array_equal(ic.pixelate(np.full((1, 1), 9, np.uint8), 1), [[9]])


@settings(max_examples=25, deadline=None)
@given(
    height=st.integers(1, 70), width=st.integers(1, 70), severity=st.integers(1, 5), seed=st.integers(0, 99)
)
def test_jpeg_is_pillows_jpeg(height, width, severity, seed):
    image = np.random.default_rng(seed).integers(0, 256, (height, width, 3), dtype=np.uint8)
    buffer = io.BytesIO()
    Image.fromarray(image).save(buffer, "JPEG", quality=PARAMS["jpeg_compression"][severity - 1])
    pillow = np.asarray(Image.open(buffer).convert("RGB"))
    ours = ic.jpeg_compression(image, severity)
    assert ours.shape == image.shape and _psnr(ours, pillow) >= 40.0


# ---------------------------------------------------------------------------------------------
# Noise with a Generator: exact distributions


def _pmf(name: str, level: int, severity: int) -> np.ndarray:
    """P(output = k), k = 0..255, for input ``level`` under imagecorruptions' formula."""
    c = PARAMS[name][severity - 1]
    k = np.arange(256.0)
    if name == "gaussian_noise":  # np.uint8(clip(v/255 + N(0, c), 0, 1) * 255) = clip(v + floor(255 n))
        below = stats.norm.cdf((k + 1 - level) / (255 * c))  # P(out <= k)
    elif name == "speckle_noise":  # floor(v * (1 + N(0, c))), clipped
        below = stats.norm.cdf(((k + 1) / max(level, 1) - 1) / c) if level else np.ones(256)
    else:  # shot: np.uint8(clip(Poisson(v/255 * c) / c, 0, 1) * 255)
        counts = np.arange(c + 1)
        outcome = (np.clip(counts / float(c), 0, 1) * 255).astype(np.uint8)
        probability = stats.poisson.pmf(counts, level / 255.0 * c)
        probability[-1] = stats.poisson.sf(c - 1, level / 255.0 * c)  # everything from c photons on
        return np.bincount(outcome, weights=probability, minlength=256)
    below[-1] = 1.0
    return np.diff(below, prepend=0.0)


def _chi_square_p(counts: np.ndarray, expected: np.ndarray) -> float:
    keep = expected >= 20  # pool sparse cells so the chi-square approximation holds
    observed = np.append(counts[keep], counts[~keep].sum())
    wanted = np.append(expected[keep], expected[~keep].sum())
    if wanted[-1] == 0:
        assert observed[-1] == 0
        observed, wanted = observed[:-1], wanted[:-1]
    if observed.size < 2:
        return 1.0
    return float(stats.chisquare(observed, wanted * observed.sum() / wanted.sum()).pvalue)


@pytest.mark.parametrize("severity", [1, 3, 5])
@pytest.mark.parametrize("name", ["gaussian_noise", "shot_noise", "speckle_noise"])
def test_generator_noise_follows_the_exact_distribution(name, severity):
    levels = np.array([0, 1, 3, 40, 128, 200, 254, 255], np.uint8)
    image = np.ascontiguousarray(np.broadcast_to(levels[None, :, None], (20_000, levels.size, 3)))
    out = getattr(ic, name)(image, severity, rng=11)
    for column, level in enumerate(levels):
        drawn = out[:, column]
        counts = np.bincount(drawn.ravel(), minlength=256)
        assert _chi_square_p(counts, _pmf(name, int(level), severity) * drawn.size) > 1e-4, level


@pytest.mark.parametrize("severity", [2, 5])
@pytest.mark.parametrize("name", ["gaussian_noise", "shot_noise", "speckle_noise"])
def test_generator_noise_matches_the_references_histograms(name, severity):
    require_oracle()
    ramp = np.ascontiguousarray(np.broadcast_to(np.arange(256, dtype=np.uint8)[None, :, None], (300, 256, 3)))
    ours = getattr(ic, name)(ramp, severity, rng=21)
    ref = reference(name, ramp, severity, 22)
    for level in (2, 60, 128, 230, 255):
        table = np.array([np.bincount(a[:, level].ravel(), minlength=256) for a in (ours, ref)])
        table = table[:, table.sum(axis=0) > 0]
        if table.shape[1] > 1:
            assert stats.chi2_contingency(table).pvalue > 1e-4, level


# ---------------------------------------------------------------------------------------------
# Impulse noise: the distribution of scikit-image's s&p, whatever the random source


def _binomial_close(hits: int, n: int, p: float) -> bool:
    return abs(hits - n * p) <= 5 * np.sqrt(n * p * (1 - p)) + 1


def _impulse_stats(noisy: np.ndarray, clean: np.ndarray) -> tuple[int, int, int, int]:
    """(values hit, salt among them, pixels with all three channels hit, values)."""
    hit = noisy != clean
    salt = (noisy == 255) & hit
    return int(hit.sum()), int(salt.sum()), int(hit.all(axis=2).sum()), hit.size


@pytest.mark.parametrize("severity", [1, 2, 3, 4, 5])
@pytest.mark.parametrize("rng", [5, np.random.RandomState(5)], ids=["generator", "randomstate"])
def test_impulse_noise_hits_values_independently_half_salt(severity, rng):
    clean = np.full((400, 500, 3), 100, np.uint8)  # no value is 0 or 255 already
    amount = PARAMS["impulse_noise"][severity - 1]
    noisy = ic.impulse_noise(clean, severity, rng=rng)
    assert set(np.unique(noisy).tolist()) <= {0, 100, 255}
    hit, salt, all_three, n = _impulse_stats(noisy, clean)
    assert _binomial_close(hit, n, amount)
    assert _binomial_close(salt, hit, 0.5)
    assert _binomial_close(all_three, n // 3, amount**3)  # channels are hit independently


@pytest.mark.parametrize("severity", [1, 5])
def test_impulse_noise_matches_skimage_and_the_reference(severity):
    require_oracle()
    clean = np.full((300, 400, 3), 100, np.uint8)
    amount = PARAMS["impulse_noise"][severity - 1]
    ours = _impulse_stats(ic.impulse_noise(clean, severity, rng=3), clean)
    skimage = random_noise(clean / 255.0, mode="s&p", amount=amount, rng=4)
    others = [
        _impulse_stats(np.uint8(skimage * 255), clean),
        _impulse_stats(reference("impulse_noise", clean, severity, 5), clean),
    ]
    for other in others:
        for mine, theirs, base in ((ours[0], other[0], ours[3]), (ours[1], other[1], ours[0])):
            pooled = (mine + theirs) / (2 * base)
            z = (mine - theirs) / np.sqrt(2 * base * pooled * (1 - pooled))
            assert abs(z) < 5


def test_impulse_noise_on_float_images_sets_full_scale_and_zero():
    clean = np.full((200, 300, 3), 0.4, np.float32)
    noisy = ic.impulse_noise(clean, 4, rng=8)
    assert set(np.unique(noisy).tolist()) <= {0.0, np.float32(0.4), 1.0}
    hit, salt, _, n = _impulse_stats(
        (noisy * 255).round().astype(np.uint8), np.full(clean.shape, 102, np.uint8)
    )
    assert _binomial_close(hit, n, PARAMS["impulse_noise"][3]) and _binomial_close(salt, hit, 0.5)


def test_impulse_noise_with_a_random_state_is_reproducible_and_advances_it():
    clean = fixture_rgb("coco_tiny")
    np.testing.assert_array_equal(
        ic.impulse_noise(clean, 3, rng=np.random.RandomState(4)),
        ic.impulse_noise(clean, 3, rng=np.random.RandomState(4)),
    )
    state = np.random.RandomState(4)
    assert not np.array_equal(ic.impulse_noise(clean, 3, rng=state), ic.impulse_noise(clean, 3, rng=state))


# ---------------------------------------------------------------------------------------------
# Float input: the same formulas without quantisation


@pytest.mark.parametrize("name", ["gaussian_noise", "speckle_noise", *DETERMINISTIC[:4]])
def test_float_input_is_the_uint8_result_without_truncation(name):
    image = fixture_rgb("stb_224")
    as_float = (image / 255.0).astype(np.float32)
    for severity in (1, 5):
        u8 = getattr(ic, name)(image, severity, rng=np.random.RandomState(2)).astype(np.float64)
        fl = getattr(ic, name)(as_float, severity, rng=np.random.RandomState(2)).astype(np.float64) * 255
        gap = fl - u8
        if name == "pixelate":  # Pillow rounds after each of its two passes; the float path does not
            assert np.abs(gap).max() < 1 + 1e-3 and np.abs(gap).mean() > 0.05
        else:  # the uint8 result truncates the same value
            assert gap.min() > -1e-3 and gap.max() < 1 + 1e-3
            assert severity == 5 or gap.mean() > 0.1  # (saturate 5 gives mostly whole levels)


def test_float_jpeg_is_the_jpeg_of_the_nearest_levels():
    image = fixture_rgb("coco_224")
    as_float = (image / 255.0).astype(np.float32)
    for severity in (1, 5):
        np.testing.assert_array_equal(
            np.round(ic.jpeg_compression(as_float, severity) * 255).astype(np.uint8),
            ic.jpeg_compression(image, severity),
        )


@pytest.mark.parametrize("name", ["gaussian_noise", "shot_noise", "impulse_noise", "speckle_noise"])
def test_float_generator_noise_has_the_uint8_statistics(name):
    image = np.full((300, 300, 3), 90, np.uint8)
    u8 = getattr(ic, name)(image, 3, rng=1).astype(np.float64)
    fl = getattr(ic, name)((image / 255.0).astype(np.float32), 3, rng=2).astype(np.float64) * 255
    assert abs(u8.mean() - fl.mean()) < 1.0  # uint8 truncates: up to a level lower
    assert abs(u8.std() - fl.std()) < 0.02 * fl.std() + 0.5


# ---------------------------------------------------------------------------------------------
# Any size and layout (the contract of every corruption: test_contract.py)


@settings(max_examples=30, deadline=None)
@given(
    height=st.integers(1, 40),
    width=st.integers(1, 40),
    channels=st.sampled_from([0, 1, 3, 4]),
    floating=st.booleans(),
    name=st.sampled_from(ALL),
    severity=st.integers(1, 5),
)
def test_any_size_and_layout_gives_a_valid_image(height, width, channels, floating, name, severity):
    shape = (height, width) if channels == 0 else (height, width, channels)
    image = np.random.default_rng(height * width).integers(0, 256, shape).astype(np.uint8)
    if floating:
        image = (image / 255.0).astype(np.float32)
    out = getattr(ic, name)(image, severity, rng=0)
    assert out.shape == image.shape and out.dtype == image.dtype
    assert np.isfinite(out).all() and out.min() >= 0 and out.max() <= (1.0 if floating else 255)
