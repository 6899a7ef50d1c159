"""keypoint_corrupt.benchmark.evaluate: user predict callables, sources, bundled model adapters."""

from __future__ import annotations

import json

import bench_user_predict as user
import cv2
import numpy as np
import pytest
from bench_helpers import TINY_CROP, direct_items, direct_user_rows

from keypoint_corrupt.benchmark import (
    CropInfo,
    MaterializedSource,
    evaluate,
    row_label,
    wants_crops,
    warp_crop,
)
from keypoint_corrupt.datasets import CorruptedDataset
from keypoint_corrupt.registry import CONFIGS

TWO = ("defocus-13", "occlusion-30")


def assert_same_rows(a, b):
    assert list(a.rows) == list(b.rows)
    for name in a.rows:
        ra, rb = a.rows[name], b.rows[name]
        assert ra.ids == rb.ids, name
        np.testing.assert_array_equal(ra.predictions, rb.predictions)
        np.testing.assert_array_equal(ra.keypoints, rb.keypoints)
        assert ra.metrics.summary() == rb.metrics.summary(), name
        np.testing.assert_array_equal(ra.metrics.pck, rb.metrics.pck)


def test_user_predict_all_configs_matches_direct_computation(val):
    res = evaluate(user.predict, val, batch_size=3)
    assert list(res.rows) == ["standard", *CONFIGS]
    assert [len(r.ids) for r in res.rows.values()] == [8] + [2] * 11
    direct = direct_user_rows(user.predict, val)
    for name, row in res.rows.items():
        pred, metrics = direct[name]
        np.testing.assert_allclose(row.predictions, pred, rtol=0, atol=1e-9)
        for key, value in metrics.summary().items():
            assert getattr(row.metrics, key) == pytest.approx(value, rel=1e-12, abs=1e-12), (name, key)
    # corruptions change the images, hence this predictor's output
    assert len({round(r.metrics.mean_epe, 6) for r in res.rows.values()}) > 6
    assert res.summary is not None and res.summary.configs == CONFIGS
    assert res.summary.mpc["auc"] == pytest.approx(np.mean([res.rows[c].metrics.auc for c in CONFIGS]))
    assert res.timing["images"] == 30 and res.timing["images_per_second"] > 0
    assert res.settings["with_crops"] is True
    assert [e.row for e in res.examples] == ["standard", *CONFIGS]
    assert res.examples[1].image.shape == (480, 640, 3)


def test_images_only_predict_gets_a_stacked_uint8_batch(val):
    seen = []

    def predict(images):
        seen.append((type(images), images.shape, images.dtype))
        return user.predict_images_only(images)

    res = evaluate(predict, val, ["motion-45"], batch_size=5, examples=0)
    assert seen[0] == (np.ndarray, (5, 480, 640, 3), np.uint8)
    assert [s[1][0] for s in seen] == [5, 3, 2]  # batches never mix rows
    assert res.settings["with_crops"] is False and res.examples == []


def test_wants_crops_rules():
    assert wants_crops(lambda images, crops: None)
    assert wants_crops(lambda images, *rest: None)
    assert wants_crops(lambda images, *, crops=None: None)
    assert not wants_crops(lambda images: None)
    assert not wants_crops(lambda images, device="cpu": None)

    class Model:
        def __call__(self, images, crops):
            return None

    assert wants_crops(Model())


def test_with_crops_override_and_torch_output(val):
    torch = pytest.importorskip("torch")

    def predict(images, device="cpu", crops=None):
        assert crops is not None
        return torch.as_tensor(user.predict(images, crops))

    res = evaluate(predict, val, ["defocus-7"], examples=0)
    ref = evaluate(user.predict, val, ["defocus-7"], examples=0)
    assert_same_rows(res, ref)

    def no_crops(images, crops=None):
        assert crops is None
        return np.zeros((len(images), 21, 2))

    evaluate(no_crops, val, ["defocus-7"], with_crops=False, examples=0)


def test_wrong_shape_is_reported(val):
    with pytest.raises(ValueError, match=r"expected \(8, 21, 2\)"):
        evaluate(user.predict_wrong_shape, val, (), batch_size=8)


def test_argument_validation(val):
    with pytest.raises(TypeError, match="callable"):
        evaluate("model", val)
    with pytest.raises(ValueError, match="batch_size"):
        evaluate(user.predict, val, batch_size=0)
    with pytest.raises(ValueError, match="num_workers"):
        evaluate(user.predict, val, num_workers=-1)
    with pytest.raises(ValueError, match="unknown corruption configuration"):
        evaluate(user.predict, val, ["defocus-8"])
    with pytest.raises(ValueError, match="nothing to evaluate"):
        evaluate(user.predict, val, (), standard=False)
    with pytest.raises(ValueError, match="no images"):
        evaluate(user.predict, val, ["defocus-7"], fraction=0.01)


