"""The same trial on a real dask LocalCluster (2 worker processes) gives the same summary."""

from __future__ import annotations

from dataclasses import replace

from itb import bootstrap
from itb.bootstrap import catalog
from itb.services.cohort_trial import default_arm
from itb.simulation.cohort_runner import run_chunks_dask, run_chunks_local


def test_dask_local_cluster_matches_the_single_process_run() -> None:
    setup = replace(
        bootstrap.cohort_setup(),
        seed=3,
        patients=24,
        horizon_days=60,
        arms=(
            default_arm(catalog(), "a", refill_margin_days=0),
            default_arm(catalog(), "b", refill_margin_days=10),
        ),
    )
    seen: list[int] = []
    on_dask = run_chunks_dask(setup, chunk_size=5, workers=2, on_progress=seen.append)
    local = run_chunks_local(setup, chunk_size=24)
    assert on_dask == local
    assert sorted(seen) == [4, 5, 5, 5, 5]
    assert on_dask.screened == 24
