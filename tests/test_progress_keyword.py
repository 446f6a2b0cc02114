"""One progress keyword: ``progress=`` everywhere; ``progress_bar=`` still works, deprecated."""

from __future__ import annotations

import importlib
import inspect
import warnings

import numpy as np
import pytest

import voxzarr as vz
from voxzarr import demo, halo, io, plot, series

convert = importlib.import_module("voxzarr.convert")  # vz.convert is the function


@pytest.mark.parametrize("fn", [io.to_ome_zarr, io.write_multiscale, halo.write_halo,
                                halo.write_region, series.to_series, series.to_images,
                                plot.to_pngs, demo.run_demo, convert.convert, convert.upgrade],
                         ids=lambda f: f.__name__)
def test_public_functions_take_progress(fn):
    params = inspect.signature(fn).parameters
    assert "progress" in params
    assert "progress_bar" not in params


def test_old_keyword_warns_at_the_callers_line(tmp_path):
    img = vz.from_array(np.arange(24, dtype="uint8").reshape(4, 6), "yx", voxel_size=1)
    with pytest.warns(DeprecationWarning, match=r"progress_bar=.*use progress=") as rec:
        img.vox.to_ome_zarr(tmp_path / "a.ome.zarr", progress_bar=False)
    assert rec[0].filename == __file__  # through the accessor, still the user's line
    np.testing.assert_array_equal(vz.open_image(tmp_path / "a.ome.zarr").values, img.values)
    with pytest.warns(DeprecationWarning) as rec:
        halo.write_halo(None, tmp_path / "a.ome.zarr", depth=1, progress_bar=False)
    assert rec[0].filename == __file__
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        halo.write_halo(None, tmp_path / "a.ome.zarr", depth=1, progress=False)


def test_both_keywords_is_an_error(tmp_path):
    img = vz.from_array(np.zeros((4, 6), "uint8"), "yx", voxel_size=1)
    with pytest.raises(vz.InvalidArgumentError, match="progress= only"):
        io.to_ome_zarr(img, tmp_path / "b.ome.zarr", progress=False, progress_bar=False)
