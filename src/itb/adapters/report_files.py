"""Writing a simulated course to files: metrics, timeline, trajectories, plots, HTML report.

Files in the output directory (written into a temporary sibling and renamed
at the end, :func:`itb.adapters.run_output.write_output_dir`):

- ``metrics.json``: the metrics object (byte-identical for the same scenario and seed);
- ``timeline.csv``: every timeline line, with local time and the patient's state;
- ``trajectories.csv``: the samples (true and calculated reservoir, dose and
  delivery, CSF and effect-site concentration, MAS/PSFS, withdrawal and overdose);
- ``plots/*.png``: the four course figures;
- ``report.html``: one self-contained page for a clinician (inline CSS, PNGs
  embedded as base64, no external resources).
"""

from __future__ import annotations

import base64
import csv
import html
import json
import re
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from itb.adapters.plots.course import PLOT_TITLES, REFILL_HISTORY_FROM, course_plots, marked_events
from itb.adapters.run_output import write_output_dir
from itb.services.scenario import ScenarioResult
from itb.services.scenario_summary import (
    ASSUMPTIONS,
    DISCLAIMER,
    METRIC_LABELS,
    format_metric,
    highlights,
    key_events,
    patient_line,
)

__all__ = ["metrics_json", "write_course_files", "write_course_report"]

_TRAJECTORY_COLUMNS = (
    "t_h",
    "day",
    "time",
    "reservoir_actual_ml",
    "reservoir_calculated_ml",
    "dose_mcg_per_day",
    "delivery_mcg_per_h",
    "csf_mcg_per_ml",
    "effect_site_mcg_per_ml",
    "mas",
    "psfs",
    "withdrawal_stage",
    "withdrawal_severity",
    "overdose_stage",
    "signs",
)


def metrics_json(result: ScenarioResult) -> str:
    """The metrics object as JSON text (stable key order, newline at the end)."""
    return json.dumps(result.metrics, indent=2, ensure_ascii=False) + "\n"


def _csv(path: Path, header: Sequence[str], rows: Sequence[Sequence[Any]]) -> None:
    with path.open("w", newline="", encoding="utf-8") as fh:
        w = csv.writer(fh, lineterminator="\n")
        w.writerow(header)
        w.writerows(rows)


def _g(value: float) -> str:
    return f"{value:.6g}"


def write_course_files(result: ScenarioResult, directory: Path) -> None:
    """Write every file of one course into the existing ``directory``."""
    (directory / "metrics.json").write_text(metrics_json(result), encoding="utf-8")
    _csv(
        directory / "timeline.csv",
        (
            "t_h",
            "day",
            "time",
            "actor",
            "kind",
            "detail",
            "mas",
            "withdrawal_stage",
            "overdose_stage",
        ),
        [
            (
                _g(e.t_h),
                _g(e.t_h / 24.0),
                result.iso(e.t_h),
                e.actor,
                e.kind,
                e.detail,
                _g(e.mas),
                e.withdrawal_stage,
                e.overdose_stage,
            )
            for e in result.timeline
        ],
    )
    _csv(
        directory / "trajectories.csv",
        _TRAJECTORY_COLUMNS,
        [
            (
                _g(s.t_h),
                _g(s.t_h / 24.0),
                result.iso(s.t_h),
                _g(s.reservoir_actual_ml),
                _g(s.reservoir_calculated_ml),
                _g(s.dose_mcg_per_day),
                _g(s.delivery_mcg_per_h),
                _g(s.csf_mcg_per_ml),
                _g(s.effect_site_mcg_per_ml),
                _g(s.mas),
                _g(s.psfs),
                s.withdrawal_stage,
                _g(s.withdrawal_severity),
                s.overdose_stage,
                s.signs,
            )
            for s in result.samples
        ],
    )
    plots = course_plots(
        result.samples,
        result.timeline,
        lambda t: result.clock.local(t).replace(tzinfo=None),
        therapeutic_band=(
            result.metrics["therapeutic_range"]["mas_low"],
            result.metrics["therapeutic_range"]["mas_high"],
        ),
        low_reservoir_alarm_ml=result.low_reservoir_alarm_ml,
    )
    plot_dir = directory / "plots"
    plot_dir.mkdir()
    for name, png in plots.items():
        (plot_dir / f"{name}.png").write_bytes(png)
    (directory / "report.html").write_text(render_html(result, plots), encoding="utf-8")


