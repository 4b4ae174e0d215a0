"""Writing the validation report: validation.json, report.html (self-contained: the table
and the dose-trajectory plot inline) and plots/dose_trajectory.png.

Written atomically through :func:`itb.adapters.run_output.write_output_dir`.
"""

from __future__ import annotations

import base64
import html
import json
from pathlib import Path
from typing import Any

from itb.adapters.plots.validation import dose_trajectory_png
from itb.adapters.run_output import write_output_dir
from itb.simulation.validation import ValidationReport

__all__ = ["report_json", "write_validation_output"]

_USE = {
    "calibration": "calibration target",
    "check": "held-out check",
    "information": "information",
}

_CSS = """
body{font-family:-apple-system,"Segoe UI",Helvetica,Arial,sans-serif;margin:0;color:#1a1a1a;
background:#f6f7f9;line-height:1.45}
main{max-width:1180px;margin:0 auto;padding:24px 28px 48px;background:#fff}
h1{font-size:1.6em;margin:0.2em 0}h2{font-size:1.2em;margin:1.6em 0 0.5em;
border-bottom:2px solid #e3e6ea;padding-bottom:4px}
.disclaimer{background:#fff4e5;border:1px solid #f0b35b;padding:10px 14px;border-radius:6px;
font-size:0.92em}
table{border-collapse:collapse;width:100%;font-size:0.86em}
th,td{border-bottom:1px solid #e3e6ea;padding:5px 8px;text-align:left;vertical-align:top}
th{background:#f0f2f5}td.id{white-space:nowrap;font-weight:600}
td.pass{color:#1d6b2f;font-weight:600}td.fail{color:#a40000;font-weight:700}
td.info{color:#2b5d8a}
figure{margin:14px 0}figure img{width:100%;max-width:900px;border:1px solid #e3e6ea}
figcaption{font-size:0.88em;color:#555}
"""


def report_json(report: ValidationReport) -> dict[str, Any]:
    """The machine-readable report (what ``itb validate --json`` prints)."""
    return {
        "passed": report.passed,
        "failed": [r.id for r in report.rows if not r.passed],
        "rows": [r.as_dict() for r in report.rows],
        "dose_trajectories_mcg_per_day": {g: list(v) for g, v in report.trajectories.items()},
    }


def _e(text: object) -> str:
    return html.escape(str(text))


def _html(report: ValidationReport, png: bytes) -> str:
    rows = []
    for r in report.rows:
        if r.informational:
            result, cls = "info", "info"
        else:
            result, cls = ("pass", "pass") if r.passed else ("FAIL", "fail")
        rows.append(
            f'<tr><td class="id">{_e(r.id)}</td><td>{_e(r.what)}</td><td>{_e(r.published)}</td>'
            f"<td>{_e(r.model)}</td><td>{_e(r.tolerance)}</td><td>{_e(_USE.get(r.use, r.use))}</td>"
            f'<td class="{cls}">{result}</td></tr>'
        )
    failed = [r.id for r in report.rows if not r.passed]
    verdict = (
        f"{len(failed)} row(s) fail: {', '.join(failed)}"
        if failed
        else f"All {len(report.rows)} rows pass."
    )
    img = base64.b64encode(png).decode("ascii")
    return f"""<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>itb: virtual patient validation</title>
<style>{_CSS}</style></head><body><main>
<h1>Virtual patient validation</h1>
<p class="disclaimer">Simulation for research and teaching: itb is not a medical device and
not clinical advice. Each row is computed from the model on a seeded cohort and compared
with a published target.</p>
<p><strong>{_e(verdict)}</strong> A <em>calibration target</em> is one the model's assumed
values were fitted to; a <em>held-out check</em> was fitted to nothing; <em>information</em>
rows have no pass/fail and say why. Sources: docs/sources.md.</p>
<h2>Dose by origin over ten years</h2>
<figure><img src="data:image/png;base64,{img}" alt="Model mean dose by origin over ten years
against the published means at 1 and 10 years">
<figcaption>Lines: the titrated virtual cohort's mean daily dose at the end of each year, by
origin. Open markers: the published means at 1 and 10 years with their 95 % intervals. The
model's absolute doses follow the label's typical ranges (rows T9, T10), higher than this
single centre's; the rows compare ratios between origins and between years.</figcaption>
</figure>
<h2>Rows</h2>
<table><thead><tr><th>id</th><th>what</th><th>published</th><th>model</th><th>tolerance</th>
<th>use</th><th>result</th></tr></thead><tbody>
{"".join(rows)}
</tbody></table>
</main></body></html>
"""


def write_validation_output(report: ValidationReport, out_dir: Path) -> Path:
    """Write the report's files to ``out_dir`` atomically; return the directory."""
    png = dose_trajectory_png(report.trajectories, report.published, report.published_source)

    def fill(tmp: Path) -> None:
        (tmp / "validation.json").write_text(
            json.dumps(report_json(report), indent=2), encoding="utf-8"
        )
        plots = tmp / "plots"
        plots.mkdir()
        (plots / "dose_trajectory.png").write_bytes(png)
        (tmp / "report.html").write_text(_html(report, png), encoding="utf-8")

    return write_output_dir(out_dir, fill)
