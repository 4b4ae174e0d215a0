"""Database fixtures: a REAL PostgreSQL server and SQLite, a fresh empty database per test.

* ``postgres_server_url`` (session): the server, from ``ITB_TEST_POSTGRES_URL``
  (``scripts/test`` starts one private cluster for the run and exports it); when
  the variable is unset — pytest run directly — each pytest process (each xdist
  worker) starts its own private cluster with ``tests/support/pgcluster.py`` on its
  own free port and stops it at the end. No PostgreSQL: the tests that need it
  fail with one line saying why; they are never skipped.
* ``postgres_databases`` (function): makes fresh databases on that server
  (``create()``) and drops every one it made after the test, ``WITH (FORCE)``.
* ``postgres_url`` (function): one fresh, empty database, as a SQLAlchemy URL
  string (``postgresql+psycopg://itb:PASSWORD@127.0.0.1:PORT/itb_test_<hex>``).
* ``sqlite_url`` (function): a fresh SQLite file under ``tmp_path``.
* ``db_url`` (function): parametrised over both backends; test ids end in
  ``[sqlite]`` and ``[postgresql]``.
"""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
import sqlalchemy as sa
from sqlalchemy.engine import URL, Engine, make_url
from sqlalchemy.pool import NullPool
from tests.support import pgcluster

ENV_URL = "ITB_TEST_POSTGRES_URL"
BACKENDS = {"sqlite": "sqlite_url", "postgresql": "postgres_url"}


def _where(url: URL) -> str:
    return f"{url.host}:{url.port}"


@pytest.fixture(scope="session")
def postgres_server_url() -> Iterator[str]:
    """The PostgreSQL server for this pytest process (see the module docstring)."""
    url = os.environ.get(ENV_URL)
    if url:
        yield url
        return
    try:
        cluster = pgcluster.start_cluster(owner_pid=os.getpid())
    except pgcluster.ClusterError as error:
        pytest.fail(f"PostgreSQL is required and could not be had: {error}", pytrace=False)
    try:
        yield cluster.url
    finally:
        pgcluster.stop(cluster.base)


@pytest.fixture(scope="session")
def postgres_admin_engine(postgres_server_url: str) -> Iterator[Engine]:
    """An AUTOCOMMIT engine on the server's ``postgres`` database, for CREATE/DROP DATABASE."""
    url = make_url(postgres_server_url)
    engine = sa.create_engine(url, isolation_level="AUTOCOMMIT", poolclass=NullPool)
    try:
        with engine.connect() as conn:
            conn.execute(sa.text("select 1"))
    except sa.exc.OperationalError as error:
        first = str(error.orig or error).strip().splitlines()[0]
        pytest.fail(f"cannot connect to PostgreSQL at {_where(url)}: {first}", pytrace=False)
    yield engine
    engine.dispose()


class PostgresDatabases:
    """Creates fresh, empty databases on one server and drops them again."""

    def __init__(self, admin: Engine) -> None:
        self._admin = admin
        self._names: list[str] = []

    def create(self) -> str:
        """A new empty database; returns its SQLAlchemy URL (password included)."""
        name = f"itb_test_{uuid.uuid4().hex}"
        with self._admin.connect() as conn:
            conn.execute(sa.text(f'CREATE DATABASE "{name}"'))
        self._names.append(name)
        return self._admin.url.set(database=name).render_as_string(hide_password=False)

    def drop(self, url: str) -> None:
        """Drop one database made here, closing whatever connections are still open on it."""
        name = make_url(url).database
        if name not in self._names:
            raise ValueError(f"{name!r} was not created by this fixture")
        with self._admin.connect() as conn:
            conn.execute(sa.text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        self._names.remove(name)

    def drop_all(self) -> None:
        for name in list(self._names):
            self.drop(self._admin.url.set(database=name).render_as_string(hide_password=False))


@pytest.fixture
def postgres_databases(postgres_admin_engine: Engine) -> Iterator[PostgresDatabases]:
    databases = PostgresDatabases(postgres_admin_engine)
    yield databases
    databases.drop_all()


@pytest.fixture
def postgres_url(postgres_databases: PostgresDatabases) -> str:
    """A fresh, empty PostgreSQL database for this test, dropped afterwards."""
    return postgres_databases.create()


@pytest.fixture
def sqlite_url(tmp_path: Path) -> str:
    """A fresh SQLite database file under ``tmp_path``."""
    return f"sqlite:///{tmp_path / 'itb.sqlite3'}"


@pytest.fixture(params=list(BACKENDS))
def db_url(request: pytest.FixtureRequest) -> str:
    """A fresh empty database on each backend in turn: ``[sqlite]`` and ``[postgresql]``."""
    return str(request.getfixturevalue(BACKENDS[request.param]))
