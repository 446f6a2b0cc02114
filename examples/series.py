"""Images to series: a time-lapse in the series layout, and per-voxel time-series analysis.

A microscope writes a time-lapse one frame at a time, and OME-Zarr stores it that way: one
timepoint per chunk. Reading one voxel's time course then reads every chunk of the movie.
Analyses that work per voxel along time (dF/F, correlation with a stimulus, Fourier
coherence) want the opposite layout, chunks that hold whole time series for a small block
of voxels. ``img.vox.to_series`` makes that transpose in one pass under a memory budget,
and ``ser.vox.series`` holds the analyses, lazy until computed.

Data: ``tests/data/timelapse/cancer_cell_migration_crop.tif`` of the checkout
(48 x 130 x 130 uint16; Tinevez & Jacquemet, zenodo 5206107, CC-BY 4.0, via
haesleinhuepf/BioImageAnalysisNotebooks; see ``tests/data/PROVENANCE.md``), or,
when that is not here, a synthetic movie written to the output folder. The TIFF stores no
physical sizes, so the frame interval and pixel size given to ``vz.convert`` below are
placeholders. The movie has no stimulus either: the script builds a plausible one, a
boxcar of 8 frames off and 8 on convolved with an exponential decay (the shape a calcium
indicator gives), to show how a stimulus regressor is correlated with every voxel.

Steps:

1. ``vz.convert`` the multi-page TIFF into OME-Zarr, one frame per chunk, with its geometry;
2. ``img.vox.to_series`` under a budget smaller than the movie, then ``vz.open_series``;
3. ``ser.vox.series``: mean / std maps, dF/F with a running-percentile baseline,
   detrending, correlation with the stimulus, Fourier coherence at the stimulus frequency,
   region traces with ``mean_by_labels``; a few results are checked against numpy;
4. figures: sample traces (``ser.vox.series.plot``) under the stimulus, and the
   correlation map at physical aspect (``ser.vox.series.map_figure``);
5. ``ser.vox.to_images`` back to one frame per chunk, identical to the input.

Run it with an output folder (default ``examples-output/series``)::

    python examples/series.py [OUTPUT_FOLDER]

It writes ``traces.png``, ``correlation_map.png`` and the three stores (``movie.ome.zarr``,
``movie.series.zarr``, ``back.ome.zarr``) into the folder.
"""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np
import scipy.ndimage as ndi
from matplotlib.figure import Figure

import voxzarr as vz
from voxzarr.series import series_info

MOVIE = (Path(__file__).resolve().parents[1]
         / "tests/data/timelapse/cancer_cell_migration_crop.tif")
PERIOD = 16  # stimulus period, frames: 3 cycles in 48 frames


def movie_tiff(out: Path) -> Path:
    """The time-lapse TIFF, or a synthetic one written to ``out`` when it is not here."""
    if MOVIE.exists():
        return MOVIE
    print(f"({MOVIE.name} is not here: using a synthetic movie)")
    import tifffile

    rng = np.random.default_rng(0)
    blobs = ndi.gaussian_filter(rng.random((130, 130)), 6) * 4000
    responds = np.zeros((130, 130))
    responds[:, :65] = 0.2  # the left half follows the stimulus
    movie = blobs * (1 + responds * stimulus(48)[:, None, None]) + 100
    path = out / "synthetic_movie.tif"
    tifffile.imwrite(path, rng.poisson(movie).astype(np.uint16))
    return path


