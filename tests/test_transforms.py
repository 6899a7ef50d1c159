"""The transforms inside albumentations pipelines: keypoints, visibility, seeding, the named configurations.

The per-class contract (serialisation, validation, dtype and shape, seeding, DataLoader
workers) runs over the definitions table in ``test_transform_contract.py``.
"""

from __future__ import annotations

import json
import sys
import zlib

import albumentations as A
import numpy as np
import pytest
from transform_definitions import row_for

import keypoint_corrupt as kc
from keypoint_corrupt import functional as F

KP_XY = A.KeypointParams(format="xy")


def _hand():
    rng = np.random.default_rng(0)
    img = rng.integers(0, 256, (240, 320, 3), dtype=np.uint8)
    kps = [(20.0, 30.0), (300.0, 200.0), (319.0, 239.0), (0.0, 0.0), (160.5, 120.25), (250.0, 40.0)]
    return img, kps


@pytest.mark.parametrize("name", kc.CONFIGS)
def test_no_transform_drops_moves_or_alters_a_keypoint(name):
    img, kps = _hand()
    # occlusion-30 with margin 0.15 covers keypoints; remove_invisible=True is the default.
    pipe = A.Compose([kc.make_corruption(name)], keypoint_params=KP_XY, seed=1)
    out = pipe(image=img, keypoints=kps)
    assert [tuple(k) for k in out["keypoints"]] == kps
    assert out["image"].shape == img.shape and out["image"].dtype == img.dtype
    assert not np.array_equal(out["image"], img)


@pytest.mark.parametrize("name", kc.CONFIGS)
def test_transform_equals_functional_core(name):
    img, kps = _hand()
    t = kc.make_corruption(name)
    t.set_random_seed(5)
    got = t(image=img, keypoints=kps)["image"]
    row = row_for(type(t))
    # blur and occlusion draw from the transform's generator (seed 5) exactly as the functional
    # core draws from default_rng(5); noise seeds from one draw of it plus a CRC of the image
    want = row.reference(t, img, keypoints=kps, rng=row.pipeline_rng(t, img, 5))
    np.testing.assert_array_equal(got, want)
    np.testing.assert_array_equal(t.corrupt(img, keypoints=kps, rng=9)[0], row.reference(t, img, kps, rng=9))


@pytest.mark.parametrize("var, mean", [(0.01, 0.0), (0.0025, 0.05)])
def test_gaussian_noise_in_a_pipeline_has_the_configured_distribution(var, mean):
    img = np.full((300, 400, 3), 128, np.uint8)
    out = A.Compose([kc.GaussianNoise(var=var, mean=mean)], seed=0)(image=img)["image"]
    noise = (out.astype(float) - 128) / 255  # no clipping this far from 0 and 255 (5 sigma)
    n = noise.size
    assert abs(noise.mean() - mean) < 5 * np.sqrt(var / n) + 0.5 / 255 / np.sqrt(12 * n)
    assert noise.var() == pytest.approx(var + 1 / 255**2 / 12, rel=0.02)  # + rounding to grey levels


@pytest.mark.parametrize("amount, svp, per_channel", [(0.05, 0.5, True), (0.2, 0.8, False)])
def test_salt_pepper_in_a_pipeline_has_the_configured_rates(amount, svp, per_channel):
    img = np.full((300, 400, 3), 128, np.uint8)
    t = kc.SaltPepperNoise(amount=amount, salt_vs_pepper=svp, per_channel=per_channel)
    out = A.Compose([t], seed=0)(image=img)["image"]
    hit = out != 128 if per_channel else (out != 128).all(axis=2)
    n = hit.size
    assert abs(hit.mean() - amount) < 5 * np.sqrt(amount * (1 - amount) / n)
    salt = (out == 255) if per_channel else (out == 255).all(axis=2)
    assert salt.sum() / hit.sum() == pytest.approx(svp, abs=0.02)
    assert set(np.unique(out)) <= {0, 128, 255}


def test_replay_reproduces_the_noise():
    img = np.full((32, 32, 3), 128, np.uint8)
    pipe = A.ReplayCompose([kc.GaussianNoise(), kc.SaltPepperNoise()])
    pipe.set_random_seed(4)
    first = pipe(image=img)
    again = A.ReplayCompose.replay(first["replay"], image=img)
    np.testing.assert_array_equal(first["image"], again["image"])
    # A replay saved as JSON (how one is kept on disk) reproduces the same noise.
    from_json = A.ReplayCompose.replay(json.loads(json.dumps(first["replay"])), image=img)
    np.testing.assert_array_equal(first["image"], from_json["image"])


def test_occlusion_uses_keypoints_after_geometric_transforms():
    img = np.full((100, 200, 3), 255, np.uint8)
    kps = [(10.0, 10.0), (40.0, 60.0)]  # left part of the image
    pipe = A.Compose([A.HorizontalFlip(p=1.0), kc.KeypointOcclusion(0.5)], keypoint_params=KP_XY, seed=0)
    out = pipe(image=img, keypoints=kps)
    _ys, xs = np.nonzero((out["image"] == 0).all(axis=2))
    flipped_roi = F.keypoint_roi([(200 - x, y) for x, y in kps], img.shape)  # albumentations flips x -> W - x
    cx = (xs.min() + xs.max() + 1) / 2
    assert flipped_roi[0] - 0.5 <= cx <= flipped_roi[2] + 0.5
    assert xs.min() > 100  # on the flipped (right) side


