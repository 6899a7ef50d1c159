"""CorruptedDataset: the S-train* / S-val* plans, per-item determinism and user transforms."""

from __future__ import annotations

import albumentations as A
import numpy as np
import pytest

from keypoint_corrupt import CONFIGS, apply_corruption
from keypoint_corrupt.datasets import (
    STB,
    CorruptedDataset,
    load_image,
    sample_rng,
    select_subset,
)


@pytest.fixture(scope="module")
def val(bundled_root):
    return STB(bundled_root, "val")


@pytest.fixture(scope="module")
def train(bundled_root):
    return STB(bundled_root, "train")


def test_subset_mode_is_s_val_star(val):
    ds = CorruptedDataset(val)
    assert len(ds) == len(CONFIGS) * round(0.2 * len(val))
    for cfg in CONFIGS:
        picked = [val.ids[e.base_index] for e in ds.plan if e.config == cfg]
        assert picked == select_subset(val.ids, cfg, 0.2, 0)
        assert ds.selections[cfg] == tuple(val.ids.index(i) for i in picked)
    assert [e.config for e in ds.plan] == [c for c in CONFIGS for _ in range(2)]  # config after config


def test_append_mode_is_s_train_star(train):
    ds = CorruptedDataset(train, fraction=0.5, seed=3, mode="append")
    assert len(ds) == len(train) + len(CONFIGS) * 20
    assert ds.plan[: len(train)] == tuple((i, "clean") for i in range(len(train)))
    assert {e.config for e in ds.plan[len(train) :]} == set(CONFIGS)


def test_replace_mode(train):
    ds = CorruptedDataset(train, "motion-30", mode="replace")
    assert len(ds) == len(train)
    assert [e.base_index for e in ds.plan] == list(range(len(train)))
    corrupted = [i for i, e in enumerate(ds.plan) if e.config == "motion-30"]
    assert len(corrupted) == 8 and tuple(corrupted) == ds.selections["motion-30"]
    assert {e.config for e in ds.plan} == {"clean", "motion-30"}


def test_item_contents(val):
    ds = CorruptedDataset(val, ["noise-gaussian", "occlusion-30"], mode="append")
    clean = ds[0]
    assert set(clean) == {
        "image",
        "keypoints",
        "visibility",
        "id",
        "config",
        "base_index",
        "box",
        "target_instance",
    }
    assert clean["target_instance"] == -1  # an STB frame is one hand: nothing to choose
    assert clean["image"].dtype == np.uint8 and clean["image"].shape == (480, 640, 3)
    assert clean["keypoints"].dtype == np.float32 and clean["keypoints"].shape == (21, 2)
    assert clean["visibility"].dtype == bool and clean["visibility"].shape == (21,)
    assert clean["config"] == "clean" and clean["id"] == val.ids[0]
    assert clean["box"].tolist() == [-1, -1, -1, -1]
    np.testing.assert_array_equal(clean["image"], load_image(val[0]))
    np.testing.assert_allclose(clean["keypoints"], val[0].keypoints, atol=1e-4)
    for i, entry in enumerate(ds.plan[len(val) :], start=len(val)):
        item = ds[i]
        sample = val[entry.base_index]
        expected, info = apply_corruption(
            entry.config,
            load_image(sample),
            sample.keypoints,
            visibility=sample.visibility,
            rng=sample_rng(0, sample.id, entry.config),
        )
        np.testing.assert_array_equal(item["image"], expected)
        assert item["config"] == entry.config and item["id"] == sample.id
        if entry.config == "occlusion-30":
            x0, y0, x1, y1 = item["box"]
            assert (x0, y0, x1, y1) == info["box"] and (item["image"][y0:y1, x0:x1] == 0).all()


def test_items_are_reproducible_and_noise_differs_between_images(val):
    ds = CorruptedDataset(val, "noise-gaussian", fraction=1.0)
    a, b = ds[0], ds[1]
    np.testing.assert_array_equal(
        a["image"], CorruptedDataset(val, "noise-gaussian", fraction=1.0)[0]["image"]
    )
    na = a["image"].astype(int) - load_image(val[0]).astype(int)
    nb = b["image"].astype(int) - load_image(val[1]).astype(int)
    assert np.abs(na).mean() > 5 and np.abs(nb).mean() > 5
    assert np.mean(na == nb) < 0.2  # independent noise, not the same pattern


def test_occlusion_sizes_share_the_centre(val):
    ds = CorruptedDataset(val, ["occlusion-10", "occlusion-20", "occlusion-30"], fraction=1.0)
    for base_index, entries in ds.group_by_source().items():
        items = ds.render(base_index)
        boxes = [items[c]["box"] for _, c in entries]
        centres = [((x0 + x1) / 2, (y0 + y1) / 2) for x0, y0, x1, y1 in boxes]
        for c in centres[1:]:
            assert np.allclose(c, centres[0], atol=1.0)
        areas = [(x1 - x0) * (y1 - y0) for x0, y0, x1, y1 in boxes]
        assert areas[0] < areas[1] < areas[2]


def test_render_matches_getitem(val):
    ds = CorruptedDataset(val, mode="append", fraction=0.5)
    groups = ds.group_by_source()
    assert list(groups) == sorted(groups) and sum(len(v) for v in groups.values()) == len(ds)
    base_index = max(groups, key=lambda k: len(groups[k]))
    rendered = ds.render(base_index)
    assert set(rendered) == {c for _, c in groups[base_index]}
    for pos, config in groups[base_index]:
        item = ds[pos]
        np.testing.assert_array_equal(rendered[config]["image"], item["image"])
        np.testing.assert_array_equal(rendered[config]["box"], item["box"])
    assert set(ds.render(0, ["clean", "motion-45"])) == {"clean", "motion-45"}