def stimulus(n: int) -> np.ndarray:
    """Boxcar (off, then on, for PERIOD / 2 frames each) convolved with an exponential."""
    box = ((np.arange(n) % PERIOD) >= PERIOD // 2).astype(np.float64)
    kernel = np.exp(-np.arange(8) / 2.0)  # decay time 2 frames
    return np.convolve(box, kernel)[:n]


def main(out: Path) -> None:
    # 1. TIFF -> OME-Zarr with the geometry the file lacks (placeholders)
    movie = out / "movie.ome.zarr"
    vz.convert(movie_tiff(out), movie, axes="tyx", voxel_size={"y": 0.65, "x": 0.65},
               unit="micrometer", time_interval=30.0, time_unit="second",
               chunks=(1, 130, 130), overwrite=True, progress=False)
    img = vz.open_image(movie)
    arr = img.values
    print(f"movie {dict(img.sizes)} {img.dtype}, stored one frame per chunk "
          f"{img.data.chunksize}; frame interval {img.vox.scale['t']:g} "
          f"{img.vox.units['t']}")

    # 2. image -> series, under a budget smaller than the movie (1.6 MB): several tasks
    store = out / "movie.series.zarr"
    img.vox.to_series(store, memory="600KB", overwrite=True, source=movie,
                      progress=False)
    ser = vz.open_series(store)
    info = series_info(store)
    print(f"series store: chunks {tuple(info['chunks'])} (whole time axis), "
          f"block {info['block']}")

    # 3. analyses: each is lazy until computed
    s = ser.vox.series
    mean_map, std_map = s.mean_map(), s.std_map()
    print(f"mean map {dict(mean_map.sizes)}: {float(mean_map.mean()):.1f} on average, "
          f"std map max {float(std_map.max()):.1f}")

    dff = s.dff("window", window=9, perc=20)  # running 20th-percentile baseline
    y0, x0 = 65, 65
    trace = arr[:, y0, x0].astype(np.float64)
    base = ndi.percentile_filter(trace, 20, size=9, mode="nearest")
    dff_ok = np.allclose(dff.isel(y=y0, x=x0).values, (trace - base) / base)
    print(f"dF/F {dict(dff.sizes)}: max {float(dff.max()):.2f}; voxel ({y0}, {x0}) matches "
          f"numpy: {dff_ok}")
    assert dff_ok

    stim = stimulus(img.sizes["t"])
    detrended = s.detrend(order=1)  # the movie brightens over time: remove the slow trend
    corr = detrended.vox.series.correlate(stim).compute()
    c = corr.values
    ys, xs = np.unravel_index(np.argsort(c, axis=None)[::-1][:4], c.shape)
    for y, x in zip(ys[:2], xs[:2], strict=True):  # cross-check the best two with numpy
        ref = np.corrcoef(detrended.isel(y=y, x=x).values, stim)[0, 1]
        assert np.isclose(c[y, x], ref), (c[y, x], ref)
    assert np.nanmin(c) >= -1 - 1e-9 and np.nanmax(c) <= 1 + 1e-9
    print(f"correlation with the stimulus: {np.nanmin(c):.2f} .. {np.nanmax(c):.2f}; best at "
          f"y = {float(corr['y'][ys[0]]):g}, x = {float(corr['x'][xs[0]]):g} "
          f"{corr['x'].attrs.get('units')}")

    cycles = img.sizes["t"] // PERIOD
    coherence = s.fourier(freq=cycles)["coherence"]
    print(f"coherence at the stimulus frequency ({cycles} cycles per movie): max "
          f"{float(coherence.max()):.2f}")

    labels, n = ndi.label(mean_map.values > np.percentile(mean_map.values, 90))
    regions = s.mean_by_labels(labels)
    print(f"{n} bright regions: traces {dict(regions.sizes)}")

    # 4. figures: the stimulus above the best-correlated voxels' dF/F, and the map
    fig = Figure(figsize=(9, 6), layout="constrained")
    top, bottom = fig.subplots(2, 1, sharex=True, height_ratios=(1, 2))
    t = img["t"].values
    top.plot(t, stim, color="black", label="stimulus regressor")
    mean_trace = s.mean_trace().values
    top.plot(t, (mean_trace - mean_trace.min()) / np.ptp(mean_trace), color="tab:grey",
             ls="--", label="mean trace (scaled)")
    top.legend(fontsize=8, loc="upper left", bbox_to_anchor=(1.01, 1.0), frameon=False)
    top.set_title("stimulus")
    s.plot(voxels=[{"y": int(y), "x": int(x)} for y, x in zip(ys, xs, strict=True)],
           normalize="dff", ax=bottom, title="dF/F of the 4 voxels most correlated with it")
    fig.savefig(out / "traces.png", dpi=80)
    s.map_figure(corr.rename("correlation"), cmap="RdBu_r", vmin=-1, vmax=1,
                 title="correlation with the stimulus (detrended)").savefig(
        out / "correlation_map.png", dpi=80)

    # 5. series -> images: identical to the input
    back = out / "back.ome.zarr"
    ser.vox.to_images(back, memory="600KB", overwrite=True, progress=False)
    same = np.array_equal(vz.open_image(back).values, arr)
    print(f"back to one frame per chunk: identical = {same}")
    assert same


if __name__ == "__main__":
    folder = Path(sys.argv[1] if len(sys.argv) > 1 else "examples-output/series")
    folder.mkdir(parents=True, exist_ok=True)
    main(folder)
    print(f"wrote {folder}")
