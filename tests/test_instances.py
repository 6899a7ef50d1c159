"""Keypoint-aware corruptions on images of several people target one of them, and say which."""

from __future__ import annotations

import albumentations as A
import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from keypoint_corrupt import functional as F
from keypoint_corrupt.registry import apply_corruption
from keypoint_corrupt.transforms import KeypointOcclusion, PoseBench

# Two people far apart on a 200 x 300 image, and a third with no labelled joint.
LEFT = [(20.0, 30.0), (40.0, 60.0), (30.0, 90.0)]
RIGHT = [(220.0, 120.0), (260.0, 150.0), (240.0, 180.0)]
NOBODY = [(0.0, 0.0)] * 3
KPS = np.array(LEFT + RIGHT + NOBODY)
VIS = np.array([1, 1, 1, 1, 1, 1, 0, 0, 0], bool)
PERSON = np.repeat([0, 1, 2], 3)
IMAGE = np.full((200, 300, 3), 200, np.uint8)


def _painted_box(out: np.ndarray) -> tuple[int, int, int, int]:
    ys, xs = np.nonzero((out != IMAGE).any(axis=2))
    return int(xs.min()), int(ys.min()), int(xs.max()) + 1, int(ys.max()) + 1


def test_choose_instance_draws_only_among_people_with_a_usable_joint():
    picks = [F.choose_instance(PERSON, KPS, IMAGE.shape, VIS, rng=s) for s in range(400)]
    assert set(picks) == {0, 1}  # person 2 has no labelled joint
    assert 150 < picks.count(0) < 250  # uniform: 200 expected, 5 sigma is +-50


def test_one_usable_person_is_chosen_without_a_draw_and_none_gives_none():
    rng = np.random.default_rng(5)
    before = rng.bit_generator.state
    vis = VIS & (PERSON == 1)
    assert F.choose_instance(PERSON, KPS, IMAGE.shape, vis, rng=rng) == 1
    assert rng.bit_generator.state == before  # one person per image (STB) draws what it drew before
    assert F.choose_instance(PERSON, KPS, IMAGE.shape, np.zeros(9, bool), rng=rng) is None
    outside = KPS + 1000.0  # labelled, but off the image: nothing to occlude there
    assert F.choose_instance(PERSON, outside, IMAGE.shape, VIS, rng=rng) is None


@pytest.mark.parametrize(
    "instances, match",
    [([0, 1], r"instances must hold one non-negative int .* \(9\), got \[0, 1\]"), ([-1] * 9, r"got \[-1")],
)
def test_bad_instances_are_named(instances, match):
    with pytest.raises(ValueError, match=match):
        F.choose_instance(instances, KPS, IMAGE.shape, VIS, rng=0)


@settings(max_examples=60, deadline=None)
@given(
    sizes=st.lists(st.integers(1, 4), min_size=1, max_size=5),
    data=st.data(),
)
def test_the_target_always_has_a_visible_joint_inside_the_image(sizes, data):
    n = sum(sizes)
    person = np.repeat(np.arange(len(sizes)), sizes)
    pts = np.array(
        data.draw(st.lists(st.tuples(st.floats(-50, 350), st.floats(-50, 250)), min_size=n, max_size=n))
    )
    vis = np.array(data.draw(st.lists(st.booleans(), min_size=n, max_size=n)))
    target = F.choose_instance(person, pts, IMAGE.shape, vis, rng=data.draw(st.integers(0, 99)))
    inside = vis & (pts[:, 0] >= 0) & (pts[:, 0] < 300) & (pts[:, 1] >= 0) & (pts[:, 1] < 200)
    if not inside.any():
        assert target is None
    else:
        assert target is not None and inside[person == target].any()


@pytest.mark.parametrize("seed", range(6))
def test_the_occluder_is_placed_on_the_target_alone_and_reported(seed):
    t = KeypointOcclusion(0.3)
    out, info = t.corrupt(IMAGE, keypoints=KPS, visibility=VIS, instances=PERSON, rng=seed)
    target = info["target_instance"]
    # Independent replay: the first draw picks the person, then the occluder uses that person alone.
    rng = np.random.default_rng(seed)
    assert target == [0, 1][int(rng.integers(2))]
    want, box = F.occlude(IMAGE, KPS[PERSON == target], 0.3, rng=rng)
    np.testing.assert_array_equal(out, want)
    assert info["box"] == box == _painted_box(out)
    own = KPS[PERSON == target]
    assert own[:, 0].min() - 30 <= (box[0] + box[2]) / 2 <= own[:, 0].max() + 30


def test_without_instances_nothing_changes_and_nothing_is_reported():
    t = KeypointOcclusion(0.3)
    out, info = t.corrupt(IMAGE, keypoints=KPS, visibility=VIS, rng=3)
    want, box = F.occlude(IMAGE, KPS, 0.3, visibility=VIS, rng=3)
    np.testing.assert_array_equal(out, want)
    assert "target_instance" not in info and info["box"] == box


def test_posebench_mask_squares_sit_on_the_target_person_only():
    for seed in range(8):
        _out, info = PoseBench("mask", 5).corrupt(
            IMAGE, keypoints=KPS, visibility=VIS, instances=PERSON, rng=seed
        )
        own = KPS[(PERSON == info["target_instance"]) & VIS]
        centres = [((x0 + x1) / 2, (y0 + y1) / 2) for x0, y0, x1, y1 in info["boxes"]]
        for cx, cy in centres:  # each square is centred on one of the target's joints (to a pixel)
            assert np.min(np.hypot(own[:, 0] - cx, own[:, 1] - cy)) <= 1.0


def test_other_corruptions_ignore_instances():
    _out, info = apply_corruption("defocus-7", IMAGE, KPS, visibility=VIS, instances=PERSON, rng=0)
    assert info == {}


def test_inside_compose_the_instance_label_field_targets_one_person():
    pipe = A.Compose(
        [KeypointOcclusion(0.3, visibility_label="vis", instance_label="person")],
        keypoint_params=A.KeypointParams(format="xy", label_fields=["vis", "person"], remove_invisible=False),
        seed=0,
    )
    sides = set()
    for seed in range(10):
        pipe.set_random_seed(seed)
        out = pipe(image=IMAGE, keypoints=KPS, vis=VIS.astype(int), person=PERSON)
        x0, _, x1, _ = _painted_box(out["image"])
        assert x1 <= 130 or x0 >= 150  # never the space between the two people
        sides.add(x0 >= 150)
        assert len(out["keypoints"]) == len(KPS)
    assert sides == {False, True}


def test_a_missing_instance_label_is_named():
    pipe = A.Compose(
        [KeypointOcclusion(0.3, instance_label="person")],
        keypoint_params=A.KeypointParams(format="xy", label_fields=["vis"], remove_invisible=False),
    )
    with pytest.raises(ValueError, match=r"instance_label='person' is neither a keypoint label field"):
        pipe(image=IMAGE, keypoints=KPS, vis=VIS.astype(int))
    with pytest.raises(ValueError, match="instances were given without keypoints"):
        KeypointOcclusion(0.3).corrupt(IMAGE, instances=PERSON, rng=0)
