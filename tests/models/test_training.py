"""The training loop on CPU: every model learns, runs resume exactly, predictions map back."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

torch = pytest.importorskip("torch")

from keypoint_corrupt.crop import uncrop_keypoints  # noqa: E402
from keypoint_corrupt.models import (  # noqa: E402
    CropDataset,
    PoseNet,
    gaussian_score_maps,
    load,
    lr_at,
    predict,
    read_checkpoint,
    train,
    validate,
)
from keypoint_corrupt.models import training as training_module  # noqa: E402

CROP = 32  # 4 x 4 score maps: small enough for CPU, same code path as 256 -> 32 x 32


def fit(name, data, tmp_path, **kw):
    options = {
        "epochs": 1,
        "batch_size": 2,
        "crop_size": CROP,
        "augment": False,
        "lr_schedule": "constant",
        "out_dir": tmp_path,
        "progress": False,
    }
    options.update(kw)
    return train(name, data, **options)


@pytest.mark.parametrize("name", ["posenet-dense", "posenet-depthwise", "nerpe"])
def test_every_model_trains_and_the_loss_falls(tmp_path, hands, name):
    # One hand repeated: every step sees the same batch, so the loss must go down.
    extra = {"val_dataset": hands(2)} if name == "posenet-depthwise" else {}
    if name == "nerpe":
        extra["channels_last"] = True  # exercise the CUDA memory layout on CPU too
    result = fit(name, hands(6, distinct=False), tmp_path, train_set="S-train", **extra)

    losses = result.step_losses
    assert len(losses) == 3 and all(np.isfinite(losses))
    assert losses[-1] < losses[0]
    assert result.epoch_losses == [pytest.approx(np.mean(losses))]
    if extra.get("val_dataset"):
        assert len(result.val_epe) == 1 and np.isfinite(result.val_epe[0])


def test_training_writes_resumable_checkpoints_a_model_and_a_loss_curve(tmp_path, hands):
    result = tiny_nerpe_run(hands(4), tmp_path, train_set="S-train*", val_dataset=hands(2))
    assert result.loss_curve.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    history = json.loads(result.history.read_text())
    assert history["step_losses"] == pytest.approx(result.step_losses) and history["model"] == "nerpe"
    assert len(history["val_mean_epe"]) == 2
    model = load(result.final, encoder=TinyEncoder())
    header = model.checkpoint_header
    assert header["train_set"] == "S-train*" and header["seed"] == 3 and header["epochs_completed"] == 2
    assert header["val_mean_epe"] == result.val_epe[-1]
    state = read_checkpoint(result.checkpoint)["training_state"]
    assert state["global_step"] == 4 and state["optimizer"]["state"]
    assert read_checkpoint(result.final)["training_state"] is None


class InterruptAt:
    """A dataset that raises KeyboardInterrupt on its n-th item fetch (like Ctrl-C mid-epoch)."""

    def __init__(self, items, n):
        self.items, self.n, self.calls = items, n, 0

    def __len__(self):
        return len(self.items)

    def __getitem__(self, i):
        self.calls += 1
        if self.calls == self.n:
            raise KeyboardInterrupt
        return self.items[i]


class TinyEncoder(torch.nn.Module):
    """A stride-8 stand-in for PoseNet's trunk: resuming does not depend on the encoder."""

    out_channels = 8

    def __init__(self):
        super().__init__()
        self.conv = torch.nn.Conv2d(3, 8, 8, stride=8)

    def forward(self, x):
        return torch.nn.functional.leaky_relu(self.conv(x), 0.01)


def tiny_nerpe_run(data, out_dir, **kw):
    torch.manual_seed(0)
    kwargs = {"encoder": TinyEncoder(), "feature_channels": 8, "hidden": (16, 16)}
    options = {"epochs": 2, "augment": True, "seed": 3, "model_kwargs": kwargs, **kw}
    return fit("nerpe", data, out_dir, **options)


def test_interrupt_then_resume_reproduces_an_uninterrupted_run(tmp_path, hands):
    data = hands(4)
    straight = tiny_nerpe_run(data, tmp_path / "a")
    assert len(straight.step_losses) == 4

    with pytest.raises(KeyboardInterrupt):
        # Fetch 1 is train()'s look at the joint count; 2-5 are epoch 1; 8 is in epoch 2's 2nd batch.
        tiny_nerpe_run(InterruptAt(data, 8), tmp_path / "b")
    state = read_checkpoint(tmp_path / "b" / "last.pt")["training_state"]
    assert (state["epoch"], state["step_in_epoch"], state["global_step"]) == (1, 1, 3)
    assert len(state["step_losses"]) == 3 and len(state["epoch_partial"]) == 1

    resumed = tiny_nerpe_run(data, tmp_path / "b", resume=True)
    np.testing.assert_allclose(resumed.step_losses, straight.step_losses, rtol=1e-6)
    np.testing.assert_allclose(resumed.epoch_losses, straight.epoch_losses, rtol=1e-6)

    other_seed = tiny_nerpe_run(data, tmp_path / "c", seed=4)
    assert other_seed.step_losses != straight.step_losses


