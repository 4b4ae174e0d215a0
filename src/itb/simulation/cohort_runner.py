"""Run a trial's chunks in this process or on a dask.distributed cluster, and merge them.

The cohort is cut into chunks of ``chunk_size`` patients (memory is bounded by
one chunk per worker); each chunk returns a mergeable
:class:`itb.simulation.cohort_trial.TrialPartial`. Merging is exact integer
addition, so the merged result is identical whatever the chunk size, the
number of workers, or the order in which chunks finish.

Dask: ``scheduler`` connects to a running cluster (its workers need ``itb``
installed); ``workers`` starts a :class:`distributed.LocalCluster` of that many
worker processes with one thread each. Each chunk is one task; the setup
(reviewed data, policies) is scattered to the workers once.
"""

from __future__ import annotations

import importlib
from collections.abc import Callable
from typing import Any

from itb.simulation.cohort_trial import TrialPartial, TrialSetup, chunk_bounds, simulate_chunk

__all__ = ["run_chunks", "run_chunks_dask", "run_chunks_local"]


def run_chunks_local(
    setup: TrialSetup, *, chunk_size: int, on_progress: Callable[[int], None] | None = None
) -> TrialPartial:
    """All chunks one after the other in this process."""
    total = TrialPartial()
    for start, size in chunk_bounds(setup.patients, chunk_size):
        total = total.merge(simulate_chunk(setup, start, size))
        if on_progress is not None:
            on_progress(size)
    return total


def _chunk_task(setup: TrialSetup, start: int, size: int) -> tuple[int, TrialPartial]:
    return size, simulate_chunk(setup, start, size)


def run_chunks_dask(
    setup: TrialSetup,
    *,
    chunk_size: int,
    workers: int | None = None,
    scheduler: str | None = None,
    on_progress: Callable[[int], None] | None = None,
) -> TrialPartial:
    """All chunks as tasks on a dask cluster (``scheduler`` address, or a LocalCluster)."""
    # distributed is only partly typed: use it through Any (imported only when needed).
    dist: Any = importlib.import_module("distributed")
    cluster = None
    if scheduler is not None:
        client = dist.Client(scheduler)
    else:
        cluster = dist.LocalCluster(
            n_workers=workers or 1,
            threads_per_worker=1,
            processes=True,
            dashboard_address=":0",
        )
        client = dist.Client(cluster)
    try:
        [setup_future] = client.scatter([setup], broadcast=True)
        futures = [
            client.submit(_chunk_task, setup_future, start, size, pure=False)
            for start, size in chunk_bounds(setup.patients, chunk_size)
        ]
        total = TrialPartial()
        for future in dist.as_completed(futures):
            size, partial = future.result()
            total = total.merge(partial)
            future.release()
            if on_progress is not None:
                on_progress(size)
        return total
    finally:
        client.close()
        if cluster is not None:
            cluster.close()


def run_chunks(
    setup: TrialSetup,
    *,
    chunk_size: int,
    workers: int | None = None,
    scheduler: str | None = None,
    on_progress: Callable[[int], None] | None = None,
) -> TrialPartial:
    """Local when neither ``workers`` nor ``scheduler`` is given, else on dask."""
    if workers is None and scheduler is None:
        return run_chunks_local(setup, chunk_size=chunk_size, on_progress=on_progress)
    return run_chunks_dask(
        setup, chunk_size=chunk_size, workers=workers, scheduler=scheduler, on_progress=on_progress
    )
