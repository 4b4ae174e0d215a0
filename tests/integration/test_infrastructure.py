"""The test infrastructure itself: real databases on both backends, a real browser, servers.

If one of these fails, the fixtures in tests/support/ are broken, not the product.
"""

from __future__ import annotations

import http.client
import shutil
import struct
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa
from playwright.sync_api import Browser, Page, expect
from sqlalchemy.engine import Engine, make_url
from tests.support import pgcluster
from tests.support.browser import chromium_executable
from tests.support.databases import PostgresDatabases
from tests.support.servers import (
    ServerDidNotStart,
    serve_asgi,
    serve_command,
    serve_http,
    serve_wsgi,
)

metadata = sa.MetaData()
patients = sa.Table(
    "patients",
    metadata,
    sa.Column("id", sa.Integer, primary_key=True),
    sa.Column("name", sa.String(80), nullable=False, unique=True),
    sa.Column("dose_mcg_per_day", sa.Float, nullable=False),
)


@pytest.fixture
def engine(db_url: str) -> Iterator[Engine]:
    created = sa.create_engine(db_url)
    yield created
    created.dispose()


def _table_names(url: str) -> list[str]:
    probe = sa.create_engine(url)
    try:
        return sa.inspect(probe).get_table_names()
    finally:
        probe.dispose()


# --- databases ----------------------------------------------------------------------------


def test_db_url_runs_on_the_backend_its_id_names(
    request: pytest.FixtureRequest, engine: Engine
) -> None:
    backend = request.node.callspec.params["db_url"]
    assert request.node.name.endswith(f"[{backend}]")
    assert engine.dialect.name == backend
    with engine.connect() as conn:
        assert conn.execute(sa.text("select 1")).scalar_one() == 1


def _add_patients(engine: Engine, *rows: tuple[str, float]) -> None:
    """One transaction: every row or none."""
    with engine.begin() as conn:
        for name, dose in rows:
            conn.execute(sa.insert(patients).values(name=name, dose_mcg_per_day=dose))


def test_a_committed_row_is_read_back_and_a_failed_transaction_leaves_nothing(
    engine: Engine,
) -> None:
    metadata.create_all(engine)
    _add_patients(engine, ("A", 150.0))
    with pytest.raises(sa.exc.IntegrityError):  # "A" again: the name is unique
        _add_patients(engine, ("B", 200.0), ("A", 99.0))

    with engine.connect() as conn:
        rows = conn.execute(sa.select(patients.c.name, patients.c.dose_mcg_per_day)).all()
    assert [tuple(row) for row in rows] == [("A", 150.0)]


def test_sqlite_url_is_a_new_file_under_tmp_path(sqlite_url: str, tmp_path: Path) -> None:
    database = Path(make_url(sqlite_url).database or "")
    assert database.parent == tmp_path
    assert not database.exists()
    engine = sa.create_engine(sqlite_url)
    metadata.create_all(engine)
    engine.dispose()
    assert database.stat().st_size > 0


def test_postgres_is_a_real_server_on_loopback(postgres_url: str) -> None:
    engine = sa.create_engine(postgres_url)
    try:
        with engine.connect() as conn:
            version = conn.execute(sa.text("select version()")).scalar_one()
            database = conn.execute(sa.text("select current_database()")).scalar_one()
            address = conn.execute(sa.text("select host(inet_server_addr())")).scalar_one()
    finally:
        engine.dispose()
    assert version.startswith("PostgreSQL "), version
    assert database == make_url(postgres_url).database
    assert database.startswith("itb_test_")
    assert address == "127.0.0.1"


@pytest.mark.parametrize("turn", ["first", "second"])
def test_each_postgres_url_is_a_fresh_empty_database(postgres_url: str, turn: str) -> None:
    # Whichever of the two runs later would find the other's table if databases were shared.
    assert _table_names(postgres_url) == [], turn
    engine = sa.create_engine(postgres_url)
    metadata.create_all(engine)
    engine.dispose()
    assert _table_names(postgres_url) == ["patients"]


