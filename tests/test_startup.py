"""Start-up: `import voxzarr`, `voxzarr --help` and `voxzarr info` load no xarray or dask.

Each check runs a fresh interpreter and looks at which modules got imported (timings are not
asserted; benchmarks/RESULTS.md has them). The ``.vox`` accessors must still register whatever
the order of ``import voxzarr`` and ``import xarray``, and the backend entry point must work
without ``import voxzarr``.
"""

from __future__ import annotations

import json
import subprocess
import sys
import textwrap

import numpy as np
import pytest

import voxzarr as vz

HEAVY = ("xarray", "dask", "pandas", "scipy", "numba", "matplotlib", "distributed")

# run the command line as `python -m voxzarr.cli ARGS` does, then list what got imported
_RUN_CLI = """
import json, runpy, sys
sys.argv = ["voxzarr", *json.loads(sys.argv[1])]
try:
    runpy.run_module("voxzarr.cli", run_name="__main__", alter_sys=True)
except SystemExit as exit:
    code = exit.code
print("MODULES " + json.dumps([code, sorted(sys.modules)]))
"""


def _python(code: str, *args: str, importtime: bool = False) -> subprocess.CompletedProcess:
    opts = ["-X", "importtime"] if importtime else []
    return subprocess.run([sys.executable, *opts, "-c", textwrap.dedent(code), *args],
                          capture_output=True, text=True, timeout=300)


def _cli_modules(*args: str) -> tuple[int, set[str], set[str]]:
    """Exit status, ``sys.modules`` at exit and the ``-X importtime`` list of a CLI run."""
    run = _python(_RUN_CLI, json.dumps(args), importtime=True)
    line = [x for x in run.stdout.splitlines() if x.startswith("MODULES ")]
    assert line, run.stdout + run.stderr
    code, modules = json.loads(line[-1].removeprefix("MODULES "))
    timed = {x.rsplit("|", 1)[-1].strip() for x in run.stderr.splitlines()
             if x.startswith("import time:") and "|" in x}
    return code, set(modules), timed


def _heavy(modules: set[str]) -> list[str]:
    return sorted(m for m in modules if m.split(".")[0] in HEAVY)


@pytest.fixture(scope="module")
def store(tmp_path_factory):
    path = tmp_path_factory.mktemp("startup") / "img.ome.zarr"
    vz.from_array(np.zeros((4, 8, 8), "uint16"), dims="zyx",
                  voxel_size={"z": 1.0, "y": 0.5, "x": 0.5}).vox.to_ome_zarr(path)
    return path


def test_help_imports_no_array_stack():
    code, modules, timed = _cli_modules("--help")
    assert code == 0
    assert "voxzarr.errors" in timed  # the -X importtime list is the one looked at
    assert _heavy(modules) == [] and _heavy(timed) == []
    assert "zarr" not in modules and "numpy" not in modules  # --help needs neither


def test_info_imports_no_xarray_or_dask(store):
    code, modules, timed = _cli_modules("info", str(store))
    assert code == 0
    assert "voxzarr.inspect" in modules and "zarr" in modules
    assert _heavy(modules) == [] and _heavy(timed) == []


def test_info_json_imports_no_xarray_or_dask(store):
    code, modules, _ = _cli_modules("info", "--json", str(store))
    assert code == 0 and _heavy(modules) == []


def test_import_voxzarr_is_light():
    run = _python("""
        import sys
        import voxzarr as vz
        print(sorted(m for m in sys.modules if m.split('.')[0] in
                     ('xarray', 'dask', 'zarr', 'numpy', 'pandas')))
    """)
    assert run.returncode == 0, run.stderr
    assert run.stdout.strip() == "[]"


@pytest.mark.parametrize("first", ["voxzarr", "xarray"])
def test_accessors_registered_in_either_import_order(first):
    second = "xarray" if first == "voxzarr" else "voxzarr"
    run = _python(f"""
        import sys
        import {first}
        import {second}
        import numpy as np
        import xarray as xr
        img = xr.DataArray(np.zeros((2, 3)), dims=("y", "x"),
                           coords={{"y": [0.0, 0.5], "x": [0.0, 0.5, 1.0]}})
        assert type(img.vox).__name__ == "VoxAccessor", type(img.vox)
        assert img.vox.voxel_size == {{"y": 0.5, "x": 0.5}}, img.vox.voxel_size
        assert type(xr.DataTree().vox).__name__ == "VoxTreeAccessor"
        # the import hook has stepped aside, and xarray's loader still answers for it
        assert not [f for f in sys.meta_path if "voxzarr" in type(f).__module__], sys.meta_path
        assert xr.__spec__.loader.get_filename("xarray").endswith("__init__.py")
        print("ok")
    """)
    assert run.returncode == 0, run.stderr
    assert run.stdout.strip() == "ok"


def test_accessors_when_only_xarray_is_imported_later():
    """`import voxzarr` first, then code that imports xarray itself (here: the accessor)."""
    run = _python("""
        import voxzarr as vz
        img = vz.from_array(__import__("numpy").zeros((2, 3)), dims="yx", voxel_size=0.5)
        print(img.vox.voxel_size)
    """)
    assert run.returncode == 0, run.stderr
    assert run.stdout.strip() == "{'y': 0.5, 'x': 0.5}"


def test_backend_entry_point_without_import_voxzarr(store):
    run = _python("""
        import sys
        import xarray as xr
        assert "voxzarr" not in sys.modules
        ds = xr.open_dataset(sys.argv[1], engine="voxzarr")
        print(ds["image"].shape, ds["image"].vox.voxel_size)
        tree = xr.open_datatree(sys.argv[1], engine="voxzarr")
        print(sorted(tree.children), type(tree.vox).__name__)
    """, str(store))
    assert run.returncode == 0, run.stderr
    assert run.stdout.splitlines() == ["(4, 8, 8) {'z': 1.0, 'y': 0.5, 'x': 0.5}",
                                       "['0'] VoxTreeAccessor"]


def test_public_names_lazy_listed_and_cached():
    run = _python("""
        import sys
        import voxzarr as vz
        missing = [n for n in vz.__all__ if n not in dir(vz)]
        assert not missing, missing
        assert "voxzarr.inspect" not in sys.modules
        info = vz.info
        assert "info" in vars(vz) and vz.info is info  # cached after first use
        assert "xarray" not in sys.modules  # vz.info needs no xarray
        for name in vz.__all__:
            getattr(vz, name)
        assert callable(vz.convert) and vz.convert is vz.convert
        print("ok")
    """)
    assert run.returncode == 0, run.stderr
    assert run.stdout.strip() == "ok"
    with pytest.raises(AttributeError, match="no attribute 'nope'"):
        vz.nope  # noqa: B018
