"""Keep the BLAS library that numpy and scipy load to one thread.

The engines work on many tiny (6 x 6) matrices; a multi-threaded OpenBLAS spends
far longer waking its threads than computing, and a cohort run is parallelised
by chunks (dask workers) instead. dask's nanny already sets
``OPENBLAS_NUM_THREADS=1`` in its worker processes; this does the same for the
calling process, once the libraries are loaded (Linux: found through
``/proc/self/maps``; elsewhere nothing happens).
"""

from __future__ import annotations

import ctypes
from pathlib import Path

__all__ = ["single_threaded_blas"]

_SYMBOLS = (
    "scipy_openblas_set_num_threads64_",
    "scipy_openblas_set_num_threads",
    "openblas_set_num_threads64_",
    "openblas_set_num_threads",
)
_done = False


def single_threaded_blas() -> int:
    """Set every loaded OpenBLAS to one thread; return how many libraries were set."""
    global _done
    if _done:
        return 0
    maps = Path("/proc/self/maps")
    if not maps.exists():
        return 0
    paths = {
        line.split()[-1]
        for line in maps.read_text(encoding="utf-8", errors="replace").splitlines()
        if "openblas" in line.lower() and line.split()[-1].startswith("/")
    }
    count = 0
    for path in sorted(paths):
        try:
            lib = ctypes.CDLL(path)
        except OSError:
            continue
        for name in _SYMBOLS:
            fn = getattr(lib, name, None)
            if fn is not None:
                fn(ctypes.c_int(1))
                count += 1
                break
    _done = True
    return count
