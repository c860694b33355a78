"""The forward proxy every tenant S3 request goes through (README "S3 endpoints").

Arrow's S3 client (the AWS SDK over curl) follows HTTP redirects to any host and resolves an
endpoint's name again by itself, so checking the endpoint once lets an allowed endpoint send it
on to a denied address (``307 Location: http://169.254.169.254/…``) or a short-lived DNS answer
slip past. Given ``proxy_options(policy)``, the client sends every request — the first one and
each redirect it follows — to this proxy on 127.0.0.1, which for each:

- resolves the destination itself and checks every address with ``allowed_addresses``,
- connects to a checked address (never the name again), within the policy's connect timeout,
- refuses anything denied: ``403`` with a short reason, and a log line.

Plain HTTP comes as ``GET http://host:port/path HTTP/1.1``: it is sent on in origin form with
``Connection: close``, and the client connection is closed after the one response, so a
kept-alive connection never carries a second request to another host unchecked. HTTPS comes
as ``CONNECT host:port``: checked, then bytes are copied both ways. Bodies are streamed in
chunks, never held whole; a connection silent for the idle limit is closed.

One proxy per process, started on first use in a daemon thread; each policy's rules are
reached with their own random proxy password, so nothing else on the machine can use the
proxy without one, and connections of different policies never share a rule.
"""

from __future__ import annotations

import base64
import binascii
import contextlib
import logging
import os
import secrets
import selectors
import socket
import threading
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit

from egress.sources.policy import HostDenied, HostUnresolved, SourcePolicy, allowed_addresses

log = logging.getLogger("egress.sources")

PROXY_USER = "egress"
MAX_HEAD_BYTES = 64 * 1024  # request or response line and headers
MAX_CONNECTIONS = 256  # at once; more are answered 503
CHUNK = 64 * 1024
HEAD_TIMEOUT_S = 30.0  # for a request's head, before its rule is known
# The proxy's idle limit is this much longer than the S3 client's own (its request timeout),
# so the client's clearer error comes first; the proxy's is the backstop.
IDLE_MARGIN_S = 2.0

# Hop-by-hop headers (RFC 9110 §7.6.1) and the proxy's own: never sent on.
_HOP_BY_HOP = frozenset(
    {
        "connection",
        "keep-alive",
        "proxy-authenticate",
        "proxy-authorization",
        "proxy-connection",
        "te",
        "trailer",
        "transfer-encoding",
        "upgrade",
    }
)


@dataclass(frozen=True)
class _Rule:
    """What one policy lets the proxy reach, and its time limits."""

    policy: SourcePolicy
    connect_timeout_s: float
    idle_s: float


class _Refused(Exception):
    def __init__(self, status: int, reason: str) -> None:
        super().__init__(reason)
        self.status = status
        self.reason = reason


class _Gone(Exception):
    """A peer closed or went silent: close both sides, say nothing."""


class _Idle(_Gone):
    """Both sides were silent for the idle limit."""


_REASONS = {
    400: "Bad Request",
    403: "Forbidden",
    407: "Proxy Authentication Required",
    501: "Not Implemented",
    502: "Bad Gateway",
    503: "Service Unavailable",
    504: "Gateway Timeout",
}


