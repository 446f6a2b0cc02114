"""Progress bars: local schedulers and a dask.distributed cluster."""

from __future__ import annotations

import dask
import dask.array as da
import numpy as np
import pytest

from voxzarr import _progress

distributed = pytest.importorskip("distributed")


@pytest.fixture(scope="module")
def client():
    with distributed.LocalCluster(n_workers=1, threads_per_worker=2, processes=False,
                                  dashboard_address=None) as cluster, \
            distributed.Client(cluster) as c:
        yield c


def test_cluster_bar_counts_this_clients_tasks(client):
    x = da.arange(64, chunks=8) + 1  # 8 + 8 tasks, plus the sum's tree
    with _progress._cluster_bar(client, "sum", poll_s=0.01) as bar:
        total = int(x.sum().compute())
    assert total == int(np.arange(1, 65).sum())
    assert bar.total >= 16
    assert bar.n == bar.total
    # a second block counts only its own tasks
    with _progress._cluster_bar(client, "again", poll_s=0.01) as bar2:
        (da.ones(10, chunks=5) * 2).compute()
    assert 2 <= bar2.total < bar.total
    assert bar2.n == bar2.total


def test_progress_shows_a_bar_on_the_cluster(client, capsys):
    with _progress.progress("cluster work", enabled=True):
        (da.ones((40, 40), chunks=10) + 1).sum().compute()
    assert "cluster work" in capsys.readouterr().err


def test_progress_on_the_local_scheduler(capsys):
    with dask.config.set(scheduler="threads"), _progress.progress("local work", enabled=True):
        (da.ones((40, 40), chunks=10) + 1).sum().compute()
    assert "local work" in capsys.readouterr().err


def test_progress_off_shows_nothing(client, capsys):
    with _progress.progress("silent", enabled=False):
        (da.ones(10, chunks=5)).sum().compute()
    assert "silent" not in capsys.readouterr().err
