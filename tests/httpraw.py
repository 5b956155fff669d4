"""A real HTTP server on loopback for an ASGI app, and a raw chunked client that stops sending
the moment the server answers: what a test needs to show a service refuses before reading."""

from __future__ import annotations

import select
import socket
import threading
import time
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

import uvicorn

from deploy.processes import free_port as deploy_free_port


def free_port() -> int:
    return deploy_free_port()  # in this test worker's own port range (tests/conftest.py)


@contextmanager
def served(app: Any) -> Iterator[int]:
    """Runs `app` under uvicorn in a thread; yields its port; stops it after."""
    port = free_port()
    server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=port, log_level="error"))
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 30
    while not server.started:
        assert time.monotonic() < deadline and thread.is_alive(), "server did not start"
        time.sleep(0.05)
    try:
        yield port
    finally:
        server.should_exit = True
        thread.join(10)


@dataclass
class Answer:
    status: int
    body: bytes
    sent: int  # body bytes sent before the server answered


def chunked_post(
    port: int, path: str, headers: dict[str, str], chunks: Iterable[bytes], timeout: float = 30
) -> Answer:
    """POST with Transfer-Encoding: chunked (no Content-Length), sending chunk by chunk until
    the chunks run out or the server starts answering, whichever comes first."""
    sock = socket.create_connection(("127.0.0.1", port), timeout=timeout)
    lines = [f"POST {path} HTTP/1.1", "Host: 127.0.0.1", "Transfer-Encoding: chunked"]
    lines += [f"{k}: {v}" for k, v in headers.items()]
    sock.sendall(("\r\n".join(lines) + "\r\n\r\n").encode())
    sent = 0
    try:
        for chunk in chunks:
            if select.select([sock], [], [], 0)[0]:
                break  # the server has answered: stop sending
            sock.sendall(b"%x\r\n%s\r\n" % (len(chunk), chunk))
            sent += len(chunk)
        else:
            sock.sendall(b"0\r\n\r\n")
    except (BrokenPipeError, ConnectionResetError):
        pass  # the server closed after answering; read what it said
    data = b""
    try:
        while b"\r\n\r\n" not in data or len(data) < _expected(data):
            part = sock.recv(65536)
            if not part:
                break
            data += part
    finally:
        sock.close()
    head, _, body = data.partition(b"\r\n\r\n")
    return Answer(int(head.split(b" ", 2)[1]), body, sent)


def _expected(data: bytes) -> int:
    head, sep, _ = data.partition(b"\r\n\r\n")
    for line in head.split(b"\r\n")[1:]:
        name, _, value = line.partition(b":")
        if name.strip().lower() == b"content-length":
            return len(head) + len(sep) + int(value)
    return 1 << 62  # no length: read to the close
