"""torch DataLoader: worker count does not change the data, and every image gets its own noise."""

from __future__ import annotations

import albumentations as A
import numpy as np
import pytest

from keypoint_corrupt.datasets import STB, CorruptedDataset, load_image

torch = pytest.importorskip("torch")


def collect(ds, num_workers):
    loader = torch.utils.data.DataLoader(ds, batch_size=2, shuffle=False, num_workers=num_workers)
    items = []
    for batch in loader:
        for j in range(len(batch["id"])):
            items.append({k: v[j] for k, v in batch.items()})
    return items


@pytest.fixture(scope="module")
def dataset(bundled_root):
    # The transform holds its own randomness (GaussNoise, Affine): albumentations 2.0.8 would
    # give every worker the same stream; the dataset reseeds it per item instead.
    pipeline = A.Compose(
        [A.Affine(translate_px=(-20, 20), p=1.0), A.GaussNoise(std_range=(0.02, 0.05), p=1.0)],
        keypoint_params=A.KeypointParams(format="xy", remove_invisible=False),
    )
    base = STB(bundled_root, "val")
    return CorruptedDataset(
        base, ["noise-gaussian", "noise-saltpepper", "occlusion-20"], 0.5, 1, "append", pipeline
    )


def test_workers_yield_the_same_items(dataset):
    serial, parallel = collect(dataset, 0), collect(dataset, 2)
    assert len(serial) == len(parallel) == len(dataset) == 8 + 3 * 4
    for a, b in zip(serial, parallel, strict=True):
        assert a["id"] == b["id"] and a["config"] == b["config"]
        assert torch.equal(a["image"], b["image"])
        assert torch.equal(a["keypoints"], b["keypoints"]) and torch.equal(a["visibility"], b["visibility"])
        assert torch.equal(a["box"], b["box"])


def test_different_images_get_different_noise(dataset):
    items = collect(dataset, 2)
    noisy = [it for it in items if it["config"] == "noise-gaussian"][:2]
    assert noisy[0]["id"] != noisy[1]["id"]
    residuals = []
    for it in noisy:
        plain = CorruptedDataset(dataset.base, "noise-gaussian", 0.5, 1, "subset")  # no transform
        clean = load_image(dataset.base[int(it["base_index"])]).astype(int)
        item = plain.render(int(it["base_index"]), ["noise-gaussian"])["noise-gaussian"]
        residuals.append(item["image"].astype(int) - clean)
    assert np.mean(residuals[0] == residuals[1]) < 0.2
    # the transform's own draws differ too: the clean items (worker 0 and worker 1) shift differently
    clean_items = [it for it in items if it["config"] == "clean"]
    shifts = {
        tuple(np.round((it["keypoints"].numpy() - dataset.base[int(it["base_index"])].keypoints)[0], 3))
        for it in clean_items
    }
    assert len(shifts) > 1
