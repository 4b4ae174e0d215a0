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
import logging
import socket
from collections.abc import Callable
from typing import Any

from itb.domain.errors import InvalidValue
from itb.simulation.cohort_trial import TrialPartial, TrialSetup, chunk_bounds, simulate_chunk

__all__ = [
    "CONNECT_TIMEOUT_S",
    "check_scheduler",
    "run_chunks",
    "run_chunks_dask",
    "run_chunks_local",
]

CONNECT_TIMEOUT_S = 5.0
"""How long to wait for a dask scheduler to answer, s (an unreachable one fails fast)."""
_SCHEDULER_ALLOWED = "the address of a running dask scheduler, like tcp://10.0.0.5:8786"


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


def check_scheduler(address: str) -> None:
    """Refuse, within seconds, an address no dask scheduler answers at.

    Raises:
        InvalidValue: not a scheduler address, or nothing listens there (``scheduler``).
    """
    dist: Any = importlib.import_module("distributed.comm")
    try:
        host, port = dist.get_address_host_port(address)
    except (ValueError, TypeError):
        raise InvalidValue("scheduler", address, _SCHEDULER_ALLOWED) from None
    try:
        with socket.create_connection((host, int(port)), timeout=CONNECT_TIMEOUT_S):
            pass
    except (OSError, ValueError, OverflowError) as exc:
        reason = getattr(exc, "strerror", None) or type(exc).__name__
        raise InvalidValue(
            "scheduler", address, f"{_SCHEDULER_ALLOWED} (nothing answers there: {reason})"
        ) from None


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
        check_scheduler(scheduler)
        try:
            client = dist.Client(scheduler, timeout=f"{CONNECT_TIMEOUT_S:g}s")
        except (OSError, TimeoutError) as exc:
            raise InvalidValue(
                "scheduler", scheduler, f"{_SCHEDULER_ALLOWED} ({type(exc).__name__})"
            ) from None
    else:
        cluster = dist.LocalCluster(
            n_workers=workers or 1,
            threads_per_worker=1,
            processes=True,
            dashboard_address=":0",
            # the cluster's own warnings (a task cancelled by Ctrl-C, a worker restarting)
            # are not the user's business: errors reach them through the futures
            silence_logs=logging.ERROR,
        )
        try:
            client = dist.Client(cluster)
        except BaseException:  # Ctrl-C while connecting: the worker processes must go too
            cluster.close()
            raise
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
