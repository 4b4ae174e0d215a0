"""docs/sources.md cites every source tag the project uses, once, and nothing else.

Every clinical or device number cites a project source tag, ``[Cn]``, ``[Dn]`` or
``[Fn]`` (optionally with a letter, ``[C42a]``). docs/sources.md resolves each tag to
a full citation. Its entries have one strict form, one line each::

    - **[C10]** <citation>. Kind: <kind>. Confidence: <confidence>.

under the headings "## Clinical sources (C)", "## Device sources (D)" and
"## Founding documents (F)", sorted by number within each group (C2 before C10,
C41a after C41). Any other line starting ``- **[`` is a malformed entry.

The tests fail when

* a tag cited in src/ (the data files, the Python code and any other text file),
  docs/, README.md, examples/ or tests/ has no entry (tests count: a tag a test
  expects in a message is a citation too);
* an entry appears twice, is malformed, sits under the wrong heading or out of
  order, or lacks its Kind or Confidence;
* a tag mentioned inside docs/sources.md itself ("same document as [D94]") has no
  entry;
* an entry is not cited anywhere outside docs/sources.md. Orphans are not allowed
  on purpose: the list must say what the numbers rest on now, not what they once
  rested on. When the last citation of a source goes, remove its entry (the git
  history keeps it);
* a file under docs/, src/ or examples/, or README.md, names a path outside the
  repository: a ``../`` that leaves the repository (resolved from the file's own
  folder), an absolute path to a home, scratch or build directory (``/work/``,
  ``/tmp/``, ``/home/``, ``/Users/``, ``/root/``, ``/mnt/``, ``~/``, ``C:\\``), or the
  background reference and founding-document files the project was written
  from. URLs (``http://``, ``https://``) are not paths and are skipped.
"""

from __future__ import annotations

import os
import re
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
SOURCES = REPO / "docs" / "sources.md"
THIS_FILE = Path(__file__).resolve()

TAG = re.compile(r"\[([CDFS])(\d+)([a-z]?)\]")
ENTRY = re.compile(r"^- \*\*\[(?P<tag>[CDFS]\d+[a-z]?)\]\*\* (?P<text>\S.*)$")
ENTRY_LIKE = re.compile(r"^\s*[-*] \*\*\[")
HEADINGS = {
    "## Clinical sources (C)": "C",
    "## Device sources (D)": "D",
    "## Standards (S)": "S",
    "## Founding documents (F)": "F",
}
GROUP_ORDER = ["C", "D", "S", "F"]

# Folders that are build output or caches, never project text.
SKIP_DIRS = {
    "__pycache__",
    ".mypy_cache",
    ".ruff_cache",
    ".pytest_cache",
    ".hypothesis",
    ".import_linter_cache",
    ".git",
}

URL = re.compile(r"\bhttps?://\S+")
PARENT_PATH = re.compile(r"[\w.\-/]*\.\./[\w.\-/]*")
OUTSIDE_PATHS = re.compile(
    r"(?<![\w.\-/])/(?:work|tmp|home|Users|root|mnt)/"
    r"|(?<![\w.\-/])~/"
    r"|\b[A-Za-z]:\\"
    r"|shared/(?:reference|seeds)"
    r"|reference/(?:clinical|device|model)\.md"
    r"|seeds/00\d_"
)


@dataclass(frozen=True)
class Entry:
    tag: str
    group: str
    heading: str | None
    line_no: int
    text: str


def _sort_key(tag: str) -> tuple[int, int, str]:
    match = TAG.fullmatch(f"[{tag}]")
    assert match, tag
    letter, number, suffix = match.groups()
    return GROUP_ORDER.index(letter), int(number), suffix


def _tags_in(text: str) -> set[str]:
    return {"".join(m.groups()) for m in TAG.finditer(text)}


def _text_files(root: Path) -> Iterator[Path]:
    if root.is_file():
        yield root
        return
    for dirpath, dirnames, filenames in os.walk(root):
        dirnames[:] = sorted(
            d for d in dirnames if d not in SKIP_DIRS and not d.endswith(".egg-info")
        )
        for name in sorted(filenames):
            yield Path(dirpath) / name


def _read_text(path: Path) -> str | None:
    data = path.read_bytes()
    if b"\0" in data:
        return None
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError:
        return None


def _rel(path: Path) -> str:
    return path.relative_to(REPO).as_posix()


def _citing_files() -> dict[str, str]:
    """Text of every file that may cite a tag, by repository path (not sources.md, not this file)."""
    roots = [REPO / "src", REPO / "docs", REPO / "README.md", REPO / "examples", REPO / "tests"]
    files: dict[str, str] = {}
    for root in roots:
        for path in _text_files(root):
            if path.resolve() in (SOURCES.resolve(), THIS_FILE):
                continue
            text = _read_text(path)
            if text is not None:
                files[_rel(path)] = text
    return files


def _cited_tags() -> dict[str, list[str]]:
    """Each cited tag with the files citing it."""
    cited: dict[str, list[str]] = {}
    for rel, text in _citing_files().items():
        for tag in _tags_in(text):
            cited.setdefault(tag, []).append(rel)
    return cited


def _parse_sources() -> tuple[list[Entry], list[str]]:
    """The entries of docs/sources.md and the problems found while reading them."""
    assert SOURCES.is_file(), "docs/sources.md is missing"
    entries: list[Entry] = []
    problems: list[str] = []
    heading: str | None = None
    for line_no, line in enumerate(SOURCES.read_text(encoding="utf-8").splitlines(), 1):
        if line.startswith("## "):
            heading = HEADINGS.get(line.strip())
            continue
        match = ENTRY.match(line)
        if match:
            tag = match["tag"]
            entries.append(Entry(tag, tag[0], heading, line_no, match["text"]))
        elif ENTRY_LIKE.match(line):
            problems.append(
                f"line {line_no}: malformed entry (want '- **[C10]** citation'): {line}"
            )
    return entries, problems


