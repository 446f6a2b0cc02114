"""Pyramids on disk: streaming writes, labels, `voxzarr pyramid`, and other readers."""

from __future__ import annotations

import hashlib
import json
import warnings
from pathlib import Path

import numpy as np
import pytest
import tifffile
import xarray as xr
import zarr

import voxzarr as vz
from voxzarr import OverwriteError, StoreError
from voxzarr.cli import main
from voxzarr.pyramid import PyramidError, add_levels, build_pyramid, plan_pyramid, stream_levels
from voxzarr.testing import assert_image_equal

VOXEL = {"z": 0.125, "y": 0.02249, "x": 0.02249}


@pytest.fixture(scope="module")
def bead(data_dir) -> xr.DataArray:
    arr = tifffile.imread(data_dir / "3d" / "Bead_Image1_crop.tif")
    return vz.from_array(arr, "zyx", voxel_size=VOXEL, translation={"z": 1.0, "y": 0, "x": 0})


def _labels_of(arr: np.ndarray) -> xr.DataArray:
    from scipy import ndimage as ndi

    lab, _ = ndi.label(arr > np.percentile(arr, 99))
    return vz.from_array(lab.astype("uint16"), "zyx", voxel_size=VOXEL,
                         translation={"z": 1.0, "y": 0, "x": 0},
                         attrs={"image-label": {"colors": [{"label-value": 1,
                                                            "rgba": [255, 0, 0, 255]}]}})


def _datasets(path: Path, sub: str = "") -> list[dict]:
    meta = json.loads((path / sub / "zarr.json").read_text())["attributes"]["ome"]
    return meta["multiscales"][0]["datasets"]


def _transforms(ds: dict) -> tuple[list[float], list[float]]:
    scale = next(t["scale"] for t in ds["coordinateTransformations"] if t["type"] == "scale")
    trans = next((t["translation"] for t in ds["coordinateTransformations"]
                  if t["type"] == "translation"), [0.0] * len(scale))
    return scale, trans


def _tree_hash(path: Path) -> dict[str, str]:
    return {str(p.relative_to(path)): hashlib.sha1(p.read_bytes()).hexdigest()
            for p in sorted(path.rglob("*")) if p.is_file()}


# ----------------------------------------------------------------------------- streaming
@pytest.mark.parametrize("method", ["mean", "gaussian", "nearest", "median"])
def test_streamed_write_equals_in_memory_pyramid(tmp_path, bead, method):
    opts = dict(min_size=8, method=method)
    out = tmp_path / "b.ome.zarr"
    bead.vox.to_ome_zarr(out, pyramid=opts, chunks=32)
    tree = build_pyramid(bead, chunks=32, **opts)
    back = vz.open_multiscale(out)
    assert list(back.children) == list(tree.children) == ["0", "1", "2", "3", "4"]
    for key in tree.children:
        mem, disk = tree[key].image, back[key].image
        assert_image_equal(disk, mem)
    plan = plan_pyramid(bead, chunks=32, **opts)
    for i, ds in enumerate(_datasets(out)):
        scale, trans = _transforms(ds)
        assert scale == pytest.approx([plan.scales[i][d] for d in "zyx"], rel=1e-12)
        assert trans == pytest.approx([plan.translations[i][d] for d in "zyx"], rel=1e-12)


@pytest.mark.parametrize("lazy", [True, False])
def test_each_level_reads_the_level_below_from_the_store(tmp_path, bead, lazy):
    src = bead.chunk({"z": 16}) if lazy else bead
    store = zarr.storage.LocalStore(tmp_path / "s.zarr")
    levels = stream_levels(src, store, min_size=8)
    written = vz.io.write_multiscale(store, _spy(levels, store), version="0.5")
    assert len(written.levels) == 5
    for i, deps in enumerate(_spy.graphs[1:], 1):
        # level i starts from a read of stored level i - 1 and from nothing older; only a
        # level 0 held in memory is read directly (cheaper than decoding its stored copy)
        reads = [n for n in deps if n.startswith("voxzarr-pyramid-read")]
        views = [n for n in deps if n.startswith("voxzarr-view")]
        if i == 1 and not lazy:
            assert len(views) == 1 and not reads, deps
        else:
            assert len(reads) == 1 and not views, deps
        assert not any(n.startswith(("array-", "rechunk")) for n in deps if "pyramid" not in n)
        assert f"{i - 1}/zarr.json" in _spy.present[i]


