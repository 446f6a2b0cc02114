"""``ser.vox.series``: every analysis equals a numpy reference on the loaded array, lazily."""

from __future__ import annotations

import contextlib

import dask
import dask.array as da
import numpy as np
import pytest
import xarray as xr
from scipy.ndimage import percentile_filter

import voxzarr as vz
from voxzarr.errors import VoxzarrError

T, Y, X = 40, 6, 7
RNG = np.random.default_rng(7)
ARR = (RNG.normal(100, 10, (T, Y, X)) + np.arange(T)[:, None, None] * 0.5
       + 20 * np.sin(np.arange(T) / 3)[:, None, None] * RNG.random((Y, X)))
SIGNAL = np.sin(np.arange(T) / 3)


def _along_t(fn, arr=ARR):
    """numpy reference: ``fn`` applied to each voxel's series, result axis first."""
    out = np.apply_along_axis(fn, 0, arr)
    return out


@contextlib.contextmanager
def _no_compute():
    """Fail if anything is computed inside (the analyses must stay lazy)."""

    def refuse(*args, **kwargs):
        raise AssertionError("a lazy analysis computed")

    with dask.config.set(scheduler=refuse):
        yield


@pytest.fixture(params=["dask-split-t", "numpy"])
def ser(request):
    if request.param == "numpy":
        data = ARR
    else:  # t split over chunks on purpose: the analyses must rechunk it whole
        data = da.from_array(ARR, chunks=(15, 4, 3))
    return vz.from_array(data, dims="tyx", voxel_size={"t": 0.25, "y": 0.5, "x": 0.5},
                         translation={"t": 10.0, "y": 1.0, "x": 2.0})


def _check(result, expected, dims):
    assert result.dims == dims
    np.testing.assert_allclose(np.asarray(result.values), expected, rtol=1e-10, atol=1e-9,
                               equal_nan=True)


def _lazy(ser, fn):
    with _no_compute() if isinstance(ser.data, da.Array) else contextlib.nullcontext():
        res = fn(ser.vox.series)
    if isinstance(ser.data, da.Array):
        data = res.data if isinstance(res, xr.DataArray) else res["coherence"].data
        assert isinstance(data, da.Array)
    return res


# ----------------------------------------------------------------------------- maps
@pytest.mark.parametrize("name,ref", [
    ("mean_map", lambda a: a.mean(0)),
    ("sum_map", lambda a: a.sum(0)),
    ("var_map", lambda a: a.var(0)),
    ("std_map", lambda a: a.std(0)),
    ("min_map", lambda a: a.min(0)),
    ("max_map", lambda a: a.max(0)),
    ("median_map", lambda a: np.median(a, 0)),
])
def test_maps(ser, name, ref):
    res = _lazy(ser, lambda s: getattr(s, name)())
    _check(res, ref(ARR), ("y", "x"))
    np.testing.assert_array_equal(res["x"].values, 2.0 + 0.5 * np.arange(X))


def test_percentile_maps(ser):
    _check(_lazy(ser, lambda s: s.percentile_map(20)), np.percentile(ARR, 20, axis=0),
           ("y", "x"))
    res = _lazy(ser, lambda s: s.percentile_map([5, 50, 95]))
    _check(res, np.percentile(ARR, [5, 50, 95], axis=0), ("percentile", "y", "x"))
    assert list(res["percentile"].values) == [5, 50, 95]
    with pytest.raises(VoxzarrError):
        ser.vox.series.percentile_map(101)


def test_std_ddof(ser):
    _check(ser.vox.series.std_map(ddof=1), ARR.std(0, ddof=1), ("y", "x"))


# ----------------------------------------------------------------------------- traces
@pytest.mark.parametrize("stat", ["mean", "sum", "min", "max", "std", "var", "median"])
def test_traces(ser, stat):
    res = _lazy(ser, lambda s: s.trace(stat))
    ref = getattr(np, stat)(ARR.reshape(T, -1), axis=1)
    _check(res, ref, ("t",))
    np.testing.assert_allclose(res["t"].values, 10.0 + 0.25 * np.arange(T))


def test_mean_trace_with_mask(ser):
    mask = RNG.random((Y, X)) > 0.5
    _check(_lazy(ser, lambda s: s.mean_trace(mask)), ARR[:, mask].mean(1), ("t",))
    with pytest.raises(VoxzarrError, match="shape"):
        ser.vox.series.mean_trace(np.ones((3, 3), bool))