def test_postgres_databases_are_isolated_and_dropped_even_while_connected(
    postgres_databases: PostgresDatabases, postgres_admin_engine: Engine
) -> None:
    first, second = postgres_databases.create(), postgres_databases.create()
    assert make_url(first).database != make_url(second).database

    engine = sa.create_engine(first)
    metadata.create_all(engine)
    with engine.begin() as conn:
        conn.execute(sa.insert(patients).values(name="A", dose_mcg_per_day=150.0))
    still_open = engine.connect()  # DROP ... WITH (FORCE) must not wait for this
    assert _table_names(first) == ["patients"]
    assert _table_names(second) == []

    postgres_databases.drop(first)
    still_open.close()
    engine.dispose()
    with postgres_admin_engine.connect() as conn:
        names = set(conn.execute(sa.text("select datname from pg_database")).scalars())
    assert make_url(first).database not in names
    assert make_url(second).database in names


def test_a_broken_postgres_start_fails_with_one_clear_line(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.setenv("ITB_PG_BINDIR", str(tmp_path / "no-such-bin"))
    with pytest.raises(pgcluster.ClusterError) as raised:
        pgcluster.start_cluster()
    message = str(raised.value)
    assert "\n" not in message
    assert "initdb" in message
    assert "no-such-bin" in message


def test_a_server_that_refuses_to_start_fails_with_its_log_line_and_leaves_nothing(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setitem(pgcluster._SETTINGS, "shared_buffers", "'plenty'")
    parent = Path(tempfile.mkdtemp(prefix="itb-test-"))  # /tmp: the postgres user must get in
    parent.chmod(0o755)
    monkeypatch.setenv("ITB_TEST_PG_TMPDIR", str(parent))
    try:
        with pytest.raises(pgcluster.ClusterError) as raised:
            pgcluster.start_cluster()
        assert list(parent.iterdir()) == []  # the half-made cluster is gone
    finally:
        shutil.rmtree(parent)
    message = str(raised.value)
    assert "\n" not in message
    assert message.startswith("pg_ctl start")
    assert 'invalid value for parameter "shared_buffers"' in message  # the server log's line


def test_the_watchdog_stops_the_cluster_when_its_owner_is_killed() -> None:
    owner = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(120)"])
    try:
        cluster = pgcluster.start_cluster(owner_pid=owner.pid)
        pid = pgcluster._postmaster_pid(cluster.data)
        assert pid is not None
        assert pgcluster._alive(pid)
    finally:
        owner.kill()  # SIGKILL: no trap, no finaliser runs
        owner.wait()
    deadline = time.monotonic() + 30
    while cluster.base.exists() and time.monotonic() < deadline:
        time.sleep(0.1)
    assert not cluster.base.exists()
    assert not pgcluster._alive(pid)


def test_the_cluster_command_line_starts_and_stops_a_private_cluster() -> None:
    script = Path(pgcluster.__file__)
    started = subprocess.run(
        [sys.executable, str(script), "start"], capture_output=True, text=True, check=True
    )
    exports = dict(
        line.removeprefix("export ").split("=", 1) for line in started.stdout.splitlines()
    )
    base = Path(exports["ITB_TEST_POSTGRES_DIR"])
    try:
        assert base.name.startswith("itb-pg-")
        url = make_url(exports["ITB_TEST_POSTGRES_URL"].strip("'"))
        assert (url.host, url.username, url.database) == ("127.0.0.1", "itb", "postgres")
        assert (base / "data" / "postmaster.pid").exists()
        pid = int((base / "data" / "postmaster.pid").read_text().split()[0])
    finally:
        subprocess.run([sys.executable, str(script), "stop", str(base)], check=True)
    assert not base.exists()
    assert not pgcluster._alive(pid)


# --- servers ------------------------------------------------------------------------------


class _Hello(BaseHTTPRequestHandler):
    def do_GET(self) -> None:
        body = f"hello from {self.path}".encode()
        self.send_response(200)
        self.send_header("Content-Type", "text/plain; charset=utf-8")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, format: str, *args: Any) -> None:
        pass


def _get(url: str, path: str = "/") -> tuple[int, str]:
    host, port = url.removeprefix("http://").rsplit(":", 1)
    conn = http.client.HTTPConnection(host, int(port), timeout=5)
    try:
        conn.request("GET", path)
        response = conn.getresponse()
        return response.status, response.read().decode()
    finally:
        conn.close()


def _refuses(url: str) -> bool:
    try:
        _get(url)
    except ConnectionRefusedError:
        return True
    return False


def test_serve_http_answers_on_loopback_and_stops() -> None:
    with serve_http(_Hello) as url:
        assert url.startswith("http://127.0.0.1:")
        assert _get(url, "/ping") == (200, "hello from /ping")
    assert _refuses(url)


def test_serve_wsgi_and_serve_asgi_run_an_app() -> None:
    def wsgi_app(environ: dict[str, Any], start_response: Any) -> list[bytes]:
        start_response("200 OK", [("Content-Type", "text/plain")])
        return [f"wsgi {environ['PATH_INFO']}".encode()]

    async def asgi_app(scope: dict[str, Any], receive: Any, send: Any) -> None:
        assert scope["type"] == "http"
        await send({"type": "http.response.start", "status": 200, "headers": []})
        await send({"type": "http.response.body", "body": f"asgi {scope['path']}".encode()})

    with serve_wsgi(wsgi_app) as wsgi_url, serve_asgi(asgi_app, lifespan="off") as asgi_url:
        assert _get(wsgi_url, "/w") == (200, "wsgi /w")
        assert _get(asgi_url, "/a") == (200, "asgi /a")
    assert _refuses(wsgi_url)
    assert _refuses(asgi_url)


def test_serve_command_runs_a_server_process_and_reports_one_that_dies(tmp_path: Path) -> None:
    (tmp_path / "index.html").write_text("<p>from a process</p>", encoding="utf-8")
    argv = [sys.executable, "-m", "http.server", "--bind", "127.0.0.1", "{port}"]
    with serve_command(argv, cwd=tmp_path) as url:
        assert _get(url, "/index.html") == (200, "<p>from a process</p>")
    assert _refuses(url)

    with (
        pytest.raises(ServerDidNotStart, match=r"exited before it answered.*exit code 3"),
        serve_command([sys.executable, "-c", "raise SystemExit(3)"]),
    ):
        pass


# --- browser ------------------------------------------------------------------------------

_BUTTON_PAGE = b"""<!doctype html>
<html><head><meta charset="utf-8"><title>itb infrastructure</title></head>
<body>
  <p id="status">waiting</p>
  <button id="go" onclick="document.getElementById('status').textContent = 'clicked ' + (1 + 1)">
    Go
  </button>
</body></html>
"""


class _ButtonPage(BaseHTTPRequestHandler):
    def do_GET(self) -> None:
        self.send_response(200)
        self.send_header("Content-Type", "text/html; charset=utf-8")
        self.send_header("Content-Length", str(len(_BUTTON_PAGE)))
        self.end_headers()
        self.wfile.write(_BUTTON_PAGE)

    def log_message(self, format: str, *args: Any) -> None:
        pass


def test_chromium_clicks_a_button_and_takes_a_screenshot(page: Page, tmp_path: Path) -> None:
    with serve_http(_ButtonPage) as url:
        page.goto(url)
        expect(page).to_have_title("itb infrastructure")
        status = page.locator("#status")
        expect(status).to_have_text("waiting")
        page.get_by_role("button", name="Go").click()
        expect(status).to_have_text("clicked 2")  # computed by the page's JavaScript
        shot = tmp_path / "page.png"
        page.screenshot(path=shot)

    png = shot.read_bytes()
    assert png.startswith(b"\x89PNG\r\n\x1a\n")
    width, height = struct.unpack(">II", png[16:24])  # the IHDR chunk
    assert (width, height) == (1280, 720)
    assert len(png) > 1000


def test_the_browser_is_debian_chromium(browser: Browser) -> None:
    version = subprocess.run(
        [chromium_executable(), "--version"], capture_output=True, text=True, check=True
    ).stdout
    assert browser.browser_type.name == "chromium"
    assert browser.version.split(".")[0] in version


def test_a_missing_chromium_fails_with_one_clear_line(tmp_path: Path) -> None:
    with pytest.raises(pytest.fail.Exception) as raised:
        chromium_executable(str(tmp_path / "chromium"))
    message = str(raised.value)
    assert "\n" not in message
    assert "chromium" in message
    assert "missing" in message
