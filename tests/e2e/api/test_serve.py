"""``itb serve`` as a user runs it: a real process listening on 127.0.0.1, the README's curl
session (sign in, read the radar), refused when the registry is missing."""

from __future__ import annotations

import json
import subprocess
import sys
import urllib.error
import urllib.parse
import urllib.request
from pathlib import Path

from tests.support.servers import serve_command

from itb.entrypoints.cli.main import run

ITB = Path(sys.executable).parent / "itb"


def _post_form(url: str, fields: dict[str, str]) -> dict[str, object]:
    data = urllib.parse.urlencode(fields).encode()
    with urllib.request.urlopen(urllib.request.Request(url, data=data), timeout=30) as r:
        return json.loads(r.read())  # type: ignore[no-any-return]


def _get(url: str, token: str | None = None) -> tuple[int, object]:
    req = urllib.request.Request(url, headers={"Authorization": f"Bearer {token}"} if token else {})
    try:
        with urllib.request.urlopen(req, timeout=30) as r:
            return r.status, json.loads(r.read())
    except urllib.error.HTTPError as e:
        return e.code, json.loads(e.read())


def test_serve_the_virtual_clinic_and_read_the_radar(tmp_path: Path, capsys) -> None:  # type: ignore[no-untyped-def]
    db = f"sqlite:///{tmp_path / 'clinic.db'}"
    assert (
        run(
            [
                "clinic",
                "demo",
                "--db",
                db,
                "--patients",
                "3",
                "--seed",
                "5",
                "--today",
                "2026-12-01",
                "--json",
            ]
        )
        == 0
    )
    demo = json.loads(capsys.readouterr().out)
    lead = demo["users"][0]
    with serve_command(
        [str(ITB), "serve", "--db", db, "--host", "127.0.0.1", "--port", "{port}"], timeout=60
    ) as base:
        assert base.startswith("http://127.0.0.1:")
        token = _post_form(
            f"{base}/api/v1/auth/token",
            {"username": lead["username"], "password": lead["password"]},
        )
        assert token["token_type"] == "bearer"
        status, radar = _get(f"{base}/api/v1/radar", str(token["access_token"]))
        assert status == 200
        assert isinstance(radar, list)
        assert len(radar) == demo["implanted"]
        status, body = _get(f"{base}/api/v1/radar")
        assert status == 401
        assert set(body["error"]) == {"type", "message"}  # type: ignore[index]


def test_serve_refuses_a_registry_that_is_not_there(tmp_path: Path) -> None:
    proc = subprocess.run(
        [str(ITB), "serve", "--db", f"sqlite:///{tmp_path / 'none.db'}", "--port", "1"],
        capture_output=True, text=True, timeout=120,
    )  # fmt: skip
    assert proc.returncode == 2
    assert proc.stderr.count("\n") == 1
    assert "itb clinic init" in proc.stderr
