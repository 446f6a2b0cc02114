"""GPU (CuPy) resampling gives the CPU result within float32 rounding. Marked ``gpu``."""

from __future__ import annotations

import dask.array as da
import numpy as np
import pytest

import voxzarr as vz
from voxzarr import ndinterp

pytestmark = pytest.mark.gpu
cupy = pytest.importorskip("cupy")


def _image(dtype, shape=(12, 70, 66), chunks=(5, 32, 30)):
    rng = np.random.default_rng(0)
    if np.issubdtype(dtype, np.integer):
        data = rng.integers(0, 3000, shape).astype(dtype)
    else:
        data = (rng.random(shape) * 100).astype(dtype)
    img = vz.from_array(da.from_array(data, chunks=chunks), "zyx",
                        voxel_size={"z": 1.0, "y": 0.202, "x": 0.202})
    return data, img


@pytest.mark.parametrize("mode", ndinterp.MODES)
@pytest.mark.parametrize("voxel_size", [None, 0.5])
def test_isotropic_gpu_equals_cpu_float32(mode, voxel_size):
    data, img = _image(np.float32)
    cpu = img.vox.to_isotropic(voxel_size, mode=mode, device="cpu").values
    gpu = img.vox.to_isotropic(voxel_size, mode=mode, device="gpu")
    assert isinstance(gpu.data._meta, np.ndarray)  # numpy in, numpy out
    np.testing.assert_allclose(gpu.values, cpu, rtol=1e-5, atol=1e-5 * np.ptp(data))


@pytest.mark.parametrize("order", [0, 1, 3])
def test_isotropic_gpu_uint16_rounded_and_clipped(order):
    data, img = _image(np.uint16)
    cpu = img.vox.to_isotropic(0.4, order=order, device="cpu").values
    gpu = img.vox.to_isotropic(0.4, order=order, device="gpu").values
    assert gpu.dtype == np.uint16
    diff = np.abs(gpu.astype(np.int64) - cpu)
    assert diff.max() <= 1  # float32 on the GPU: a half-integer may round the other way
    assert np.mean(diff) < 1e-3


def test_uint8_overshoot_clipped_on_gpu():
    data = np.zeros((4, 16, 16), np.uint8)
    data[:, :, 8:] = 250
    img = vz.from_array(data, "zyx", voxel_size=1.0)
    cpu = img.vox.resample({"x": 0.37}, order=3, anti_alias=False, device="cpu").values
    gpu = img.vox.resample({"x": 0.37}, order=3, anti_alias=False, device="gpu").values
    assert gpu.max() == 255 and gpu.min() == 0
    assert np.abs(gpu.astype(int) - cpu).max() <= 1


@pytest.mark.parametrize("order", [0, 1, 3])
def test_rotate_gpu_equals_cpu(order):
    data, img = _image(np.float32)
    cpu = img.vox.rotate(20.0, order=order, device="cpu").values
    gpu = img.vox.rotate(20.0, order=order, device="gpu").values
    np.testing.assert_allclose(gpu, cpu, atol=1e-4 * np.ptp(data))


def test_cupy_chunks_stay_on_gpu():
    from scipy import ndimage as ndi

    rng = np.random.default_rng(1)
    host = rng.random((20, 24, 22)).astype(np.float32)
    dev = da.from_array(cupy.asarray(host), chunks=(7, 9, 8), asarray=False)
    m = np.diag([0.5, 1.3, 0.8])
    out = ndinterp.affine_transform(dev, m, [0.2, -1.0, 0.5], (30, 20, 25), 1, (9, 9, 9),
                                    mode="reflect")
    res = out.compute()
    assert isinstance(res, cupy.ndarray)
    ref = ndi.affine_transform(host, m, [0.2, -1.0, 0.5], output_shape=(30, 20, 25), order=1,
                               mode="reflect")
    np.testing.assert_allclose(res.get(), ref, atol=1e-5)
    img = vz.from_array(dev, "zyx", voxel_size={"z": 1.0, "y": 0.5, "x": 0.5})
    iso = img.vox.to_isotropic()
    assert isinstance(iso.data.compute(), cupy.ndarray)  # cupy in, cupy out


def _tables(shape, out_shape, order, mode):
    """Tap tables for axes whose length changes; unchanged axes pass through (``None``)."""
    tables = []
    for ax, (n, m) in enumerate(zip(shape, out_shape, strict=True)):
        if n == m:
            tables.append(None)
            continue
        coords = np.arange(m) * (n / m) * 1.03 - 0.7 + 0.3 * ax
        idx, w = ndinterp.taps_1d(coords, n, order, mode)
        tables.append((idx, w))
    return tables


@pytest.mark.parametrize(("src", "dst"), [("float32", "float32"), ("uint16", "uint16"),
                                          ("float32", "int8")])