def test_sources_file_parses_strictly() -> None:
    entries, problems = _parse_sources()
    assert entries, "docs/sources.md has no entries"
    assert problems == [], "\n".join(problems)


def test_every_cited_tag_has_an_entry() -> None:
    entries, _ = _parse_sources()
    listed = {e.tag for e in entries}
    missing = {tag: files for tag, files in _cited_tags().items() if tag not in listed}
    report = [
        f"[{tag}] cited in {', '.join(sorted(missing[tag]))}"
        for tag in sorted(missing, key=_sort_key)
    ]
    assert report == [], "tags without an entry in docs/sources.md:\n" + "\n".join(report)


def test_no_entry_twice() -> None:
    entries, _ = _parse_sources()
    counts = Counter(e.tag for e in entries)
    twice = [
        f"[{tag}] on lines {', '.join(str(e.line_no) for e in entries if e.tag == tag)}"
        for tag, n in sorted(counts.items(), key=lambda kv: _sort_key(kv[0]))
        if n > 1
    ]
    assert twice == [], "entries listed more than once in docs/sources.md:\n" + "\n".join(twice)


def test_entries_are_grouped_and_sorted() -> None:
    entries, _ = _parse_sources()
    misplaced = [
        f"[{e.tag}] (line {e.line_no}) is not under the heading for group {e.group}"
        for e in entries
        if e.heading != e.group
    ]
    assert misplaced == [], "\n".join(misplaced)
    tags = [e.tag for e in entries]
    expected = sorted(tags, key=_sort_key)
    out_of_order = [
        f"line {e.line_no}: [{e.tag}] where [{want}] belongs"
        for e, want in zip(entries, expected, strict=True)
        if e.tag != want
    ]
    assert out_of_order == [], "docs/sources.md is not sorted (C, D, F; by number):\n" + "\n".join(
        out_of_order
    )


def test_every_entry_says_kind_and_confidence() -> None:
    entries, _ = _parse_sources()
    incomplete = [
        f"[{e.tag}] (line {e.line_no})"
        for e in entries
        if "Kind: " not in e.text or "Confidence: " not in e.text
    ]
    assert incomplete == [], "entries without 'Kind: ' or 'Confidence: ':\n" + "\n".join(incomplete)


def test_tags_mentioned_in_sources_have_entries() -> None:
    entries, _ = _parse_sources()
    listed = {e.tag for e in entries}
    mentioned = _tags_in(SOURCES.read_text(encoding="utf-8"))
    dangling = sorted(mentioned - listed, key=_sort_key)
    assert dangling == [], "docs/sources.md mentions tags it has no entry for: " + ", ".join(
        f"[{t}]" for t in dangling
    )


def test_no_orphan_entries() -> None:
    entries, _ = _parse_sources()
    cited = _cited_tags()
    orphans = [f"[{e.tag}] (line {e.line_no})" for e in entries if e.tag not in cited]
    assert orphans == [], (
        "entries in docs/sources.md that nothing cites (remove them, or cite them):\n"
        + "\n".join(orphans)
    )


def _outside_paths(path: Path, text: str) -> Iterator[str]:
    for line_no, line in enumerate(text.splitlines(), 1):
        bare = URL.sub(" ", line)
        for match in OUTSIDE_PATHS.finditer(bare):
            yield f"{_rel(path)}:{line_no}: {match.group(0)!r} in: {line.strip()}"
        for match in PARENT_PATH.finditer(bare):
            token = match.group(0)
            target = Path(os.path.normpath(path.parent / token))
            if not target.is_relative_to(REPO):
                yield f"{_rel(path)}:{line_no}: {token!r} leaves the repository in: {line.strip()}"


def test_no_paths_outside_the_repository() -> None:
    roots = [REPO / "docs", REPO / "README.md", REPO / "src", REPO / "examples"]
    found: list[str] = []
    for root in roots:
        for path in _text_files(root):
            text = _read_text(path)
            if text is not None:
                found.extend(_outside_paths(path, text))
    assert found == [], "paths outside the repository:\n" + "\n".join(found)


def test_the_path_check_catches_what_it_should() -> None:
    inside = REPO / "docs" / "example.md"
    bad = [
        "see ../../elsewhere/clinical.md",
        "from /work/shared/reference/device.md",
        "written to /tmp/itb-source-tags.md",
        "in /home/someone/notes",
        "the seeds/000_e6d25d0a0ffb6984.txt text",
        "reference/model.md says",
        r"C:\Users\me\itb",
    ]
    good = [
        "[architecture](architecture.md) and [the data](../src/itb/data/pumps.toml)",
        "https://example.org/work/tmp/../home/page",
        "src/itb/data/refill.toml and docs/sources.md",
    ]
    for line in bad:
        assert list(_outside_paths(inside, line)), line
    for line in good:
        assert list(_outside_paths(inside, line)) == [], line


def test_the_tag_pattern_reads_suffixes_and_order() -> None:
    assert _tags_in("[C41a] [D35b] [F0] [C2][C10] [S3] [X3] [C] [c1]") == {
        "C41a",
        "D35b",
        "F0",
        "C2",
        "C10",
        "S3",
    }
    tags = ["C10", "D3", "C41a", "F0", "C2", "C41", "D35b", "D35"]
    assert sorted(tags, key=_sort_key) == ["C2", "C10", "C41", "C41a", "D3", "D35", "D35b", "F0"]
