"""Run an HTTP server for a test on 127.0.0.1, on a free port, and stop it afterwards.

Each helper is a context manager yielding the base URL (``http://127.0.0.1:PORT``)
once the server has answered an HTTP request (any status counts), and stopping it
on exit:

* ``serve_asgi(app)``: an ASGI app (FastAPI, Starlette, ...) under uvicorn, in a thread;
* ``serve_wsgi(app)``: a WSGI app under the standard library's wsgiref, in a thread;
* ``serve_http(handler_class)``: a standard-library ``http.server`` handler, in a thread;
* ``serve_in_thread(make_server)``: the generic form: ``make_server(sock)`` gets a
  listening socket on 127.0.0.1 and returns anything with ``serve_forever()`` and a
  thread-safe ``shutdown()`` (every ``socketserver`` server has both);
* ``serve_command(argv)``: a separate process, ``{port}`` in ``argv`` replaced by a
  free port; stopped with SIGTERM (SIGKILL after ``stop_timeout``).

The thread helpers bind the socket before the server starts, so there is no race
for the port. If a server dies or does not answer within ``timeout`` seconds,
``ServerDidNotStart`` says so in one line.
"""

from __future__ import annotations

import contextlib
import http.client
import os
import signal
import socket
import socketserver
import subprocess
import tempfile
import threading
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any, Protocol
from wsgiref.simple_server import WSGIRequestHandler, WSGIServer

HOST = "127.0.0.1"


class ServerDidNotStart(RuntimeError):
    """The server exited or did not answer in time; the message is one line."""


class BackgroundServer(Protocol):
    def serve_forever(self) -> None: ...

    def shutdown(self) -> None: ...


def listening_socket(host: str = HOST) -> socket.socket:
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind((host, 0))
    sock.listen(128)
    return sock


def free_port(host: str = HOST) -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind((host, 0))
        return int(sock.getsockname()[1])


def wait_until_serving(
    url: str,
    *,
    timeout: float,
    alive: Callable[[], bool],
    path: str = "/",
    why_dead: Callable[[], str] = lambda: "",
) -> None:
    """Poll ``url + path`` until any HTTP response arrives; fail if ``alive()`` turns False."""
    host_port = url.removeprefix("http://")
    host, port = host_port.rsplit(":", 1)
    deadline = time.monotonic() + timeout
    last_error = "no answer"
    while True:
        if not alive():
            detail = why_dead()
            raise ServerDidNotStart(
                f"the server for {url} exited before it answered"
                + (f": {detail}" if detail else "")
            )
        conn = http.client.HTTPConnection(host, int(port), timeout=2)
        try:
            conn.request("GET", path)
            conn.getresponse().read()
            return
        except (OSError, http.client.HTTPException) as error:
            last_error = f"{type(error).__name__}: {error}"
        finally:
            conn.close()
        if time.monotonic() > deadline:
            raise ServerDidNotStart(
                f"the server for {url} did not answer within {timeout:g} s ({last_error})"
            )
        time.sleep(0.05)


@contextlib.contextmanager
def serve_in_thread(
    make_server: Callable[[socket.socket], BackgroundServer],
    *,
    timeout: float = 10.0,
    ready_path: str = "/",
) -> Iterator[str]:
    """Run ``make_server(sock)`` in a daemon thread; yield its URL; shut it down on exit."""
    sock = listening_socket()
    url = f"http://{HOST}:{sock.getsockname()[1]}"
    errors: list[BaseException] = []
    try:
        server = make_server(sock)

        def run() -> None:
            try:
                server.serve_forever()
            except BaseException as error:  # reported by wait_until_serving
                errors.append(error)

        thread = threading.Thread(target=run, name=f"test-server {url}", daemon=True)
        thread.start()
        try:
            wait_until_serving(
                url,
                timeout=timeout,
                alive=thread.is_alive,
                path=ready_path,
                why_dead=lambda: "; ".join(f"{type(e).__name__}: {e}" for e in errors),
            )
            yield url
        finally:
            if thread.is_alive():  # shutdown() waits for serve_forever(): only if it runs
                server.shutdown()
            thread.join(timeout)
            if thread.is_alive():
                raise RuntimeError(f"the server thread for {url} did not stop")
    finally:
        sock.close()


