"""The contract every transform keeps, tested row by row over ``transform_definitions.DEFINITIONS``.

Serialisation, argument validation, dtype and shape, keypoints through ``A.Compose``, seeding,
agreement with the functional core and torch DataLoader workers. A transform class without a
row, an export, a registry configuration or a row in docs/corruptions.md fails here.
"""

from __future__ import annotations

import inspect
import re
import subprocess
import sys
from pathlib import Path

import albumentations as A
import numpy as np
import pytest
from transform_definitions import BAD_IMAGES, CALL, COMMON_BAD, DEFINITIONS, FUNCTIONAL, INIT

import keypoint_corrupt as kc
from keypoint_corrupt import functional as F
from keypoint_corrupt.transforms import CorruptionTransform

DOCS = Path(__file__).resolve().parents[1] / "docs" / "corruptions.md"
BOTH = ["default", "non_default"]
ROWS = {r.id: r for r in DEFINITIONS}
LAYOUTS = [(24, 32), (24, 32, 1), (24, 32, 3), (24, 32, 4)]

KPS = [(4.0, 5.0), (30.0, 20.0), (31.0, 23.0), (0.0, 0.0), (16.5, 12.25)]
VIS = [1, 1, 1, 0, 1]
PERSON = [0, 0, 0, 0, 0]  # the rows' instance_label: one person (multi-person cases: test_instances.py)


def _image(shape=(24, 32, 3), dtype=np.uint8, seed=0):
    rng = np.random.default_rng(seed)
    if dtype == np.uint8:
        return rng.integers(0, 256, shape, dtype=np.uint8)
    return rng.random(shape, dtype=np.float32)


def _init_args(t):
    return {k: getattr(t, k) for k in t.get_transform_init_args_names()}


def _init_names(cls):
    return [n for n in inspect.signature(cls.__init__).parameters if n != "self"]


def _public_transform_classes():
    found, todo = set(), [CorruptionTransform]
    while todo:
        cls = todo.pop()
        for sub in cls.__subclasses__():
            todo.append(sub)
            if sub.__module__.startswith("keypoint_corrupt.") and not sub.__name__.startswith("_"):
                found.add(sub)
    return found


def _rows(*which):
    return [pytest.param(r, w, id=f"{r.id}-{w}") for r in DEFINITIONS for w in which]


def _compose(transforms, seed=None):
    params = A.KeypointParams(format="xy", label_fields=["vis", "person"])
    return A.Compose(transforms, keypoint_params=params, seed=seed)


# --- the table is complete, and so are the exports, the registry and the docs -------------------


def test_every_transform_class_has_exactly_one_row():
    assert len(ROWS) == len(DEFINITIONS)
    assert {r.cls for r in DEFINITIONS} == _public_transform_classes()


@pytest.mark.parametrize("row", DEFINITIONS, ids=lambda r: r.id)
def test_every_transform_is_exported_registered_and_documented(row):
    name = row.cls.__name__
    assert name in kc.__all__ and getattr(kc, name) is row.cls
    # the reference functions are re-exported by F; the suites' are public in their own namespaces
    homes = [
        ns
        for ns in (F, F.imagenet_c, F.posebench)
        if getattr(ns, row.functional.__name__, None) is row.functional
    ]
    assert homes and row.functional.__name__ in homes[0].__all__
    assert any(kc.get_config(c).transform is row.cls for c in kc.available_configs()), "no registry row"
    table = [line for line in DOCS.read_text().splitlines() if line.startswith("| `")]
    assert any(f"`{name}(" in line and f"`{row.functional.__name__}(" in line for line in table), (
        f"docs/corruptions.md has no table row for {name} and {row.functional.__name__}"
    )


@pytest.mark.parametrize("row", DEFINITIONS, ids=lambda r: r.id)
def test_non_default_row_sets_every_argument_away_from_its_default(row):
    params = inspect.signature(row.cls.__init__).parameters
    assert set(row.non_default) == set(_init_names(row.cls))
    for name, value in row.non_default.items():
        assert params[name].default is inspect.Parameter.empty or params[name].default != value, name
    assert set(row.default) == {
        n for n in _init_names(row.cls) if params[n].default is inspect.Parameter.empty
    }


# --- serialisation ----------------------------------------------------------------------------


@pytest.mark.parametrize("row, which", _rows(*BOTH))
def test_to_dict_from_dict_round_trips_every_argument(row, which):
    t = row.make(which)
    d = A.to_dict(t)
    assert set(_init_names(row.cls)) <= set(d["transform"])  # none silently dropped
    back = A.from_dict(d)
    assert type(back) is row.cls and _init_args(back) == _init_args(t) and back.p == t.p
    assert repr(back) == repr(t)
    pipe = A.from_dict(A.to_dict(_compose([t])))
    assert type(pipe.transforms[0]) is row.cls and _init_args(pipe.transforms[0]) == _init_args(t)
    if which == "non_default":
        assert _init_args(back) != _init_args(row.make("default"))