def test_resume_refuses_a_different_model(tmp_path, hands):
    tiny_nerpe_run(hands(2), tmp_path)
    with pytest.raises(ValueError, match="config"):
        fit("nerpe", hands(2), tmp_path, epochs=3, resume=True, model_kwargs={"hidden": (4,)})


def test_crop_dataset_augmentation_is_seeded_per_epoch_and_index(hands):
    data = hands(3)
    a = CropDataset(data, 64, augment=True, seed=1)
    b = CropDataset(data, 64, augment=True, seed=1)
    np.testing.assert_array_equal(a[2]["image"], b[2]["image"])
    np.testing.assert_array_equal(a[2]["keypoints"], b[2]["keypoints"])
    first = a[2]
    a.set_epoch(1)
    assert not np.array_equal(a[2]["keypoints"], first["keypoints"])
    plain = CropDataset(data, 64)[2]
    assert plain["image"].shape == (64, 64, 3) and plain["image"].dtype == np.uint8
    # Label noise is a truncated normal of std 2.5 source px, so at most 5 px: the augmented crop's
    # keypoints, mapped back through that crop, are the labels plus that noise.
    source = uncrop_keypoints(first["keypoints"], first["center"], first["scale"], 64)
    noise = source - data[2]["keypoints"]
    assert 0.1 < np.abs(noise).max() <= 5.0 + 1e-4
    # The crop centre (joint 12 with its label noise) moves by hand3d's centre noise: std 20, at most 40 px.
    offset = first["center"] - (data[2]["keypoints"][12] + noise[12])
    assert 1.0 < np.abs(offset).max() <= 40.0 + 1e-4
    assert first["scale"] != plain["scale"]  # the extent is measured from the moved centre


class Oracle(PoseNet):
    """A 'perfect' PoseNet: emits hand3d's target maps at the given crop keypoints."""

    def __init__(self, crop_keypoints):
        super().__init__(refinement_stages=0)
        self.kp = torch.as_tensor(crop_keypoints, dtype=torch.float32)

    def forward(self, images):
        h, w = images.shape[-2] // 8, images.shape[-1] // 8
        vis = torch.ones(self.kp.shape[:2])
        return [gaussian_score_maps(self.kp, vis, (h, w), 25.0 * w / 32, stride=8.0, quantize=False)]


def test_predictions_map_back_to_source_pixels(hands):
    data = hands(3)
    for item in data:
        # Keep every joint inside the score-map grid: with hand3d's alignment the last cell sits
        # on crop pixel 56 of 64, and a joint on the crop's far edge would be capped there.
        item["keypoints"] = 48 + 0.4 * (item["keypoints"] - 48)
    crops = CropDataset(data, 64)
    oracle = Oracle(np.stack([crops[i]["keypoints"] for i in range(3)]))
    pred = predict(oracle, data, crop_size=64, batch_size=3, method="quadratic")
    gt = np.stack([d["keypoints"] for d in data])
    assert pred.shape == (3, 21, 2)
    np.testing.assert_allclose(pred, gt, atol=1e-3)

    metrics = validate(oracle, data, crop_size=64, batch_size=3)  # hand3d's argmax: on the 8 px grid
    max_err = 4 * np.sqrt(2) / min(crops[i]["scale"] for i in range(3))
    assert 0 < metrics.mean_epe <= max_err and metrics.num_visible == 63
    assert metrics.median_epe <= max_err


def test_predict_gives_the_model_back_as_it_came(hands):
    model = PoseNet("depthwise", refinement_stages=0).train()
    weight = next(p for p in model.parameters() if p.dim() == 4)
    assert weight.is_contiguous()
    predict(model, hands(2), crop_size=64, batch_size=2, channels_last=True)
    assert model.training and weight.device.type == "cpu"
    assert weight.is_contiguous()  # channels-last was for the run only
    assert not torch.backends.cudnn.benchmark  # a process-wide switch predict() leaves alone


def test_bad_requests_fail_early(tmp_path, hands):
    data = hands(2)
    with pytest.raises(ValueError, match="unknown model"):
        train("hrnet", data, epochs=1, out_dir=tmp_path)
    with pytest.raises(ValueError, match="multiple of 8"):
        train("nerpe", data, epochs=1, out_dir=tmp_path, crop_size=30)
    with pytest.raises(FileNotFoundError, match="resume"):
        train("nerpe", data, epochs=1, out_dir=tmp_path / "empty", resume=True, crop_size=CROP)
    if not torch.cuda.is_available():
        with pytest.raises(RuntimeError, match="CUDA"):
            train("nerpe", data, epochs=1, out_dir=tmp_path, device="cuda")


