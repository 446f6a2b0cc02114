"""Default level count: viewers get a reduced level for anything wider than a screen tile."""

import numpy as np

import voxzarr as vz
from voxzarr.cli import main
from voxzarr.pyramid import VIEW_FLOOR, plan_pyramid


def test_one_chunk_image_wider_than_a_tile_gets_a_level():
    img = vz.from_array(np.zeros((600, 600), "uint16"), dims="yx", voxel_size=1.0)
    plan = plan_pyramid(img, chunks=(1024, 1024))
    assert plan.n_levels == 2
    assert plan.shapes[1] == (300, 300)


def test_small_image_gets_no_level_and_the_cli_says_why(tmp_path, capsys):
    img = vz.from_array(np.zeros((2 * VIEW_FLOOR - 2, 2 * VIEW_FLOOR - 2), "uint16"), dims="yx",
                        voxel_size=1.0)
    assert plan_pyramid(img).n_levels == 1
    path = tmp_path / "small.ome.zarr"
    img.vox.to_ome_zarr(path)
    assert main(["pyramid", str(path), "--no-progress"]) == 0
    out = capsys.readouterr().out
    assert "no level written" in out and "--levels" in out


def test_chunk_floor_still_applies_below_the_tile():
    img = vz.from_array(np.zeros((64, 1024, 1024), "uint8"), dims="zyx", voxel_size=1.0)
    plan = plan_pyramid(img, chunks=(32, 128, 128))
    assert min(plan.shapes[-1][1:]) >= 128
