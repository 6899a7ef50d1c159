"""How ``materialize`` groups work units into pool tasks."""

from __future__ import annotations

from hypothesis import example, given
from hypothesis import strategies as st

from keypoint_corrupt.materialize.run import _UNITS_PER_TASK, _batches


@example(n=1000, workers=2)
@given(n=st.integers(0, 3000), workers=st.integers(2, 64))
def test_batches_are_full_then_shrink_to_single_units(n, workers):
    units = list(range(n))
    batches = list(_batches(units, workers))
    sizes = [len(b) for b in batches]
    assert [u for b in batches for u in b] == units  # every unit once, in order
    assert all(1 <= size <= _UNITS_PER_TASK for size in sizes)
    assert sizes == sorted(sizes, reverse=True)  # tasks only shrink towards the end
    if n >= 4 * workers * _UNITS_PER_TASK:  # plenty left: full tasks, few per unit
        assert sizes[0] == _UNITS_PER_TASK
    # the last units go one per task, so that no worker waits on another's long batch
    tail = min(n, 4 * workers)
    assert sizes[len(sizes) - tail :] == [1] * tail
