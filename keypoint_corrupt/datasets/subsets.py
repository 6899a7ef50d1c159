"""Deterministic subset draws and per-sample random streams.

Everything here is keyed by a cryptographic hash (BLAKE2b) of explicit values, never by
Python's ``hash()`` (salted per process) or by global random state, so results are the same
in every process, DataLoader worker and machine, and do not depend on iteration order.
"""

from __future__ import annotations

import hashlib
from collections import Counter
from collections.abc import Iterable

import numpy as np

from keypoint_corrupt._validation import check_float, check_int
from keypoint_corrupt.registry import get_config

__all__ = ["sample_rng", "select_subset", "transform_seed"]

_PERSON = b"keypoint_corrup"  # BLAKE2b personalisation (max 16 bytes): our own hash domain


def _hasher(*parts: object) -> hashlib.blake2b:
    """Start a BLAKE2b state fed with length-prefixed parts (so ``("a", "bc")`` != ``("ab", "c")``)."""
    h = hashlib.blake2b(digest_size=32, person=_PERSON)
    for part in parts:
        _feed(h, part)
    return h


def _feed(h: hashlib.blake2b, part: object) -> None:
    data = str(part).encode("utf-8")
    h.update(len(data).to_bytes(8, "little"))
    h.update(data)


def _check_seed(seed: object) -> int:
    return check_int(seed, "seed", minimum=0)


def select_subset(ids: Iterable[str], config: str, fraction: float = 0.2, seed: int = 0) -> list[str]:
    """Draw the ids that configuration ``config`` corrupts.

    Every id gets a key ``BLAKE2b(seed, config, id)``; the ``round(fraction * n)`` ids with
    the smallest keys are selected. The selection therefore depends only on ``seed``, the
    configuration *name* and the *set* of ids: not on their order, not on which other
    configurations are drawn, and each configuration draws independently (occlusion-10/20/30
    select different images even though they share a random stream per image).

    Parameters
    ----------
    ids : iterable of str
        Unique sample ids.
    config : str
        A registered configuration name (see :func:`keypoint_corrupt.get_config`).
    fraction : float, default 0.2
        Share of ids to select, in (0, 1]. The count is Python's ``round(fraction * n)``
        (half to even: 2.5 -> 2).
    seed : int, default 0
        Non-negative draw seed.

    Returns
    -------
    list of str
        The selected ids, in their input order.

    Raises
    ------
    ValueError
        Unknown ``config``, ``fraction`` outside (0, 1], negative ``seed`` or repeated ids.
    TypeError
        Non-str ids or a non-integer seed.

    Examples
    --------
    >>> ids = [f"img{i}" for i in range(10)]
    >>> picked = select_subset(ids, "motion-30", 0.2, seed=0)
    >>> len(picked), set(picked) == set(select_subset(ids[::-1], "motion-30", 0.2, seed=0))
    (2, True)
    """
    ids = list(ids)
    get_config(config)  # unknown names fail here, naming the valid ones
    frac = check_float(fraction, "fraction", low=0.0, high=1.0, low_inclusive=False)
    seed = _check_seed(seed)
    for i in ids:
        if not isinstance(i, str):
            raise TypeError(f"ids must be str, got {i!r} ({type(i).__name__})")
    if len(set(ids)) != len(ids):
        dup = next(i for i, c in Counter(ids).items() if c > 1)
        raise ValueError(f"ids must be unique; {dup!r} is repeated")
    k = round(frac * len(ids))
    base = _hasher("select_subset", seed, config)
    keys = []
    for i in ids:
        h = base.copy()
        _feed(h, i)
        keys.append((h.digest(), i))  # the id breaks (astronomically unlikely) key ties
    chosen = {i for _, i in sorted(keys)[:k]}
    return [i for i in ids if i in chosen]


def sample_rng(seed: int, sample_id: str, config: str) -> np.random.Generator:
    """Return the random generator of one (sample, configuration) pair.

    Seeded from ``BLAKE2b(seed, sample_id, rng_stream)`` through a
    :class:`numpy.random.SeedSequence` into an explicit PCG64, so it is identical in every
    process and on every machine (for a given NumPy version). ``rng_stream`` is the
    configuration's stream, not its name: occlusion-10/20/30 share the ``"occlusion"``
    stream, so on one image they draw the same occluder centre.

    Parameters
    ----------
    seed : int
        Non-negative dataset seed.
    sample_id : str
        The sample's stable id.
    config : str
        A registered configuration name.

    Examples
    --------
    >>> a = sample_rng(0, "B1Counting/BB_left_0", "occlusion-10").random()
    >>> b = sample_rng(0, "B1Counting/BB_left_0", "occlusion-30").random()
    >>> c = sample_rng(0, "B1Counting/BB_left_0", "motion-15").random()
    >>> a == b, a == c
    (True, False)
    """
    stream = get_config(config).rng_stream
    seed = _check_seed(seed)
    if not isinstance(sample_id, str):
        raise TypeError(f"sample_id must be a str, got {sample_id!r}")
    digest = _hasher("sample_rng", seed, sample_id, stream).digest()
    seq = np.random.SeedSequence(int.from_bytes(digest, "little"))
    return np.random.Generator(np.random.PCG64(seq))


def transform_seed(seed: int, sample_id: str, config: str) -> int:
    """Return a stable 32-bit seed for the user transform applied to one dataset item.

    Keyed by the configuration *name* (``"clean"`` included), so every item of a
    :class:`~keypoint_corrupt.datasets.CorruptedDataset` gets its own augmentation draw,
    the same in every DataLoader worker.

    Examples
    --------
    >>> transform_seed(0, "a", "clean") == transform_seed(0, "a", "clean")
    True
    """
    seed = _check_seed(seed)
    digest = _hasher("transform_seed", seed, sample_id, config).digest()
    return int.from_bytes(digest[:4], "little")
