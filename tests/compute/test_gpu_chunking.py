"""The GPU block policy (``_xp.gpu_block_chunks``): merge CuPy chunks into large GPU blocks.

The decision logic runs without a GPU (a stand-in CuPy meta and a given free-memory
figure); the ``gpu``-marked tests check that results with the policy equal those without.
"""

from __future__ import annotations

import types

import numpy as np
import pytest

from voxzarr import _xp

MiB = 1 << 20
GiB = 1 << 30


class _FakeCupy:
    """Passes ``_xp.is_cupy`` (checked by the type's module) without CuPy."""


_FakeCupy.__module__ = "cupy._core.fake"


def _arr(shape, chunks, dtype=np.float32, gpu=True):
    meta = _FakeCupy() if gpu else np.empty((0,) * len(shape), dtype=dtype)
    return types.SimpleNamespace(shape=tuple(shape), chunksize=tuple(chunks),
                                 dtype=np.dtype(dtype), _meta=meta)


@pytest.fixture(autouse=True)
def _policy_on(monkeypatch):
    monkeypatch.delenv(_xp.GPU_BLOCKS_ENV, raising=False)


def test_whole_array_when_it_fits_a_fraction_of_free_memory():
    a = _arr((512, 512, 512), (128, 128, 128))  # 512 MiB
    assert _xp.gpu_block_chunks(a, free=80 * GiB) == (512, 512, 512)
    # exactly at the budget still fits; just over it becomes slabs
    assert _xp.gpu_block_chunks(a, free=8 * 512 * MiB) == (512, 512, 512)
    assert _xp.gpu_block_chunks(a, free=8 * 512 * MiB - 8) == (511, 512, 512)


def test_slabs_when_the_whole_array_does_not_fit():
    a = _arr((2048, 1024, 1024), (64, 256, 256))  # 8 GiB, planes of 4 MiB
    assert _xp.gpu_block_chunks(a, free=8 * GiB) == (256, 1024, 1024)  # 1 GiB budget
    # the slab is capped at GPU_MAX_BLOCK however much memory is free
    assert _xp.gpu_block_chunks(a, free=40 * GiB) == (512, 1024, 1024)
    # leading axes: whole trailing volumes, single timepoints / channels
    a5 = _arr((10, 2, 256, 1024, 1024), (1, 1, 64, 256, 256))  # 1 GiB per (t, c)
    assert _xp.gpu_block_chunks(a5, free=16 * GiB) == (1, 2, 256, 1024, 1024)
    assert _xp.gpu_block_chunks(a5, free=8 * GiB) == (1, 1, 256, 1024, 1024)


def test_too_little_free_memory_keeps_the_chunks():
    a = _arr((2048, 1024, 1024), (64, 256, 256))
    assert _xp.gpu_block_chunks(a, free=2 * GiB - 8) is None  # budget < GPU_MIN_BLOCK
    assert _xp.gpu_block_chunks(a, free=2 * GiB) == (64, 1024, 1024)


def test_no_change_when_not_larger_than_the_chunks():
    assert _xp.gpu_block_chunks(_arr((64, 64, 64), (64, 64, 64)), free=GiB) is None
    # the caller's chunks are already larger than the slabs: keep them
    a = _arr((4096, 1024, 1024), (1024, 1024, 1024))  # 4 GiB chunks
    assert _xp.gpu_block_chunks(a, free=16 * GiB) is None


def test_host_data_and_switch_off(monkeypatch):
    assert _xp.gpu_block_chunks(_arr((64, 64, 64), (16, 16, 16), gpu=False), free=GiB) is None
    assert _xp.gpu_block_chunks(np.zeros((4, 4)), free=GiB) is None
    a = _arr((64, 64, 64), (16, 16, 16))
    assert _xp.gpu_block_chunks(a, free=GiB) == (64, 64, 64)
    for off in ("0", "off", "False"):
        monkeypatch.setenv(_xp.GPU_BLOCKS_ENV, off)
        assert _xp.gpu_block_chunks(a, free=GiB) is None
    monkeypatch.setenv(_xp.GPU_BLOCKS_ENV, "1")
    assert _xp.gpu_block_chunks(a, free=GiB) == (64, 64, 64)


def test_free_memory_figure_is_asked_for(monkeypatch):
    a = _arr((512, 512, 512), (128, 128, 128))
    monkeypatch.setattr(_xp, "gpu_free_bytes", lambda: 80 * GiB)
    assert _xp.gpu_block_chunks(a) == (512, 512, 512)
    monkeypatch.setattr(_xp, "gpu_free_bytes", lambda: 1 * GiB)
    assert _xp.gpu_block_chunks(a) is None


