"""A real TCP proxy in front of a server that can cut one file download mid-way, as a flaky
network does: the client sees the connection close before the promised bytes arrived. It also
keeps the request heads it forwarded, so a test can check what a resuming client asked for."""

from __future__ import annotations

import socket
import threading
from collections.abc import Iterator
from contextlib import contextmanager, suppress

# A response of a file download (Egress serves files with this header, API answers without).
_FILE_MARK = b"accept-ranges: bytes"


class CutProxy:
    def __init__(self, upstream_port: int) -> None:
        self.upstream_port = upstream_port
        self.listener = socket.create_server(("127.0.0.1", 0))
        self.port = self.listener.getsockname()[1]
        self.requests: list[str] = []  # request heads, as sent
        self._cut_after: int | None = None
        self._lock = threading.Lock()
        threading.Thread(target=self._accept, daemon=True).start()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def cut_next_download_after(self, n_bytes: int) -> None:
        """The next file response is cut after ``n_bytes`` of it reached the client."""
        with self._lock:
            self._cut_after = n_bytes

    def _accept(self) -> None:
        while True:
            try:
                client, _ = self.listener.accept()
            except OSError:
                return
            upstream = socket.create_connection(("127.0.0.1", self.upstream_port))
            threading.Thread(target=self._requests, args=(client, upstream), daemon=True).start()
            threading.Thread(target=self._responses, args=(upstream, client), daemon=True).start()

    def _requests(self, client: socket.socket, upstream: socket.socket) -> None:
        while data := _recv(client):
            head = data.split(b"\r\n\r\n", 1)[0]
            if head[:4] in (b"GET ", b"HEAD", b"POST", b"PATC", b"PUT ", b"DELE"):
                self.requests.append(head.decode("latin-1"))
            upstream.sendall(data)
        _close(client, upstream)

    def _responses(self, upstream: socket.socket, client: socket.socket) -> None:
        budget: int | None = None
        while data := _recv(upstream):
            if budget is None and _FILE_MARK in data.lower():
                with self._lock:
                    budget, self._cut_after = self._cut_after, None
                if budget is not None:
                    budget += data.index(b"\r\n\r\n") + 4  # the head does not count
            if budget is not None:
                client.sendall(data[:budget])
                budget -= len(data)
                if budget <= 0:
                    break
                continue
            client.sendall(data)
        _close(client, upstream)

    def close(self) -> None:
        self.listener.close()


def _recv(sock: socket.socket) -> bytes:
    try:
        return sock.recv(65536)
    except OSError:
        return b""


def _close(*socks: socket.socket) -> None:
    for s in socks:
        with suppress(OSError):
            s.shutdown(socket.SHUT_RDWR)
        s.close()


@contextmanager
def cut_proxy(upstream_port: int) -> Iterator[CutProxy]:
    proxy = CutProxy(upstream_port)
    try:
        yield proxy
    finally:
        proxy.close()
