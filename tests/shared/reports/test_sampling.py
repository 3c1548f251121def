"""Bottom-k sampling by id hash: order-independent, deterministic, prefix-consistent."""

from __future__ import annotations

import numpy as np

from shared.reports.sampling import BottomK, splitmix64, unit_interval


def test_sample_does_not_depend_on_order_or_batches() -> None:
    ids = np.arange(1, 5001, dtype=np.int64)
    one = BottomK(300, seed=4)
    one.offer(ids)
    shuffled = np.random.default_rng(0).permutation(ids)
    many = BottomK(300, seed=4)
    for part in np.array_split(shuffled, 37):
        many.offer(part)
    assert one.ids().size == 300
    assert np.array_equal(one.ids(), many.ids())


def test_seed_changes_the_sample_and_prefix_is_a_smaller_sample() -> None:
    ids = np.arange(1, 2001, dtype=np.int64)
    a, b, small = BottomK(200, 1), BottomK(200, 2), BottomK(50, 1)
    for sampler in (a, b, small):
        sampler.offer(ids)
    assert len(set(a.ids().tolist()) & set(b.ids().tolist())) < 100
    assert np.array_equal(a.ids()[:50], small.ids())


def test_fewer_ids_than_capacity_keeps_all() -> None:
    sampler = BottomK(100, 0)
    sampler.offer(np.array([5, 3, 9], dtype=np.int64))
    assert sorted(sampler.ids().tolist()) == [3, 5, 9]


def test_hash_is_deterministic_and_uniform() -> None:
    values = np.arange(100_000, dtype=np.int64)
    assert np.array_equal(splitmix64(values, 7), splitmix64(values, 7))
    u = unit_interval(values, 7)
    assert u.min() >= 0.0 and u.max() < 1.0
    counts, _ = np.histogram(u, bins=10, range=(0, 1))
    assert counts.min() > 9_000 and counts.max() < 11_000
