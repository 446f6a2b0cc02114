"""Interop both ways: ome-zarr-py and ngff-zarr read what voxzarr writes; voxzarr reads theirs."""

from __future__ import annotations

import numpy as np
import pytest

import voxzarr as vz

ome_zarr = pytest.importorskip("ome_zarr")
ngff_zarr = pytest.importorskip("ngff_zarr")

SCALE = {"z": 2.0, "y": 0.5, "x": 0.25}
TRANS = {"z": 10.0, "y": -3.0, "x": 1.5}


def _image(dtype="uint16"):
    rng = np.random.default_rng(42)
    data = rng.integers(0, 4000, size=(6, 20, 24)).astype(dtype)
    return vz.from_array(data, "zyx", voxel_size=SCALE, translation=TRANS, units="micrometer")


def _ome_zarr_read(path):
    from ome_zarr.io import parse_url
    from ome_zarr.reader import Reader

    node = next(iter(Reader(parse_url(str(path), mode="r"))()))
    data = np.asarray(node.data[0])
    ms = node.metadata
    cts = ms["coordinateTransformations"][0]
    return data, ms, cts


@pytest.mark.parametrize("version", ["0.4", "0.5"])
def test_ome_zarr_py_reads_voxzarr(tmp_path, version):
    img = _image()
    path = tmp_path / "vz.ome.zarr"
    img.vox.to_ome_zarr(path, version=version, chunks=(3, 10, 12))
    data, ms, cts = _ome_zarr_read(path)
    np.testing.assert_array_equal(data, img.values)
    scale = next(t["scale"] for t in cts if t["type"] == "scale")
    trans = next(t["translation"] for t in cts if t["type"] == "translation")
    assert scale == [SCALE[d] for d in "zyx"]
    assert trans == [TRANS[d] for d in "zyx"]
    assert [a["name"] for a in ms["axes"]] == ["z", "y", "x"]
    assert all(a["unit"] == "micrometer" for a in ms["axes"])


@pytest.mark.parametrize("version", ["0.4", "0.5"])
def test_ngff_zarr_reads_voxzarr(tmp_path, version):
    img = _image()
    path = tmp_path / "vz.ome.zarr"
    img.vox.to_ome_zarr(path, version=version)
    ms = ngff_zarr.from_ngff_zarr(str(path))
    im = ms.images[0]
    np.testing.assert_array_equal(np.asarray(im.data), img.values)
    assert dict(im.scale) == SCALE
    assert dict(im.translation) == TRANS
    assert im.axes_units["x"] == "micrometer"


@pytest.mark.parametrize("version", ["0.4", "0.5"])
def test_voxzarr_reads_ngff_zarr(tmp_path, version):
    img = _image()
    nimg = ngff_zarr.to_ngff_image(img.values, dims=["z", "y", "x"], scale=SCALE,
                                   translation=TRANS,
                                   axes_units={d: "micrometer" for d in "zyx"})
    ms = ngff_zarr.to_multiscales(nimg, scale_factors=[])
    path = tmp_path / "nz.ome.zarr"
    ngff_zarr.to_ngff_zarr(str(path), ms, version=version)
    back = vz.open_image(path)
    np.testing.assert_array_equal(back.values, img.values)
    assert back.vox.voxel_size == SCALE
    assert back.vox.origin == TRANS
    assert back.vox.units == {d: "micrometer" for d in "zyx"}


def test_voxzarr_reads_ome_zarr_py(tmp_path):
    import zarr
    from ome_zarr.writer import write_image

    img = _image()
    path = tmp_path / "oz.ome.zarr"
    group = zarr.open_group(str(path), mode="w")
    write_image(img.values, group, axes="zyx", scale_factors=[2], scale=SCALE,
                axes_units={d: "micrometer" for d in "zyx"})
    tree = vz.open_multiscale(path)
    back = tree.vox.level(0)
    np.testing.assert_array_equal(back.values, img.values)
    assert back.vox.voxel_size == SCALE
    assert back.vox.units == {d: "micrometer" for d in "zyx"}
    # ome-zarr-py's own level 1 (2x in y and x): voxzarr reports what its metadata says
    lv1 = tree.vox.level(1)
    assert lv1.vox.voxel_size == {"z": 2.0, "y": 1.0, "x": 0.5}
