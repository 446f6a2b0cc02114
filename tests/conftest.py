"""Shared fixtures: paths to the test data in tests/data (travels with the repo), GPU markers."""

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


def pytest_collection_modifyitems(config, items):
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
