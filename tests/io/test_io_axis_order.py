"""Stores whose axes are not in t, c, z, y, x order open lazily transposed to that order.

The stores here are written with zarr directly (not by voxzarr, which always writes canonical
order), in NGFF 0.5 on zarr v3 and 0.4 on zarr v2. Checked: values at each physical position
match the stored array after the transpose (any permutation of 3 to 5 axes), the xarray
backend gives the same image and reads the same regions, ome-zarr-py agrees, ``info`` shows
the stored order, unknown axis names are refused, and writing gives canonical order again.
"""

from __future__ import annotations

import warnings
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
import pytest
import xarray as xr
import zarr
import zarr.storage
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import voxzarr as vz
from voxzarr.cli import main
from voxzarr.coords import AXIS_TYPES
from voxzarr.errors import MetadataError, VoxzarrError
from voxzarr.inspect import format_info

UNITS = {"t": "second", "z": "micrometer", "y": "micrometer", "x": "nanometer"}


def _canonical(dims: str) -> str:
    return "".join(sorted(dims, key="tczyx".index))


def _write(store: Any, data: np.ndarray, order: str, scale: Mapping[str, float],
           trans: Mapping[str, float], *, version: str = "0.5",
           chunks: Sequence[int] | None = None, levels: int = 1,
           axes: list[dict[str, Any]] | None = None) -> Any:
    """Store ``data`` (dims in canonical order) with its axes in ``order``, like an NGFF
    writer that keeps another axis order would; level k is ``data`` strided by 2**k in space.

    ``chunks`` are per canonical dim. ``axes`` replaces the axes metadata as written.
    """
    dims = _canonical(order)
    perm = [dims.index(d) for d in order]
    fmt = 3 if version == "0.5" else 2
    root = zarr.open_group(store, mode="w", zarr_format=fmt)
    datasets = []
    for k in range(levels):
        f = {d: 2**k if d in "zyx" else 1 for d in order}
        level = data[tuple(slice(None, None, f[d]) for d in dims)]
        stored = np.transpose(level, perm)
        ck = stored.shape if chunks is None else tuple(
            min(chunks[dims.index(d)], n) for d, n in zip(order, stored.shape, strict=True))
        kw: dict[str, Any] = (
            {"dimension_names": list(order)} if fmt == 3
            else {"chunk_key_encoding": {"name": "v2", "separator": "/"}})
        arr = root.create_array(str(k), shape=stored.shape, dtype=stored.dtype, chunks=ck,
                                **kw)
        arr[...] = stored
        # level k samples every f-th voxel from the first one: same origin, f times the step
        datasets.append({"path": str(k), "coordinateTransformations": [
            {"type": "scale", "scale": [scale.get(d, 1.0) * f[d] for d in order]},
            {"type": "translation", "translation": [trans.get(d, 0.0) for d in order]}]})
    if axes is None:
        axes = [{"name": d, "type": AXIS_TYPES[d], **({"unit": UNITS[d]} if d in UNITS else {})}
                for d in order]
    ms: dict[str, Any] = {"name": "img", "axes": axes, "datasets": datasets}
    if fmt == 3:
        root.attrs["ome"] = {"version": "0.5", "multiscales": [ms]}
    else:
        root.attrs["multiscales"] = [{"version": "0.4", **ms}]
    return store


def _quiet_open(location: Any, **kw: Any) -> xr.DataArray:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)
        return vz.open_image(location, **kw)


def _quiet_dataset(location: Any, **kw: Any) -> xr.Dataset:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)
        return xr.open_dataset(location, engine="voxzarr", **kw)


def _sample(dims: str, shape: tuple[int, ...]) -> np.ndarray:
    return (np.arange(np.prod(shape)) % 65521).astype("uint16").reshape(shape)


SCALE = {"t": 2.0, "z": 1.5, "y": 0.25, "x": 0.125}
TRANS = {"t": 10.0, "z": -3.0, "y": 0.5, "x": 100.0}


@pytest.fixture
def cxyz(tmp_path):
    """NGFF 0.5, axes c, x, y, z (a layout ome-zarr-py reads), chunked, two levels."""
    data = _sample("czyx", (2, 4, 6, 8))
    path = _write(tmp_path / "cxyz.ome.zarr", data, "cxyz", SCALE, TRANS, chunks=(1, 3, 4, 5),
                  levels=2)
    return path, data


