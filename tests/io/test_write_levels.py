"""The level-stream protocol of ``voxzarr._write``, and how io finds the pyramid's stream."""

from __future__ import annotations

import numpy as np
import pytest
import zarr

import voxzarr as vz
from voxzarr import _registry, _write, io, pyramid
from voxzarr.errors import InvalidArgumentError


def _image(shape=(8, 32, 32)):
    rng = np.random.default_rng(0)
    return vz.from_array(rng.integers(0, 1000, shape, dtype="uint16"), "zyx",
                         voxel_size={"z": 2.0, "y": 0.5, "x": 0.5})


def _multiscale(path):
    return zarr.open_group(path, mode="r").attrs["ome"]["multiscales"][0]


def test_io_and_pyramid_share_the_writer_and_chunk_policy():
    for name in ("write_multiscale", "default_chunks", "storage_units", "write_scheduler",
                 "IMAGE_VAR"):
        assert getattr(io, name) is getattr(_write, name)
    assert issubclass(pyramid.LevelStream, _write.LevelStream)


def test_stream_levels_is_a_typed_level_stream(tmp_path):
    stream = pyramid.stream_levels(_image(), tmp_path / "unused", chunks=8, min_size=4)
    assert isinstance(stream, _write.LevelStream)
    assert stream.at_once and callable(stream.fused)
    assert stream.ngff_type == "mean" == stream.plan.method
    assert stream.ngff_metadata == pyramid.ngff_metadata(stream.plan)


def test_a_level_stream_records_how_its_levels_were_made(tmp_path):
    img = _image()
    half = img.coarsen(y=2, x=2).mean().astype(img.dtype)
    stream = _write.LevelStream([("0", img), ("1", half)], ngff_type="mean",
                                ngff_metadata={"method": "by hand"})
    io.write_multiscale(tmp_path / "m.zarr", stream, progress=False)
    ms = _multiscale(tmp_path / "m.zarr")
    assert (ms["type"], ms["metadata"]) == ("mean", {"method": "by hand"})
    assert _write.level_stream(stream) is stream
    assert _write.level_stream([("0", img)]).ngff_type is None


def test_a_lazy_level_stream_cannot_be_deferred(tmp_path):
    img = _image()
    lazy = _write.LevelStream(iter([("0", img)]))
    assert not lazy.at_once
    with pytest.raises(InvalidArgumentError) as err:
        io.write_multiscale(tmp_path / "s.zarr", lazy, compute=False)
    assert err.value.field == "compute"
    fused = _write.LevelStream(iter(()), fused=lambda: [("0", img)])
    assert fused.at_once
    io.write_multiscale(tmp_path / "f.zarr", fused, compute=False).compute()
    np.testing.assert_array_equal(vz.open_image(tmp_path / "f.zarr").values, img.values)


def test_to_ome_zarr_finds_the_pyramid_stream_by_name(tmp_path):
    calls = []

    def spy(obj, where, **kwargs):
        calls.append(kwargs)
        return pyramid.stream_levels(obj, where, **kwargs)

    _registry.LEVEL_STREAMS.register("pyramid", spy, replace=True)
    try:
        _image().vox.to_ome_zarr(tmp_path / "p.ome.zarr", pyramid={"min_size": 4}, chunks=8,
                                 progress=False)
    finally:
        _registry.LEVEL_STREAMS.register("pyramid", "voxzarr.pyramid:stream_levels",
                                         replace=True)
    assert calls == [{"chunks": 8, "shards": None, "label": None, "min_size": 4}]
    assert _multiscale(tmp_path / "p.ome.zarr")["type"] == "mean"
    assert _registry.LEVEL_STREAMS.get("pyramid") is pyramid.stream_levels