def test_other_shape_sizes_an_output():
    a = _arr((128, 512, 512), (128, 512, 512))  # one chunk: no input change
    assert _xp.gpu_block_chunks(a, free=80 * GiB) is None
    out = (640, 512, 512)
    assert _xp.gpu_block_chunks(a, out, free=80 * GiB) == out
    assert _xp.gpu_block_chunks(a, out, np.uint8, free=8 * 160 * MiB) == out
    assert _xp.gpu_block_chunks(a, out, free=8 * 512 * MiB) == (512, 512, 512)
    assert _xp.gpu_block_chunks(a, (0, 4, 4), free=GiB) is None


# --------------------------------------------------------------------------- on a GPU
def _cupy_image(shape, chunks, seed=0):
    cupy = pytest.importorskip("cupy")
    import dask.array as da

    import voxzarr as vz

    rng = np.random.default_rng(seed)
    host = (rng.standard_normal(shape) * 100).astype(np.float32)
    data = da.from_array(cupy.asarray(host), chunks=chunks, asarray=False)
    return host, vz.from_array(data, "zyx", voxel_size={"z": 1.0, "y": 0.25, "x": 0.25})


@pytest.mark.gpu
def test_gpu_filter_same_with_and_without_policy(monkeypatch):
    import cupy
    import cupyx.scipy.ndimage as cndi

    host, img = _cupy_image((40, 36, 44), (13, 12, 16))
    ref = cndi.gaussian_filter(cupy.asarray(host), 2.0, mode="reflect").get()
    on = img.vox.filter("gaussian", sigma=2.0, device="gpu")
    assert on.data.numblocks == (1, 1, 1)
    monkeypatch.setenv(_xp.GPU_BLOCKS_ENV, "0")
    off = img.vox.filter("gaussian", sigma=2.0, device="gpu")
    assert off.data.chunks == img.data.chunks
    np.testing.assert_array_equal(on.data.compute().get(), ref)
    np.testing.assert_array_equal(off.data.compute().get(), ref)


@pytest.mark.gpu
@pytest.mark.parametrize("order", [0, 1, 3])
def test_gpu_resample_same_with_and_without_policy(monkeypatch, order):
    host, img = _cupy_image((20, 48, 40), (7, 16, 16), seed=1)
    on = img.vox.to_isotropic(order=order, device="gpu")
    rot_on = img.vox.rotate(25.0, order=order, device="gpu")
    given = img.vox.to_isotropic(order=order, device="gpu", chunks=(16, 16, 16))
    assert on.data.numblocks == (1, 1, 1)
    assert given.data.chunksize == (16, 16, 16)
    monkeypatch.setenv(_xp.GPU_BLOCKS_ENV, "0")
    off = img.vox.to_isotropic(order=order, device="gpu")
    rot_off = img.vox.rotate(25.0, order=order, device="gpu")
    assert off.data.chunksize == (7, 16, 16)
    a, b = on.data.compute().get(), off.data.compute().get()
    np.testing.assert_allclose(a, b, rtol=0, atol=1e-5 * float(np.abs(host).max()))
    np.testing.assert_array_equal(given.data.compute().get(), a)
    np.testing.assert_allclose(rot_on.data.compute().get(), rot_off.data.compute().get(),
                               rtol=0, atol=1e-4 * float(np.ptp(host)))


class _Other(np.ndarray):
    """An array type dask's from_array does not slice eagerly (as for CuPy)."""


@pytest.mark.parametrize("kind", ["numpy", "other"])
def test_whole_array_finds_the_array_a_dask_array_slices(kind):
    import dask.array as da

    a = np.arange(6 * 8 * 10, dtype="f4").reshape(6, 8, 10)
    src = a if kind == "numpy" else a.view(_Other)
    x = da.from_array(src, chunks=(3, 4, 5))
    base = _xp.whole_array(x)
    assert base is not None and np.array_equal(base, a)
    merged = _xp.rechunk_in_memory(x, (6, 8, 10))
    assert merged.chunks == ((6,), (8,), (10,))
    assert np.array_equal(merged.compute(), a)
    # the merged view still names the array (what the GPU call-time path checks)
    again = _xp.whole_array(merged)
    assert again is not None and np.shares_memory(again, base) and again.shape == a.shape
    # anything computed on it, a slice of it, or a rechunk graph is not "the array"
    for other in (x + 1, x[1:], x.rechunk((2, 8, 10)), da.zeros((4, 4), chunks=2)):
        assert _xp.whole_array(other) is None
    assert np.array_equal(_xp.rechunk_in_memory(x[1:], (5, 8, 10)).compute(), a[1:])
