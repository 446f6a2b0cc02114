"""The fused pyramid write (all levels in one graph) against the streamed one and numpy."""

from __future__ import annotations

import hashlib
from pathlib import Path

import numpy as np
import pytest
import zarr

import voxzarr as vz
from voxzarr import _downsample, pyramid
from voxzarr.cli import main
from voxzarr.errors import PyramidError, VoxzarrError
from voxzarr.io import write_multiscale
from voxzarr.pyramid import plan_pyramid, stream_levels

VOXEL = {"z": 1.0, "y": 0.25, "x": 0.25}


def _image(shape=(21, 70, 66), seed=0) -> vz.from_array:
    data = np.random.default_rng(seed).integers(0, 65535, shape, endpoint=True,
                                                dtype=np.uint16)
    return vz.from_array(data, "zyx", voxel_size=VOXEL, translation={"z": 2.0})


def _chunk_files(path: Path) -> dict[str, str]:
    """Hash of every chunk file (metadata left out: it holds the writing library version)."""
    return {str(p.relative_to(path)): hashlib.sha1(p.read_bytes()).hexdigest()
            for p in sorted(path.rglob("*")) if p.is_file() and p.suffix != ".json"}


def _block_mean(x: np.ndarray, factors) -> np.ndarray:
    """numpy reference: mean over each block, partial edge blocks over the voxels present,
    rounded half to even (float64 sums of uint16 are exact)."""
    acc = x.astype(np.float64)
    count = np.ones_like(acc)
    for ax, k in enumerate(factors):
        starts = np.arange(0, x.shape[ax], k)
        acc = np.add.reduceat(acc, starts, axis=ax)
        count = np.add.reduceat(count, starts, axis=ax)
    return np.rint(acc / count).astype(x.dtype)


@pytest.fixture
def small_tasks(monkeypatch):
    # tiny task blocks: several tasks per level, so levels fan in from several blocks
    monkeypatch.setattr(pyramid, "TARGET_BYTES", 8 << 10)


@pytest.mark.parametrize("method", ["mean", "gaussian", "nearest", "mode", "max"])
@pytest.mark.parametrize("lazy", [False, True])
def test_fused_write_is_byte_identical_to_streamed(tmp_path, small_tasks, method, lazy):
    img = _image()
    src = img.chunk({"z": 7, "y": 20, "x": 33}) if lazy else img
    opts = dict(min_size=4, method=method)
    fused = tmp_path / "fused.ome.zarr"
    src.vox.to_ome_zarr(fused, pyramid=opts, chunks=8)
    streamed = tmp_path / "streamed.ome.zarr"
    store = zarr.storage.LocalStore(streamed)
    levels = stream_levels(src, store, chunks=8, **opts)
    # iterating the stream (not handing it over whole) takes the level-by-level path
    write_multiscale(store, iter(levels), chunks=8, name="image")
    files = _chunk_files(fused)
    assert len({k.split("/")[0] for k in files}) == plan_pyramid(img, chunks=8, **opts).n_levels
    assert files == _chunk_files(streamed)


def test_fused_levels_equal_numpy_block_mean(tmp_path, small_tasks):
    img = _image((13, 75, 61))  # no axis a multiple of its factors
    out = tmp_path / "m.ome.zarr"
    img.vox.to_ome_zarr(out, pyramid={"min_size": 3}, chunks=(4, 8, 8), shards=(8, 16, 16))
    plan = plan_pyramid(img, min_size=3, chunks=(4, 8, 8))
    tree = vz.open_multiscale(out)
    assert len(tree.children) == plan.n_levels >= 4
    expected = img.values
    for i in range(1, plan.n_levels):
        expected = _block_mean(expected, plan.factors[i])
        np.testing.assert_array_equal(tree[str(i)].image.values, expected)


def test_add_levels_fused_equal_numpy_block_mean(tmp_path, small_tasks):
    img = _image((9, 45, 50), seed=1)
    out = tmp_path / "a.ome.zarr"
    img.vox.to_ome_zarr(out, chunks=8)
    plan = pyramid.add_levels(out, method="mean", min_size=3, progress=False)
    assert plan.n_levels >= 4
    tree = vz.open_multiscale(out)
    expected = img.values
    for i in range(1, plan.n_levels):
        expected = _block_mean(expected, plan.factors[i])
        np.testing.assert_array_equal(tree[str(i)].image.values, expected)


def test_fused_graph_never_reads_the_store(tmp_path):
    img = _image((8, 32, 32)).chunk({"z": 4})
    levels = stream_levels(img, tmp_path / "unused", chunks=8, min_size=4)
    fused = levels.fused()
    assert [p for p, _ in fused] == [str(i) for i in range(levels.plan.n_levels)]
    names = {str(k[0] if isinstance(k, tuple) else k)
             for _, lv in fused for k in lv.data.__dask_graph__()}
    assert not any(n.startswith("voxzarr-pyramid-read") for n in names)
    assert not (tmp_path / "unused").exists()


@pytest.mark.parametrize("method", ["mean", "min", "max"])
def test_slabbed_reduce_equals_whole_block(monkeypatch, method):
    rng = np.random.default_rng(3)
    x = rng.integers(-30000, 30000, (23, 40, 37), dtype=np.int16)
    factors = (3, 2, 2)
    whole = _downsample.reduce_block(x, factors, method)  # one pass: under the slab size
    monkeypatch.setattr(_downsample, "SLAB_BYTES", 4 << 10)
    slabbed = _downsample.reduce_block(x, factors, method)
    np.testing.assert_array_equal(slabbed, whole)
    if method == "mean":
        np.testing.assert_array_equal(slabbed, _block_mean(x, factors))


def test_pyramid_error_lives_in_errors():
    assert pyramid.PyramidError is PyramidError
    assert issubclass(PyramidError, VoxzarrError)
    with pytest.raises(PyramidError, match="unknown method"):
        plan_pyramid(_image((4, 8, 8)), method="average")


def test_cli_isotropic_pyramid(tmp_path, capsys):
    img = _image((6, 40, 36))
    src, dst = tmp_path / "in.ome.zarr", tmp_path / "out.ome.zarr"
    img.vox.to_ome_zarr(src)
    assert main(["isotropic", str(src), str(dst), "--chunks", "8", "--pyramid",
                 "--no-progress"]) == 0
    assert "shape (24, 40, 36)" in capsys.readouterr().out
    iso = img.vox.to_isotropic()
    tree = vz.open_multiscale(dst)
    plan = plan_pyramid(iso, chunks=8)
    assert plan.n_levels == 3  # (24, 40, 36) -> (12, 20, 18) -> (12, 10, 9): min 8 voxels
    assert list(tree.children) == [str(i) for i in range(plan.n_levels)]
    np.testing.assert_array_equal(tree["0"].image.values, iso.values)
    expected = iso.values
    for i in range(1, plan.n_levels):
        expected = _block_mean(expected, plan.factors[i])
        level = tree[str(i)].image
        np.testing.assert_array_equal(level.values, expected)
        assert level.vox.voxel_size == pytest.approx(plan.scales[i])
        assert level.vox.origin == pytest.approx({d: plan.translations[i][d] for d in "zyx"})
