"""The command line speaks its own words: flags in messages, one line, one vocabulary; one
module per command."""

from __future__ import annotations

import subprocess
import sys

import numpy as np
import pytest
import tifffile
from PIL import Image

import voxzarr as vz
from voxzarr import cli
from voxzarr.cli import cli_words, main


@pytest.fixture
def timelapse(tmp_path):
    rng = np.random.default_rng(0)
    img = vz.from_array((rng.random((4, 3, 16, 20)) * 100).astype("uint16"), dims="tzyx",
                        voxel_size={"z": 2.0, "y": 0.5, "x": 0.5})
    path = tmp_path / "tl.ome.zarr"
    img.vox.to_ome_zarr(path)
    return path


def test_registries_match_the_listed_choices():
    from voxzarr._downsample import METHODS
    from voxzarr.filters import FILTERS, MODES
    from voxzarr.ndinterp import MODES as RESAMPLE_MODES
    from voxzarr.series.figures import SERIES_MAP_STATS

    assert set(cli.FILTER_NAMES) == set(FILTERS)
    assert set(cli.PYRAMID_METHODS) == set(METHODS) | {"stride"}
    assert set(cli.FILTER_MODES) == set(MODES)
    assert set(cli.RESAMPLE_MODES) == set(RESAMPLE_MODES)
    assert set(cli.SERIES_STATS) == set(SERIES_MAP_STATS)


def test_help_lists_choices(capsys):
    for command, needle in [("filter", "gaussian_laplace"), ("halo", "difference_of_gaussians"),
                            ("pyramid", "median"), ("isotropic", "grid-wrap")]:
        with pytest.raises(SystemExit):
            main([command, "--help"])
        assert needle in capsys.readouterr().out


def test_one_ngff_version_flag_everywhere():
    parser = cli.build_parser()
    subs = parser._subparsers._group_actions[0].choices
    for name in ("convert", "isotropic", "filter", "validate"):
        flags = {o for a in subs[name]._actions for o in a.option_strings}
        assert "--ngff-version" in flags, name


def test_warnings_are_one_line_in_flags(tmp_path, capsys):
    tifffile.imwrite(tmp_path / "cells.tif", np.zeros((5, 16, 16), "uint16"))
    assert main(["convert", str(tmp_path / "cells.tif"), str(tmp_path / "x.ome.zarr"),
                 "--no-progress"]) == 0
    err = capsys.readouterr().err
    lines = [ln for ln in err.splitlines() if ln.strip()]
    assert lines and all(ln.startswith("voxzarr convert: warning: ") for ln in lines)
    assert "--axes tyx" in err and "--voxel-size" in err and "--unit" in err
    assert "UserWarning" not in err and "axes=" not in err and ".py:" not in err


def test_errors_name_flags_and_selection(timelapse, tmp_path, capsys):
    assert main(["png", str(timelapse), str(tmp_path / "p"), "--no-progress"]) == 1
    err = capsys.readouterr().err.strip()
    assert err.count("\n") == 0
    assert err.startswith("voxzarr png: error: --projection:")
    assert "--projection max" in err and "--select t=INDEX" in err and "isel" not in err
    assert main(["png", str(timelapse), str(tmp_path / "p"), "--select", "t=2",
                 "--no-progress"]) == 0


def test_overwrite_advice_is_a_flag(timelapse, tmp_path, capsys):
    out = tmp_path / "show.png"
    assert main(["show", str(timelapse), str(out), "--select", "t=0"]) == 0
    assert main(["show", str(timelapse), str(out)]) == 1
    assert "pass --overwrite" in capsys.readouterr().err


def test_foreign_errors_are_one_line_and_debug_shows_the_traceback(tmp_path):
    bad = tmp_path / "bad.ome.zarr"
    bad.mkdir()
    (bad / "zarr.json").write_text("{not json")
    run = [sys.executable, "-m", "voxzarr.cli", "info", str(bad)]
    plain = subprocess.run(run, capture_output=True, text=True)
    assert plain.returncode == 1
    assert "Traceback" not in plain.stderr
    assert plain.stderr.startswith("voxzarr info: error:") and plain.stderr.count("\n") == 1
    debug = subprocess.run([*run[:3], "--debug", *run[3:]], capture_output=True, text=True)
    assert debug.returncode != 0 and "Traceback" in debug.stderr


def test_show_series_map_and_traces(timelapse, tmp_path):
    for argv in (["show", str(timelapse), str(tmp_path / "a.png"), "--time", "max"],
                 ["series-map", str(timelapse), str(tmp_path / "b.png"), "--stat", "std",
                  "--select", "z=1"],
                 ["series-traces", str(timelapse), str(tmp_path / "c.png"), "--voxel",
                  "z=1,y=2,x=3", "--voxel", "z=0,y=5,x=5", "--normalize", "zscore"]):
        assert main(argv) == 0
        with Image.open(argv[2]) as im:
            pixels = np.asarray(im.convert("L"))
        assert pixels.std() > 5  # something was drawn, not a blank page


def test_filter_takes_the_filter_as_an_option_and_the_old_order(tmp_path, capsys):
    img = vz.from_array(np.arange(4 * 16 * 16, dtype="float32").reshape(4, 16, 16), "zyx",
                        voxel_size=1.0)
    src = tmp_path / "in.ome.zarr"
    img.vox.to_ome_zarr(src)
    new = tmp_path / "new.ome.zarr"
    old = tmp_path / "old.ome.zarr"
    assert main(["filter", str(src), str(new), "--filter", "gaussian", "--param", "sigma=1",
                 "--no-progress", "--device", "cpu"]) == 0
    assert main(["filter", str(src), str(old), "gaussian", "--param", "sigma=1",
                 "--no-progress", "--version", "0.5", "--device", "cpu"]) == 0
    np.testing.assert_array_equal(vz.open_image(new).values, vz.open_image(old).values)
    assert main(["filter", str(src), str(tmp_path / "none.ome.zarr")]) == 1
    assert "add --filter" in capsys.readouterr().err


def test_cli_words_rewrites_known_keywords_only():
    parser = cli.build_parser()._subparsers._group_actions[0].choices["convert"]
    assert cli_words("pass axes='tyx' now", parser) == "pass --axes tyx now"
    assert cli_words("pass overwrite=True to replace", parser) == \
        "pass --overwrite to replace"
    assert cli_words("pass voxel_size= and unit=)", parser) == "pass --voxel-size and --unit)"
    assert cli_words("use mode='full'", parser) == "use mode='full'"  # not a convert flag


def test_each_command_is_a_module_named_after_it():
    import pkgutil

    modules = {m.name for m in pkgutil.iter_modules(cli.__path__) if not m.name.startswith("_")}
    registered = {name: setup.__module__ for name, (_, setup) in cli._core.COMMANDS.items()}
    assert {n.replace("-", "_") for n in registered} == modules
    assert all(mod == f"voxzarr.cli.{n.replace('-', '_')}" for n, mod in registered.items())
