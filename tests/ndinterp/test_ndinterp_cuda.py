"""The CUDA sources of ``voxzarr.ndinterp``: package data, read lazily, defining what is asked.

The kernels are compiled with CuPy only on a GPU (``tests/ndinterp/test_gpu_resample.py``); these
checks run anywhere. A stand-in ``cupy`` module records the source and the kernel name of every
variant :func:`voxzarr.ndinterp._gpu._separable_kernel` would compile.
"""

from __future__ import annotations

import re
import subprocess
import sys
import types
from importlib import resources
from itertools import product

import numpy as np
import pytest

from voxzarr.ndinterp import _gpu

KERNEL = re.compile(r'extern "C" __global__ void (\w+)\(')
DTYPES = ["bool", "uint8", "int8", "uint16", "int16", "int32", "int64", "float32", "float64"]


@pytest.fixture
def compiled(monkeypatch):
    """Every kernel variant ``_separable_kernel`` builds, as ``(name, source)`` pairs."""
    calls: list[tuple[str, str]] = []

    class RawKernel:
        def __init__(self, code: str, name: str, **_: object):
            calls.append((name, code))

    monkeypatch.setitem(sys.modules, "cupy", types.SimpleNamespace(RawKernel=RawKernel))
    monkeypatch.setattr(_gpu, "_KERNELS", {})
    for src, dst, wt in product(DTYPES, DTYPES, ("float32", "float64")):
        s, d, w = np.dtype(src), np.dtype(dst), np.dtype(wt)
        _gpu._separable_kernel("vz_separable", s, w, d, (2, 2, 2))
        for vec, xpass in ((1, 0), (2, 1)):
            _gpu._separable_kernel("vz_zwalk", s, w, d, (2, 2, 1 if xpass else 2), vec=vec,
                                   salign=vec * s.itemsize, dalign=vec * d.itemsize,
                                   has_cval=1, xpass=xpass, zr=_gpu._ZR)
    return calls


def test_sources_are_package_data():
    cuda = resources.files("voxzarr.ndinterp").joinpath("cuda")
    names = {p.name for p in cuda.iterdir()}
    assert {f"{k}.cu" for k in _gpu._KERNEL_NAMES} | {_gpu._FAST_CVT_FILE} <= names


@pytest.mark.parametrize("name", _gpu._KERNEL_NAMES)
def test_each_file_defines_its_kernel(name):
    assert KERNEL.findall(_gpu._cuda_source(f"{name}.cu")) == [name]
    assert not KERNEL.findall(_gpu._cuda_source(_gpu._FAST_CVT_FILE))


def test_every_kernel_asked_for_is_defined_in_its_source(compiled):
    assert {name for name, _ in compiled} == set(_gpu._KERNEL_NAMES)
    for name, code in compiled:
        assert name in KERNEL.findall(code)
        assert code.endswith(_gpu._cuda_source(f"{name}.cu"))  # the file as it is
        # every macro the file uses is defined by the lines before it
        defined = set(re.findall(r"^#define (\w+)", code, re.M))
        body = _gpu._cuda_source(f"{name}.cu")
        for macro in ("SRC", "WT", "DST", "KZ", "KY", "KX", "STORE"):
            assert re.search(rf"\b{macro}\b", body) is None or macro in defined, (name, macro)
    fast = [code for name, code in compiled if name == "vz_zwalk"]
    assert all(_gpu._cuda_source(_gpu._FAST_CVT_FILE) in code for code in fast)


def test_variants_compile_once(compiled):
    assert len(compiled) == len(set(compiled))


def test_import_reads_no_source_and_needs_no_cupy():
    # ``sys.modules["cupy"] = None`` makes ``import cupy`` fail, as where CuPy is missing
    code = ("import sys; sys.modules['cupy'] = None; import voxzarr.ndinterp; "
            "from voxzarr.ndinterp import _gpu; "
            "assert _gpu._cuda_source.cache_info().currsize == 0; "
            "assert not _gpu._KERNELS")
    subprocess.run([sys.executable, "-c", code], check=True)