class GuardedProxy:
    """A forward proxy on 127.0.0.1 that lets a request through only to addresses its rule's
    policy allows. Use the module's ``proxy_options``; this class is the machinery."""

    def __init__(self) -> None:
        self._listener = socket.create_server(("127.0.0.1", 0), backlog=128)
        self.port: int = self._listener.getsockname()[1]
        self._rules: dict[str, _Rule] = {}  # proxy password → rule
        self._passwords: dict[tuple[Any, ...], str] = {}  # rule key → proxy password
        self._lock = threading.Lock()
        self._slots = threading.BoundedSemaphore(MAX_CONNECTIONS)
        threading.Thread(target=self._serve, name="egress-s3-proxy", daemon=True).start()

    def password(self, policy: SourcePolicy) -> str:
        """The proxy password of ``policy``'s rule: one per distinct host lists and limits."""
        # Interactive calls: their read limit; runs: the stall limit. The S3 client's own
        # request timeout (the connect timeout) is shorter still; this is the backstop.
        idle_s = (policy.read_timeout_s or policy.stall_s) + IDLE_MARGIN_S
        key = (policy.deny_hosts, policy.allow_hosts, policy.connect_timeout_s, idle_s)
        with self._lock:
            found = self._passwords.get(key)
            if found is None:
                found = secrets.token_urlsafe(24)
                self._passwords[key] = found
                self._rules[found] = _Rule(policy, policy.connect_timeout_s, idle_s)
            return found

    # ---------------------------------------------------------------- serving

    def _serve(self) -> None:
        while True:
            try:
                client, _ = self._listener.accept()
            except OSError:  # pragma: no cover - only if the listener is closed
                return
            if not self._slots.acquire(blocking=False):
                with contextlib.suppress(OSError):
                    client.settimeout(1.0)
                    _answer(client, 503, "too many connections")
                client.close()
                continue
            threading.Thread(
                target=self._handle, args=(client,), name="egress-s3-proxy-conn", daemon=True
            ).start()

    def _handle(self, client: socket.socket) -> None:
        upstream: socket.socket | None = None
        try:
            client.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            # Until the rule (and so the limits) is known; the client sends its request as
            # soon as it has connected.
            client.settimeout(HEAD_TIMEOUT_S)
            head, rest = _read_head(client, b"")
            method, target, headers = _parse_request(head)
            rule = self._rule(headers)
            client.settimeout(rule.idle_s)
            if method == "CONNECT":
                host, port = _authority(target)
                upstream = _open(host, port, rule)
                client.sendall(b"HTTP/1.1 200 Connection established\r\n\r\n")
                if rest:
                    upstream.sendall(rest)
                _tunnel(client, upstream, rule.idle_s)
            else:
                host, port, origin = _absolute(target)
                length = _body_length(headers)
                upstream = _open(host, port, rule)
                upstream.sendall(_upstream_head(method, origin, host, port, headers))
                _exchange(client, upstream, rest, length, rule.idle_s)
        except _Refused as exc:
            with contextlib.suppress(OSError):
                _answer(client, exc.status, exc.reason)
        except (_Gone, OSError):
            pass
        except Exception:  # pragma: no cover - a bug here must not kill the thread silently
            log.exception("S3 proxy: unexpected error")
        finally:
            for sock in (upstream, client):
                if sock is not None:
                    with contextlib.suppress(OSError):
                        sock.close()
            self._slots.release()

    def _rule(self, headers: list[tuple[str, str]]) -> _Rule:
        for name, value in headers:
            if name.lower() == "proxy-authorization":
                scheme, _, encoded = value.strip().partition(" ")
                if scheme.lower() != "basic":
                    break
                try:
                    decoded = base64.b64decode(encoded.strip(), validate=True).decode()
                except (binascii.Error, UnicodeDecodeError):
                    break
                user, _, password = decoded.partition(":")
                with self._lock:
                    rule = self._rules.get(password) if user == PROXY_USER else None
                if rule is not None:
                    return rule
                break
        raise _Refused(407, "proxy authentication required")


# -------------------------------------------------------------------- the module's API

_proxy: GuardedProxy | None = None
_proxy_pid: int | None = None
_start_lock = threading.Lock()


def guarded_proxy() -> GuardedProxy:
    """This process's proxy, started on first use (and again in a forked child, where the
    parent's thread does not run)."""
    global _proxy, _proxy_pid
    with _start_lock:
        if _proxy is None or _proxy_pid != os.getpid():
            _proxy, _proxy_pid = GuardedProxy(), os.getpid()
        return _proxy


def proxy_options(policy: SourcePolicy) -> dict[str, Any]:
    """``pyarrow.fs.S3FileSystem(proxy_options=…)`` that sends every request of a tenant's S3
    filesystem, redirects included, through the proxy checking them against ``policy``."""
    proxy = guarded_proxy()
    return {
        "scheme": "http",
        "host": "127.0.0.1",
        "port": proxy.port,
        "username": PROXY_USER,
        "password": proxy.password(policy),
    }


# -------------------------------------------------------------------- one exchange


def _answer(client: socket.socket, status: int, reason: str) -> None:
    body = f"{reason}\n".encode()
    extra = 'Proxy-Authenticate: Basic realm="egress"\r\n' if status == 407 else ""
    client.sendall(
        (
            f"HTTP/1.1 {status} {_REASONS.get(status, 'Error')}\r\n"
            f"Content-Type: text/plain; charset=utf-8\r\nContent-Length: {len(body)}\r\n"
            f"{extra}Connection: close\r\n\r\n"
        ).encode()
        + body
    )


def _read_head(sock: socket.socket, buffered: bytes) -> tuple[bytes, bytes]:
    """(the head up to its blank line, the bytes read after it)."""
    data = bytearray(buffered)
    while True:
        end = data.find(b"\r\n\r\n")
        if end >= 0:
            return bytes(data[:end]), bytes(data[end + 4 :])
        if len(data) > MAX_HEAD_BYTES:
            raise _Refused(400, "request head too large")
        try:
            chunk = sock.recv(CHUNK)
        except TimeoutError as exc:
            raise _Gone from exc
        if not chunk:
            raise _Gone
        data += chunk