def test_hand3d_schedule_divides_the_rate_by_ten_after_each_third():
    # lr * 0.1 ** min(2, step // ceil(total / 3)): hand3d's 1e-4 -> 1e-5 -> 1e-6 at 10k and 20k of 30k.
    expected = {0: 1e-4, 9_999: 1e-4, 10_000: 1e-5, 19_999: 1e-5, 20_000: 1e-6, 29_999: 1e-6, 40_000: 1e-6}
    for step, lr in expected.items():
        assert lr_at(step, 30_000, 1e-4) == pytest.approx(lr, rel=1e-12), step
    # total not divisible by 3: the thirds are ceil(10 / 3) = 4 steps long
    assert [lr_at(s, 10, 1.0) for s in range(10)] == pytest.approx([1.0] * 4 + [0.1] * 4 + [0.01] * 2)
    assert lr_at(7, 10, 1e-3, "constant") == 1e-3


def test_training_applies_the_default_schedule_step_by_step(tmp_path, hands, monkeypatch):
    seen = []
    step = torch.optim.Adam.step

    def recording_step(self, *args, **kwargs):
        seen.append(self.param_groups[0]["lr"])
        return step(self, *args, **kwargs)

    monkeypatch.setattr(torch.optim.Adam, "step", recording_step)
    result = tiny_nerpe_run(hands(4), tmp_path, epochs=3, lr_schedule="hand3d")  # 2 steps per epoch
    assert len(result.step_losses) == 6
    assert seen == pytest.approx([1e-3, 1e-3, 1e-4, 1e-4, 1e-5, 1e-5])  # NerPE's default rate, 1e-3


def test_dataloader_workers_see_the_same_data(tmp_path, hands):
    data = hands(4)
    inline = tiny_nerpe_run(data, tmp_path / "a", num_workers=0)
    workers = tiny_nerpe_run(data, tmp_path / "b", num_workers=2)
    assert workers.step_losses == inline.step_losses and len(inline.step_losses) == 4


def poison_second_loss(monkeypatch):
    """Make the second training step's loss infinite, so every gradient is inf or NaN."""
    loss = training_module._loss
    calls = []

    def poisoned(*args, **kwargs):
        calls.append(1)
        value = loss(*args, **kwargs)
        return value * float("inf") if len(calls) == 2 else value

    monkeypatch.setattr(training_module, "_loss", poisoned)


def test_amp_skips_and_counts_steps_with_non_finite_gradients(tmp_path, hands, monkeypatch):
    try:
        torch.amp.GradScaler("cpu")
        with torch.autocast("cpu", dtype=torch.float16):
            torch.nn.Linear(2, 2)(torch.ones(1, 2))
    except (RuntimeError, ValueError, TypeError) as exc:  # pragma: no cover - older CPU builds
        pytest.skip(f"this torch cannot run float16 autocast with a gradient scaler on CPU: {exc}")
    poison_second_loss(monkeypatch)
    result = tiny_nerpe_run(hands(4), tmp_path, amp=True)  # 4 steps
    assert result.skipped_steps == 1
    assert len(result.step_losses) == 3 and all(np.isfinite(result.step_losses))
    assert json.loads(result.history.read_text())["skipped_steps"] == 1
    scaler = read_checkpoint(result.checkpoint)["training_state"]["scaler"]
    assert scaler["scale"] == 2.0**16 / 2  # halved once, by the skipped step


def test_without_a_gradient_scaler_a_non_finite_loss_stops_training(tmp_path, hands, monkeypatch):
    poison_second_loss(monkeypatch)
    with pytest.raises(FloatingPointError, match="step 1"):
        tiny_nerpe_run(hands(4), tmp_path)


# --- the crop centre by joint name (schema=) or index (center_joint=) -----------------------


FREIHAND = Path(__file__).parents[1] / "data" / "hands" / "freihand" / "test_freihand.json"


def freihand_items():
    """The FreiHAND fixture (hand21 order) as training items, and its schema."""
    from keypoint_corrupt.cli.data import SampleItems
    from keypoint_corrupt.datasets import CocoKeypoints

    reader = CocoKeypoints(FREIHAND)
    return SampleItems(reader), reader.schema


