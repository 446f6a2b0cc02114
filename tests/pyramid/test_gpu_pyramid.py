"""CuPy pyramids give the numpy results (``gaussian``: CuPy's own filter, within rounding)."""

from __future__ import annotations

import numpy as np
import pytest

import voxzarr as vz
from voxzarr.pyramid import build_pyramid
from voxzarr.testing import assert_geometry_equal, assert_image_equal

pytestmark = pytest.mark.gpu

METHODS = ["mean", "nearest", "mode", "min", "max", "median", "gaussian"]


def _volume(dtype: str, shape=(23, 70, 51), seed=0) -> np.ndarray:
    rng = np.random.default_rng(seed)
    if dtype == "float32":
        return rng.standard_normal(shape).astype(dtype)
    return rng.integers(0, 9 if dtype == "uint8" else 60000, shape).astype(dtype)


def _levels(tree):
    return [tree[k].image for k in tree.children]


def _host(a):
    return a.get() if hasattr(a, "get") else np.asarray(a)


def _assert_same(cpu: np.ndarray, gpu: np.ndarray, method: str) -> None:
    assert cpu.dtype == gpu.dtype and cpu.shape == gpu.shape
    if method != "gaussian":
        np.testing.assert_array_equal(gpu, cpu)
    elif cpu.dtype.kind == "f":
        np.testing.assert_allclose(gpu, cpu, rtol=1e-6, atol=1e-6)
    else:  # a float result within 1e-12 of a half can round either way: at most 1 apart
        diff = np.abs(gpu.astype(np.int64) - cpu.astype(np.int64))
        assert diff.max() <= 1 and np.count_nonzero(diff) <= cpu.size // 1000


@pytest.mark.parametrize("dtype", ["uint16", "float32", "uint8"])
@pytest.mark.parametrize("method", METHODS)
def test_gpu_equals_cpu(method, dtype):
    x = _volume(dtype)
    img = vz.from_array(x, "zyx", voxel_size={"z": 1.0, "y": 0.3, "x": 0.3})
    kw = dict(levels=4, method=method, chunks=(8, 16, 16))
    cpu = _levels(build_pyramid(img.chunk({"z": 8, "y": 16, "x": 16}), device="cpu", **kw))
    gpu = _levels(build_pyramid(img.chunk({"z": 8, "y": 16, "x": 16}), device="gpu", **kw))
    for a, b in zip(cpu, gpu, strict=True):
        assert_geometry_equal(a, b)
        _assert_same(a.values, _host(b.data.compute()), method)


@pytest.mark.parametrize("method", ["mean", "mode", "gaussian"])
def test_cupy_image_stays_on_the_gpu(method):
    import cupy

    x = _volume("uint16", seed=1)
    img = vz.from_array(cupy.asarray(x), "zyx", voxel_size=1.0)
    tree = build_pyramid(img, levels=3, method=method)  # auto: the data is on the GPU
    ref = _levels(build_pyramid(vz.from_array(x, "zyx", voxel_size=1.0), levels=3,
                                method=method, device="cpu"))
    for a, b in zip(ref, _levels(tree), strict=True):
        got = b.data.compute() if hasattr(b.data, "compute") else b.data
        assert isinstance(got, cupy.ndarray)
        _assert_same(a.values, got.get(), method)


def test_streamed_write_on_gpu(tmp_path):
    x = _volume("uint16", shape=(40, 130, 120), seed=2)
    img = vz.from_array(x, "zyx", voxel_size={"z": 1.0, "y": 0.25, "x": 0.25})
    img.vox.to_ome_zarr(tmp_path / "g.zarr", pyramid={"min_size": 8, "device": "gpu"},
                        chunks=32)
    img.vox.to_ome_zarr(tmp_path / "c.zarr", pyramid={"min_size": 8, "device": "cpu"},
                        chunks=32)
    g, c = vz.open_multiscale(tmp_path / "g.zarr"), vz.open_multiscale(tmp_path / "c.zarr")
    assert list(g.children) == list(c.children) and len(g.children) == 5
    for key in c.children:
        assert_image_equal(g[key].image, c[key].image)
