"""Tiny TCP servers that are not what a connection expects: one that accepts and never
speaks, one that greets like another service, and a fake PostgreSQL server that asks for the
password in clear text — to prove what a driver sends and that nothing hangs."""

from __future__ import annotations

import contextlib
import socket
import struct
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field

# PostgreSQL's SSLRequest and GSSENCRequest codes: the fake server declines both ("N").
_NEGOTIATION_CODES = {80877103, 80877104}
_CLEARTEXT_PASSWORD = b"R" + struct.pack("!ii", 8, 3)


def free_port() -> int:
    """A TCP port on the loopback that nothing listens on now (for a server to start on)."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@dataclass
class Listener:
    port: int
    accepted: int = 0
    received: bytearray = field(default_factory=bytearray)


def _recv_exact(conn: socket.socket, n: int) -> bytes:
    data = b""
    while len(data) < n:
        chunk = conn.recv(n - len(data))
        if not chunk:
            raise ConnectionError("peer closed")
        data += chunk
    return data


def _fake_postgres(conn: socket.socket, listener: Listener) -> None:
    """Decline TLS, take the startup packet, ask for the password in clear, keep what came."""
    while True:
        header = _recv_exact(conn, 8)
        length, code = struct.unpack("!ii", header)
        body = _recv_exact(conn, length - 8)
        listener.received += header + body
        if code in _NEGOTIATION_CODES:
            conn.sendall(b"N")
            continue
        break
    conn.sendall(_CLEARTEXT_PASSWORD)
    kind_length = _recv_exact(conn, 5)
    (length,) = struct.unpack("!i", kind_length[1:])
    listener.received += kind_length + _recv_exact(conn, length - 4)


@contextmanager
def listening(kind: str, greeting: bytes = b"") -> Iterator[Listener]:
    """``kind``: "silent" (accepts, never answers), "greeting" (sends ``greeting`` and then
    nothing), or "postgres" (a fake server asking for a clear-text password)."""
    server = socket.socket()
    server.bind(("127.0.0.1", 0))
    server.listen(128)
    listener = Listener(server.getsockname()[1])
    held: list[socket.socket] = []
    stop = threading.Event()

    def serve(conn: socket.socket) -> None:
        try:
            if kind == "greeting":
                conn.sendall(greeting)
            elif kind == "postgres":
                _fake_postgres(conn, listener)
        except OSError:
            pass

    def accept() -> None:
        while not stop.is_set():
            try:
                conn, _ = server.accept()
            except OSError:
                return
            listener.accepted += 1
            held.append(conn)  # kept open (silent) until the listener closes
            threading.Thread(target=serve, args=(conn,), daemon=True).start()

    thread = threading.Thread(target=accept, daemon=True)
    thread.start()
    try:
        yield listener
    finally:
        stop.set()
        with contextlib.suppress(OSError):
            server.shutdown(socket.SHUT_RDWR)  # wakes the blocked accept()
        server.close()
        for conn in held:
            conn.close()