def test_corrupted_dataset_input_and_workers_give_the_same_numbers(val):
    ds = CorruptedDataset(val, TWO, fraction=0.5, seed=3)
    a = evaluate(user.predict, ds, examples=0)
    assert [len(r.ids) for r in a.rows.values()] == [8, 4, 4]
    assert a.source["fraction"] == 0.5 and a.source["seed"] == 3 and a.source["is_stb"]
    b = evaluate(user.predict, val, TWO, fraction=0.5, seed=3, batch_size=3, num_workers=2, progress=True)
    assert_same_rows(a, b)
    assert b.settings["num_workers"] == 2


def write_materialized_like(out, base, configs, fraction=0.2, seed=0):
    """What 'keypoint-corrupt materialize' writes, by hand: PNG images and COCO files per subset.

    The category names the joints as the source does: evaluating the output centres the crops
    on the anchor joints of the schema those names match (``stb_rhd``), as streaming does.
    """
    names = list(base[0].meta["joint_names"])
    category = [{"id": 1, "name": "hand", "keypoints": names}]
    rows = direct_items(base, configs, fraction, seed)
    for row, items in rows.items():
        folder = out / "val" / ("clean" if row == "standard" else row)
        (folder / "images").mkdir(parents=True)
        images, anns = [], []
        for k, it in enumerate(items, start=1):
            file_name = f"images/{k:03d}.png"
            cv2.imwrite(str(folder / file_name), cv2.cvtColor(it["image"], cv2.COLOR_RGB2BGR))
            flat = []
            for (x, y), v in zip(
                np.asarray(it["keypoints"]).tolist(), it["visibility"].tolist(), strict=True
            ):
                flat += [x, y, 2 if v else 0]
            images.append({"id": k, "file_name": file_name, "width": 640, "height": 480})
            anns.append({"id": k, "image_id": k, "category_id": 1, "keypoints": flat, "source_id": it["id"]})
        coco = {"images": images, "annotations": anns, "categories": category}
        (folder / "annotations.json").write_text(json.dumps(coco))
    (out / "manifest.json").write_text(
        json.dumps({"dataset": {"kind": "stb"}, "fraction": fraction, "seed": seed})
    )


def test_streamed_and_materialized_like_tree_give_identical_numbers(val, tmp_path):
    write_materialized_like(tmp_path / "o", val, TWO)
    streamed = evaluate(user.predict, val, TWO, examples=0)
    read = evaluate(user.predict, tmp_path / "o", None, examples=0)
    assert read.source["source"] == "materialized" and read.source["is_stb"]
    assert_same_rows(streamed, read)
    assert read.summary.to_dict() == streamed.summary.to_dict()
    # asking for a configuration that was not written
    with pytest.raises(ValueError, match="no subset for motion-15"):
        evaluate(user.predict, tmp_path / "o", ["motion-15"])
    # the split folder itself works too
    assert_same_rows(read, evaluate(user.predict, tmp_path / "o" / "val", None, examples=0))


def test_streamed_and_real_materialize_output_give_identical_numbers(val, tmp_path):
    mat = pytest.importorskip("keypoint_corrupt.materialize")
    from keypoint_corrupt.datasets import bundled_sample_root

    out = tmp_path / "o"
    spec = mat.DatasetSpec("stb", bundled_sample_root(), bundled=True)
    res = mat.materialize(mat.MaterializeOptions(out, spec, splits=("val",), configs=TWO))
    assert res.complete
    read = evaluate(user.predict, out, examples=0)
    assert list(read.rows) == ["standard", *TWO]
    assert read.source["fraction"] == 0.2 and read.source["is_stb"]
    assert_same_rows(evaluate(user.predict, val, TWO, examples=0), read)
    assert MaterializedSource(out).samples("standard")[0].keypoints.shape == (21, 2)


def test_materialized_split_choice(tmp_path, val):
    write_materialized_like(tmp_path / "o", val, ("defocus-7",))
    (tmp_path / "o" / "val").rename(tmp_path / "o" / "test")
    assert MaterializedSource(tmp_path / "o").split == "test"  # the only split
    write_materialized_like(tmp_path / "p", val, ("defocus-7",))
    (tmp_path / "p" / "val").rename(tmp_path / "p" / "a")
    write_materialized_like(tmp_path / "p2", val, ("defocus-7",))
    (tmp_path / "p2" / "val").rename(tmp_path / "p" / "b")
    with pytest.raises(ValueError, match="several splits"):
        MaterializedSource(tmp_path / "p")
    assert MaterializedSource(tmp_path / "p", "b").split == "b"
    with pytest.raises(ValueError, match="no split 'c'"):
        MaterializedSource(tmp_path / "p", "c")
    with pytest.raises(ValueError, match="not a materialised output"):
        MaterializedSource(tmp_path)