def test_crop_dataset_centres_hand21_data_on_the_middle_mcp_by_name():
    from keypoint_corrupt.crop import crop_parameters

    items, schema = freihand_items()
    assert schema.name == "hand21"
    mcp, tip = schema.index("middle_finger_mcp"), schema.index("middle_finger_tip")
    assert (mcp, tip) == (9, 12)  # joint 12, hand3d's default, is the fingertip in this order
    for name in (schema, "hand21"):
        crops = CropDataset(items, 64, schema=name)
        assert crops.schema == schema and crops.center_joint is None
        for i in range(len(items)):
            item, crop = items[i], crops[i]
            kp, vis = item["keypoints"], item["visibility"]
            center, scale = crop_parameters(kp, vis, item["image"].shape, 64, schema=schema)
            np.testing.assert_array_equal(crop["center"], center)
            assert crop["scale"] == scale
            assert vis[mcp] and np.array_equal(crop["center"], kp[mcp])  # the MCP, not the tip
            lo, hi = kp[vis].min(axis=0), kp[vis].max(axis=0)
            assert np.all(lo <= crop["center"]) and np.all(crop["center"] <= hi)  # within the hand
            # the default (joint 12) would have centred this hand on its middle fingertip
            assert np.array_equal(CropDataset(items, 64)[i]["center"], kp[tip])
            assert not np.array_equal(kp[mcp], kp[tip])
            np.testing.assert_allclose(crop["keypoints"][mcp], [32.0, 32.0], atol=1e-4)


def test_crop_dataset_default_stays_joint_12_bit_for_bit_on_the_bundled_sample():
    from keypoint_corrupt.cli.data import SampleItems
    from keypoint_corrupt.crop import hand_crop
    from keypoint_corrupt.datasets import STB, bundled_sample_root

    stb = STB(bundled_sample_root(), "val")
    items = SampleItems(stb)
    default = CropDataset(items, 64)
    assert default.center_joint == 12 and default.schema is None
    by_name = CropDataset(items, 64, schema=stb.schema)  # stb_rhd: its anchor is joint 12
    explicit = CropDataset(items, 64, center_joint=12)
    for i in range(len(items)):
        item = items[i]
        # what CropDataset computed before schemas existed: hand_crop on joint 12
        old = hand_crop(item["image"], item["keypoints"], item["visibility"], 64, center_joint=12)
        for crops in (default, by_name, explicit):
            got = crops[i]
            np.testing.assert_array_equal(got["image"], old.image)
            np.testing.assert_array_equal(got["keypoints"], old.keypoints.astype(np.float32))
            np.testing.assert_array_equal(got["center"], old.center)
            assert got["scale"] == old.scale
        np.testing.assert_array_equal(old.center, item["keypoints"][12])
    augmented = [CropDataset(items, 64, augment=True, seed=5, **kw)[3] for kw in ({}, {"schema": stb.schema})]
    for key in ("image", "keypoints", "center", "scale"):
        np.testing.assert_array_equal(augmented[0][key], augmented[1][key])


def test_center_joint_and_schema_are_exclusive(tmp_path, hands):
    data = hands(2)
    for call in (
        lambda: CropDataset(data, 32, center_joint=12, schema="rhd"),
        lambda: train("nerpe", data, epochs=1, out_dir=tmp_path, center_joint=9, schema="hand21"),
        lambda: predict(PoseNet(refinement_stages=0), data, center_joint=9, schema="hand21"),
    ):
        with pytest.raises(ValueError, match=r"center_joint.*schema.*not both"):
            call()
    with pytest.raises(ValueError, match="unknown keypoint schema 'nosuch'"):
        train("nerpe", data, epochs=1, out_dir=tmp_path, schema="nosuch")
    with pytest.raises(ValueError, match="schema 'coco17' has 17 joints, the data 21"):
        train("nerpe", data, epochs=1, out_dir=tmp_path, schema="coco17", crop_size=CROP)
    with pytest.raises(ValueError, match="center_joint=21 is out of range"):
        train("nerpe", data, epochs=1, out_dir=tmp_path, center_joint=21, crop_size=CROP)
    assert not (tmp_path / "last.pt").exists()  # all refused before any work


def test_training_and_validation_crop_by_schema_and_record_it(tmp_path, hands, monkeypatch):
    from keypoint_corrupt.models import predictor as predictor_module

    seen = []
    real = predictor_module.CropDataset

    def recording(*args, **kwargs):
        crops = real(*args, **kwargs)
        seen.append((crops.center_joint, crops.schema))
        return crops

    monkeypatch.setattr(predictor_module, "CropDataset", recording)
    result = tiny_nerpe_run(hands(4), tmp_path / "named", epochs=1, schema="hand21", val_dataset=hands(2))
    assert [(j, s.name) for j, s in seen] == [(None, "hand21")]  # validation crops by name too
    header = read_checkpoint(result.final)["header"]
    history = json.loads(result.history.read_text())
    assert (header["schema"], header["center_joint"]) == ("hand21", None)
    assert (history["schema"], history["center_joint"]) == ("hand21", None)
    default = tiny_nerpe_run(hands(4), tmp_path / "default", epochs=1)
    assert read_checkpoint(default.final)["header"]["schema"] is None
    assert json.loads(default.history.read_text())["center_joint"] == 12
