"""voxzarr against S3-compatible object storage (a local moto server, see ``_s3server.py``).

Credentials come from the environment the fixture sets; voxzarr is given only the endpoint
through ``storage_options``. The module skips without ``s3fs``, and a test that needs
``tifffile`` skips without it.
"""

from __future__ import annotations

import pickle

import numpy as np
import pytest
import xarray as xr
from _s3server import CREDENTIALS, S3, s3_server  # noqa: F401  (fixture `s3`)
from scipy import ndimage as ndi

import voxzarr as vz
from voxzarr import _store
from voxzarr.errors import OverwriteError, StoreError

pytest.importorskip("s3fs")

#: pickled bytes per chunk an opened image's graph may take (state the bound: the reader holds
#: zarr metadata and the store's URL and options, about 2 KB, shared by all chunks)
GRAPH_BYTES_PER_CHUNK = 20_000


def _image(shape=(12, 40, 36), dtype="uint16", seed=0, dims="zyx") -> xr.DataArray:
    rng = np.random.default_rng(seed)
    arr = rng.integers(0, 4000, shape).astype(dtype)
    scale = {d: {"t": 1.5, "z": 2.0}.get(d, 0.5) for d in dims if d != "c"}
    return vz.from_array(arr, dims, voxel_size=scale, translation={dims[-1]: 3.0})


def _same_image(a: xr.DataArray, b: xr.DataArray) -> None:
    assert a.dims == b.dims and a.dtype == b.dtype
    np.testing.assert_array_equal(a.values, b.values)
    for d in a.dims:
        np.testing.assert_array_equal(a[d].values, b[d].values)
        assert a[d].attrs.get("units") == b[d].attrs.get("units")


@pytest.mark.parametrize("kw", [{"version": "0.4", "chunks": 16},
                                {"version": "0.5", "chunks": 16},
                                {"version": "0.5", "chunks": 8, "shards": 16}],
                         ids=["0.4", "0.5", "0.5-sharded"])
def test_write_and_read_back(s3: S3, kw):
    img = _image()
    url = s3.url()
    assert vz.to_ome_zarr(img, url, storage_options=s3.storage_options, **kw) == url
    back = vz.open_image(url, storage_options=s3.storage_options)
    _same_image(img, back)
    assert back.data.chunksize == ((8, 16, 16) if "shards" in kw else (12, 16, 16))
    tree = vz.open_multiscale(url, storage_options=s3.storage_options)
    np.testing.assert_array_equal(tree["0"].image.values, img.values)


def test_existing_target_is_refused_then_replaced(s3: S3):
    url = s3.url()
    first, second = _image(seed=1), _image(seed=2)
    vz.to_ome_zarr(first, url, storage_options=s3.storage_options)
    assert _store.exists(url, s3.storage_options)
    with pytest.raises(OverwriteError, match="already exists"):
        vz.to_ome_zarr(second, url, storage_options=s3.storage_options)
    _same_image(first, vz.open_image(url, storage_options=s3.storage_options))  # untouched
    vz.to_ome_zarr(second, url, storage_options=s3.storage_options, overwrite=True)
    _same_image(second, vz.open_image(url, storage_options=s3.storage_options))


def test_exists_is_false_only_for_a_free_prefix(s3: S3):
    url = s3.url()
    assert not _store.exists(url, s3.storage_options)
    vz.to_ome_zarr(_image(), url, storage_options=s3.storage_options)
    assert _store.exists(url, s3.storage_options)
    # a sibling whose name starts with the same letters does not count
    assert not _store.exists(url.removesuffix(".ome.zarr"), s3.storage_options)


def test_unreachable_endpoint_is_an_error_not_a_free_target(s3: S3):
    opts = {"endpoint_url": "http://127.0.0.1:9", "config_kwargs": {
        "retries": {"max_attempts": 1}, "connect_timeout": 1}}
    with pytest.raises(StoreError, match="cannot check whether anything exists"):
        _store.exists(f"s3://{s3.bucket}/nowhere.ome.zarr", opts)


