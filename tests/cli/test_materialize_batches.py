"""How ``materialize`` groups work units into pool tasks."""

from __future__ import annotations

from hypothesis import given
from hypothesis import strategies as st

from keypoint_corrupt.materialize import run as materialize_run


@given(n=st.integers(0, 3000), workers=st.integers(2, 64))
def test_batches_cover_every_unit_once_in_order(n, workers):
    units = list(range(n))
    batches = list(materialize_run._batches(units, workers))
    assert [u for b in batches for u in b] == units
    assert all(1 <= len(b) <= materialize_run._UNITS_PER_TASK for b in batches)
    # the last units go one per task, so that no worker waits on another's long batch
    tail = min(n, 4 * workers)
    assert all(len(b) == 1 for b in batches[len(batches) - tail :])


def test_batches_shrink_to_single_units_at_the_end():
    sizes = [len(b) for b in materialize_run._batches(list(range(1000)), 2)]
    assert sizes[0] == materialize_run._UNITS_PER_TASK
    assert sizes[-8:] == [1] * 8