def write_course_report(result: ScenarioResult, out_dir: Path) -> Path:
    """Write one course's files to ``out_dir`` atomically; return the directory."""
    return write_output_dir(out_dir, lambda tmp: write_course_files(result, tmp))


_CSS = """
body{font-family:-apple-system,"Segoe UI",Helvetica,Arial,sans-serif;margin:0;color:#1a1a1a;
background:#f6f7f9;line-height:1.45}
main{max-width:1120px;margin:0 auto;padding:24px 28px 48px;background:#fff}
h1{font-size:1.6em;margin:0.2em 0}h2{font-size:1.2em;margin:1.6em 0 0.5em;border-bottom:2px solid
#e3e6ea;padding-bottom:4px}
.disclaimer{background:#fff4e5;border:1px solid #f0b35b;padding:10px 14px;border-radius:6px;
font-size:0.92em}
.lead{color:#444;font-size:1.02em}
ul.hl li{margin:3px 0}
.warn{color:#a40000;font-weight:600}
table{border-collapse:collapse;width:100%;font-size:0.9em}
th,td{border-bottom:1px solid #e3e6ea;padding:5px 8px;text-align:left;vertical-align:top}
th{background:#f0f2f5}
td.num{text-align:right;white-space:nowrap}td.when{white-space:nowrap}
tr.withdrawal td{background:#fdecea}tr.overdose td{background:#f3ecfb}
tr.pump td:nth-child(3){color:#555}
figure{margin:14px 0}figure img{width:100%;border:1px solid #e3e6ea}
figcaption{font-size:0.88em;color:#555}
.grid{display:grid;grid-template-columns:1fr 1fr;gap:4px 24px}
footer{margin-top:2em;font-size:0.85em;color:#555}
.small{font-size:0.85em;color:#555}h3{font-size:1em;margin:1.2em 0 0.3em}
"""


def _e(text: object) -> str:
    return html.escape(str(text))


_WHO = {"scenario": "planned event", "clinic": "clinic", "patient": "patient", "pump": "pump"}
"""Who acted, in the report's words (a scenario's own events are planned ones)."""

_TAG = re.compile(r"\[[A-Z]\d+[a-z]?\]")


def _what(kind: str) -> str:
    return kind.replace("_", " ")


def _without_sources(detail: str, notes: dict[str, int]) -> tuple[str, list[int]]:
    """The detail with each bracketed source group (``[[C13][C17]]``, ``[C12]``,
    ``[label text [C13] (a note)]``) moved to a numbered footnote; the numbers it cites."""
    out: list[str] = []
    refs: list[int] = []
    i = 0
    while i < len(detail):
        if detail[i] == "[":
            depth, j = 0, i
            while j < len(detail):
                depth += {"[": 1, "]": -1}.get(detail[j], 0)
                if depth == 0:
                    break
                j += 1
            group = detail[i : j + 1]
            if depth == 0 and _TAG.search(group):
                tag = group[1:-1] if group.startswith("[[") else group
                n = notes.setdefault(tag, len(notes) + 1)
                if n not in refs:
                    refs.append(n)
                i = j + 1
                continue
        out.append(detail[i])
        i += 1
    text = re.sub(r"\s+([;,.)])", r"\1", re.sub(r"\s{2,}", " ", "".join(out))).strip()
    return text.rstrip(";, "), refs


def _made_by(made: object) -> str:
    """The provenance line (itb and data versions, the input's hash), if recorded."""
    if not isinstance(made, dict) or not made:
        return ""
    changes = "; --set " + ", ".join(made["set"]) if made.get("set") else ""
    return (
        f'<p class="small">itb {_e(made.get("itb_version"))}, data {_e(made.get("data_version"))}; '
        f"input SHA-256 {_e(made.get('input_sha256'))}{_e(changes)}.</p>"
    )