def test_validate_and_info_on_s3(s3: S3):
    url = s3.url()
    img = _image(dims="czyx", shape=(2, 8, 20, 24))
    vz.to_ome_zarr(img, url, storage_options=s3.storage_options, chunks=8)
    result = vz.validate(url, storage_options=s3.storage_options)
    assert result.valid, result.message
    assert result.errors == ()
    report = vz.info(url, storage_options=s3.storage_options)
    assert report["ngff_version"] == "0.5" and report["zarr_format"] == 3
    (level,) = report["levels"]
    assert level["shape"] == [2, 8, 20, 24] and level["dtype"] == "uint16"
    assert level["voxel_size"] == {"z": 2.0, "y": 0.5, "x": 0.5}
    assert level["chunks"] == [1, 8, 8, 8]
    assert report["raw_bytes"] == img.nbytes
    import s3fs

    fs = s3fs.S3FileSystem(endpoint_url=s3.endpoint_url, skip_instance_cache=True)
    on_server = sum(fs.sizes(fs.find(url.removeprefix("s3://") + "/0/")))
    assert report["stored_bytes"] == level["stored_bytes"] == on_server > 0


def test_validate_reports_a_broken_remote_store(s3: S3):
    url = s3.url()
    vz.to_ome_zarr(_image(), url, storage_options=s3.storage_options)
    import s3fs

    fs = s3fs.S3FileSystem(endpoint_url=s3.endpoint_url, skip_instance_cache=True)
    fs.rm(url.removeprefix("s3://") + "/0/zarr.json")  # the level array is gone
    result = vz.validate(url, storage_options=s3.storage_options)
    assert not result.valid


def test_graph_holds_no_credentials_and_stays_small(s3: S3):
    url = s3.url()
    vz.to_ome_zarr(_image(), url, storage_options=s3.storage_options, chunks=8)
    img = vz.open_image(url, storage_options=s3.storage_options)
    graph = dict(img.data.__dask_graph__())
    blob = pickle.dumps(graph)
    for secret in CREDENTIALS.values():
        if secret != "us-east-1":
            assert secret.encode() not in blob
    assert s3.endpoint_url.encode() in blob  # the store is named, reopened in the task
    assert len(blob) / img.data.npartitions < GRAPH_BYTES_PER_CHUNK
    # a task unpickled elsewhere reads through its own connection
    again = pickle.loads(blob)
    key = next(k for k in img.data.__dask_keys__()[0][0])
    assert key in again


# --------------------------------------------------------------------------- capabilities
def test_halo_filter_on_s3_reads_each_stored_chunk_once(s3: S3):
    from voxzarr.halo import open_halo, write_halo

    arr = np.random.default_rng(5).random((24, 40, 36)).astype("float32")
    img = vz.from_array(arr, "zyx", voxel_size=1.0)
    url = s3.url()
    vz.to_ome_zarr(img, url, chunks=16, storage_options=s3.storage_options)
    write_halo(None, url, for_filter=("gaussian", {"sigma": 1.5}), progress=False,
               storage_options=s3.storage_options)
    halo = open_halo(url, storage_options=s3.storage_options)
    assert halo.depth == {"z": 6, "y": 6, "x": 6}  # int(4 * 1.5 + 0.5)
    src = vz.open_image(url, storage_options=s3.storage_options)
    out = src.vox.filter("gaussian", sigma=1.5, halo="require")
    n_blocks = 2 * 3 * 3
    prefix = url.removeprefix(f"s3://{s3.bucket}/")
    s3.clear_log()
    got = out.values
    np.testing.assert_array_equal(got, ndi.gaussian_filter(arr, 1.5))
    halo_gets = s3.gets(f"{prefix}/halo/0/c/")
    assert len(halo_gets) == n_blocks  # every stored halo chunk ...
    assert set(halo_gets.values()) == {1}  # ... read exactly once
    assert not s3.gets(f"{prefix}/0/c/")  # and the canonical chunks not at all
    # the same through HaloArray.map_blocks
    s3.clear_log()
    mapped = halo.map_blocks(lambda b: ndi.gaussian_filter(b, 1.5, mode="reflect")).values
    np.testing.assert_array_equal(mapped, got)
    assert set(s3.gets(f"{prefix}/halo/0/c/").values()) == {1}


