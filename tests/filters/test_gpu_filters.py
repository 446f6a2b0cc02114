"""GPU filters (device="gpu"): chunked results identical to whole-array cupyx.scipy.ndimage."""

from __future__ import annotations

import numpy as np
import pytest

import voxzarr as vz
from voxzarr.filters import apply_filter

pytestmark = pytest.mark.gpu

W = (np.arange(12, dtype=float).reshape(2, 3, 2) - 5) / 7
CASES = [
    ("gaussian", {"sigma": 2.0}),
    ("gaussian", {"sigma": (1.0, 0.0, 1.5), "order": (0, 1, 2)}),
    ("gaussian_laplace", {"sigma": 1.2}),
    ("gaussian_gradient_magnitude", {"sigma": 0.8}),
    ("difference_of_gaussians", {"sigma_low": 1.0, "sigma_high": 2.0}),
    ("uniform", {"size": (3, 4, 2)}),
    ("median", {"size": 3}),
    ("minimum", {"size": (2, 3, 1)}),
    ("maximum", {"size": 3}),
    ("sobel", {"axis": 0}),
    ("prewitt", {"axis": -1}),
    ("laplace", {}),
    ("convolve", {"weights": W}),
    ("correlate", {"weights": W, "origin": (0, -1, -1)}),
]


def _whole_cupyx(arr, name, params, mode):
    """The whole-array cupyx.scipy.ndimage result (the GPU reference)."""
    import cupy
    import cupyx.scipy.ndimage as cndi

    x = cupy.asarray(arr)
    p = dict(params)
    if name == "difference_of_gaussians":
        f = cupy.float64 if x.dtype == cupy.float64 else cupy.float32
        xf = x.astype(f)
        out = (cndi.gaussian_filter(xf, p["sigma_low"], mode=mode)
               - cndi.gaussian_filter(xf, p["sigma_high"], mode=mode))
    elif name in ("median", "minimum", "maximum", "uniform"):
        out = getattr(cndi, f"{name}_filter")(x, mode=mode, **p)
    elif name == "gaussian":
        out = cndi.gaussian_filter(x, mode=mode, **p)
    elif name in ("convolve", "correlate"):
        out = getattr(cndi, name)(x, cupy.asarray(p.pop("weights")), mode=mode, **p)
    else:
        out = getattr(cndi, name)(x, mode=mode, **p)
    return out.get()


def _image(dtype, seed=0, shape=(24, 24, 24)):
    rng = np.random.default_rng(seed)
    if np.dtype(dtype).kind == "u":
        arr = rng.integers(0, np.iinfo(dtype).max, shape, endpoint=True).astype(dtype)
    else:
        arr = (rng.standard_normal(shape) * 100).astype(dtype)
    return arr


# cupyx compiles a kernel per array shape, dtype and mode (about 0.1-1 s each): a 24^3 image
# in 12^3 chunks gives blocks of one shape, so each case compiles little
def _check(name, params, dtype, mode):
    arr = _image(dtype)
    img = vz.from_array(arr, "zyx").chunk(12)
    got = apply_filter(img, name, mode=mode, device="gpu", halo="never", **params).values
    want = _whole_cupyx(arr, name, params, mode)
    assert got.dtype == want.dtype
    np.testing.assert_array_equal(got, want)


@pytest.mark.parametrize("name,params", CASES, ids=[f"{n}{i}" for i, (n, _) in
                                                    enumerate(CASES)])
def test_gpu_chunked_equals_whole_cupyx(name, params):
    _check(name, params, "float32", "reflect")


@pytest.mark.parametrize("mode", ["nearest", "mirror", "constant", "wrap"])
@pytest.mark.parametrize("name,params", [("gaussian", {"sigma": 2.0}),
                                         ("median", {"size": 3})])
def test_gpu_chunked_equals_whole_cupyx_modes_uint16(name, params, mode):
    _check(name, params, "uint16", mode)


@pytest.mark.parametrize("dtype", ["uint8", "float64"])
def test_gpu_from_halo_store_equals_whole_cupyx(tmp_path, dtype):
    arr = _image(dtype, seed=1)
    path = tmp_path / "g.ome.zarr"
    vz.from_array(arr, "zyx").vox.to_ome_zarr(path, chunks=(12, 12, 12), progress=False)
    vz.open_image(path).vox.to_halo(path, for_filter=("gaussian", {"sigma": 1.5}),
                                    progress=False)
    img = vz.open_image(path)
    got = img.vox.filter("gaussian", sigma=1.5, mode="nearest", device="gpu",
                         halo="require").values
    np.testing.assert_array_equal(got, _whole_cupyx(arr, "gaussian", {"sigma": 1.5},
                                                    "nearest"))


def test_gpu_close_to_cpu_for_float32():
    """CPU and GPU differ only by float rounding (documented tolerance: 1e-5 relative)."""
    arr = _image("float32", seed=2)
    img = vz.from_array(arr, "zyx").chunk(12)
    gpu = img.vox.filter("gaussian", sigma=2.0, device="gpu").values
    cpu = img.vox.filter("gaussian", sigma=2.0, device="cpu").values
    np.testing.assert_allclose(gpu, cpu, rtol=1e-5, atol=1e-5 * float(np.abs(cpu).max()))


def test_gpu_cupy_backed_input_stays_on_gpu():
    import cupy
    import dask.array as da

    arr = _image("float32", seed=3)
    data = da.from_array(cupy.asarray(arr), chunks=12)
    out = vz.from_array(data, "zyx").vox.filter("median", size=3, device="gpu")
    res = out.data.compute()
    assert isinstance(res, cupy.ndarray)
    np.testing.assert_array_equal(res.get(), _whole_cupyx(arr, "median", {"size": 3},
                                                          "reflect"))


@pytest.mark.parametrize("mode", ["reflect", "wrap"])
@pytest.mark.parametrize("chunks", [12, 24])
def test_gpu_array_in_gpu_memory_is_filtered_at_call_time(mode, chunks):
    """CuPy data that is one array in GPU memory runs now, as one block: no graph to
    schedule, and the same values as whole-array cupyx (wrap: periodic edges too)."""
    import cupy
    import dask.array as da

    arr = _image("float32", seed=4)
    data = da.from_array(cupy.asarray(arr), chunks=chunks)
    out = vz.from_array(data, "zyx").vox.filter("gaussian", sigma=2.0, mode=mode,
                                                device="gpu")
    assert out.data.npartitions == 1
    assert out.data.name.startswith("voxzarr-view-")  # a view of the result, not a graph
    res = out.data.compute()
    assert isinstance(res, cupy.ndarray)
    np.testing.assert_array_equal(res.get(), _whole_cupyx(arr, "gaussian", {"sigma": 2.0},
                                                          mode))