# -- transforms -----------------------------------------------------------------------------


def test_albumentations_transform_runs_after_corruption(val):
    flip = A.Compose(
        [A.HorizontalFlip(p=1.0)], keypoint_params=A.KeypointParams(format="xy", remove_invisible=False)
    )
    plain = CorruptedDataset(val, "occlusion-20", fraction=1.0)
    flipped = CorruptedDataset(val, "occlusion-20", fraction=1.0, transform=flip)
    a, b = plain[0], flipped[0]
    np.testing.assert_array_equal(b["image"], a["image"][:, ::-1])  # occluded first, then flipped
    # albumentations 2.0.8 flips pixel centres: x -> W - 1 - x
    np.testing.assert_allclose(b["keypoints"][:, 0], 639 - a["keypoints"][:, 0], atol=1e-3)
    np.testing.assert_array_equal(b["box"], a["box"])  # the box is in untransformed coordinates


def test_transform_is_seeded_per_item(val):
    def make():
        return A.Compose(
            [A.Affine(translate_px=(-40, 40), rotate=(-30, 30), p=1.0), A.GaussNoise(p=1.0)],
            keypoint_params=A.KeypointParams(format="xy", remove_invisible=False, label_fields=["vis"]),
        )

    one, two = (CorruptedDataset(val, "defocus-7", fraction=1.0, transform=make()) for _ in range(2))
    for i in (3, 0, 3):
        np.testing.assert_array_equal(one[i]["image"], two[i]["image"])
        np.testing.assert_array_equal(one[i]["keypoints"], two[i]["keypoints"])
    assert not np.array_equal(one[0]["keypoints"] - val[0].keypoints, one[1]["keypoints"] - val[1].keypoints)


def test_keypoints_leaving_the_image_become_invisible(val):
    shift = A.Compose(
        [A.Affine(translate_px={"x": 400, "y": 0}, p=1.0)],
        keypoint_params=A.KeypointParams(format="xy", remove_invisible=False),
    )
    item = CorruptedDataset(val, "defocus-7", fraction=1.0, transform=shift)[0]
    assert item["keypoints"].shape == (21, 2)
    outside = item["keypoints"][:, 0] >= 640
    assert outside.any()
    np.testing.assert_array_equal(item["visibility"], ~outside)


def test_refuses_pipelines_that_drop_keypoints(val):
    with pytest.raises(ValueError, match="remove_invisible=False"):
        CorruptedDataset(
            val, transform=A.Compose([A.HorizontalFlip()], keypoint_params=A.KeypointParams("xy"))
        )
    with pytest.raises(ValueError, match="no keypoint_params"):
        CorruptedDataset(val, transform=A.Compose([A.HorizontalFlip()]))
    with pytest.raises(ValueError, match="format must be 'xy'"):
        CorruptedDataset(
            val,
            transform=A.Compose(
                [A.HorizontalFlip()], keypoint_params=A.KeypointParams("yx", remove_invisible=False)
            ),
        )
    with pytest.raises(TypeError, match="callable"):
        CorruptedDataset(val, transform=42)


def test_single_transform_and_callable(val):
    item = CorruptedDataset(val, "motion-15", fraction=1.0, transform=A.HorizontalFlip(p=1.0))[0]
    np.testing.assert_allclose(item["keypoints"][:, 0], 639 - val[0].keypoints[:, 0], atol=1e-3)

    def scale_down(image, keypoints, visibility):
        return {"image": image[::2, ::2], "keypoints": keypoints / 2}

    item = CorruptedDataset(val, "motion-15", fraction=1.0, transform=scale_down)[0]
    assert item["image"].shape == (240, 320, 3)
    np.testing.assert_allclose(item["keypoints"], val[0].keypoints / 2, atol=1e-4)

    def drops(image, keypoints, visibility):
        return {"image": image, "keypoints": keypoints[:-1]}

    with pytest.raises(RuntimeError, match="must keep every keypoint"):
        CorruptedDataset(val, "motion-15", fraction=1.0, transform=drops)[0]


# -- bad input ------------------------------------------------------------------------------


def test_bad_arguments(val):
    with pytest.raises(ValueError, match="mode must be one of"):
        CorruptedDataset(val, mode="both")
    with pytest.raises(ValueError, match="exactly one configuration"):
        CorruptedDataset(val, mode="replace")
    with pytest.raises(ValueError, match="unknown corruption configuration 'fog'"):
        CorruptedDataset(val, ["defocus-7", "fog"])
    with pytest.raises(ValueError, match="repeat"):
        CorruptedDataset(val, ["defocus-7", "defocus-7"])
    with pytest.raises(ValueError, match="at least one"):
        CorruptedDataset(val, [])
    for fraction in (0, 1.5, -1):
        with pytest.raises(ValueError, match="fraction"):
            CorruptedDataset(val, fraction=fraction)
    with pytest.raises(ValueError, match="seed"):
        CorruptedDataset(val, seed=-2)
    with pytest.raises(ValueError, match="unique"):
        CorruptedDataset([val[0], val[0]], "defocus-7")
    ds = CorruptedDataset(val, "defocus-7")
    with pytest.raises(IndexError):
        ds[len(ds)]
    with pytest.raises(TypeError, match="integer"):
        ds["0"]


def test_plain_sequence_base(val):
    """Any sequence of samples works (ids are read from the samples when there is no ``ids``)."""
    samples = list(val)
    a = CorruptedDataset(samples, "defocus-13")
    b = CorruptedDataset(val, "defocus-13")
    assert a.plan == b.plan
    np.testing.assert_array_equal(a[1]["image"], b[1]["image"])