def _parse_headers(lines: list[bytes], status: int = 400) -> list[tuple[str, str]]:
    headers = []
    for raw in lines:
        line = raw.decode("latin-1")
        name, sep, value = line.partition(":")
        if not sep or not name or name != name.strip() or " " in name or "\t" in name:
            raise _Refused(status, "malformed header")
        headers.append((name, value.strip()))
    return headers


def _parse_request(head: bytes) -> tuple[str, str, list[tuple[str, str]]]:
    lines = head.split(b"\r\n")
    parts = lines[0].decode("latin-1").split(" ")
    if len(parts) != 3 or parts[2] not in ("HTTP/1.1", "HTTP/1.0") or not parts[0].isalpha():
        raise _Refused(400, "malformed request line")
    return parts[0], parts[1], _parse_headers(lines[1:])


def _host_port(authority: str, default_port: int | None) -> tuple[str, int]:
    if not authority or "@" in authority or any(c in authority for c in "/?#\\"):
        raise _Refused(400, "malformed target")
    try:
        parts = urlsplit(f"//{authority}")
        host, port = parts.hostname, parts.port
    except ValueError as exc:
        raise _Refused(400, "malformed target") from exc
    port = port if port is not None else default_port
    if not host or port is None or not 0 < port < 65536:
        raise _Refused(400, "malformed target")
    return host, port


def _authority(target: str) -> tuple[str, int]:
    """CONNECT's ``host:port``."""
    return _host_port(target, None)


def _absolute(target: str) -> tuple[str, int, str]:
    """(host, port, origin-form target) of ``http://host[:port]/path?query``; the path and
    query are kept byte for byte (the request is signed over them)."""
    if target[:7].lower() != "http://":
        raise _Refused(400, "only http://… targets, or CONNECT for https")
    rest = target[7:]
    cut = min((i for i in (rest.find("/"), rest.find("?")) if i >= 0), default=len(rest))
    authority, origin = rest[:cut], rest[cut:]
    if "#" in origin:
        raise _Refused(400, "malformed target")
    host, port = _host_port(authority, 80)
    if not origin.startswith("/"):
        origin = "/" + origin
    return host, port, origin


def _body_length(headers: list[tuple[str, str]]) -> int:
    if any(name.lower() == "transfer-encoding" for name, _ in headers):
        raise _Refused(501, "chunked request bodies are not supported")
    lengths = {value for name, value in headers if name.lower() == "content-length"}
    if not lengths:
        return 0
    if len(lengths) > 1 or not (value := lengths.pop()).isdigit():
        raise _Refused(400, "malformed Content-Length")
    return int(value)


def _connection_tokens(headers: list[tuple[str, str]]) -> set[str]:
    return {
        token.strip().lower()
        for name, value in headers
        if name.lower() == "connection"
        for token in value.split(",")
    }


def _upstream_head(
    method: str, origin: str, host: str, port: int, headers: list[tuple[str, str]]
) -> bytes:
    drop = _HOP_BY_HOP | _connection_tokens(headers)
    kept = [(n, v) for n, v in headers if n.lower() not in drop]
    if not any(n.lower() == "host" for n, _ in kept):
        shown = f"[{host}]" if ":" in host else host
        kept.insert(0, ("Host", shown if port == 80 else f"{shown}:{port}"))
    lines = [f"{method} {origin} HTTP/1.1", *(f"{n}: {v}" for n, v in kept), "Connection: close"]
    return ("\r\n".join(lines) + "\r\n\r\n").encode("latin-1")


def _open(host: str, port: int, rule: _Rule) -> socket.socket:
    """A connection to one of ``host``'s checked addresses, or _Refused."""
    try:
        addresses = allowed_addresses(host, port, rule.policy)
    except HostUnresolved as exc:
        log.warning("S3 proxy: cannot resolve %r", host)
        raise _Refused(502, "cannot resolve host") from exc
    except HostDenied as exc:
        log.warning("S3 proxy refused %r port %d: %s", host, port, exc)
        raise _Refused(403, "host not allowed") from exc
    for address in addresses:
        # The checked address as a number: no name is looked up again.
        for family, kind, proto, _, sockaddr in socket.getaddrinfo(
            address, port, type=socket.SOCK_STREAM, flags=socket.AI_NUMERICHOST
        ):
            sock = socket.socket(family, kind, proto)
            try:
                sock.settimeout(rule.connect_timeout_s)
                sock.connect(sockaddr)
            except OSError:
                sock.close()
                continue
            sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            sock.settimeout(rule.idle_s)
            return sock
    log.warning("S3 proxy: could not connect to %r port %d", host, port)
    raise _Refused(502, "could not connect")