def _img(png: bytes, alt: str) -> str:
    data = base64.b64encode(png).decode("ascii")
    return f'<img src="data:image/png;base64,{data}" alt="{_e(alt)}">'


_CAPTIONS = {
    "spasticity": "MAS (black) and PSFS (blue). Green: the therapeutic band of MAS. Red shading: "
    "withdrawal signs (dark red: severe); purple: overdose signs.",
    "dose": "Light blue (wide): the programmed daily dose. Black: drug actually reaching the CSF "
    "(mean over each sampling interval, per day): a gap means the pump stopped, the reservoir "
    "was empty or the drug was lost before the tip. Numbers: the events in the table below.",
    "reservoir": "Blue: the volume the pump calculates (what its alarms and the clinic's refill "
    "plan follow). Red dashed: what is really left. They part when the pump over- or "
    "under-infuses or a refill is missed.",
    "reservoir_history": "At each refill, just before it: blue dot, the volume the pump "
    "calculated; red cross, what was really left (the grey stem between them is the "
    "discrepancy the nurse would find). A cross below the dot: the pump delivered more than "
    "programmed; near zero: a refill came too late. Numbers: the events in the table below.",
    "concentration": "Drug near the catheter tip (light blue, wide) and at the effect site "
    "(black), mcg/mL. Numbers: the events in the table below.",
    "episodes": "Each period with withdrawal (red) or overdose (purple) signs, two days either "
    "side: MAS (black, left axis) and the drug reaching the CSF (orange, right axis, mcg/day); "
    "dashed lines mark what happened.",
}