def _spy(levels, store):
    _spy.graphs, _spy.present = [], []
    root = Path(store.root)
    for path, img in levels:
        graph = img.data.__dask_graph__() if hasattr(img.data, "dask") else {}
        _spy.graphs.append({str(k[0] if isinstance(k, tuple) else k) for k in graph})
        _spy.present.append({str(p.relative_to(root)) for p in root.rglob("zarr.json")})
        yield path, img


def test_labels_get_mode_pyramids_with_their_metadata(tmp_path, bead):
    lab = _labels_of(bead.values)
    out = tmp_path / "l.ome.zarr"
    bead.vox.to_ome_zarr(out, pyramid={"min_size": 8, "method": "gaussian"},
                         labels={"beads": lab}, chunks=32)
    image_levels = _datasets(out)
    label_levels = _datasets(out, "labels/beads")
    assert [_transforms(d) for d in label_levels] == [_transforms(d) for d in image_levels]
    meta = json.loads((out / "labels/beads/zarr.json").read_text())["attributes"]["ome"]
    assert meta["image-label"]["colors"] == lab.attrs["image-label"]["colors"]
    assert meta["version"] == "0.5"
    tree = vz.open_multiscale(out, label="beads")
    seen = set(np.unique(lab.values).tolist())
    assert len(seen) > 3
    for key in tree.children:
        values = set(np.unique(tree[key].image.values).tolist())
        assert values <= seen
    expected = build_pyramid(lab, min_size=8, chunks=32)  # mode: the label default
    np.testing.assert_array_equal(tree["3"].image.values, expected["3"].image.values)


def test_bad_pyramid_options_write_nothing(tmp_path, bead):
    out = tmp_path / "bad.ome.zarr"
    with pytest.raises(PyramidError, match="unknown method"):
        bead.vox.to_ome_zarr(out, pyramid={"method": "lanczos"})
    with pytest.raises(PyramidError, match="not labels"):
        bead.vox.to_ome_zarr(out, pyramid={"label_method": "mean"},
                             labels={"x": _labels_of(bead.values)})
    assert list(tmp_path.iterdir()) == []


# ----------------------------------------------------------------------------- add levels
def test_cli_adds_levels_without_touching_level_0(tmp_path, bead):
    out = tmp_path / "a.ome.zarr"
    bead.vox.to_ome_zarr(out, chunks=32)
    before = {k: v for k, v in _tree_hash(out).items() if k.startswith("0/")}
    assert main(["pyramid", str(out), "--dry-run", "--min-size", "8"]) == 0
    assert len(_datasets(out)) == 1
    assert main(["pyramid", str(out), "--min-size", "8", "--no-progress"]) == 0
    after = _tree_hash(out)
    assert {k: after[k] for k in before} == before  # level 0 bytes unchanged
    assert len(_datasets(out)) == 5
    expected = build_pyramid(bead, min_size=8, chunks=32)
    back = vz.open_multiscale(out)
    for key in expected.children:
        assert_image_equal(back[key].image, expected[key].image)
    # codecs and chunks follow level 0
    arr1 = zarr.open_array(out / "1", mode="r")
    assert arr1.chunks == (32, 32, 32)
    assert arr1.compressors == zarr.open_array(out / "0").compressors
    # existing levels: refused, then rebuilt with --overwrite (fewer levels: extras removed)
    assert main(["pyramid", str(out), "--no-progress"]) == 1
    assert main(["pyramid", str(out), "--levels", "2", "--overwrite", "--no-progress",
                 "--factors", "1,2,2"]) == 0
    assert len(_datasets(out)) == 2
    assert not (out / "2").exists() and not (out / "4").exists()
    assert {k: v for k, v in _tree_hash(out).items() if k.startswith("0/")} == before


def test_add_levels_api_on_ngff_04_and_labels(tmp_path, bead):
    out = tmp_path / "v4.ome.zarr"
    lab = _labels_of(bead.values)
    bead.vox.to_ome_zarr(out, version="0.4", chunks=(16, 64, 64), labels={"b": lab})
    plan = add_levels(out, levels=3, method="max", progress=False)
    assert plan.shapes == ((41, 150, 150), (41, 75, 75), (41, 38, 38))
    meta = json.loads((out / ".zattrs").read_text())
    assert meta["multiscales"][0]["version"] == "0.4"
    assert [d["path"] for d in meta["multiscales"][0]["datasets"]] == ["0", "1", "2"]
    np.testing.assert_array_equal(vz.open_image(out, level=2).values,
                                  build_pyramid(bead, levels=3, method="max")["2"].image.values)
    lplan = add_levels(out, levels=4, label="b", progress=False)
    assert lplan.method == "mode"
    assert len(vz.open_multiscale(out, label="b").children) == 4
    with pytest.raises(PyramidError, match="not labels"):
        add_levels(out, label="b", method="mean", overwrite=True)