@pytest.mark.parametrize("fmt", ["json", "yaml"])
def test_save_load_round_trips_a_pipeline_of_every_transform(tmp_path, fmt):
    transforms = [r.make("non_default") for r in DEFINITIONS]
    path = tmp_path / f"pipe.{fmt}"
    A.save(_compose(transforms), str(path), data_format=fmt)
    loaded = A.load(str(path), data_format=fmt)
    assert [_init_args(t) for t in loaded.transforms] == [_init_args(t) for t in transforms]


def test_load_in_a_fresh_process_after_importing_the_package(tmp_path):
    path = tmp_path / "pipe.json"
    transforms = [r.make("non_default") for r in DEFINITIONS]
    A.save(A.Compose(transforms), str(path))
    code = (
        "import albumentations as A, keypoint_corrupt;"
        f"p = A.load({str(path)!r});"
        "print([repr(t) for t in p.transforms])"
    )
    res = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert res.stdout.strip() == str([repr(t) for t in transforms])


# --- argument validation ----------------------------------------------------------------------


def _bad_cases(where):
    return [
        pytest.param(row, bad, id=f"{row.id}-{bad.arg}={bad.value!r}")
        for row in DEFINITIONS
        for bad in (*row.bad, *COMMON_BAD)
        if where in bad.where
    ]


@pytest.mark.parametrize("row, bad", _bad_cases(INIT))
def test_constructor_rejects_bad_arguments_naming_them(row, bad):
    with pytest.raises(bad.exc, match=bad.match):
        row.make("default", **{bad.arg: bad.value})


@pytest.mark.parametrize("row, bad", _bad_cases(FUNCTIONAL))
def test_functional_core_rejects_the_same_bad_arguments(row, bad):
    t = row.make("default")
    params = inspect.signature(row.functional).parameters
    kwargs = {n: getattr(t, n) for n in _init_names(row.cls) if n in params}
    if "keypoints" in params:
        kwargs["keypoints"] = KPS[:2]
    with pytest.raises(bad.exc, match=bad.match):
        row.functional(_image(), **{**kwargs, bad.arg: bad.value})


@pytest.mark.parametrize("row, bad", _bad_cases(CALL))
def test_corrupt_and_functional_reject_bad_call_arguments(row, bad):
    call = {"keypoints": KPS[:2], "visibility": None, "rng": 0, bad.arg: bad.value}
    with pytest.raises(bad.exc, match=bad.match):
        row.make("default").corrupt(_image(), **call)
    if bad.arg in inspect.signature(row.functional).parameters:
        with pytest.raises(bad.exc, match=bad.match):
            row.reference(row.make("default"), _image(), **call)


@pytest.mark.parametrize("row", DEFINITIONS, ids=lambda r: r.id)
@pytest.mark.parametrize("name, image, exc, match", BAD_IMAGES, ids=[b[0] for b in BAD_IMAGES])
def test_bad_images_are_rejected_by_corrupt_and_the_functional_core(row, name, image, exc, match):
    t = row.make("default")
    with pytest.raises(exc, match=match):
        t.corrupt(image, keypoints=KPS[:2], rng=0)
    with pytest.raises(exc, match=match):
        row.reference(t, image, keypoints=KPS[:2], rng=np.random.default_rng(0))


# --- dtype, shape, input untouched, keypoints untouched ----------------------------------------


@pytest.mark.parametrize("row", DEFINITIONS, ids=lambda r: r.id)
@pytest.mark.parametrize("dtype", [np.uint8, np.float32], ids=["uint8", "float32"])
@pytest.mark.parametrize("shape", LAYOUTS, ids=lambda s: "x".join(map(str, s)))
def test_same_dtype_and_shape_back_and_input_never_modified(row, dtype, shape):
    img = _image(shape, dtype)
    before = img.copy()
    t = row.make("default")
    t.set_random_seed(0)
    outs = [t(image=img, keypoints=KPS)["image"], t.corrupt(img, keypoints=KPS, rng=0)[0]]
    outs.append(
        _compose([row.make("default")], seed=0)(image=img, keypoints=KPS, vis=VIS, person=PERSON)["image"]
    )
    for out in outs:
        assert out.dtype == img.dtype and out.shape == img.shape and out is not img
        if dtype == np.float32:
            assert 0.0 <= out.min() and out.max() <= 1.0
    np.testing.assert_array_equal(img, before)