@pytest.mark.parametrize(("shape", "out_shape"), [
    ((9, 33, 64), (21, 33, 64)),  # x passes through, vector loads (z only)
    ((9, 33, 41), (21, 50, 41)),  # x passes through, odd rows: scalar loads
    ((2, 9, 33, 40), (2, 21, 30, 52)),  # all three axes, batch axis in front
    ((30, 70), (30, 101)),  # 2-D, x only
])
@pytest.mark.parametrize(("mode", "order"), [("nearest", 1), ("constant", 1), ("nearest", 0)])
def test_fast_kernels_equal_reference_bitwise(src, dst, shape, out_shape, mode, order):
    rng = np.random.default_rng(2)
    data = cupy.asarray((rng.random(shape) * 300 - 20).astype(src))
    tables = _tables(shape, out_shape, order, mode)
    cdtype = ndinterp._compute_dtype(np.dtype(src), np.dtype(dst), True)
    # an unaligned view too: the row kernel must fall back to narrower loads
    flat = cupy.empty(data.size + 1, dtype=data.dtype)
    flat[1:] = data.ravel()
    for region in (data, flat[1:].reshape(shape)):
        ref = ndinterp._gpu_separable(region, tables, 7.5, np.dtype(dst), cdtype,
                                      reference=True)
        got = ndinterp._gpu_separable(region, tables, 7.5, np.dtype(dst), cdtype)
        assert got.shape == ref.shape == out_shape
        u = f"u{got.dtype.itemsize}"
        assert bool((got.view(u) == ref.view(u)).all())
    assert float(ref.std()) > 0  # not a constant result


@pytest.mark.parametrize("order", [2, 3, 5])
@pytest.mark.parametrize("prefilter", [True, False])
@pytest.mark.parametrize("axes", [(1, 2), (0, 2)])
def test_rotate_plane_by_plane_on_gpu_matches_scipy(order, prefilter, axes):
    """scipy rotates N-D data plane by plane; the GPU path must not spline the other axis."""
    from scipy import ndimage as ndi

    rng = np.random.default_rng(3)
    data = rng.random((6, 20, 24))
    gpu = da.from_array(cupy.asarray(data), chunks=(2, 7, 9))
    out = ndinterp.rotate(gpu, 30, axes=axes, reshape=False, order=order, prefilter=prefilter,
                          mode="reflect").compute()
    ref = ndi.rotate(data, 30, axes=axes, reshape=False, order=order, prefilter=prefilter,
                     mode="reflect")
    np.testing.assert_allclose(cupy.asnumpy(out), ref, rtol=0, atol=1e-6)


@pytest.mark.parametrize("order", [2, 3, 5])
@pytest.mark.parametrize("mode", ["reflect", "grid-mirror", "nearest", "mirror"])
@pytest.mark.parametrize("n", [2, 5, 16, 40])
def test_short_axes_prefilter_like_scipy_on_gpu(order, mode, n):
    """cupyx starts the spline recursion differently on lines of <= 3 * order + 1 samples;
    voxzarr's GPU path gives scipy's numbers there too."""
    from scipy import ndimage as ndi

    rng = np.random.default_rng(n)
    data = rng.random((n, 9, 11))
    gpu = da.from_array(cupy.asarray(data), chunks=(n, 5, 6))
    out = ndinterp.spline_filter(gpu, order, mode=mode).compute()
    np.testing.assert_allclose(cupy.asnumpy(out), ndi.spline_filter(data, order, mode=mode),
                               rtol=0, atol=1e-9)
    m = np.array([[1.0, 0.0, 0.0], [0.0, 0.9, 0.2], [0.0, -0.2, 0.9]])
    out = ndinterp.affine_transform(gpu, m, [0.3, 0.5, 1.0], order=order, mode=mode).compute()
    ref = ndi.affine_transform(data, m, [0.3, 0.5, 1.0], order=order, mode=mode)
    np.testing.assert_allclose(cupy.asnumpy(out), ref, rtol=0, atol=1e-9)


@pytest.mark.parametrize("chunks", [(8, 64, 64), (16, 64, 64)])
def test_array_in_gpu_memory_is_resampled_at_call_time(chunks, monkeypatch):
    """One CuPy array in GPU memory, one output block: computed now (a view of the result,
    no graph to schedule), with the values of the lazy path."""
    rng = np.random.default_rng(5)
    host = rng.random((16, 64, 64)).astype(np.float32)
    dev = da.from_array(cupy.asarray(host), chunks=chunks, asarray=False)
    img = vz.from_array(dev, "zyx", voxel_size={"z": 1.0, "y": 0.25, "x": 0.25})
    now = img.vox.to_isotropic(device="gpu")
    assert now.data.npartitions == 1
    assert now.data.name.startswith("voxzarr-view-")
    got = now.data.compute()
    assert isinstance(got, cupy.ndarray)
    monkeypatch.setenv("VOXZARR_GPU_BLOCKS", "0")  # the lazy, chunked path
    lazy = img.vox.to_isotropic(device="gpu")
    assert not lazy.data.name.startswith("voxzarr-view-")
    want = lazy.data.compute()
    np.testing.assert_array_equal(got.get(), want.get())
    np.testing.assert_array_equal(now.coords["z"].values, lazy.coords["z"].values)