def test_row_labels():
    assert row_label("standard") == ("Standard", "-")
    assert row_label("defocus-21") == ("defocus", "21")
    assert row_label("occlusion-10") == ("occlusion", "10%")
    assert row_label("noise-saltpepper") == ("noise salt&pepper", "-")
    assert row_label("my-thing") == ("my-thing", "-")


# -- crops and the bundled model adapters ------------------------------------------------------


def test_warp_crop_equals_models_hand_crop(val):
    pytest.importorskip("torch")
    from keypoint_corrupt.crop import crop_parameters, uncrop_keypoints
    from keypoint_corrupt.datasets import load_image
    from keypoint_corrupt.models import hand_crop

    sample = val[3]
    image = load_image(sample)
    for size in (256, TINY_CROP):
        ref = hand_crop(image, sample.keypoints, sample.visibility, size)
        center, scale = crop_parameters(sample.keypoints, sample.visibility, image.shape, size)
        np.testing.assert_array_equal(warp_crop(image, center, scale, size), ref.image)
        np.testing.assert_allclose(uncrop_keypoints(ref.keypoints, center, scale, size), sample.keypoints)
        # CropInfo describes the crop at 256 (as the benchmark passes it) and cuts it at any size
        center, scale = crop_parameters(sample.keypoints, sample.visibility, image.shape)
        info = CropInfo(center[None], np.array([scale]))
        np.testing.assert_array_equal(info.crop(image[None], size)[0], ref.image)
        np.testing.assert_allclose(info.to_source(ref.keypoints[None], size)[0], sample.keypoints)


def test_model_predictor_matches_models_predict(val, tiny_checkpoint):
    pytest.importorskip("torch")
    from keypoint_corrupt.benchmark import ModelPredictor, load_predictor
    from keypoint_corrupt.models import load
    from keypoint_corrupt.models import predict as models_predict

    predictor = load_predictor("posenet-dense", tiny_checkpoint, device="cpu", crop_size=TINY_CROP)
    assert isinstance(predictor, ModelPredictor) and predictor.checkpoint["train_set"] == "S-train"
    res = evaluate(predictor, val, ["motion-30"], batch_size=4, examples=0)
    assert res.settings["predictor"]["model"] == "posenet-dense"
    model = load(tiny_checkpoint)
    for name, items in direct_items(val, ["motion-30"]).items():
        expected = models_predict(model, items, crop_size=TINY_CROP, batch_size=8)
        np.testing.assert_allclose(res.rows[name].predictions, expected, rtol=0, atol=1e-9)
    # the generic door (images + crop info) gives the same as the worker/prepared path
    door = evaluate(lambda images, crops: predictor(images, crops), val, ["motion-30"], examples=0)
    assert_same_rows(res, door)


def test_model_predictor_options_and_errors(tiny_checkpoint):
    pytest.importorskip("torch")
    from keypoint_corrupt.benchmark import load_predictor

    with pytest.raises(ValueError, match="holds a posenet-dense"):
        load_predictor("nerpe", tiny_checkpoint, device="cpu")
    with pytest.raises(FileNotFoundError):
        load_predictor("nerpe", tiny_checkpoint.parent / "missing.pt")
    with pytest.raises(ValueError, match="precision"):
        load_predictor("posenet-dense", tiny_checkpoint, precision="fp16")
    with pytest.raises(ValueError, match="multiple of 8"):
        load_predictor("posenet-dense", tiny_checkpoint, crop_size=30)
    with pytest.raises(RuntimeError, match="no CUDA"):
        if not __import__("torch").cuda.is_available():
            load_predictor("posenet-dense", tiny_checkpoint, device="cuda")
        else:  # pragma: no cover
            raise RuntimeError("no CUDA check skipped on a GPU machine")
    p = load_predictor(None, tiny_checkpoint, device="cpu", crop_size=TINY_CROP, precision="bf16")
    images = np.zeros((2, 48, 64, 3), np.uint8)
    crops = CropInfo(np.array([[32.0, 24.0], [30.0, 20.0]]), np.array([2.0, 4.0]))
    out = p(images, crops)
    assert out.shape == (2, 21, 2) and np.isfinite(out).all()
    assert p.describe()["precision"] == "bf16"
    with pytest.raises(ValueError, match="crop information"):
        p(images, None)


def test_nerpe_predictor_runs(val):
    pytest.importorskip("torch")
    from keypoint_corrupt.benchmark import load_predictor

    p = load_predictor("nerpe", device="cpu", crop_size=16, nerpe_mode="progressive")
    res = evaluate(p, [val[0], val[1]], (), examples=0)
    pred = res.rows["standard"].predictions
    assert pred.shape == (2, 21, 2) and np.isfinite(pred).all()
    assert res.settings["predictor"]["nerpe_mode"] == "progressive"