def test_mean_by_labels(ser):
    labels = RNG.integers(0, 4, (Y, X))
    labels[0, 0] = 9
    res = _lazy(ser, lambda s: s.mean_by_labels(labels))
    ref = np.stack([ARR[:, labels == v].mean(1) for v in (1, 2, 3, 9)])
    _check(res, ref, ("label", "t"))
    assert list(res["label"].values) == [1, 2, 3, 9]
    every = ser.vox.series.mean_by_labels(xr.DataArray(labels, dims=("y", "x")),
                                          background=None)
    assert list(every["label"].values) == [0, 1, 2, 3, 9]
    with pytest.raises(VoxzarrError, match="integers"):
        ser.vox.series.mean_by_labels(labels.astype(float))


def test_mean_by_labels_with_channels():
    arr = RNG.random((5, 2, 4, 6))
    img = vz.from_array(da.from_array(arr, chunks=(5, 1, 2, 3)), dims="tcyx")
    labels = np.arange(24).reshape(4, 6) % 3
    res = img.vox.series.mean_by_labels(labels)
    assert res.dims == ("label", "t", "c")
    ref = np.stack([arr[:, :, labels == v].mean(-1) for v in (1, 2)])
    np.testing.assert_allclose(res.values, ref)


# ----------------------------------------------------------------------------- transforms
def test_center_zscore_standardize(ser):
    _check(_lazy(ser, lambda s: s.center()), ARR - ARR.mean(0), ("t", "y", "x"))
    _check(_lazy(ser, lambda s: s.zscore()), (ARR - ARR.mean(0)) / ARR.std(0), ("t", "y", "x"))
    _check(_lazy(ser, lambda s: s.standardize()), ARR / ARR.std(0), ("t", "y", "x"))


@pytest.mark.parametrize("method", ["mean", "percentile", "window"])
def test_normalize_and_dff(ser, method):
    if method == "mean":
        base = ARR.mean(0)
    elif method == "percentile":
        base = np.percentile(ARR, 20, axis=0)
    else:
        base = _along_t(lambda y: percentile_filter(y, 20, size=5, mode="nearest"))
    kw = {"window": 5} if method == "window" else {}
    _check(_lazy(ser, lambda s: s.normalize(method, **kw)), (ARR - base) / (base + 0.1),
           ("t", "y", "x"))
    _check(_lazy(ser, lambda s: s.dff(method, **kw)), (ARR - base) / base, ("t", "y", "x"))


def test_normalize_bad_method(ser):
    with pytest.raises(VoxzarrError, match="baseline"):
        ser.vox.series.normalize("robust")
    with pytest.raises(VoxzarrError, match="window"):
        ser.vox.series.normalize("window")


@pytest.mark.parametrize("order", [1, 3, 5])
def test_detrend(ser, order):
    def ref(y):
        x = np.arange(y.size)
        p = np.polyfit(x, y, order)
        p[-1] = 0
        return y - np.polyval(p, x)

    _check(_lazy(ser, lambda s: s.detrend(order)), _along_t(ref), ("t", "y", "x"))


def test_squelch(ser):
    thr = float(np.median(ARR.max(0)))
    ref = np.where(ARR.max(0) >= thr, ARR, 0)
    _check(_lazy(ser, lambda s: s.squelch(thr)), ref, ("t", "y", "x"))


