"""Score-map targets, hand3d's loss and decoding (argmax as hand3d, plus sub-pixel options)."""

from __future__ import annotations

import numpy as np
import pytest

torch = pytest.importorskip("torch")
F = torch.nn.functional

from keypoint_corrupt.models import (  # noqa: E402
    decode_score_maps,
    gaussian_score_maps,
    posenet_loss,
    upsample_score_maps,
)


def tf1_resize_bilinear(img: np.ndarray, out: int) -> np.ndarray:
    """TensorFlow 1 ``resize_bilinear`` (align_corners=False, no half-pixel centres), one 2D map."""
    n = img.shape[0]
    res = np.zeros((out, out))
    for y in range(out):
        for x in range(out):
            sy, sx = y * n / out, x * n / out
            y0, x0 = int(np.floor(sy)), int(np.floor(sx))
            y1, x1 = min(y0 + 1, n - 1), min(x0 + 1, n - 1)
            fy, fx = sy - y0, sx - x0
            top = img[y0, x0] * (1 - fx) + img[y0, x1] * fx
            bottom = img[y1, x0] * (1 - fx) + img[y1, x1] * fx
            res[y, x] = top * (1 - fy) + bottom * fy
    return res


def test_tf1_upsampling_matches_tensorflow_formula():
    maps = torch.randn(1, 2, 4, 4, dtype=torch.float64)
    up = upsample_score_maps(maps, 32)
    for j in range(2):
        np.testing.assert_allclose(up[0, j].numpy(), tf1_resize_bilinear(maps[0, j].numpy(), 32), atol=1e-12)


def test_half_pixel_upsampling_matches_interpolate():
    maps = torch.randn(2, 3, 8, 8)
    ref = F.interpolate(maps, size=(64, 64), mode="bilinear", align_corners=False)
    torch.testing.assert_close(upsample_score_maps(maps, 64, "half-pixel"), ref)


def test_gaussian_targets_are_hand3ds():
    kp = torch.tensor([[[100.7, 60.2], [-3.0, 10.0], [50.0, 50.0]]])
    vis = torch.tensor([[True, True, False]])
    t = gaussian_score_maps(kp, vis, 256, 25.0)
    assert t.shape == (1, 3, 256, 256)
    yy, xx = np.mgrid[0:256, 0:256]
    ref = np.exp(-((xx - 100) ** 2 + (yy - 60) ** 2) / 25.0**2)  # truncated coordinates, no factor 2
    np.testing.assert_allclose(t[0, 0].numpy(), ref, rtol=1e-5, atol=1e-7)
    assert t[0, 1].abs().sum() == 0  # outside the crop
    assert t[0, 2].abs().sum() == 0  # invisible
    small = gaussian_score_maps(kp[:, :1], vis[:, :1], 32, 25.0, stride=8.0)
    np.testing.assert_allclose(small[0, 0].numpy(), ref[::8, ::8], rtol=1e-5, atol=1e-7)


def test_posenet_loss_is_hand3ds_formula():
    torch.manual_seed(0)
    maps = [torch.rand(2, 3, 4, 4) for _ in range(3)]
    kp = torch.rand(2, 3, 2) * 30 + 1
    vis = torch.tensor([[1.0, 0.0, 1.0], [1.0, 1.0, 1.0]])
    target = gaussian_score_maps(kp, vis, 32, 4.0)
    expected = 0.0
    for m in maps:
        up = torch.from_numpy(
            np.stack(
                [[tf1_resize_bilinear(m[b, j].double().numpy(), 32) for j in range(3)] for b in range(2)]
            )
        )
        rmse = ((up - target.double()) ** 2).mean(dim=(-2, -1)).sqrt()
        expected += float((vis * rmse).sum() / (vis.sum() + 0.001))
    assert float(posenet_loss(maps, kp, vis, 32, 4.0)) == pytest.approx(expected, rel=1e-5)
    assert float(posenet_loss(maps, kp, vis, 32, 4.0, resolution="map")) > 0


def test_argmax_decoding_is_upsample_then_argmax():
    torch.manual_seed(1)
    maps = torch.rand(2, 21, 32, 32)
    coords, scores = decode_score_maps(maps)
    up = upsample_score_maps(maps, 256)
    flat = up.flatten(-2).argmax(-1)
    np.testing.assert_array_equal(coords[..., 0].numpy(), (flat % 256).numpy())
    np.testing.assert_array_equal(coords[..., 1].numpy(), (flat // 256).numpy())
    torch.testing.assert_close(scores, up.flatten(-2).amax(-1))


def test_quadratic_decoding_recovers_gaussian_peaks():
    rng = np.random.default_rng(0)
    kp = torch.from_numpy(rng.uniform(40, 216, (3, 21, 2))).float()
    vis = torch.ones(3, 21)
    # What a converged PoseNet outputs: hand3d's target sampled on its own 32 x 32 grid.
    maps = gaussian_score_maps(kp, vis, 32, 25.0, stride=8.0, quantize=False)
    sub, _ = decode_score_maps(maps, method="quadratic")
    coarse, _ = decode_score_maps(maps)
    err_sub = (sub - kp).norm(dim=-1)
    err_argmax = (coarse - kp).norm(dim=-1)
    assert err_sub.max() < 0.01
    assert err_argmax.mean() > 1.5  # argmax is stuck on the 8 px grid
    assert err_argmax.max() <= 4 * np.sqrt(2) + 1e-4


def test_half_pixel_alignment_shifts_cells_to_their_centres():
    maps = torch.zeros(1, 1, 32, 32)
    maps[0, 0, 3, 5] = 1.0
    tf1, _ = decode_score_maps(maps, method="quadratic")
    half, _ = decode_score_maps(maps, method="quadratic", align="half-pixel")
    assert tf1.tolist() == [[[40.0, 24.0]]]
    assert half.tolist() == [[[43.5, 27.5]]]


def test_bad_options_are_rejected():
    with pytest.raises(ValueError, match="method"):
        decode_score_maps(torch.zeros(1, 1, 4, 4), method="mean")
    with pytest.raises(ValueError, match="align"):
        upsample_score_maps(torch.zeros(1, 1, 4, 4), 8, align="corners")