def test_occlusion_honours_a_visibility_label_field():
    img = np.full((200, 200, 3), 255, np.uint8)
    kps = [(120.0, 120.0), (180.0, 170.0), (0.0, 0.0)]  # COCO-style invisible at the origin
    vis = [2, 2, 0]
    labelled = A.Compose(
        [kc.KeypointOcclusion(1.0, margin=0.0, visibility_label="vis")],
        keypoint_params=A.KeypointParams(format="xy", label_fields=["cls", "vis"]),
        seed=0,
    )
    out = labelled(image=img, keypoints=kps, vis=vis, cls=[1, 2, 3])
    black = (out["image"] == 0).all(axis=2)
    ys, xs = np.nonzero(black)
    # area 1.0 of the visible ROI (120..180 x 120..170): side sqrt(60 * 50) = 54.8, not the
    # 175 px the invisible origin would give, centred inside the visible ROI
    assert black.sum() == 55 * 55
    assert 120 <= (xs.min() + xs.max() + 1) / 2 <= 180 and 120 <= (ys.min() + ys.max() + 1) / 2 <= 170
    assert list(out["vis"]) == vis and [tuple(k) for k in out["keypoints"]] == kps


def test_occlusion_visibility_keyword_outside_compose_and_missing_label():
    img = np.full((50, 50, 3), 255, np.uint8)
    t = kc.KeypointOcclusion(0.5, visibility_label="visible")
    out = t(image=img, keypoints=[(10, 10), (40, 40)], visible=[False, False])
    np.testing.assert_array_equal(out["image"], img)  # nothing visible: unchanged
    pipe = A.Compose([t], keypoint_params=KP_XY)
    with pytest.raises(ValueError, match="visibility_label='visible'"):
        pipe(image=img, keypoints=[(10, 10)])


def test_occlusion_without_keypoints_is_a_clear_error():
    with pytest.raises(ValueError, match="keypoints"):
        kc.KeypointOcclusion(0.2)(image=np.zeros((8, 8, 3), np.uint8))


def test_occlusion_leaves_image_unchanged_when_no_keypoint_is_visible():
    img = np.full((60, 60, 3), 9, np.uint8)
    pipe = A.Compose([kc.KeypointOcclusion(0.3)], keypoint_params=KP_XY)
    out = pipe(image=img, keypoints=[])
    np.testing.assert_array_equal(out["image"], img)


def test_same_seed_same_output_and_two_noise_transforms_draw_different_noise():
    img = np.full((120, 160, 3), 128, np.uint8)

    def run(seed, transforms):
        return A.Compose(transforms, seed=seed)(image=img)["image"]

    for make in (kc.GaussianNoise, kc.SaltPepperNoise):
        np.testing.assert_array_equal(run(3, [make()]), run(3, [make()]))
        assert not np.array_equal(run(3, [make()]), run(4, [make()]))
        once = run(3, [make()])
        twice = run(3, [make(), make()])
        # identical noise twice would leave the image equal to one pass (s&p) or correlated (gaussian)
        assert not np.array_equal(once, twice)
    noise1 = run(3, [kc.GaussianNoise(var=0.001)]).astype(int) - 128
    noise2 = run(3, [kc.GaussianNoise(var=0.001), kc.GaussianNoise(var=0.001)]).astype(int) - 128
    second = noise2 - noise1
    assert abs(np.corrcoef(noise1.ravel(), second.ravel())[0, 1]) < 0.05


def test_sampled_noise_differs_between_calls_of_one_pipeline():
    img = np.full((64, 64, 3), 128, np.uint8)
    pipe = A.Compose([kc.GaussianNoise()], seed=0)
    assert not np.array_equal(pipe(image=img)["image"], pipe(image=img)["image"])


def test_probability_p_is_honoured():
    img = np.full((16, 16, 3), 128, np.uint8)
    pipe = A.Compose([kc.DefocusBlur(3, p=0.0), kc.SaltPepperNoise(p=0.0)], seed=0)
    np.testing.assert_array_equal(pipe(image=img)["image"], img)


@pytest.mark.parametrize("name", kc.CONFIGS)
def test_configurations_accept_all_supported_layouts(name):
    for shape in [(32, 48), (32, 48, 1), (32, 48, 3), (32, 48, 4)]:
        for dtype in (np.uint8, np.float32):
            img = np.zeros(shape, dtype)
            t = kc.make_corruption(name)
            out = t(image=img, keypoints=[(5, 5), (40, 30)])["image"]
            assert out.shape == shape and out.dtype == dtype, (shape, dtype)


# --- torch DataLoader workers with the transforms used directly (issue #11) ---------------------

_WORKER_KPS = [(10.0, 8.0), (38.0, 26.0)]