class _Waiter:
    """Waits for any of some sockets to be readable (epoll/kqueue: no FD_SETSIZE limit)."""

    def __init__(self, *socks: socket.socket) -> None:
        self._selector = selectors.DefaultSelector()
        self._socks = {sock.fileno(): sock for sock in socks}
        for sock in socks:
            self._selector.register(sock, selectors.EVENT_READ)

    def __enter__(self) -> _Waiter:
        return self

    def __exit__(self, *exc: object) -> None:
        self._selector.close()

    def ready(self, idle_s: float) -> list[socket.socket]:
        """The readable sockets; [] after ``idle_s`` of silence from all of them."""
        return [self._socks[key.fd] for key, _ in self._selector.select(idle_s)]


def _tunnel(client: socket.socket, upstream: socket.socket, idle_s: float) -> None:
    """Copy bytes both ways until either side closes or both are silent for ``idle_s``."""
    other = {client: upstream, upstream: client}
    with _Waiter(client, upstream) as waiter:
        while ready := waiter.ready(idle_s):
            for sock in ready:
                chunk = sock.recv(CHUNK)
                if not chunk:
                    return
                other[sock].sendall(chunk)


def _exchange(
    client: socket.socket, upstream: socket.socket, rest: bytes, length: int, idle_s: float
) -> None:
    """Send the request body on (``length`` bytes, the first of them in ``rest``), relay the
    response, and end: the client's connection carries no second request."""
    pump = None
    if length:
        first = rest[:length]
        pump = threading.Thread(
            target=_copy_body,
            args=(client, upstream, first, length - len(first)),
            name="egress-s3-proxy-body",
            daemon=True,
        )
        pump.start()
    # While no body is being read from the client, watch it too: a client that hangs up
    # ends the exchange at once (bytes it sends now — a pipelined request — are dropped).
    with _Waiter(upstream) if pump else _Waiter(upstream, client) as waiter:
        head, after = _response_head(client, waiter, idle_s)
        while _interim(head):
            client.sendall(head + b"\r\n\r\n")
            head, after = _response_head(client, waiter, idle_s, after)
        client.sendall(_client_head(head))
        if after:
            client.sendall(after)
        while chunk := _upstream_chunk(client, waiter, idle_s):
            client.sendall(chunk)


def _upstream_chunk(client: socket.socket, waiter: _Waiter, idle_s: float) -> bytes:
    """The next bytes from upstream; b"" once it closes. _Gone if the client hangs up,
    _Idle if both are silent for ``idle_s``; what else the client sends is dropped."""
    while True:
        ready = waiter.ready(idle_s)
        if not ready:
            raise _Idle
        for sock in ready:
            chunk = sock.recv(CHUNK)
            if sock is not client:
                return chunk
            if not chunk:
                raise _Gone


def _copy_body(client: socket.socket, upstream: socket.socket, first: bytes, left: int) -> None:
    try:
        if first:
            upstream.sendall(first)
        while left > 0:
            chunk = client.recv(min(CHUNK, left))
            if not chunk:
                break
            upstream.sendall(chunk)
            left -= len(chunk)
    except OSError:
        with contextlib.suppress(OSError):
            upstream.shutdown(socket.SHUT_RDWR)


def _response_head(
    client: socket.socket, waiter: _Waiter, idle_s: float, buffered: bytes = b""
) -> tuple[bytes, bytes]:
    data = bytearray(buffered)
    while (end := data.find(b"\r\n\r\n")) < 0:
        if len(data) > MAX_HEAD_BYTES:
            raise _Refused(502, "response head too large")
        try:
            chunk = _upstream_chunk(client, waiter, idle_s)
        except _Idle:
            raise _Refused(504, "no response in time") from None
        if not chunk:
            raise _Refused(502, "no response")
        data += chunk
    return bytes(data[:end]), bytes(data[end + 4 :])


def _interim(head: bytes) -> bool:
    """A 1xx response (``100 Continue``) other than a protocol switch, which is refused."""
    status = head[9:12]
    if status == b"101":
        raise _Refused(502, "protocol upgrades are not supported")
    return head.startswith(b"HTTP/1.") and status[:1] == b"1"


def _client_head(head: bytes) -> bytes:
    """The response head as sent on: hop-by-hop headers dropped, ``Connection: close``."""
    lines = head.split(b"\r\n")
    if not lines[0].startswith(b"HTTP/1."):
        raise _Refused(502, "not an HTTP response")
    headers = _parse_headers(lines[1:], 502)
    drop = (_HOP_BY_HOP - {"transfer-encoding", "trailer"}) | _connection_tokens(headers)
    kept = [f"{n}: {v}".encode("latin-1") for n, v in headers if n.lower() not in drop]
    return b"\r\n".join([lines[0], *kept, b"Connection: close"]) + b"\r\n\r\n"