# --------------------------------------------------------------------------- open_image
def test_open_image_transposes_with_a_note(cxyz):
    path, data = cxyz
    with pytest.warns(UserWarning, match=r"stored in the order 'cxyz'.*opened as 'czyx'.*"
                                         r"lazy transpose") as rec:
        img = vz.open_image(path)
    assert str(path) in str(rec[0].message)
    assert vz.validate(path).valid  # NGFF allows this order (z, y, x is only a SHOULD)
    assert rec[0].filename == __file__  # attributed to the caller, not to voxzarr
    assert img.dims == ("c", "z", "y", "x") and img.shape == data.shape
    assert img.attrs["voxzarr_stored_axes"] == "cxyz"
    assert img.chunks is not None  # lazy: dask, nothing read yet
    np.testing.assert_array_equal(img.values, data)
    assert img.vox.voxel_size == {"z": 1.5, "y": 0.25, "x": 0.125}
    assert img.vox.origin == {"z": -3.0, "y": 0.5, "x": 100.0}
    assert img.vox.units == {"z": "micrometer", "y": "micrometer", "x": "nanometer"}
    # one physical position: the stored array indexed in its own (c, x, y, z) order
    raw = zarr.open_array(path / "0", mode="r")
    assert img.sel(c=1, z=-3.0 + 2 * 1.5, y=0.5 + 5 * 0.25, x=100.0 + 3 * 0.125).values \
        == raw[1, 3, 5, 2]


def test_open_multiscale_and_chunks(cxyz):
    path, data = cxyz
    with warnings.catch_warnings(record=True) as rec:
        warnings.simplefilter("always")
        tree = vz.open_multiscale(path)
    assert len([w for w in rec if "stored in the order" in str(w.message)]) == 1  # per open
    lv1 = tree.vox.level(1)
    assert lv1.dims == ("c", "z", "y", "x")
    np.testing.assert_array_equal(lv1.values, data[:, ::2, ::2, ::2])
    assert lv1.vox.voxel_size == {"z": 3.0, "y": 0.5, "x": 0.25}
    # chunks= speaks of the returned dims, by name or in their order
    img = _quiet_open(path, chunks={"z": 1, "x": 2})
    assert img.chunks[1] == (1, 1, 1, 1) and img.chunks[3] == (2, 2, 2, 2)
    img = _quiet_open(path, chunks=(1, 4, 3, 8))
    assert img.chunks == ((1, 1), (4,), (3, 3), (8,))
    np.testing.assert_array_equal(img.values, data)


def test_canonical_store_has_no_note(tmp_path):
    data = _sample("czyx", (2, 3, 4, 5))
    path = _write(tmp_path / "c.ome.zarr", data, "czyx", SCALE, TRANS)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        img = vz.open_image(path)
        ds = xr.open_dataset(path, engine="voxzarr")
    assert "voxzarr_stored_axes" not in img.attrs and "voxzarr_stored_axes" not in ds["image"].attrs
    assert "voxzarr_source" in img.encoding  # an untouched read still finds its halo


def test_writing_is_canonical(cxyz, tmp_path):
    path, data = cxyz
    out = tmp_path / "out.ome.zarr"
    _quiet_open(path).vox.to_ome_zarr(out)
    meta = zarr.open_group(out, mode="r").attrs["ome"]["multiscales"][0]
    assert [a["name"] for a in meta["axes"]] == ["c", "z", "y", "x"]
    assert zarr.open_array(out / "0", mode="r").metadata.dimension_names == ("c", "z", "y", "x")
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        back = vz.open_image(out)
    assert "voxzarr_stored_axes" not in back.attrs
    np.testing.assert_array_equal(back.values, data)
    assert vz.validate(out).valid


def test_in_place_writers_refuse_another_order(cxyz):
    """Adding levels or a halo in place would mix canonical arrays into a store declaring
    another order: refused, naming the store and field; the store is left as it was."""
    from voxzarr.errors import HaloError
    from voxzarr.pyramid import add_levels

    path, data = cxyz
    before = (path / "zarr.json").read_bytes()
    with pytest.raises(MetadataError, match="stored in the order 'cxyz'") as err:
        add_levels(path, levels=3, overwrite=True)
    assert str(path) in str(err.value) and err.value.field == "multiscales[0].axes"
    with pytest.raises(HaloError, match="not one stored here"):
        _quiet_open(path).vox.to_halo(path, depth=1)
    assert (path / "zarr.json").read_bytes() == before
    np.testing.assert_array_equal(_quiet_open(path).values, data)


