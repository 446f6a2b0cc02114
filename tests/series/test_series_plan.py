"""Planning an image <-> series transpose: block rule, memory model, tasks, amplification."""

from __future__ import annotations

import math

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from voxzarr.errors import VoxzarrError
from voxzarr.series.plan import (
    amplification,
    choose_block,
    parse_memory,
    plan_to_images,
    plan_to_series,
)


def _tiles(task, unit, shape) -> bool:
    """Each task extent is whole units, or the whole axis."""
    return all(r % u == 0 or r == n for r, u, n in zip(task, unit, shape, strict=True))


def _frames(t: int, *spatial: int) -> tuple[tuple[int, ...], ...]:
    """Dask chunks of a source stored one whole frame per chunk."""
    return ((1,) * t, *[(n,) for n in spatial])


def test_parse_memory_units():
    assert parse_memory("512MB") == 512_000_000
    assert parse_memory("2GiB") == 2 * 2**30
    assert parse_memory(4096) == 4096
    for bad in ("lots", "-5MB", 0):
        with pytest.raises(VoxzarrError) as err:
            parse_memory(bad)
        assert err.value.field == "memory"


def test_block_rule_examples():
    # 1000 uint16 frames: 2000 B per voxel series -> 512 voxels of 1 MiB -> 16 x 32
    assert choose_block("tyx", (1000, 512, 512), 2) == (16, 32)
    assert choose_block("tzyx", (1000, 64, 512, 512), 2) == (8, 8, 8)
    # a short movie: the block is capped by the image itself
    assert choose_block("tyx", (48, 130, 130), 2) == (64, 130)
    assert choose_block("tyx", (5, 20, 30), 2) == (20, 30)
    # one series longer than the target: one voxel per chunk
    assert choose_block("tx", (10**6, 50), 4) == (1,)


def test_benchmark_plan_is_direct_with_two_tasks():
    plan = plan_to_series("tyx", (1000, 512, 512), 2, budget=parse_memory("512MB"),
                          source_chunks=_frames(1000, 512, 512), threads=2)
    assert plan.chunks == (1000, 16, 32)
    assert plan.shards is None
    assert [p.name for p in plan.phases] == ["direct"]
    assert plan.phases[0].task_shape == (1000, 256, 512)
    assert plan.amplification == 2.0
    assert plan.peak <= plan.budget


def test_small_budget_stages_through_scratch():
    plan = plan_to_series("tyx", (1000, 512, 512), 2, budget=parse_memory("64MB"),
                          source_chunks=_frames(1000, 512, 512), threads=2)
    assert [p.name for p in plan.phases] == ["stage", "write"]
    stage, write = plan.phases
    g = plan.staging_chunks
    assert stage.task_shape[1:] == (512, 512)  # whole frames: each source chunk read once
    assert write.task_shape[0] == 1000  # whole series
    assert amplification(plan.shape, stage.task_shape, _frames(1000, 512, 512)) == 1.0
    assert _tiles(stage.task_shape, g, plan.shape)
    assert _tiles(write.task_shape, g, plan.shape)
    assert plan.peak <= plan.budget


def test_many_chunks_get_shards():
    plan = plan_to_series("tyx", (1000, 4096, 4096), 2, budget=parse_memory("1GB"),
                          source_chunks=_frames(1000, 4096, 4096), threads=2)
    assert plan.chunks == (1000, 16, 32)
    assert plan.shards is not None and plan.shards[0] == 1000
    assert all(s % c == 0 for s, c in zip(plan.shards, plan.chunks, strict=True))
    assert math.prod(plan.shards) * 2 <= 64 * 2**20


def test_amplification_counts_decodes():
    assert amplification((10, 100), (10, 30), ((10,), (100,))) == 4.0
    assert amplification((10, 100), (10, 50), ((10,), (50, 50))) == 1.0
    assert amplification((10, 100), (10, 40), ((10,), (50, 50))) == 2.0  # 50 + 100 + 50
    assert amplification((10, 100), (10, 40), None) == 1.0


def test_budget_smaller_than_one_block_is_an_error():
    with pytest.raises(VoxzarrError, match="smaller than one series block") as err:
        plan_to_series("tyx", (48, 130, 130), 2, budget=100_000, block=(64, 64))
    assert err.value.field == "memory"
    with pytest.raises(VoxzarrError, match="smaller than one series block"):
        plan_to_series("tyx", (100_000, 4, 4), 8, budget=1_000_000)


def test_bad_dims_and_blocks():
    with pytest.raises(VoxzarrError, match="time axis"):
        plan_to_series("zyx", (4, 5, 6), 1, budget=10**6)
    with pytest.raises(VoxzarrError) as err:
        plan_to_series("tcyx", (4, 2, 5, 6), 1, budget=10**6, block={"c": 2, "y": 2})
    assert err.value.field == "block"
    with pytest.raises(VoxzarrError):
        plan_to_series("tyx", (4, 5, 6), 1, budget=10**6, block=(1, 2, 3, 4))


@settings(max_examples=60, deadline=None)
@given(
    dims=st.sampled_from(["tx", "tyx", "tzyx", "tcyx", "tczyx"]),
    data=st.data(),
    budget=st.integers(20_000, 50_000_000),
    threads=st.integers(1, 4),
    staging=st.sampled_from(["auto", True, False]),
)
def test_plans_respect_budget_and_write_whole_units(dims, data, budget, threads, staging):
    shape = tuple(data.draw(st.integers(1, 300 if d == "t" else 200), label=d) for d in dims)
    chunks = tuple(data.draw(st.integers(1, n), label=f"chunk {d}")
                   for d, n in zip(dims, shape, strict=True))
    source = tuple(tuple(min(c, n - i) for i in range(0, n, c))
                   for c, n in zip(chunks, shape, strict=True))
    for planner in (plan_to_series, plan_to_images):
        try:
            plan = planner(dims, shape, 2, budget=budget, source_chunks=source,
                           threads=threads, staging=staging)
        except VoxzarrError as err:
            assert err.field in ("memory", "staging")
            continue
        assert plan.peak <= budget
        if planner is plan_to_series:
            assert plan.chunks[0] == shape[0]
            assert plan.shards is None or plan.shards[0] == shape[0]
        unit = plan.write_unit
        last = plan.phases[-1]
        # every task of the last phase covers whole write units, so no unit has two writers
        assert _tiles(last.task_shape, unit, shape)
        covered = sum(math.prod(s.stop - s.start for s in last.region(i))
                      for i in range(last.n_tasks))
        assert covered == math.prod(shape)
        if plan.staging_chunks is not None:
            g = plan.staging_chunks
            for ph in plan.phases:
                assert _tiles(ph.task_shape, g, shape)
            assert amplification(shape, plan.phases[0].task_shape, source) == 1.0


def test_to_images_default_chunks_are_frames():
    plan = plan_to_images("tyx", (1000, 512, 512), 2, budget=parse_memory("512MB"),
                          source_chunks=((1000,), (16,) * 32, (32,) * 16), threads=2)
    assert plan.chunks == (1, 512, 512)
    assert plan.peak <= plan.budget
    regions = [plan.phases[-1].region(i) for i in range(plan.phases[-1].n_tasks)]
    starts = np.array([r[0].start for r in regions])
    assert np.all(np.diff(starts) > 0)
