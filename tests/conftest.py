"""Shared fixtures and hooks: test data paths, GPU skips, tests that must run last.

The folders of ``tests/`` mirror the package (``tests/ngff`` tests ``voxzarr.ngff``, and so on;
the table is in ``spec/architecture.md``); tests of several layers at once stay here at the
top. Test files have no ``__init__.py`` and are imported in pytest's default ``prepend`` mode,
so every test file name is unique across folders. This file's folder is put on ``sys.path``
when pytest loads it, so helper modules here (``_s3server``, ``_filter_reference``) import
by name from any folder.
"""

from __future__ import annotations

import importlib.util
from pathlib import Path

import pytest

#: real microscopy files and NGFF stores (see tests/data/PROVENANCE.md)
DATA = Path(__file__).resolve().parent / "data"
#: the NGFF spec's schemas, examples and conformance suites
NGFF = DATA / "ngff"


def _has_gpu() -> bool:
    if importlib.util.find_spec("cupy") is None:
        return False
    try:
        import cupy

        return cupy.cuda.runtime.getDeviceCount() > 0
    except Exception:
        return False


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line(
        "markers", "last: runs after every other test (it checks what the others wrote)")


def pytest_collection_modifyitems(config, items):
    # stable: the marked tests keep their order among themselves, after all the others
    items.sort(key=lambda item: item.get_closest_marker("last") is not None)
    if _has_gpu():
        return
    skip = pytest.mark.skip(reason="needs CuPy and an NVIDIA GPU")
    for item in items:
        if "gpu" in item.keywords:
            item.add_marker(skip)


def _present(folder: Path) -> Path:
    # the data is part of the repository: missing files are a broken checkout, not a skip
    if not folder.is_dir():
        pytest.fail(f"test data folder {folder} is missing from this checkout")
    return folder


@pytest.fixture(scope="session")
def data_dir() -> Path:
    """tests/data: the real files of tests/data/PROVENANCE.md."""
    return _present(DATA)


@pytest.fixture(scope="session")
def ngff_dir() -> Path:
    """tests/data/ngff: the NGFF spec's schemas, examples and test suites."""
    return _present(NGFF)