def _adopt_socket(server: socketserver.TCPServer, sock: socket.socket) -> None:
    server.socket.close()
    server.socket = sock
    server.server_address = sock.getsockname()
    host, port = server.server_address[:2]
    server.server_name = host  # type: ignore[attr-defined]  # http.server's server_bind sets these
    server.server_port = port  # type: ignore[attr-defined]


def serve_http(
    handler: type[BaseHTTPRequestHandler], **kwargs: Any
) -> contextlib.AbstractContextManager[str]:
    """A standard-library ``http.server`` handler class, one thread per request."""

    def make(sock: socket.socket) -> BackgroundServer:
        server = ThreadingHTTPServer(sock.getsockname(), handler, bind_and_activate=False)
        _adopt_socket(server, sock)
        return server

    return serve_in_thread(make, **kwargs)


class _QuietWSGIRequestHandler(WSGIRequestHandler):
    def log_message(self, format: str, *args: Any) -> None:
        pass


class _ThreadingWSGIServer(socketserver.ThreadingMixIn, WSGIServer):
    daemon_threads = True


def serve_wsgi(app: Callable[..., Any], **kwargs: Any) -> contextlib.AbstractContextManager[str]:
    """A WSGI application under ``wsgiref``, one thread per request."""

    def make(sock: socket.socket) -> BackgroundServer:
        server = _ThreadingWSGIServer(
            sock.getsockname(), _QuietWSGIRequestHandler, bind_and_activate=False
        )
        _adopt_socket(server, sock)
        server.setup_environ()
        server.set_app(app)
        return server

    return serve_in_thread(make, **kwargs)


class _UvicornServer:
    def __init__(self, app: Any, sock: socket.socket, config: Mapping[str, Any]) -> None:
        import uvicorn  # only the ASGI helper needs it

        self._sock = sock
        self._server = uvicorn.Server(
            uvicorn.Config(app, **{"log_level": "warning", "lifespan": "auto", **config})
        )

    def serve_forever(self) -> None:
        self._server.run(sockets=[self._sock])

    def shutdown(self) -> None:
        self._server.should_exit = True


def serve_asgi(
    app: Any, *, timeout: float = 10.0, ready_path: str = "/", **uvicorn_config: Any
) -> contextlib.AbstractContextManager[str]:
    """An ASGI application under uvicorn in a thread; ``uvicorn_config`` goes to ``uvicorn.Config``."""
    return serve_in_thread(
        lambda sock: _UvicornServer(app, sock, uvicorn_config),
        timeout=timeout,
        ready_path=ready_path,
    )


@contextlib.contextmanager
def serve_command(
    argv: Sequence[str],
    *,
    timeout: float = 30.0,
    ready_path: str = "/",
    env: Mapping[str, str] | None = None,
    cwd: str | os.PathLike[str] | None = None,
    stop_timeout: float = 10.0,
) -> Iterator[str]:
    """Run ``argv`` (``{port}`` replaced by a free port) as a process in its own session."""
    port = free_port()
    url = f"http://{HOST}:{port}"
    argv = [arg.replace("{port}", str(port)) for arg in argv]
    with tempfile.TemporaryDirectory(prefix="itb-server-") as tmp:
        log_path = Path(tmp) / "output.log"
        with log_path.open("wb") as log:
            process = subprocess.Popen(
                argv,
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=subprocess.STDOUT,
                env=None if env is None else dict(env),
                cwd=cwd,
                start_new_session=True,
            )

        def last_line() -> str:
            lines = log_path.read_text(encoding="utf-8", errors="replace").strip().splitlines()
            return f"exit code {process.returncode}" + (
                f", last output: {lines[-1]}" if lines else ""
            )

        try:
            wait_until_serving(
                url,
                timeout=timeout,
                alive=lambda: process.poll() is None,
                path=ready_path,
                why_dead=last_line,
            )
            yield url
        finally:
            _stop_process_group(process, stop_timeout)


def _stop_process_group(process: subprocess.Popen[bytes], stop_timeout: float) -> None:
    for sig in (signal.SIGTERM, signal.SIGKILL):
        with contextlib.suppress(ProcessLookupError):
            os.killpg(process.pid, sig)
        try:
            process.wait(stop_timeout)
            return
        except subprocess.TimeoutExpired:
            continue
