"""Small dense linear algebra in pure Python: the matrix exponential of a few-by-few matrix.

The patient's state equations are linear with a piecewise-constant input, so the
exact solution over a segment of length ``dt`` is ``exp(M dt)`` applied to the
state augmented with the input. The matrices here are 6 x 6, so a plain
scaling-and-squaring Taylor exponential (Moler & Van Loan 2003, method 3) is both
exact to rounding and cheap; it has no trouble with repeated eigenvalues, which
closed forms written as sums of exponentials do.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

__all__ = ["Matrix", "expm", "matmul", "matvec"]

Matrix = tuple[tuple[float, ...], ...]

_TAYLOR_NORM = 0.5
"""Scale the matrix until its 1-norm is at most this before the Taylor series."""
_TAYLOR_MAX_TERMS = 40


def matmul(a: Sequence[Sequence[float]], b: Sequence[Sequence[float]]) -> Matrix:
    """Product ``a @ b`` of two square matrices of the same size."""
    n = len(a)
    cols = [[b[k][j] for k in range(n)] for j in range(n)]
    return tuple(
        tuple(sum(x * y for x, y in zip(row, col, strict=True)) for col in cols) for row in a
    )


def matvec(a: Sequence[Sequence[float]], v: Sequence[float]) -> tuple[float, ...]:
    """Product ``a @ v``."""
    return tuple(sum(x * y for x, y in zip(row, v, strict=True)) for row in a)


def _norm1(a: Sequence[Sequence[float]]) -> float:
    n = len(a)
    return max(sum(abs(a[i][j]) for i in range(n)) for j in range(n))


def expm(a: Sequence[Sequence[float]]) -> Matrix:
    """``exp(a)`` for a small square matrix, to rounding accuracy.

    Scaling and squaring: ``exp(a) = exp(a / 2**s) ** (2**s)`` with ``s`` chosen
    so that ``||a / 2**s||_1 <= 0.5``; the scaled exponential is summed as a
    Taylor series until the terms no longer change the sum.
    """
    n = len(a)
    norm = _norm1(a)
    s = 0 if norm <= _TAYLOR_NORM else math.ceil(math.log2(norm / _TAYLOR_NORM))
    scale = 2.0**-s
    x = tuple(tuple(v * scale for v in row) for row in a)
    result = [[1.0 if i == j else 0.0 for j in range(n)] for i in range(n)]
    term: Matrix = tuple(tuple(1.0 if i == j else 0.0 for j in range(n)) for i in range(n))
    for k in range(1, _TAYLOR_MAX_TERMS + 1):
        term = tuple(tuple(v / k for v in row) for row in matmul(term, x))
        changed = False
        for i in range(n):
            for j in range(n):
                before = result[i][j]
                result[i][j] = before + term[i][j]
                changed = changed or result[i][j] != before
        if not changed:
            break
    out: Matrix = tuple(tuple(row) for row in result)
    for _ in range(s):
        out = matmul(out, out)
    return out