@pytest.mark.parametrize("row, which", _rows(*BOTH))
def test_keypoints_pass_through_compose_untouched(row, which):
    img = _image((24, 32, 3))
    kps = [*KPS, (31.75, 23.5)]  # edge points and an invisible COCO (0, 0); remove_invisible=True
    vis = [*VIS, 2]
    pipe = _compose([A.NoOp(), row.make(which, p=1.0), A.NoOp()], seed=3)
    out = pipe(image=img, keypoints=kps, vis=vis, person=[*PERSON, 0])
    assert [tuple(k) for k in out["keypoints"]] == kps
    assert list(out["vis"]) == vis
    assert out["image"].shape == img.shape and out["image"].dtype == img.dtype
    assert not np.array_equal(out["image"], img)


# --- seeding and the functional core -----------------------------------------------------------


@pytest.mark.parametrize("row, which", _rows(*BOTH))
def test_same_seed_same_output_and_different_seeds_differ_for_random_transforms(row, which):
    img = _image((48, 64, 3))

    def pipeline(seed):
        return _compose([row.make(which, p=1.0)], seed=seed)(
            image=img, keypoints=KPS, vis=VIS, person=PERSON
        )["image"]

    def corrupt(seed):
        return row.make(which).corrupt(img, keypoints=KPS, visibility=VIS, rng=np.random.default_rng(seed))[0]

    for run in (pipeline, corrupt):
        np.testing.assert_array_equal(run(7), run(7))
        assert np.array_equal(run(7), run(8)) is not row.is_random(which), run.__name__


@pytest.mark.parametrize("row, which", _rows(*BOTH))
@pytest.mark.parametrize("dtype", [np.uint8, np.float32], ids=["uint8", "float32"])
def test_corrupt_equals_the_functional_core_with_the_same_generator(row, which, dtype):
    img = _image((48, 64, 3), dtype, seed=1)
    t = row.make(which, fill=0) if row.cls is kc.KeypointOcclusion else row.make(which)
    for seed in range(3):
        got, _ = t.corrupt(img, keypoints=KPS, visibility=VIS, rng=np.random.default_rng(seed))
        want = row.reference(t, img, keypoints=KPS, visibility=VIS, rng=np.random.default_rng(seed))
        np.testing.assert_array_equal(got, want)


@pytest.mark.parametrize("row, which", _rows(*BOTH))
def test_pipeline_call_equals_the_functional_core(row, which):
    img = _image((48, 64, 3), seed=2)
    t = row.make(which, p=1.0)
    for seed in range(3):
        t.set_random_seed(seed)
        got = t(image=img, keypoints=KPS, vis=VIS, person=PERSON)["image"]
        vis = VIS if getattr(t, "visibility_label", None) else None
        want = row.reference(t, img, keypoints=KPS, visibility=vis, rng=row.pipeline_rng(t, img, seed))
        np.testing.assert_array_equal(got, want)


# --- torch DataLoader workers ------------------------------------------------------------------


class _PerItemSeeded:
    """A map-style dataset applying every table row, seeded per item (as the dataset layer does)."""

    def __init__(self):
        self.items = [(r, w, i) for r in DEFINITIONS for w in BOTH for i in range(2)]
        self.image = _image((24, 32, 3), seed=4)

    def __len__(self):
        return len(self.items)

    def __getitem__(self, index):
        row, which, _ = self.items[index]
        t = row.make(which, p=1.0)
        t.set_random_seed(1000 + index)
        via_pipeline = t(image=self.image, keypoints=KPS, vis=VIS, person=PERSON)["image"]
        via_corrupt, _ = t.corrupt(
            self.image, keypoints=KPS, visibility=VIS, rng=np.random.default_rng([index])
        )
        return np.stack([via_pipeline, via_corrupt])


def test_dataloader_workers_do_not_change_the_output():
    torch = pytest.importorskip("torch")
    ds = _PerItemSeeded()

    def collect(workers):
        loader = torch.utils.data.DataLoader(ds, batch_size=4, num_workers=workers)
        return torch.cat(list(loader)).numpy()

    serial, parallel = collect(0), collect(2)
    np.testing.assert_array_equal(serial, parallel)
    for index, (row, which, i) in enumerate(ds.items):
        if row.is_random(which) and i == 1:  # per-item seeds: the two items of a row differ
            assert not np.array_equal(serial[index], serial[index - 1]), row.id


def test_docs_table_has_no_row_for_a_missing_transform():
    names = set(re.findall(r"^\|[^|]*\| `(\w+)\(", DOCS.read_text(), flags=re.M))
    assert names == {r.cls.__name__ for r in DEFINITIONS}
