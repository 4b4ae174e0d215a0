"""``itb serve``: the clinic's API (and dashboard) over HTTP, served by uvicorn."""

from __future__ import annotations

import os
from typing import Annotated, Any

import typer

from itb.config import load_settings
from itb.domain.errors import InvalidValue

__all__ = ["register", "run_server", "serve"]


def serve(
    db: Annotated[
        str | None,
        typer.Option(
            "--db",
            metavar="URL",
            help="The registry (default sqlite:///itb-clinic.db, or ITB_DATABASE_URL).",
            show_default=False,
        ),
    ] = None,
    host: Annotated[
        str, typer.Option("--host", help="Address to listen on (127.0.0.1: this machine only).")
    ] = "127.0.0.1",
    port: Annotated[int, typer.Option("--port", min=1, max=65535, help="Port.")] = 8000,
    workers: Annotated[int, typer.Option("--workers", min=1, max=32, help="Server processes.")] = 1,
) -> None:
    """Serve the clinic: the dashboard at / and the REST API at /api/v1 (OpenAPI at /openapi.json).

    Sign in with POST /api/v1/auth/token (user name and password); send the token back as
    'Authorization: Bearer TOKEN'. Stop with Ctrl-C.
    """
    from itb.entrypoints.web import create_app

    if not host.strip() or any(c.isspace() for c in host):
        raise InvalidValue("--host", host, "an address such as 127.0.0.1")
    settings = load_settings(database_url=db)
    app = create_app(settings.database_url)  # refuses a missing registry before listening
    typer.echo(
        f"itb clinic on http://{host}:{port}/ (dashboard /, API /api/v1, docs /docs); "
        "Ctrl-C to stop"
    )
    run_server(app, settings.database_url, host=host, port=port, workers=workers)


def run_server(app: Any, database_url: str, *, host: str, port: int, workers: int = 1) -> None:
    """Serve ``app`` (built over ``database_url``) with uvicorn until Ctrl-C."""
    import uvicorn

    if workers == 1:
        uvicorn.run(app, host=host, port=port, log_level="warning", server_header=False)
        return
    # several processes each build the app from the environment (sign-in throttling and
    # the short trust of a verified token are per process; sessions are in the registry)
    os.environ["ITB_DATABASE_URL"] = database_url
    uvicorn.run(
        "itb.entrypoints.web:create_app_from_environment",
        factory=True,
        host=host,
        port=port,
        workers=workers,
        log_level="warning",
        server_header=False,
    )


def register(app: typer.Typer) -> None:
    """Add ``itb serve`` to ``app``."""
    app.command("serve")(serve)
