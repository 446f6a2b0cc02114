"""Per-voxel time-series analysis: ``ser.vox.series`` (Thunder's Series API, named clearly).

Every method works on the image's ``t`` axis, lazily and chunk by chunk: with dask data the
time axis is made one chunk (a series store already is), so each task sees whole series.

Names say what comes back:

* ``*_map`` and the analyses (``correlate``, ``crosscorr``, ``fourier``) give one value per
  voxel: an image without ``t`` (a *map*), keeping the spatial coordinates;
* ``*_trace`` / ``trace`` / ``mean_by_labels`` reduce across voxels: a *trace* along ``t``;
* transforms (``normalize``, ``dff``, ``center``, ``zscore``, ``standardize``, ``detrend``,
  ``squelch``, ``convolve``) and selections (``between``, ``select``) give series again.

Thunder equivalences (0.x ``Series`` / 1.x ``Series`` and ``TimeSeries``):

============================  ===============================================================
voxzarr                       Thunder
============================  ===============================================================
``mean_map()`` ...            0.x ``seriesMean()``, ``seriesStdev()``, ... (per record)
``mean_trace()``              1.x ``Series.mean()`` (across records)
``percentile_map(q)``         0.x ``seriesPercentile(q)``
``normalize(...)``            ``normalize(method, window, perc, offset)``
``dff(...)``                  ``normalize(..., offset=0)``
``center()``, ``zscore()``    ``center()``, ``zscore()`` (within records, ``ddof=0``)
``standardize()``             ``standardize()``
``detrend(order=1)``          ``detrend('linear')``; ``order=5`` is ``detrend('nonlinear')``
``squelch(threshold)``        ``squelch(threshold)``
``correlate(signal)``         ``correlate(signal)``
``crosscorr(signal, lag)``    ``crosscorr(signal, lag)``
``fourier(freq)``             ``fourier(freq)`` (coherence, phase)
``convolve(signal, mode)``    ``convolve(signal, mode)`` (Thunder's default mode is 'full')
``between(a, b)``             ``between(a, b)`` (time indices, left inclusive)
``select(indices)``           ``select(indices)``
``subset(n, thresh, stat)``   0.x ``subset(nsamples, thresh, stat)``
``mean_by_labels(labels)``    no single method (region means were done by hand on masks)
``map(fn)``                   ``map(fn)``
============================  ===============================================================
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

import dask.array as da
import numpy as np
import xarray as xr

from ..coords import SPATIAL
from ..errors import ArgumentError, GeometryError
from ..gridindex import spacing_of_single

__all__ = ["SeriesAnalysis"]

_TRACE_STATS = ("mean", "sum", "min", "max", "std", "var", "median")


def _as_signal(signal: Any, n: int, *, allow_2d: bool, field: str = "signal") -> np.ndarray:
    s = np.asarray(signal, dtype=np.float64)
    if s.ndim == 1 or (allow_2d and s.ndim == 2):
        if s.shape[-1] != n:
            raise ArgumentError(f"signal has {s.shape[-1]} samples, the series {n}",
                                field=field)
        return s
    raise ArgumentError(f"signal must be 1-D{' or 2-D' if allow_2d else ''}, got shape "
                        f"{s.shape}", field=field)


class SeriesAnalysis:
    """Series analyses of a time-lapse DataArray (``ser.vox.series``); see the module doc."""

    def __init__(self, obj: xr.DataArray):
        if not isinstance(obj, xr.DataArray) or "t" not in obj.dims:
            dims = getattr(obj, "dims", None)
            raise ArgumentError(f"series analysis needs a DataArray with a 't' axis, got "
                                f"dims {dims}", field="dims")
        self._obj = obj

    # ------------------------------------------------------------------ helpers
    @property
    def _ser(self) -> xr.DataArray:
        """The data with ``t`` as one chunk, so each block holds whole series."""
        obj = self._obj
        if isinstance(obj.data, da.Array) and len(obj.chunks[obj.get_axis_num("t")]) > 1:
            obj = obj.chunk({"t": -1})
        return obj

    @property
    def _float(self) -> xr.DataArray:
        obj = self._ser
        if not np.issubdtype(obj.dtype, np.floating):
            obj = obj.astype(np.float64)
        return obj

    @property
    def _spatial(self) -> list[str]:
        return [str(d) for d in self._obj.dims if d in SPATIAL]

    @property
    def _voxel_dims(self) -> list[str]:
        """Dims that index a voxel's series: all but ``t``."""
        return [str(d) for d in self._obj.dims if d != "t"]

    @property
    def n_times(self) -> int:
        return int(self._obj.sizes["t"])

    def _per_series(self, fn: Callable[..., np.ndarray], *, out_dims: Sequence[str] = (),
                    out_sizes: dict[str, int] | None = None, keep_t: bool = False,
                    dtype: Any = np.float64, data: xr.DataArray | None = None,
                    vectorize: bool = False) -> xr.DataArray:
        """Apply ``fn`` to arrays shaped ``(..., T)`` (time last), chunk by chunk."""
        src = self._float if data is None else data
        out_core = ["t"] if keep_t else list(out_dims)
        res = xr.apply_ufunc(
            fn, src,
            input_core_dims=[["t"]],
            output_core_dims=[out_core],
            exclude_dims=set() if keep_t else {"t"},
            dask="parallelized",
            vectorize=vectorize,
            output_dtypes=[dtype],
            dask_gufunc_kwargs={"output_sizes": dict(out_sizes or {})},
            keep_attrs=False,
        )
        # apply_ufunc drops coordinate attrs (units): put the source coordinates back
        res = res.assign_coords({d: src.coords[d] for d in res.dims
                                 if d in src.coords and res.sizes[d] == src.sizes[d]})
        if keep_t:
            return res.transpose(*self._obj.dims)
        return res

    # ------------------------------------------------------------------ per-voxel maps
    def mean_map(self) -> xr.DataArray:
        """Mean over time of each voxel (a map)."""
        return self._float.mean("t")

    def sum_map(self) -> xr.DataArray:
        """Sum over time of each voxel (a map; float64)."""
        return self._float.sum("t")

    def var_map(self, ddof: int = 0) -> xr.DataArray:
        """Variance over time of each voxel (a map; ``ddof`` as numpy)."""
        return self._float.var("t", ddof=ddof)

    def std_map(self, ddof: int = 0) -> xr.DataArray:
        """Standard deviation over time of each voxel (a map; ``ddof`` as numpy)."""
        return self._float.std("t", ddof=ddof)

    def min_map(self) -> xr.DataArray:
        """Minimum over time of each voxel (a map, input dtype)."""
        return self._ser.min("t")

    def max_map(self) -> xr.DataArray:
        """Maximum over time of each voxel (a map, input dtype)."""
        return self._ser.max("t")

    def median_map(self) -> xr.DataArray:
        """Median over time of each voxel (a map)."""
        return self._per_series(lambda x: np.median(x, axis=-1))

    def percentile_map(self, q: float | Sequence[float]) -> xr.DataArray:
        """Percentile(s) ``q`` (0-100) over time of each voxel, as ``np.percentile``.

        A sequence of ``q`` gives a ``percentile`` dimension in front.
        """
        qs = np.atleast_1d(np.asarray(q, dtype=np.float64))
        if np.any((qs < 0) | (qs > 100)):
            raise ArgumentError(f"percentiles must be within 0-100, got {q!r}", field="q")
        res = self._per_series(lambda x: np.moveaxis(np.percentile(x, qs, axis=-1), 0, -1),
                               out_dims=["percentile"], out_sizes={"percentile": qs.size})
        res = res.assign_coords(percentile=qs).transpose("percentile", ...)
        return res.isel(percentile=0, drop=True) if np.ndim(q) == 0 else res

    # ------------------------------------------------------------------ traces
    def trace(self, stat: str = "mean", mask: Any = None) -> xr.DataArray:
        """One value per timepoint across voxels (a trace), per channel where there is one.

        Parameters
        ----------
        stat
            ``mean``, ``sum``, ``min``, ``max``, ``std``, ``var`` or ``median``.
        mask
            Boolean image over the spatial axes: only voxels where it is true count.
        """
        if stat not in _TRACE_STATS:
            raise ArgumentError(f"unknown stat {stat!r}; choose from {_TRACE_STATS}",
                                field="stat")
        obj = self._float
        if mask is not None:
            obj = obj.where(self._spatial_array(mask, "mask").astype(bool))
        if stat == "median" and isinstance(obj.data, da.Array):
            # whole frames per chunk, a few frames at a time (about 64 MiB of float64)
            n_vox = int(np.prod([obj.sizes[d] for d in self._spatial]))
            per = max(1, (64 << 20) // (8 * n_vox))
            obj = obj.chunk({"t": per, **{d: -1 for d in self._spatial}})
        return getattr(obj, stat)(self._spatial)

    def mean_trace(self, mask: Any = None) -> xr.DataArray:
        """Mean across voxels at each timepoint (a trace; Thunder 1.x ``Series.mean()``)."""
        return self.trace("mean", mask)

    def _spatial_array(self, value: Any, field: str) -> xr.DataArray:
        sizes = {d: self._obj.sizes[d] for d in self._spatial}
        if isinstance(value, xr.DataArray):
            if set(value.dims) != set(sizes) or any(value.sizes[d] != n
                                                    for d, n in sizes.items()):
                raise ArgumentError(f"{field} must have dims {sizes}, got "
                                    f"{dict(value.sizes)}", field=field)
            # coordinates dropped: positions must match by index, not float equality
            return xr.DataArray(value.transpose(*sizes).data, dims=tuple(sizes))
        arr = np.asarray(value)
        if arr.shape != tuple(sizes.values()):
            raise ArgumentError(f"{field} must have shape {tuple(sizes.values())} for dims "
                                f"{tuple(sizes)}, got {arr.shape}", field=field)
        return xr.DataArray(arr, dims=tuple(sizes))

    def mean_by_labels(self, labels: Any, *, background: int | None = 0) -> xr.DataArray:
        """Mean series of each labelled region: dims ``(label, t[, c])`` (traces).

        ``labels`` is an integer image over the spatial axes (DataArray or array);
        ``background`` (default 0) is left out, ``None`` keeps every label. The label image
        is loaded; the series are reduced chunk by chunk (a sparse sum per block).
        """
        import scipy.sparse as sp_

        lab = self._spatial_array(labels, "labels")
        lab_np = np.asarray(lab.values)
        if not np.issubdtype(lab_np.dtype, np.integer):
            raise ArgumentError(f"labels must be integers, got {lab_np.dtype}",
                                field="labels")
        values = np.unique(lab_np)
        if background is not None:
            values = values[values != background]
        if values.size == 0:
            raise ArgumentError("no labelled voxels", field="labels")
        counts = np.array([(lab_np == v).sum() for v in values], dtype=np.float64)
        ids = np.searchsorted(values, lab_np)
        ids = np.where((ids < values.size) & (values[np.minimum(ids, values.size - 1)]
                                              == lab_np), ids, -1)
        n_lab = values.size
        obj = self._float
        lead = [d for d in obj.dims if d not in self._spatial]  # t and c, in order
        obj = obj.transpose(*lead, *self._spatial)
        nlead = len(lead)

        def block_sums(x: np.ndarray, li: np.ndarray) -> np.ndarray:
            flat = x.reshape(int(np.prod(x.shape[:nlead])), -1)
            li = np.broadcast_to(li, (1,) * nlead + x.shape[nlead:]).reshape(-1)
            keep = li >= 0
            onehot = sp_.csr_matrix((np.ones(int(keep.sum())), (np.flatnonzero(keep),
                                                                 li[keep])),
                                    shape=(li.size, n_lab))
            out = np.asarray((onehot.T @ flat.T).T).reshape(x.shape[:nlead] + (n_lab,))
            return out.reshape(out.shape + (1,) * (x.ndim - nlead))

        data = obj.data
        if isinstance(data, da.Array):
            sp_chunks = data.chunks[nlead:]
            li = da.from_array(ids, chunks=sp_chunks)[(None,) * nlead]
            parts = da.map_blocks(
                block_sums, data, li, new_axis=[nlead], dtype=np.float64,
                chunks=(*data.chunks[:nlead], (n_lab,), *[(1,) * len(c) for c in sp_chunks]),
            )
            sums = parts.sum(axis=tuple(range(nlead + 1, nlead + 1 + len(sp_chunks))))
        else:
            sums = block_sums(np.asarray(data), ids[(None,) * nlead])
            sums = sums.reshape(sums.shape[: nlead + 1])
        means = sums / counts
        coords = {d: obj.coords[d] for d in lead if d in obj.coords}
        res = xr.DataArray(means, dims=(*lead, "label"), coords={**coords, "label": values})
        return res.transpose("label", *lead)

    # ------------------------------------------------------------------ transforms
    def center(self) -> xr.DataArray:
        """Each series minus its mean."""
        x = self._float
        return x - x.mean("t")

    def standardize(self, ddof: int = 0) -> xr.DataArray:
        """Each series divided by its standard deviation."""
        x = self._float
        return x / x.std("t", ddof=ddof)

    def zscore(self, ddof: int = 0) -> xr.DataArray:
        """Each series minus its mean, divided by its standard deviation."""
        x = self._float
        return (x - x.mean("t")) / x.std("t", ddof=ddof)

    def baseline(self, method: str = "percentile", *, perc: float = 20,
                 window: int | None = None) -> xr.DataArray:
        """The baseline used by :meth:`normalize`: a map (``mean``, ``percentile``) or a
        series (``window``: running ``perc`` percentile over ``window`` frames, edges
        repeated, as ``scipy.ndimage.percentile_filter(mode='nearest')``)."""
        if method == "mean":
            return self.mean_map()
        if method == "percentile":
            return self.percentile_map(perc)
        if method == "window":
            if window is None or int(window) < 1:
                raise ArgumentError("method='window' needs window= (frames, >= 1)",
                                    field="window")
            from scipy.ndimage import percentile_filter

            w = int(window)

            def running(x: np.ndarray) -> np.ndarray:
                size = (1,) * (x.ndim - 1) + (w,)
                return percentile_filter(x, perc, size=size, mode="nearest")

            return self._per_series(running, keep_t=True)
        raise ArgumentError(f"unknown baseline {method!r}; choose 'mean', 'percentile' or "
                            "'window'", field="method")

    def normalize(self, method: str = "percentile", *, perc: float = 20,
                  window: int | None = None, offset: float = 0.1) -> xr.DataArray:
        """``(x - b) / (b + offset)`` with baseline ``b`` from :meth:`baseline` (Thunder)."""
        b = self.baseline(method, perc=perc, window=window)
        x = self._float
        return ((x - b) / (b + offset)).transpose(*self._obj.dims)

    def dff(self, method: str = "percentile", *, perc: float = 20,
            window: int | None = None) -> xr.DataArray:
        """dF/F: ``(x - b) / b`` with baseline ``b`` from :meth:`baseline`."""
        return self.normalize(method, perc=perc, window=window, offset=0.0)

    def detrend(self, order: int = 1) -> xr.DataArray:
        """Subtract a least-squares polynomial trend of ``order``, keeping the intercept.

        ``order=1`` is Thunder's ``detrend('linear')``, ``order=5`` its ``'nonlinear'``.
        """
        if int(order) < 1:
            raise ArgumentError(f"order must be >= 1, got {order}", field="order")
        n = self.n_times
        t = np.arange(n, dtype=np.float64)
        vander = np.vander(t, int(order) + 1)
        pinv = np.linalg.pinv(vander)  # (order+1, T): least squares for every series at once

        def detr(x: np.ndarray) -> np.ndarray:
            coef = x @ pinv.T
            coef[..., -1] = 0.0  # keep the intercept
            return x - coef @ vander.T

        return self._per_series(detr, keep_t=True)

    def squelch(self, threshold: float) -> xr.DataArray:
        """Series whose maximum is below ``threshold`` become all zeros; others unchanged."""
        x = self._ser
        return x.where(x.max("t") >= threshold, 0).astype(x.dtype).transpose(*self._obj.dims)

    def convolve(self, signal: Any, mode: str = "same") -> xr.DataArray:
        """Convolve each series with ``signal`` (``np.convolve`` per series).

        ``mode`` as numpy: ``same`` keeps the time coordinates; ``full`` and ``valid``
        give ``T + L - 1`` and ``T - L + 1`` timepoints, placed so that ``same`` is their
        middle (full output sample ``i`` sits at ``t0 + (i - (L - 1) // 2) dt``).
        """
        k = _as_signal(signal, len(np.atleast_1d(signal)), allow_2d=False)
        n, m = self.n_times, k.size
        if mode not in ("same", "full", "valid"):
            raise ArgumentError(f"mode must be 'same', 'full' or 'valid', got {mode!r}",
                                field="mode")
        if m > n and mode != "full":
            raise ArgumentError(f"signal ({m}) longer than the series ({n}); use "
                                "mode='full'", field="signal")
        length = {"same": n, "full": n + m - 1, "valid": n - m + 1}[mode]
        start = {"same": (m - 1) // 2, "full": 0, "valid": m - 1}[mode]

        def conv(x: np.ndarray) -> np.ndarray:
            from scipy.signal import convolve as sconv

            full = sconv(x, k.reshape((1,) * (x.ndim - 1) + (m,)), mode="full",
                         method="direct")
            return full[..., start:start + length]

        res = xr.apply_ufunc(
            conv, self._float, input_core_dims=[["t"]], output_core_dims=[["t"]],
            exclude_dims={"t"}, dask="parallelized", output_dtypes=[np.float64],
            dask_gufunc_kwargs={"output_sizes": {"t": length}},
        )
        t0 = float(self._obj["t"].values[0]) if "t" in self._obj.coords else 0.0
        dt = self._time_step()
        offset = start - (m - 1) // 2
        tc = xr.Variable(("t",), t0 + (np.arange(length) + offset) * dt,
                         attrs=dict(self._obj["t"].attrs) if "t" in self._obj.coords else {})
        return res.assign_coords(t=tc).transpose(*self._obj.dims)

    def _time_step(self) -> float:
        if "t" not in self._obj.coords:
            return 1.0
        vals = np.asarray(self._obj["t"].values, dtype=np.float64)
        if vals.size > 1:
            return float((vals[-1] - vals[0]) / (vals.size - 1))
        single = spacing_of_single(self._obj["t"], self._obj.xindexes.get("t"))
        if single is None:
            raise GeometryError("one time point whose interval is not known; set it with "
                                "ser.vox.set_voxel_size({'t': ...})", field="t")
        return single

    # ------------------------------------------------------------------ analyses (maps)
    def correlate(self, signal: Any) -> xr.DataArray:
        """Pearson correlation of each series with ``signal`` (a map).

        A 2-D ``signal`` (``n_signals x T``) gives a ``signal`` dimension in front.
        Constant series give NaN (as ``np.corrcoef``).
        """
        s = _as_signal(signal, self.n_times, allow_2d=True)
        s2 = np.atleast_2d(s)
        sc = s2 - s2.mean(axis=-1, keepdims=True)
        snorm = np.sqrt((sc ** 2).sum(axis=-1))

        def corr(x: np.ndarray) -> np.ndarray:
            xc = x - x.mean(axis=-1, keepdims=True)
            num = xc @ sc.T
            den = np.sqrt((xc ** 2).sum(axis=-1))[..., None] * snorm
            with np.errstate(divide="ignore", invalid="ignore"):
                return num / den

        res = self._per_series(corr, out_dims=["signal"], out_sizes={"signal": s2.shape[0]})
        res = res.transpose("signal", ...)
        return res.isel(signal=0, drop=True) if s.ndim == 1 else \
            res.assign_coords(signal=np.arange(s2.shape[0]))

    def crosscorr(self, signal: Any, lag: int = 0) -> xr.DataArray:
        """Normalised cross-correlation with ``signal`` at lags ``-lag .. lag`` (maps).

        As Thunder: the signal is centred and scaled to unit norm, shifted with zero fill,
        and dotted with each centred unit-norm series (zero-norm series give 0). Returns a
        ``lag`` dimension in front (dropped when ``lag == 0``).
        """
        n = self.n_times
        s = _as_signal(signal, n, allow_2d=False)
        s = s - s.mean()
        norm = np.linalg.norm(s)
        if norm == 0:
            raise ArgumentError("signal is constant", field="signal")
        s = s / norm
        lags = np.arange(-int(lag), int(lag) + 1)
        shifted = np.zeros((lags.size, n))
        for i, sh in enumerate(lags):
            if sh >= 0:
                shifted[i, sh:] = s[: n - sh]
            else:
                shifted[i, :sh] = s[-sh:]

        def xcorr(x: np.ndarray) -> np.ndarray:
            xc = x - x.mean(axis=-1, keepdims=True)
            nx = np.linalg.norm(xc, axis=-1, keepdims=True)
            with np.errstate(divide="ignore", invalid="ignore"):
                xn = np.where(nx > 0, xc / nx, 0.0)
            return xn @ shifted.T

        res = self._per_series(xcorr, out_dims=["lag"], out_sizes={"lag": lags.size})
        res = res.assign_coords(lag=lags).transpose("lag", ...)
        return res.isel(lag=0, drop=True) if lag == 0 else res

    def fourier(self, freq: int) -> xr.Dataset:
        """Coherence and phase of each series at frequency index ``freq`` (cycles per series).

        As Thunder: on the mean-removed series, amplitudes ``a_k = 2 |F_k| / T`` for
        ``k < T // 2``; coherence ``a_freq / sqrt(sum a_k^2)``; phase
        ``-pi/2 - angle(F_freq)`` wrapped into ``[0, 2 pi)``. Returns a Dataset of two maps.
        """
        n = self.n_times
        half = n // 2
        if not 0 <= int(freq) < half:
            raise ArgumentError(f"freq must be in [0, {half}) for {n} timepoints, got "
                                f"{freq}", field="freq")
        f = int(freq)

        def four(x: np.ndarray) -> np.ndarray:
            ft = np.fft.fft(x - x.mean(axis=-1, keepdims=True), axis=-1)[..., :half]
            amp = 2 * np.abs(ft) / n
            with np.errstate(divide="ignore", invalid="ignore"):
                co = amp[..., f] / np.sqrt((amp ** 2).sum(axis=-1))
            ph = -np.pi / 2 - np.angle(ft[..., f])
            ph = np.where(ph < 0, ph + 2 * np.pi, ph)
            return np.stack([co, ph], axis=-1)

        both = self._per_series(four, out_dims=["fourier"], out_sizes={"fourier": 2})
        return xr.Dataset({"coherence": both.isel(fourier=0, drop=True),
                           "phase": both.isel(fourier=1, drop=True)})

    # ------------------------------------------------------------------ selection
    def between(self, left: int, right: int) -> xr.DataArray:
        """Timepoints with index ``left <= i < right`` (Thunder's ``between``)."""
        return self._obj.isel(t=slice(int(left), int(right)))

    def select(self, indices: int | Sequence[int]) -> xr.DataArray:
        """Timepoints at the given indices (in the order given)."""
        idx = np.atleast_1d(np.asarray(indices, dtype=np.int64))
        if idx.size == 0 or idx.min() < -self.n_times or idx.max() >= self.n_times:
            raise ArgumentError(f"indices must be within the {self.n_times} timepoints",
                                field="indices")
        return self._obj.isel(t=idx)

    def subset(self, n: int = 100, thresh: float | None = None, stat: str = "std",
               seed: int | None = None) -> xr.DataArray:
        """Up to ``n`` random voxels whose ``stat`` map value exceeds ``thresh``.

        Returns their series as dims ``(voxel, t)`` with each voxel's position in
        coordinates named after the axes. The ``stat`` map (``mean``, ``std``, ``var``,
        ``min``, ``max``, ``sum``, ``median``) is computed to choose; the series stay lazy.
        Voxels are drawn without replacement with ``numpy.random.default_rng(seed)`` and
        returned in storage order.
        """
        if stat not in _TRACE_STATS:
            raise ArgumentError(f"unknown stat {stat!r}; choose from {_TRACE_STATS}",
                                field="stat")
        if int(n) < 1:
            raise ArgumentError(f"n must be >= 1, got {n}", field="n")
        vox = self._voxel_dims
        values = np.asarray(getattr(self, f"{stat}_map")().transpose(*vox).values)
        flat = values.reshape(-1)
        cand = np.flatnonzero(flat > thresh) if thresh is not None else np.arange(flat.size)
        rng = np.random.default_rng(seed)
        pick = np.sort(rng.choice(cand, size=min(int(n), cand.size), replace=False))
        pos = np.unravel_index(pick, values.shape)
        idx = {d: xr.DataArray(p, dims="voxel") for d, p in zip(vox, pos, strict=True)}
        return self._obj.isel(idx).transpose("voxel", "t")

    # ------------------------------------------------------------------ figures
    def plot(self, voxels: Any = None, n: int = 8, normalize: str | None = None, *,
             ax: Any = None, figsize: tuple[float, float] = (7.0, 4.0),
             title: str | None = None) -> Any:
        """Time series of a few voxels against the ``t`` coordinate (a matplotlib Figure).

        Parameters
        ----------
        voxels
            Which voxels: a list of index dicts naming every spatial axis
            (``[{"y": 3, "x": 5}, ...]``), or a boolean mask over the spatial axes (when it
            selects more than ``n`` voxels, ``n`` of them evenly spaced in storage order are
            drawn). Default: ``n`` voxels on a regular grid over the image (cell centres,
            more points along the longer axes), chosen from the shape alone, so no data are
            read to choose them.
        n
            How many voxels to draw when ``voxels`` is not a list (default 8).
        normalize
            ``None`` (raw values), ``"dff"`` (dF/F with the 20th-percentile baseline of
            :meth:`dff`) or ``"zscore"`` (:meth:`zscore`).
        ax, figsize, title
            Draw into an existing Axes; figure size; title.

        Only the chosen voxels' series are read (a dask point selection), never the whole
        movie. Images with a ``c`` axis give one line per voxel and channel. The legend
        names each voxel by its physical position; the x axis is the ``t`` coordinate in
        its unit. Drawn by :func:`voxzarr.plot.traces_figure`.
        """
        from ..plot import traces_figure
        from .figures import TRACE_NORMALIZE, trace_data

        idx, values = trace_data(self._obj, voxels, n, normalize)
        return traces_figure(self._obj, idx, values, ylabel=TRACE_NORMALIZE[normalize],
                             ax=ax, figsize=figsize, title=title)

    def map_figure(self, stat: Any = "mean", *, title: str | None = None,
                   **kwargs: Any) -> Any:
        """A per-voxel map at true physical aspect with axis labels in units and a colour bar.

        ``stat`` is a statistic over time computed per voxel (``"mean"``, ``"std"``,
        ``"var"``, ``"min"``, ``"max"``, ``"sum"``, ``"median"``, as the ``*_map`` methods),
        or a map already made: a DataArray over the spatial axes (without ``t``; missing
        coordinates are taken from the series). A map of a ``c``-axis image must be reduced
        to one channel first (``ser.isel(c=0)``). The other options (``cmap``, ``vmin``,
        ``vmax``, ``reduce``, ``scale_bar``, ``ax``, ``figsize``) are those of
        :func:`voxzarr.plot.map_figure`, which draws it.
        """
        from ..plot import map_figure
        from .figures import map_data

        smap, what = map_data(self._obj, stat)
        if title is None:
            title = f"{self._obj.name or 'series'}: {what}"
        return map_figure(smap, what, title=title, **kwargs)

    # ------------------------------------------------------------------ general
    def map(self, fn: Callable[[np.ndarray], Any], *, vectorized: bool = False,
            length: int | str | None = "auto", dtype: Any = None, dim: str = "output"
            ) -> xr.DataArray:
        """Apply ``fn`` to every series.

        ``fn`` takes one 1-D series (or, with ``vectorized=True``, an array ``(..., T)``
        of series) and returns a scalar (a map comes back) or a 1-D array (a series along
        ``t`` when its length is ``T``, else along a new dimension ``dim``). Give
        ``length`` (``None`` for a scalar) and ``dtype`` to stay fully lazy; otherwise they
        are found by calling ``fn`` on the first voxel's series (one chunk is read).
        """
        src = self._ser
        if length == "auto" or dtype is None:
            first = np.asarray(src.isel({d: 0 for d in self._voxel_dims}).values)
            probe = np.asarray(fn(first[None, :]) if vectorized else fn(first))
            if vectorized:
                probe = probe[0] if probe.ndim else probe
            if length == "auto":
                length = None if probe.ndim == 0 else int(probe.shape[-1])
            dtype = probe.dtype if dtype is None else dtype
        if length is None:
            out_dims: list[str] = []
            sizes: dict[str, int] = {}
        elif length == self.n_times:
            out_dims, sizes = ["t"], {}
        else:
            out_dims, sizes = [dim], {dim: int(length)}
        keep_t = out_dims == ["t"]
        if not vectorized:
            sig = "(t)->()" if not out_dims else "(t)->(k)"
            fn = np.vectorize(fn, signature=sig, otypes=[dtype])
        res = self._per_series(fn, out_dims=out_dims, out_sizes=sizes, keep_t=keep_t,
                               dtype=dtype, data=src)
        return res.transpose(dim, ...) if sizes else res