def render_html(result: ScenarioResult, plots: dict[str, bytes]) -> str:
    """The self-contained HTML report."""
    m = result.metrics
    s = result.scenario
    title = result.name or "Simulated course"
    parts: list[str] = [
        "<!DOCTYPE html>",
        '<html lang="en"><head><meta charset="utf-8">',
        '<meta name="viewport" content="width=device-width, initial-scale=1">',
        f"<title>{_e(title)} — itb simulated course</title>",
        f"<style>{_CSS}</style></head><body><main>",
        f'<p class="disclaimer"><strong>Not a medical device.</strong> {_e(DISCLAIMER)}</p>',
        f"<h1>{_e(title)}</h1>",
    ]
    if result.description:
        parts.append(f'<p class="lead">{_e(result.description)}</p>')
    parts.append('<h2>Summary</h2><ul class="hl">')
    for line in highlights(result):
        cls = ' class="warn"' if line.startswith(("WITHDRAWAL", "OVERDOSE")) else ""
        parts.append(f"<li{cls}>{_e(line)}</li>")
    parts.append("</ul>")

    parts.append('<h2>Setting</h2><div class="grid"><table>')
    proto = s.protocol
    setting = [
        ("Patient", patient_line(result)),
        ("Pump", f"{result.pump_label}; true/programmed flow {s.pump.accuracy_factor:g}"),
        ("Catheter", f"{s.catheter.family}, {s.catheter.implanted_length_cm:g} cm implanted"),
        ("Drug", f"baclofen {s.drug.concentration_mcg_per_ml:g} mcg/mL at implant"),
        ("Implant", f"{result.iso(0.0)[:16].replace('T', ' ')} ({s.pump.timezone})"),
        ("Horizon", f"{s.horizon_days:g} days; seed {s.seed}"),
    ]
    for k, v in setting:
        parts.append(f"<tr><th>{_e(k)}</th><td>{_e(v)}</td></tr>")
    parts.append("</table><table>")
    run_proto = result.protocol
    protocol_rows = [
        (
            "Start",
            "established patient" if proto.established else "screening, then label titration",
        ),
        (
            "Goal",
            f"MAS <= {run_proto.goal_mas:g}; therapeutic band MAS "
            f"{run_proto.therapeutic_mas_low:g}-{run_proto.therapeutic_mas_high:g}",
        ),
        ("Check-ups", f"every {run_proto.checkup_every_days:g} days"),
        (
            "Refills",
            f"{run_proto.refill_margin_days:g} days before the forecast low-reservoir alarm",
        ),
        (
            "Battery",
            f"replacement {run_proto.battery_replacement_days_before_eri:g} days before ERI",
        ),
        ("Program", "day/night flex" if proto.flex else "simple continuous"),
    ]
    for k, v in protocol_rows:
        parts.append(f"<tr><th>{_e(k)}</th><td>{_e(v)}</td></tr>")
    parts.append("</table></div>")

    parts.append("<h2>Course</h2>")
    history = sum(1 for e in result.timeline if e.kind == "refill") >= REFILL_HISTORY_FROM
    for name in ("spasticity", "episodes", "dose", "reservoir", "concentration"):
        if name in plots:
            shown = "reservoir_history" if name == "reservoir" and history else name
            parts.append(
                f"<figure>{_img(plots[name], PLOT_TITLES[shown])}"
                f"<figcaption>{_e(_CAPTIONS[shown])}</figcaption></figure>"
            )

    numbered = {id(e): k for k, e, _ in marked_events(result.timeline)}
    listed = {id(e) for e in key_events(result)}
    events = [e for e in result.timeline if id(e) in listed or id(e) in numbered]
    notes: dict[str, int] = {}
    parts.append(
        f"<h2>Key events</h2><p>{len(events)} key events (routine refills within tolerance "
        "and routine visits left out; the whole timeline is in <code>timeline.csv</code>). "
        "A number in the first column is the event's number on the plots above.</p>"
    )
    parts.append(
        "<table><tr><th>#</th><th>Date and time</th><th>Day</th><th>Who</th><th>What</th>"
        "<th>MAS</th></tr>"
    )
    for e in events:
        cls = "withdrawal" if e.withdrawal_stage else "overdose" if e.overdose_stage else e.actor
        text, refs = _without_sources(e.detail, notes)
        marks = "".join(f"<sup>{n}</sup>" for n in refs)
        number = numbered.get(id(e))
        parts.append(
            f'<tr class="{cls}"><td class="num">{"" if number is None else number}</td>'
            f'<td class="when">{_e(result.iso(e.t_h)[:16].replace("T", " "))}</td>'
            f'<td class="num">{int(e.t_h // 24.0)}</td>'
            f"<td>{_e(_WHO.get(e.actor, e.actor))}</td>"
            f"<td><strong>{_e(_what(e.kind))}</strong>: {_e(text)}{marks}</td>"
            f'<td class="num">{e.mas:.2f}</td></tr>'
        )
    parts.append("</table>")
    if notes:
        parts.append('<h3>Sources of the rules above</h3><ol class="small">')
        for tag, _n in sorted(notes.items(), key=lambda kv: kv[1]):
            parts.append(f"<li>{_e(tag)}</li>")
        parts.append('</ol><p class="small">Tags resolve in <code>docs/sources.md</code>.</p>')

    parts.append("<h2>Metrics</h2><table><tr><th>Metric</th><th>Value</th></tr>")
    parts.append(
        f"<tr><th>Therapeutic range</th><td>{_e(m['therapeutic_range']['definition'])} "
        f"(MAS {m['therapeutic_range']['mas_low']:g}-{m['therapeutic_range']['mas_high']:g})"
        "</td></tr>"
    )
    for key, label in METRIC_LABELS.items():
        if key in m:
            parts.append(f"<tr><td>{_e(label)}</td><td>{_e(format_metric(m[key]))}</td></tr>")
    parts.append("</table>")

    parts.append("<h2>Assumptions</h2><ul>")
    parts.extend(f"<li>{_e(a)}</li>" for a in ASSUMPTIONS)
    parts.append("</ul>")
    parts.append(
        f'<footer><p class="disclaimer">{_e(DISCLAIMER)}</p><p>Generated by itb from scenario '
        f"&ldquo;{_e(title)}&rdquo; (seed {s.seed}). Files: metrics.json, timeline.csv, "
        f"trajectories.csv, plots/.</p>{_made_by(result.metrics.get('provenance'))}</footer>"
    )
    parts.append("</main></body></html>")
    return "\n".join(parts) + "\n"