class _ReadmeStyleDataset:
    """Identical images through one seeded pipeline held by the dataset, as the README shows."""

    def __init__(self, n: int = 6):
        self.pipeline = A.Compose(
            [kc.KeypointOcclusion(0.3), kc.GaussianNoise()], keypoint_params=KP_XY, seed=0
        )
        self.image = np.full((32, 48, 3), 128, np.uint8)
        self.n = n

    def __len__(self):
        return self.n

    def __getitem__(self, index):
        return self.pipeline(image=self.image, keypoints=_WORKER_KPS)["image"]


def _readme_style_stream(n):
    """The documented main-process stream of that pipeline, from the functional core."""
    image = np.full((32, 48, 3), 128, np.uint8)
    occ_gen, noise_gen = np.random.default_rng(0), np.random.default_rng(0)  # Compose(seed=0)
    outs = []
    for _ in range(n):
        occluded, _box = F.occlude(image, _WORKER_KPS, 0.3, rng=occ_gen)
        draw = int(noise_gen.integers(0, 2**63))
        crc = zlib.crc32(np.ascontiguousarray(occluded).data)
        seq = np.random.SeedSequence([draw, crc, zlib.crc32(b"noise-gaussian")])
        outs.append(F.gaussian_noise(occluded, var=0.01, rng=np.random.default_rng(seq)))
    return np.stack(outs)


def _occluder_mask(image):
    # fill 0 plus noise of sd 25.5 against 128 plus noise: the channel mean separates them
    return image.astype(float).mean(axis=-1) < 64


def test_dataloader_workers_draw_different_reproducible_streams():
    torch = pytest.importorskip("torch")
    n = 6

    def collect(workers):
        loader = torch.utils.data.DataLoader(_ReadmeStyleDataset(n), batch_size=1, num_workers=workers)
        return torch.cat(list(loader)).numpy()

    # num_workers=0: exactly the stream of the main process, as before
    np.testing.assert_array_equal(collect(0), _readme_style_stream(n))
    first, second = collect(2), collect(2)
    np.testing.assert_array_equal(first, second)  # same seed, same workers: same batches
    # batch_size=1: worker 0 yields items 0, 2, 4, worker 1 items 1, 3, 5
    for k in range(n // 2):
        a, b = first[2 * k], first[2 * k + 1]
        assert _occluder_mask(a).any() and _occluder_mask(b).any()
        assert not np.array_equal(_occluder_mask(a), _occluder_mask(b)), k  # occluder placement
        outside = ~_occluder_mask(a) & ~_occluder_mask(b)
        assert np.mean(a[outside] == b[outside]) < 0.2, k  # noise
    # and the workers left the main-process stream
    assert not np.array_equal(first[0], _readme_style_stream(1)[0])


def test_worker_context_needs_torch_already_loaded(monkeypatch):
    from keypoint_corrupt import transforms as T

    monkeypatch.delitem(sys.modules, "torch.utils.data", raising=False)
    assert T._worker_context() is None
    assert "torch.utils.data" not in sys.modules  # not imported by the check


def test_worker_reseed_rules(monkeypatch):
    # simulated workers (the real ones are exercised above): once per (pid, worker id)
    from keypoint_corrupt import transforms as T

    img, kps = np.full((40, 60), 100, np.uint8), [(10.0, 10.0), (50.0, 30.0)]

    def centres(t, n=3):
        return [
            t.get_params_dependent_on_data({"shape": img.shape}, {"keypoints": kps})["center"]
            for _ in range(n)
        ]

    def in_worker(worker_id):
        monkeypatch.setattr(T, "_worker_context", lambda: (12345, worker_id))

    main = kc.KeypointOcclusion(0.3)
    main.set_random_seed(0)
    expected_main = centres(main)
    streams = {}
    for worker_id in (0, 1):
        monkeypatch.setattr(T, "_worker_context", lambda: None)
        t = kc.KeypointOcclusion(0.3)
        t.set_random_seed(0)  # in the main process
        in_worker(worker_id)
        t(image=img, keypoints=kps)  # first call in the worker re-seeds
        streams[worker_id] = centres(t)
        gen = t.random_generator
        t(image=img, keypoints=kps)  # later calls do not
        assert t.random_generator is gen
    assert streams[0] != streams[1] and expected_main not in streams.values()
    # a seed set inside the worker is kept
    in_worker(0)
    t = kc.KeypointOcclusion(0.3)
    t.set_random_seed(0)
    t(image=img, keypoints=kps)
    assert centres(t, 2) == expected_main[1:]
    # p < 1 decisions (albumentations' Python generator) are re-seeded too
    monkeypatch.setattr(T, "_worker_context", lambda: None)
    decisions = {}
    for worker_id in (0, 1):
        t = kc.GaussianNoise(p=0.5)
        t.set_random_seed(0)
        in_worker(worker_id)
        t(image=img)
        decisions[worker_id] = [t.py_random.random() for _ in range(8)]
        monkeypatch.setattr(T, "_worker_context", lambda: None)
    assert decisions[0] != decisions[1]