@pytest.mark.parametrize(("version", "order"), [("0.5", "cxyz"), ("0.4", "tcxzy"),
                                                 ("0.4", "zxy"), ("0.5", "yx")])
def test_same_as_ome_zarr_py(tmp_path, version, order):
    """ome-zarr-py reads the arrays as stored; transposed by name they equal voxzarr's."""
    pytest.importorskip("ome_zarr")
    from ome_zarr.io import parse_url
    from ome_zarr.reader import Reader

    dims = _canonical(order)
    shape = tuple({"t": 2, "c": 3, "z": 4, "y": 5, "x": 6}[d] for d in dims)
    data = _sample(dims, shape)
    path = _write(tmp_path / "o.ome.zarr", data, order, SCALE, TRANS, version=version,
                  chunks=(2,) * len(dims))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # ome-zarr-py's own deprecations
        node = next(iter(Reader(parse_url(str(path), mode="r"))()))
        theirs = np.asarray(node.data[0])
        names = [a["name"] if isinstance(a, Mapping) else a for a in node.metadata["axes"]]
    assert "".join(names) == order
    ours = _quiet_open(path)
    assert ours.dims == tuple(dims)
    np.testing.assert_array_equal(ours.values,
                                  np.transpose(theirs, [order.index(d) for d in dims]))


