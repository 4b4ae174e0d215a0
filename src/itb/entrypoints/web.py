"""The one ASGI app: the clinic API (and, with it, the dashboard), built on demand.

:func:`create_app` wires a registry URL through the composition root
(:func:`itb.bootstrap.clinic`) into the routes; nothing is built at import time. (The
factory lives here rather than in ``bootstrap``: the layers point downwards, and
``bootstrap`` sits below the entrypoints it would otherwise import.)
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from fastapi import FastAPI

from itb import __version__, bootstrap
from itb.config import load_settings
from itb.entrypoints.api.app import create_api
from itb.entrypoints.dashboard import mount_dashboard
from itb.services.clinic.ports import Clock, PasswordHasher

__all__ = ["READ_AUDIT_EVERY_S", "create_app", "create_app_from_environment"]

READ_AUDIT_EVERY_S = 0.25
"""The server writes the audit entries of reads in a batch this often, s."""


def create_app(
    database_url: str,
    *,
    clock: Clock | None = None,
    hasher: PasswordHasher | None = None,
) -> FastAPI:
    """The app over the registry at ``database_url`` (its schema must be current).

    Raises:
        InvalidValue: not a registry URL, or a registry without this itb's schema.
        StorageUnavailable: the database cannot be reached.
    """
    handle = bootstrap.clinic(database_url, clock=clock, hasher=hasher)
    # under load a read must not queue for the write lock to write "who read this"
    handle.service.batch_read_audit(every_s=READ_AUDIT_EVERY_S)

    @asynccontextmanager
    async def lifespan(_: FastAPI) -> AsyncIterator[None]:
        yield
        handle.close()

    app = FastAPI(
        title="itb clinic",
        version=__version__,
        description=(
            "The clinic registry of itb: patients, implanted pumps, refills, programming "
            "changes with a second person's verification, the refill radar and the audit "
            "trail. Simulation and decision support: not a medical device, not clinical advice."
        ),
        lifespan=lifespan,
    )
    app.state.clinic = handle
    create_api(handle.service, app)
    mount_dashboard(app, handle.service)
    return app


def create_app_from_environment() -> FastAPI:
    """The app over ``ITB_DATABASE_URL`` (what each ``itb serve --workers N`` process builds)."""
    return create_app(load_settings().database_url)