def test_reads_send_one_get_per_chunk_and_no_head(s3: S3):
    """s3fs's default (``max_concurrency=10``) sends a HEAD before every whole-object GET;
    voxzarr reads with ``max_concurrency=1`` unless told otherwise, since it fetches all
    chunks of a read at once itself. A value the caller gives is kept."""
    img = _image(shape=(16, 32, 32))
    url = s3.url()
    vz.to_ome_zarr(img, url, chunks=16, storage_options=s3.storage_options)
    prefix = url.removeprefix(f"s3://{s3.bucket}/") + "/0/c/"

    def chunk_requests(method: str) -> int:
        with s3.log._lock:
            return sum(1 for m, k, _ in s3.log.records if m == method and k.startswith(prefix))

    for options, heads in ((s3.storage_options, 0),
                           ({**s3.storage_options, "max_concurrency": 4}, 4)):
        opened = vz.open_image(url, storage_options=options)
        s3.clear_log()
        np.testing.assert_array_equal(opened.values, img.values)
        assert chunk_requests("GET") == 4  # (1, 2, 2) chunks
        assert chunk_requests("HEAD") == heads


def test_pyramid_on_s3_matches_local(s3: S3, tmp_path):
    img = _image(shape=(16, 64, 64))
    url = s3.url()
    vz.to_ome_zarr(img, url, pyramid={"levels": 3}, chunks=16,
                   storage_options=s3.storage_options)
    vz.to_ome_zarr(img, tmp_path / "local.ome.zarr", pyramid={"levels": 3}, chunks=16)
    remote = vz.open_multiscale(url, storage_options=s3.storage_options)
    local = vz.open_multiscale(tmp_path / "local.ome.zarr")
    assert list(remote.children) == list(local.children) == ["0", "1", "2"]
    for name in local.children:
        _same_image(local[name].image, remote[name].image)
    assert vz.validate(url, storage_options=s3.storage_options).valid


def test_series_on_s3_round_trip(s3: S3):
    from voxzarr import series

    img = _image(dims="tzyx", shape=(10, 4, 24, 20))
    src = s3.url("movie.ome.zarr")
    vz.to_ome_zarr(img, src, chunks={"t": 1, "z": 4, "y": 24, "x": 20},
                   storage_options=s3.storage_options)
    movie = vz.open_image(src, storage_options=s3.storage_options)
    ser_url = s3.url("movie.series.zarr")
    series.to_series(movie, ser_url, memory="64MB", progress=False,
                     storage_options=s3.storage_options)
    ser = series.open_series(ser_url, storage_options=s3.storage_options)
    _same_image(img, ser)
    assert ser.data.chunksize[0] == 10  # whole time series per chunk
    back_url = s3.url("back.ome.zarr")
    series.to_images(ser, back_url, progress=False, storage_options=s3.storage_options)
    _same_image(img, vz.open_image(back_url, storage_options=s3.storage_options))


# --------------------------------------------------------------------------- conversion
def _ramp_tif(tmp_path, shape=(12, 40, 36), **kwargs):
    """A uint16 ImageJ stack with voxel size (2, 0.5, 0.5) micrometer, and its pixels."""
    tifffile = pytest.importorskip("tifffile")
    data = np.random.default_rng(7).integers(0, 60000, shape).astype("uint16")
    path = tmp_path / "stack.tif"
    tifffile.imwrite(path, data, imagej=True, resolution=(2.0, 2.0),
                     metadata={"spacing": 2.0, "unit": "um", "axes": "ZYX"}, **kwargs)
    return path, data


