"""Reading and validation agree on every NGFF image the test suite wrote.

Runs last (marked ``last``; ``tests/conftest.py`` orders the marked tests after the others):
it walks this session's temporary folder, where every other test wrote its stores, and checks
each NGFF image group both ways. The rule: an image ``vz.validate`` calls valid opens with
``vz.open_image``; an image ``open_image`` refuses is invalid or unsupported by ``validate``,
or ``validate`` names the reason as its ``voxzarr-read`` advice. (Broken stores that the
reader still opens are allowed: reading is lenient where it can be, validation strict.)
"""

from __future__ import annotations

import json
import warnings
from pathlib import Path

import numpy as np
import pytest

import voxzarr as vz
from voxzarr.errors import VoxzarrError

pytestmark = pytest.mark.last


def _image_groups(base: Path) -> list[Path]:
    found = []
    for meta in [*base.rglob("zarr.json"), *base.rglob(".zattrs")]:
        try:
            doc = json.loads(meta.read_text())
        except (OSError, ValueError):
            continue
        attrs = doc.get("attributes", {}) if meta.name == "zarr.json" else doc
        ome = attrs.get("ome", attrs) if isinstance(attrs, dict) else None
        if isinstance(ome, dict) and "multiscales" in ome:
            found.append(meta.parent)
    return sorted(set(found))


def test_validate_and_open_image_agree_on_every_written_store(tmp_path_factory):
    own = tmp_path_factory.mktemp("agree")  # a few of its own, so the walk is never empty
    img = vz.from_array(np.arange(2 * 8 * 8, dtype="uint16").reshape(2, 8, 8), "zyx",
                        voxel_size={"z": 2.0, "y": 0.5, "x": 0.5})
    img.vox.to_ome_zarr(own / "a.ome.zarr")
    img.vox.to_ome_zarr(own / "b.ome.zarr", version="0.4", pyramid=True)
    stores = _image_groups(tmp_path_factory.getbasetemp())
    assert len(stores) >= 2
    disagree = []
    for store in stores:
        verdict = vz.validate(store)
        try:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                vz.open_image(store)
            error = None
        except VoxzarrError as err:
            error = err
        explained = any(i.rule == "voxzarr-read" for i in verdict.issues)
        if verdict.valid and error is not None and not explained:
            disagree.append(f"{store}: validate says valid, open_image refuses: {error}")
    assert not disagree, "\n".join(disagree)
