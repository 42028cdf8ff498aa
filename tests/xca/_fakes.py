"""Misbehaving "communities" on real loopback sockets, for the initiating gateway's fan-out tests.

Each is a context manager that yields the URL of a would-be Responding Gateway: :func:`silent_socket` accepts
connections (the kernel does) and never answers, :func:`garbage` answers HTML, :func:`slamming_socket` closes
every connection at once. They serve in-process gateways and ``xds serve`` subprocesses alike.
"""

from __future__ import annotations

import socket
import threading
from collections.abc import Iterator
from contextlib import contextmanager

from starlette.applications import Starlette
from starlette.responses import Response
from starlette.routing import Route

from tests.support import serving


@contextmanager
def silent_socket() -> Iterator[str]:
    """Accepts TCP connections (the kernel does) and never answers."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        s.listen(64)
        yield f"http://127.0.0.1:{s.getsockname()[1]}/xca/responding"


@contextmanager
def slamming_socket() -> Iterator[str]:
    """Accepts every connection and closes it at once."""
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    s.listen(64)
    s.settimeout(0.1)
    stop = threading.Event()

    def run() -> None:
        while not stop.is_set():
            try:
                conn, _ = s.accept()
            except TimeoutError:
                continue
            conn.close()

    thread = threading.Thread(target=run, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{s.getsockname()[1]}/xca/responding"
    finally:
        stop.set()
        thread.join(5)
        s.close()


@contextmanager
def garbage() -> Iterator[str]:
    """Answers every POST with an HTML page (HTTP 200, text/html)."""

    async def page(_request: object) -> Response:
        return Response(b"<html><body>Bad Gateway</body></html>", media_type="text/html")

    with serving(Starlette(routes=[Route("/xca/responding", page, methods=["POST"])])) as url:
        yield f"{url}/xca/responding"


__all__ = ["garbage", "silent_socket", "slamming_socket"]