def test_add_levels_errors(tmp_path, bead):
    with pytest.raises(StoreError, match="no such"):
        add_levels(tmp_path / "missing.zarr")
    with pytest.raises(StoreError, match="zip"):
        add_levels(tmp_path / "x.zip")
    out = tmp_path / "p.ome.zarr"
    bead.vox.to_ome_zarr(out, pyramid={"levels": 2})
    with pytest.raises(OverwriteError, match="already has 2 levels"):
        add_levels(out)
    assert main(["pyramid", str(tmp_path / "missing.zarr")]) == 1


# ----------------------------------------------------------------------------- interop
def test_other_readers_see_the_same_placement(tmp_path, bead):
    out = tmp_path / "i.ome.zarr"
    lab = _labels_of(bead.values)
    bead.vox.to_ome_zarr(out, pyramid={"min_size": 8}, labels={"beads": lab}, chunks=32)
    ours = vz.open_multiscale(out)
    expected = [(ours[k].image.shape, [ours[k].image.vox.voxel_size[d] for d in "zyx"],
                 [ours[k].image.vox.origin[d] for d in "zyx"]) for k in ours.children]

    from ome_zarr.io import parse_url
    from ome_zarr.reader import Reader

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        node = next(iter(Reader(parse_url(str(out)))()))
    transforms = node.metadata["coordinateTransformations"]
    assert len(node.data) == len(expected) == 5
    for data, cts, (shape, scale, trans) in zip(node.data, transforms, expected, strict=True):
        assert tuple(data.shape) == shape
        got = {t["type"]: t[t["type"]] for t in cts}
        assert got["scale"] == pytest.approx(scale, rel=1e-12)
        assert got.get("translation", [0.0] * 3) == pytest.approx(trans, rel=1e-12, abs=0)

    import ngff_zarr

    ms = ngff_zarr.from_ngff_zarr(str(out))
    assert len(ms.images) == 5
    for im, (shape, scale, trans) in zip(ms.images, expected, strict=True):
        assert tuple(im.data.shape) == shape
        assert [im.scale[d] for d in "zyx"] == pytest.approx(scale, rel=1e-12)
        assert [im.translation[d] for d in "zyx"] == pytest.approx(trans, rel=1e-12, abs=0)

    import ome_zarr_models

    model = ome_zarr_models.open_ome_zarr(zarr.open_group(out, mode="r"))
    assert len(model.datasets[0]) == 5


def test_voxzarr_validate_passes(tmp_path, bead):
    from voxzarr.ngff.validate import validate

    out = tmp_path / "v.ome.zarr"
    bead.vox.to_ome_zarr(out, pyramid={"min_size": 8, "method": "nearest"},
                         labels={"b": _labels_of(bead.values)}, chunks=32)
    result = validate(out)
    assert result.valid, result
    assert main(["validate", str(out)]) == 0
    # a label rebuilt alone follows its image's levels (the counts must match)
    plan = add_levels(out, label="b", overwrite=True, method="max", progress=False)
    assert plan.n_levels == 5
    result = validate(out, strict=True)
    assert result.valid, result
    assert not [i for i in result.issues if "type" in i.field or "metadata" in i.field]


def test_sharded_levels_write_whole_shards(tmp_path):
    x = np.random.default_rng(0).integers(0, 5000, (20, 100, 90)).astype("uint16")
    img = vz.from_array(x, "zyx", voxel_size={"z": 1.0, "y": 0.3, "x": 0.3})
    img.vox.to_ome_zarr(tmp_path / "s.zarr", pyramid={"min_size": 8}, chunks=8, shards=32)
    img.vox.to_ome_zarr(tmp_path / "a.zarr", chunks=8, shards=32)
    add_levels(tmp_path / "a.zarr", min_size=8, method="gaussian", progress=False)
    for name, method in (("s.zarr", "mean"), ("a.zarr", "gaussian")):
        expected = build_pyramid(img, min_size=8, chunks=8, method=method)
        back = vz.open_multiscale(tmp_path / name)
        assert list(back.children) == list(expected.children)
        for key in expected.children:
            np.testing.assert_array_equal(back[key].image.values, expected[key].image.values)
            arr = zarr.open_array(tmp_path / name / key, mode="r")
            assert arr.chunks == tuple(min(8, n) for n in arr.shape) and arr.shards is not None