def test_convert_tiff_to_s3(s3: S3, tmp_path):
    tif, data = _ramp_tif(tmp_path)
    url = s3.url()
    prefix = url.removeprefix(f"s3://{s3.bucket}/")
    s3.clear_log()
    kw = {"chunks": (4, 16, 16), "storage_options": s3.storage_options}
    assert vz.convert(tif, url, **kw) == url
    # verified by reading chunks back through the endpoint (unsharded: whole-object GETs,
    # which the request log counts)
    assert s3.gets(f"{prefix}/0/c/")
    back = vz.open_image(url, storage_options=s3.storage_options)
    np.testing.assert_array_equal(back.values, data)
    assert back.vox.voxel_size == {"z": 2.0, "y": 0.5, "x": 0.5}
    assert back.vox.units == {"z": "micrometer", "y": "micrometer", "x": "micrometer"}
    vz.convert(tif, tmp_path / "local.ome.zarr", chunks=(4, 16, 16))
    _same_image(vz.open_image(tmp_path / "local.ome.zarr"), back)
    assert vz.validate(url, storage_options=s3.storage_options).valid
    # the existence check reaches the endpoint too
    with pytest.raises(OverwriteError, match="already exists"):
        vz.convert(tif, url, **kw)
    vz.convert(tif, url, overwrite=True, voxel_size={"z": 3.0}, **kw)
    assert vz.open_image(url, storage_options=s3.storage_options).vox.voxel_size["z"] == 3.0


def test_failed_convert_to_s3_leaves_no_image(s3: S3, tmp_path):
    tifffile = pytest.importorskip("tifffile")
    tif, _ = _ramp_tif(tmp_path, compression="zlib")
    with tifffile.TiffFile(tif) as t:
        page = t.pages[9]
        offset, size = page.dataoffsets[0], page.databytecounts[0]
    with open(tif, "r+b") as fh:
        fh.seek(offset)
        fh.write(b"\0" * size)
    url = s3.url()
    with pytest.raises(vz.ConversionError, match="cannot read or decode") as err:
        vz.convert(tif, url, chunks=(4, 16, 16), storage_options=s3.storage_options)
    assert err.value.path == str(tif)
    # written in place, metadata last: what was written does not open as an image
    with pytest.raises(vz.VoxzarrError):
        vz.open_image(url, storage_options=s3.storage_options)


@pytest.mark.parametrize(("shards", "reencode"), [((8, 16, 16), False), ((8, 16, 16), True),
                                                  (None, False)],
                         ids=["copy-sharded", "reencode-sharded", "copy-unsharded"])
def test_upgrade_local_04_to_s3(s3: S3, tmp_path, shards, reencode):
    import zarr

    img = _image(shape=(8, 20, 24))
    src = tmp_path / "v04.ome.zarr"
    vz.to_ome_zarr(img, src, version="0.4", chunks=8)
    url = s3.url()
    prefix = url.removeprefix(f"s3://{s3.bucket}/")
    s3.clear_log()
    kw = {"shards": shards, "reencode": reencode}
    assert vz.upgrade(src, url, storage_options=s3.storage_options, **kw) == url
    if shards is None:  # verified through the endpoint (shards are read by range: 206s,
        assert s3.gets(f"{prefix}/0/c/")  # which the request log does not count)
    back = vz.open_image(url, storage_options=s3.storage_options)
    _same_image(img, back)
    report = vz.info(url, storage_options=s3.storage_options)
    assert (report["ngff_version"], report["zarr_format"]) == ("0.5", 3)
    # node for node what a local upgrade writes
    vz.upgrade(src, tmp_path / "v05.ome.zarr", **kw)
    local = zarr.open_group(tmp_path / "v05.ome.zarr", mode="r")
    remote = zarr.open_group(zarr.storage.FsspecStore.from_url(
        url, storage_options=s3.storage_options, read_only=True), mode="r")
    assert remote.attrs.asdict() == local.attrs.asdict()
    a, b = local["0"], remote["0"]
    assert (b.shape, b.chunks, b.shards, b.metadata.to_dict()) == (
        a.shape, a.chunks, a.shards, a.metadata.to_dict())
    np.testing.assert_array_equal(b[...], a[...])
    with pytest.raises(OverwriteError, match="already exists"):
        vz.upgrade(src, url, storage_options=s3.storage_options, **kw)
    vz.upgrade(src, url, overwrite=True, storage_options=s3.storage_options, **kw)
    _same_image(img, vz.open_image(url, storage_options=s3.storage_options))