# --------------------------------------------------------------------------- any permutation
@st.composite
def _layouts(draw: st.DrawFn) -> dict[str, Any]:
    spatial = draw(st.sampled_from(["zyx", "yx", "zy", "zx"]))
    extra = draw(st.sampled_from(["", "t", "c", "tc"]))
    dims = _canonical(extra + spatial)
    if len(dims) < 3:
        dims = _canonical("c" + dims)
    order = "".join(draw(st.permutations(list(dims))))
    shape = tuple(draw(st.integers(1, 5)) for _ in dims)
    chunks = tuple(draw(st.integers(1, 3)) for _ in dims)
    scale = {d: draw(st.sampled_from([0.1, 0.25, 1.0, 2.5, 3.0])) for d in dims if d != "c"}
    trans = {d: draw(st.sampled_from([-7.5, 0.0, 0.3, 12.0])) for d in dims if d != "c"}
    # one outer (orthogonal) selection per dim, as xarray hands to a backend
    sel = {}
    for d, n in zip(dims, shape, strict=True):
        sel[d] = draw(st.one_of(
            st.integers(0, n - 1),
            st.builds(slice, st.integers(0, n), st.integers(0, n), st.integers(1, 3)),
            st.lists(st.integers(0, n - 1), min_size=1, max_size=4)))
    return {"dims": dims, "order": order, "shape": shape, "chunks": chunks, "scale": scale,
            "trans": trans, "version": draw(st.sampled_from(["0.4", "0.5"])), "sel": sel}


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(_layouts())
def test_any_axis_permutation(lay):
    """Values at every physical position equal the stored ones, through open_image and the
    xarray backend; backend region reads equal the same region of the stored array."""
    dims, order, shape = lay["dims"], lay["order"], lay["shape"]
    data = _sample(dims, shape)
    store = _write(zarr.storage.MemoryStore(), data, order, lay["scale"], lay["trans"],
                   version=lay["version"], chunks=lay["chunks"])
    img = _quiet_open(store)
    assert img.dims == tuple(dims)
    assert img.attrs.get("voxzarr_stored_axes", order) == order
    np.testing.assert_array_equal(img.values, data)
    stored = np.asarray(zarr.open_array(store, path="0", mode="r")[...])
    # each stored voxel sits at its physical position translation + index * scale
    for flat in range(0, stored.size, max(1, stored.size // 7)):
        idx = np.unravel_index(flat, stored.shape)
        pos = {d: lay["trans"][d] + i * lay["scale"][d]
               for d, i in zip(order, idx, strict=True) if d != "c"}
        point = img.sel(pos, method="nearest")
        if "c" in order:
            point = point.isel(c=int(idx[order.index("c")]))
        assert point.values == stored[idx]
    ds = _quiet_dataset(store)
    xr.testing.assert_identical(ds["image"].rename(None), img.rename(None))
    assert ds["image"].encoding["preferred_chunks"] == {
        d: min(c, n) for d, c, n in zip(dims, lay["chunks"], shape, strict=True)}
    got = ds["image"].isel(lay["sel"])
    want = img.isel(lay["sel"])
    assert got.dims == want.dims
    np.testing.assert_array_equal(got.values, want.values)


def test_backend_region_reads_touch_only_the_region(cxyz):
    """A region read through the backend reads the stored chunks of that region only."""
    path, data = cxyz
    ds = _quiet_dataset(path)
    got = ds["image"].isel(c=1, z=slice(1, 3), y=[5, 0], x=slice(2, 8, 3))
    np.testing.assert_array_equal(got.values, data[1, 1:3][:, [5, 0]][:, :, 2:8:3])
    assert got.dims == ("z", "y", "x")
    # a point by physical position, lazily indexed
    value = ds["image"].sel(c=0, z=-3.0 + 1.5 * 3, y=0.5, x=100.0 + 0.125 * 7).values
    assert value == data[0, 3, 0, 7]
    assert ds["image"].encoding["chunks"] == (1, 3, 4, 5)  # canonical order, like the dims
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)
        tree = xr.open_datatree(path, engine="voxzarr")
        ref = vz.open_multiscale(path)
    for name in ref.children:
        xr.testing.assert_identical(tree[name].to_dataset(), ref[name].to_dataset())


def test_backend_warns_like_open_image(cxyz):
    path, _ = cxyz
    with pytest.warns(UserWarning, match="stored in the order 'cxyz'") as rec:
        xr.open_dataset(path, engine="voxzarr")
    assert rec[0].filename == __file__


# --------------------------------------------------------------------------- info
def test_info_shows_stored_order(cxyz, capsys):
    path, data = cxyz
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        rep = vz.info(path)
    assert [a["name"] for a in rep["axes"]] == ["c", "x", "y", "z"]
    assert rep["stored_axes"] == "cxyz" and rep["dims"] == ["c", "z", "y", "x"]
    assert rep["levels"][0]["shape"] == [2, 8, 6, 4]  # as stored
    assert list(rep["levels"][0]["voxel_size"]) == ["x", "y", "z"]
    text = format_info(rep)
    assert "axis order  stored c, x, y, z; opened as c, z, y, x" in text
    assert main(["info", str(path)]) == 0
    assert "stored c, x, y, z" in capsys.readouterr().out


# --------------------------------------------------------------------------- refusals
@pytest.mark.parametrize(("axis", "index", "field", "found"), [
    ({"name": "angle", "type": "angle"}, 1, "multiscales[0].axes[1].name", "'angle'"),
    ({"name": "lambda"}, 0, "multiscales[0].axes[0].name", "'lambda'"),
    ({"name": "x", "type": "time"}, 3, "multiscales[0].axes[3].type", "'time'"),
    ({"name": "c", "type": "space", "unit": "micrometer"}, 0, "multiscales[0].axes[0].type",
     "'space'"),
])
def test_unmappable_axes_refused(tmp_path, axis, index, field, found):
    data = _sample("czyx", (2, 3, 4, 5))
    axes = [{"name": d, "type": AXIS_TYPES[d]} for d in "cxyz"]
    axes[index] = axis
    path = _write(tmp_path / "bad.ome.zarr", data, "cxyz", SCALE, TRANS, axes=axes)
    for opener in (vz.open_image, vz.info,
                   lambda p: xr.open_dataset(p, engine="voxzarr")):
        with pytest.raises(MetadataError) as err:
            opener(path)
        assert isinstance(err.value, VoxzarrError)
        assert err.value.path is not None and str(path) in err.value.path
        assert err.value.field == field
        assert found in err.value.message and "expected" in err.value.message


def test_repeated_axis_refused(tmp_path):
    data = _sample("zyx", (3, 4, 5))
    axes = [{"name": d, "type": "space"} for d in "zyz"]
    path = _write(tmp_path / "rep.ome.zarr", data, "zyx", SCALE, TRANS, axes=axes)
    with pytest.raises(MetadataError, match="repeated axis names") as err:
        vz.open_image(path)
    assert err.value.field == "multiscales[0].axes"