@pytest.mark.parametrize("mode", ["same", "full", "valid"])
def test_convolve(ser, mode):
    k = np.array([1.0, 2.0, 3.0, 0.5])
    res = _lazy(ser, lambda s: s.convolve(k, mode))
    _check(res, _along_t(lambda y: np.convolve(y, k, mode)), ("t", "y", "x"))
    # 'same' keeps the time coordinates; the others are placed around it
    same_t = 10.0 + 0.25 * np.arange(T)
    shift = {"same": 0, "full": -((k.size - 1) // 2), "valid": k.size - 1 - (k.size - 1) // 2}
    np.testing.assert_allclose(res["t"].values[0], same_t[0] + 0.25 * shift[mode])


# ----------------------------------------------------------------------------- analyses
def test_correlate(ser):
    ref = _along_t(lambda y: np.corrcoef(y, SIGNAL)[0, 1])
    _check(_lazy(ser, lambda s: s.correlate(SIGNAL)), ref, ("y", "x"))
    two = np.stack([SIGNAL, np.cos(np.arange(T) / 5)])
    ref2 = np.stack([_along_t(lambda y, s=s: np.corrcoef(y, s)[0, 1]) for s in two])
    _check(_lazy(ser, lambda s: s.correlate(two)), ref2, ("signal", "y", "x"))
    with pytest.raises(VoxzarrError, match="samples"):
        ser.vox.series.correlate(SIGNAL[:-1])


def _thunder_crosscorr(y, s, lag):
    """Reference written from Thunder's documented definition."""
    s = s - s.mean()
    s = s / np.linalg.norm(s)
    rows = []
    for sh in range(-lag, lag + 1):
        r = np.roll(s, sh)
        if sh < 0:
            r[sh:] = 0
        if sh > 0:
            r[:sh] = 0
        rows.append(r)
    y = y - y.mean()
    n = np.linalg.norm(y)
    return np.zeros(len(rows)) if n == 0 else np.array(rows) @ (y / n)


@pytest.mark.parametrize("lag", [0, 3])
def test_crosscorr(ser, lag):
    res = _lazy(ser, lambda s: s.crosscorr(SIGNAL, lag))
    ref = _along_t(lambda y: _thunder_crosscorr(y, SIGNAL, lag))
    if lag == 0:
        _check(res, ref[0], ("y", "x"))
    else:
        _check(res, ref, ("lag", "y", "x"))
        assert list(res["lag"].values) == list(range(-3, 4))


def test_fourier(ser):
    freq = 2

    def ref(y):
        y = y - y.mean()
        ft = np.fft.fft(y)[: T // 2]
        amp = 2 * np.abs(ft) / T
        ph = -np.pi / 2 - np.angle(ft[freq])
        return np.array([amp[freq] / np.sqrt((amp ** 2).sum()), ph + 2 * np.pi * (ph < 0)])

    res = _lazy(ser, lambda s: s.fourier(freq))
    expected = _along_t(ref)
    _check(res["coherence"], expected[0], ("y", "x"))
    _check(res["phase"], expected[1], ("y", "x"))
    with pytest.raises(VoxzarrError, match="freq"):
        ser.vox.series.fourier(T // 2)


# ----------------------------------------------------------------------------- selection
def test_between_and_select(ser):
    _check(ser.vox.series.between(5, 12), ARR[5:12], ("t", "y", "x"))
    sel = ser.vox.series.select([3, 1, 30])
    _check(sel, ARR[[3, 1, 30]], ("t", "y", "x"))
    np.testing.assert_allclose(sel["t"].values, 10.0 + 0.25 * np.array([3, 1, 30]))
    with pytest.raises(VoxzarrError):
        ser.vox.series.select([T])


def test_subset(ser):
    std = ARR.std(0)
    thresh = float(np.median(std))
    res = ser.vox.series.subset(5, thresh=thresh, stat="std", seed=3)
    assert res.dims == ("voxel", "t") and res.sizes["voxel"] == 5
    ys = ((res["y"].values - 1.0) / 0.5).round().astype(int)
    xs = ((res["x"].values - 2.0) / 0.5).round().astype(int)
    assert np.all(std[ys, xs] > thresh)
    np.testing.assert_allclose(res.values, ARR[:, ys, xs].T)
    # same seed, same voxels; more than qualify gives all that qualify
    again = ser.vox.series.subset(5, thresh=thresh, stat="std", seed=3)
    np.testing.assert_array_equal(again["x"].values, res["x"].values)
    everything = ser.vox.series.subset(10_000, thresh=thresh)
    assert everything.sizes["voxel"] == int((std > thresh).sum())


# ----------------------------------------------------------------------------- map
def test_map_scalar_series_and_other_length(ser):
    _check(ser.vox.series.map(np.ptp), np.ptp(ARR, 0), ("y", "x"))
    res = ser.vox.series.map(lambda y: y - y[0])
    _check(res, ARR - ARR[0], ("t", "y", "x"))
    np.testing.assert_allclose(res["t"].values, ser["t"].values)
    hist = ser.vox.series.map(lambda y: np.histogram(y, bins=4, range=(50, 150))[0])
    _check(hist, _along_t(lambda y: np.histogram(y, bins=4, range=(50, 150))[0]),
           ("output", "y", "x"))
    vec = _lazy(ser, lambda s: s.map(lambda b: b[..., ::2].mean(-1), vectorized=True,
                                     length=None, dtype=np.float64))
    _check(vec, ARR[::2].mean(0), ("y", "x"))


def test_series_from_a_series_store(tmp_path):
    img = vz.from_array(ARR.astype(np.float32), dims="tyx")
    img.vox.to_series(tmp_path / "s.zarr", memory="1MB", block=(3, 4))
    ser = vz.open_series(tmp_path / "s.zarr")
    assert ser.data.chunks[0] == (T,)
    a32 = ARR.astype(np.float32)
    z = ser.vox.series.zscore()
    assert z.dtype == np.float32 and z.dims == ("t", "y", "x")
    np.testing.assert_allclose(z.values, (a32 - a32.mean(0)) / a32.std(0), rtol=1e-4,
                               atol=1e-4)


def test_maps_keep_coordinate_units():
    ser = vz.from_array(np.random.default_rng(0).random((5, 4, 4)), "tyx", voxel_size=0.5)
    for m in (ser.vox.series.median_map(), ser.vox.series.percentile_map(20),
              ser.vox.series.mean_map()):
        assert m.x.attrs["units"] == "micrometer"
        assert m.vox.voxel_size == {"y": 0.5, "x": 0.5}
