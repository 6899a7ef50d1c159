"""select_subset and sample_rng: exact counts, order independence, stability across processes."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from keypoint_corrupt import CONFIGS
from keypoint_corrupt.datasets import sample_rng, select_subset, transform_seed

id_lists = st.lists(st.text(min_size=1, max_size=12), unique=True, max_size=80)
fractions = st.floats(min_value=0.0, max_value=1.0, exclude_min=True, allow_nan=False)
seeds = st.integers(min_value=0, max_value=2**64)
configs = st.sampled_from(CONFIGS)


@settings(max_examples=60, deadline=None)
@given(ids=id_lists, config=configs, fraction=fractions, seed=seeds)
def test_exact_count_and_subset(ids, config, fraction, seed):
    picked = select_subset(ids, config, fraction, seed)
    assert len(picked) == round(fraction * len(ids))
    assert len(set(picked)) == len(picked) and set(picked) <= set(ids)
    assert picked == [i for i in ids if i in set(picked)]  # input order kept


@settings(max_examples=60, deadline=None)
@given(ids=id_lists, config=configs, fraction=fractions, seed=seeds, data=st.data())
def test_order_independent(ids, config, fraction, seed, data):
    shuffled = data.draw(st.permutations(ids))
    assert set(select_subset(ids, config, fraction, seed)) == set(
        select_subset(shuffled, config, fraction, seed)
    )


@settings(max_examples=40, deadline=None)
@given(ids=id_lists, config=configs, seed=seeds, a=fractions, b=fractions)
def test_nested_in_fraction(ids, config, seed, a, b):
    small, large = sorted((a, b))
    assert set(select_subset(ids, config, small, seed)) <= set(select_subset(ids, config, large, seed))


@settings(max_examples=30, deadline=None)
@given(ids=id_lists, seed=seeds, fraction=fractions)
def test_configurations_independent_of_each_other(ids, seed, fraction):
    """A configuration's draw is the same alone or among others, in any order of configurations."""
    alone = {c: select_subset(ids, c, fraction, seed) for c in CONFIGS}
    together = {c: select_subset(ids, c, fraction, seed) for c in reversed(CONFIGS)}
    assert alone == together


def test_each_configuration_draws_its_own_subset():
    ids = [f"B{i // 100}/img_{i}" for i in range(1000)]
    draws = {c: frozenset(select_subset(ids, c, 0.2, seed=0)) for c in CONFIGS}
    assert len(set(draws.values())) == len(CONFIGS)
    # occlusion-10/20/30 share a random stream but not a selection
    overlap = len(draws["occlusion-10"] & draws["occlusion-20"]) / 200
    assert 0.05 < overlap < 0.4  # ~0.2 expected for independent draws
    assert draws["motion-15"] != frozenset(select_subset(ids, "motion-15", 0.2, seed=1))


def test_rounding_and_edges():
    ids = [str(i) for i in range(10)]
    assert len(select_subset(ids, "defocus-7", 0.25)) == round(2.5) == 2
    assert len(select_subset(ids, "defocus-7", 0.35)) == 4
    assert select_subset(ids, "defocus-7", 1.0) == ids
    assert select_subset([], "defocus-7") == []


@pytest.mark.parametrize("fraction", [0, -0.1, 1.01, float("nan"), float("inf")])
def test_bad_fraction(fraction):
    with pytest.raises(ValueError, match="fraction"):
        select_subset(["a"], "defocus-7", fraction)


def test_bad_arguments():
    with pytest.raises(ValueError, match="unknown corruption configuration 'blur-3'"):
        select_subset(["a"], "blur-3")
    with pytest.raises(ValueError, match="'a' is repeated"):
        select_subset(["a", "b", "a"], "defocus-7")
    with pytest.raises(TypeError, match="ids must be str"):
        select_subset([1, 2], "defocus-7")
    with pytest.raises(ValueError, match="seed"):
        select_subset(["a"], "defocus-7", seed=-1)
    with pytest.raises(TypeError, match="fraction"):
        select_subset(["a"], "defocus-7", fraction="0.2")
    with pytest.raises(ValueError, match="unknown corruption configuration 'clean'"):
        sample_rng(0, "a", "clean")
    with pytest.raises(TypeError, match="sample_id"):
        sample_rng(0, 3, "defocus-7")


def test_sample_rng_streams():
    draws = {c: sample_rng(0, "B1Counting/BB_left_0", c).random(4).tolist() for c in CONFIGS}
    assert draws["occlusion-10"] == draws["occlusion-20"] == draws["occlusion-30"]
    others = [tuple(v) for c, v in draws.items() if not c.startswith("occlusion")]
    assert len(set(others)) == len(others)
    assert sample_rng(0, "a", "motion-15").random() != sample_rng(0, "b", "motion-15").random()
    assert sample_rng(0, "a", "motion-15").random() != sample_rng(1, "a", "motion-15").random()
    assert sample_rng(0, "a", "motion-15").random() == sample_rng(0, "a", "motion-15").random()


_CHILD = """
import json, sys
sys.modules["torch"] = None  # albumentations imports torch when present: seconds we do not need
from keypoint_corrupt.datasets import sample_rng, select_subset, transform_seed
ids = [f"img{i}" for i in range(50)]
print(json.dumps({
    "subset": select_subset(ids, "noise-gaussian", 0.2, 7),
    "rng": sample_rng(7, "img3", "occlusion-20").random(3).tolist(),
    "tseed": transform_seed(7, "img3", "clean"),
}))
"""


def test_identical_across_processes():
    """Another interpreter with another hash seed draws exactly the same (no use of ``hash()``)."""
    ids = [f"img{i}" for i in range(50)]
    here = {
        "subset": select_subset(ids, "noise-gaussian", 0.2, 7),
        "rng": sample_rng(7, "img3", "occlusion-20").random(3).tolist(),
        "tseed": transform_seed(7, "img3", "clean"),
    }
    env = {**os.environ, "PYTHONHASHSEED": "12345"}
    out = subprocess.run([sys.executable, "-c", _CHILD], env=env, capture_output=True, text=True, check=True)
    assert json.loads(out.stdout) == here


def test_golden_values():
    """Pinned outputs: a change here changes every published subset and noise pattern."""
    ids = [f"B1Counting/BB_left_{i}" for i in range(10)]
    assert select_subset(ids, "defocus-7", 0.2, 0) == GOLDEN_SUBSET
    np.testing.assert_allclose(sample_rng(0, ids[0], "occlusion-10").random(2), GOLDEN_RNG, rtol=0, atol=0)
    assert transform_seed(0, ids[0], "clean") == GOLDEN_TSEED
    assert 0 <= GOLDEN_TSEED < 2**32


GOLDEN_SUBSET = ["B1Counting/BB_left_1", "B1Counting/BB_left_8"]
GOLDEN_RNG = [0.6851774562235522, 0.41372257885936914]
GOLDEN_TSEED = 2349915143
