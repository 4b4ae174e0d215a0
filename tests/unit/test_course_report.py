"""The course report reads at a glance: source tags move to numbered footnotes, events
are numbered the same on the plots and in the table, and a long course shows its
reservoir refill by refill."""

from __future__ import annotations

import re

import pytest

from itb import bootstrap
from itb.adapters.plots.course import REFILL_HISTORY_FROM, course_plots, marked_events
from itb.adapters.report_files import _without_sources, render_html


@pytest.mark.parametrize(
    ("detail", "text", "tags"),
    [
        ("increase by 20 % (spinal titration range 10-30 %) [[C13][C17]]",
         "increase by 20 % (spinal titration range 10-30 %)", ["[C13][C17]"]),
        ("no increase in the first 24 h [[C12][C13]; [C12] (first day)]",
         "no increase in the first 24 h", ["[C12][C13]; [C12] (first day)"]),
        ("a step [C12] (the first day)", "a step (the first day)", ["[C12]"]),
        ("maintenance range 10-40 %) [[C13] (never more than 40 %)]",
         "maintenance range 10-40 %)", ["[C13] (never more than 40 %)"]),
        ("a value [in brackets] with no tag", "a value [in brackets] with no tag", []),
    ],
)  # fmt: skip
def test_source_tags_leave_the_text_for_numbered_notes(
    detail: str, text: str, tags: list[str]
) -> None:
    notes: dict[str, int] = {}
    got, refs = _without_sources(detail, notes)
    assert got == text
    assert [t for t, _ in sorted(notes.items(), key=lambda kv: kv[1])] == tags
    assert refs == list(range(1, len(tags) + 1))
    again, refs_again = _without_sources(detail, notes)  # the same sources: the same numbers
    assert (again, refs_again) == (got, refs)


def test_the_flagship_report_numbers_its_events_and_keeps_tags_out_of_the_table() -> None:
    result = bootstrap.run_scenario_course(bootstrap.builtin_scenario("seven_years_end_to_end"))
    assert sum(1 for e in result.timeline if e.kind == "refill") >= REFILL_HISTORY_FROM
    page = render_html(result, {})
    table = page.split("<h2>Key events</h2>")[1].split("</table>")[0]
    assert not re.search(r"\[[CDF]\d+[a-z]?\]", table)  # tags are footnotes now
    assert "<h3>Sources of the rules above</h3>" in page
    assert ">scenario<" not in table
    assert "planned event" in table
    numbers = [int(n) for n in re.findall(r'<tr class="[^"]*"><td class="num">(\d+)</td>', table)]
    assert numbers == list(range(1, len(marked_events(result.timeline)) + 1))
    days = re.findall(r'</td><td class="num">([\d.]+)</td><td>', table)
    assert days
    assert all("." not in d for d in days)  # whole days


def test_a_long_course_shows_the_reservoir_refill_by_refill() -> None:
    long = bootstrap.run_scenario_course(bootstrap.builtin_scenario("seven_years_end_to_end"))
    short = bootstrap.run_scenario_course(bootstrap.builtin_scenario("missed_refill_withdrawal"))

    def reservoir(result: object) -> bytes:
        r = result
        return course_plots(
            r.samples, r.timeline, lambda t: r.clock.local(t).replace(tzinfo=None),  # type: ignore[attr-defined]
            therapeutic_band=(1.0, 2.0), low_reservoir_alarm_ml=2.0,
        )["reservoir"]  # fmt: skip

    assert reservoir(long)[:8] == b"\x89PNG\r\n\x1a\n"
    assert "Reservoir at each refill" in render_html(long, {"reservoir": reservoir(long)})
    assert "Reservoir at each refill" not in render_html(short, {"reservoir": reservoir(short)})
