"""One row of the validation report (``itb validate``), shared by the label-target rows
(:mod:`itb.simulation.validation`) and the long-term rows
(:mod:`itb.simulation.validation_long_term`)."""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any

__all__ = ["ValidationRow", "row"]


@dataclass(frozen=True)
class ValidationRow:
    """One row of the report.

    Attributes:
        id: target id (``"T1"`` ... ``"T23"``; a letter for a part of a target).
        what: what is compared.
        published: the published value (text).
        model: the model's value (text, with the numbers).
        tolerance: the tolerance the model must meet (text).
        passed: whether it does (informational rows pass by definition).
        informational: True for rows shown for information only (T16, T17c, T23).
        use: ``"calibration"`` (a target the assumed values were fitted to), ``"check"``
            (held out: fitted to nothing) or ``"information"`` (no pass/fail).
    """

    id: str
    what: str
    published: str
    model: str
    tolerance: str
    passed: bool
    informational: bool = False
    use: str = "calibration"

    def as_dict(self) -> dict[str, Any]:
        """Plain dict for JSON."""
        return asdict(self)


def row(
    id_: str,
    what: str,
    published: str,
    model: str,
    tolerance: str,
    passed: bool,
    use: str = "calibration",
) -> ValidationRow:
    """A row; an ``information`` row has no pass/fail (it passes by definition)."""
    info = use == "information"
    return ValidationRow(id_, what, published, model, tolerance, info or bool(passed), info, use)
