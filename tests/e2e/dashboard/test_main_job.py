"""The README's main job ends by serving a virtual clinic's dashboard on 127.0.0.1 and
printing its address and the demo log-ins; signing in with a printed log-in works."""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
import time
from pathlib import Path

from playwright.sync_api import Page, expect
from tests.support.servers import free_port

ITB = Path(sys.executable).parent / "itb"


def test_the_main_job_serves_the_dashboard_and_prints_the_log_ins(
    page: Page, tmp_path: Path
) -> None:
    port = free_port()
    log = tmp_path / "out.txt"
    out = tmp_path / "demo"
    env = {**os.environ, "COLUMNS": "200", "NO_COLOR": "1"}
    with log.open("wb") as sink:
        proc = subprocess.Popen(
            [str(ITB), "demo", "--out", str(out), "--port", str(port), "--clinic-patients", "3"],
            stdout=sink, stderr=subprocess.STDOUT, env=env, start_new_session=True,
        )  # fmt: skip
    try:
        deadline = time.monotonic() + 600
        text = ""
        while time.monotonic() < deadline and proc.poll() is None:
            text = log.read_text(errors="replace")
            if f"http://127.0.0.1:{port}/" in text:
                break
            time.sleep(0.5)
        assert proc.poll() is None, text[-2000:]
        assert (out / "report.html").is_file()  # the single-patient story came first
        row = re.search(r"dr\.ahmed\s+\S?\s*physician\s+\S?\s*(\S+)", text)
        assert row, text[-2000:]
        password = row.group(1)
        for _ in range(120):
            try:
                page.goto(f"http://127.0.0.1:{port}/login")
                break
            except Exception:
                time.sleep(0.5)
        page.get_by_label("User name").fill("dr.ahmed")
        page.get_by_label("Password").fill(password)
        page.get_by_role("button", name="Sign in").click()
        expect(page.get_by_role("heading", name="Refill radar")).to_be_visible()
        expect(page.locator("table.radar-table tbody tr")).to_have_count(3)
    finally:
        os.killpg(proc.pid, signal.SIGINT)
        try:
            proc.wait(timeout=30)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()
