"""The trust boundary of tenant connections (DESIGN §7): what a connection may name and reach.

Everything a request names — a path, a host, an endpoint — is checked against one policy built
from Settings, on create and update and again whenever a source is opened, because what a name
points at can change after it was checked (a symlink swapped in, a DNS record).
"""

from __future__ import annotations

import socket
from dataclasses import dataclass, replace
from ipaddress import IPv4Network, IPv6Network, ip_address, ip_network
from pathlib import Path
from urllib.parse import unquote, urlparse

from egress.domain.errors import Invalid
from egress.settings import Settings

Network = IPv4Network | IPv6Network
SOURCES_FOLDER = "sources"


@dataclass(frozen=True)
class SourcePolicy:
    files_roots: tuple[Path, ...]
    # The data dir: its own files (metadata, warehouse, keys, storage, temporary folders) are
    # never a source, even where a root contains them. Only ``<data dir>/sources`` is open.
    data_dir: Path
    # Egress's own files configured outside the data dir (a SQLite metadata database or
    # warehouse elsewhere, a local storage folder elsewhere).
    own_paths: tuple[Path, ...]
    ambient_credentials: bool
    deny_hosts: tuple[Network, ...]
    allow_hosts: tuple[Network, ...] | None
    # Egress's own server databases (metadata, warehouse) as (host, port, database).
    own_databases: tuple[tuple[str, int, str], ...]
    own_bucket: str | None
    connect_timeout_s: float
    # Read timeout of every source call; None for runs, which use the stall limit instead.
    read_timeout_s: float | None
    stall_s: float
    catalog_max_depth: int
    catalog_max_entries: int

    @classmethod
    def from_settings(cls, settings: Settings) -> SourcePolicy:
        data_dir = settings.resolved_data_dir
        # Real paths, since the paths checked against them are real (symlinks followed).
        roots = (
            tuple(Path(p.strip()).resolve() for p in settings.files_roots.split(",") if p.strip())
            if settings.files_roots
            else ((data_dir / SOURCES_FOLDER).resolve(),)
        )
        own_paths = tuple(
            p
            for url in (
                settings.resolved_database_url,
                settings.resolved_warehouse_url,
                settings.resolved_storage_url,
            )
            if (p := _local_path(url)) is not None
        )
        own_databases = tuple(
            db
            for url in (settings.database_url, settings.warehouse_url)
            if url and (db := _server_database(url)) is not None
        )
        storage = urlparse(settings.resolved_storage_url)
        return cls(
            files_roots=roots,
            data_dir=data_dir,
            own_paths=own_paths,
            ambient_credentials=settings.files_ambient_credentials,
            deny_hosts=_networks(settings.connection_deny_hosts),
            allow_hosts=(
                _networks(settings.connection_allow_hosts)
                if settings.connection_allow_hosts
                else None
            ),
            own_databases=own_databases,
            own_bucket=storage.netloc if storage.scheme in ("s3", "gs", "az") else None,
            connect_timeout_s=settings.source_timeout_s,
            read_timeout_s=None,
            stall_s=settings.source_stall_s,
            catalog_max_depth=settings.catalog_max_depth,
            catalog_max_entries=settings.catalog_max_entries,
        )

    def interactive(self) -> SourcePolicy:
        """The policy of a call made inside an API request (/test, browsing, describing): it
        gets a read timeout too, since a request must not wait on a source for minutes."""
        return replace(self, read_timeout_s=self.connect_timeout_s)


def _networks(text: str) -> tuple[Network, ...]:
    return tuple(ip_network(part.strip(), strict=False) for part in text.split(",") if part.strip())


def _local_path(url: str) -> Path | None:
    parsed = urlparse(url)
    if parsed.scheme.startswith("sqlite"):
        path = url.split(":///", 1)[-1]
        return Path(path).resolve() if path and path != ":memory:" else None
    if parsed.scheme == "file":
        return Path(unquote(parsed.path)).resolve()
    return None


def _server_database(url: str) -> tuple[str, int, str] | None:
    parsed = urlparse(url)
    scheme = parsed.scheme.split("+")[0]
    default_port = {"postgresql": 5432, "postgres": 5432, "mysql": 3306, "mariadb": 3306}
    if scheme not in default_port or not parsed.hostname:
        return None
    return (parsed.hostname, parsed.port or default_port[scheme], parsed.path.lstrip("/"))


class HostDenied(Exception):
    """A connection names an address the policy does not let tenants reach."""


class HostUnresolved(HostDenied):
    """The host does not resolve (now): not reachable, though not a policy refusal."""


class OwnDatabase(HostDenied):
    """The connection names Egress's own metadata or warehouse database."""


def allowed_addresses(host: str, port: int, policy: SourcePolicy) -> list[str]:
    """The addresses ``host`` resolves to now, all checked against the deny and allow lists.

    Drivers must then connect to one of these addresses (not the name again), so a DNS answer
    that changes between check and connect cannot slip past. Raises HostDenied naming no
    address (the answer must not turn Egress into a resolver for the tenant).
    """
    try:
        infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)
    except (OSError, UnicodeError) as exc:
        raise HostUnresolved(f"cannot resolve host {host!r}") from exc
    addresses = list(dict.fromkeys(str(info[4][0]) for info in infos))
    for address in addresses:
        ip = ip_address(address.split("%", 1)[0])
        mapped = getattr(ip, "ipv4_mapped", None)  # ::ffff:169.254.169.254 is 169.254.169.254
        ip = mapped or ip
        if any(ip in net for net in policy.deny_hosts):
            raise HostDenied(f"host {host!r} is not allowed (a denied address range)")
        if policy.allow_hosts is not None and not any(ip in net for net in policy.allow_hosts):
            raise HostDenied(f"host {host!r} is not in EGRESS_CONNECTION_ALLOW_HOSTS")
    if not addresses:
        raise HostUnresolved(f"cannot resolve host {host!r}")
    return addresses


def _addresses(host: str, port: int) -> set[str]:
    try:
        infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)
    except (OSError, UnicodeError):
        return set()
    return {str(info[4][0]).split("%", 1)[0] for info in infos}


def names_own_database(
    addresses: list[str], port: int, database: str, policy: SourcePolicy
) -> bool:
    """Whether (addresses, port, database) is Egress's own metadata or warehouse database,
    compared by resolved address so ``localhost`` and ``127.0.0.1`` are one server."""
    mine = set(addresses)
    for own_host, own_port, own_database in policy.own_databases:
        if (own_port, own_database) == (port, database) and mine & _addresses(own_host, port):
            return True
    return False


def server_addresses(host: str, port: int, database: str, policy: SourcePolicy) -> list[str]:
    """The checked addresses a database driver connects to (``allowed_addresses``), refusing
    Egress's own databases too; raises HostDenied."""
    addresses = allowed_addresses(host, port, policy)
    if names_own_database(addresses, port, database, policy):
        raise OwnDatabase(f"{host}:{port}/{database} is one of Egress's own databases")
    return addresses


def admit_server(host: str, port: int, database: str, policy: SourcePolicy) -> None:
    """Refuse a database server connection on save (422) when it names a denied address or
    Egress's own database. A host that does not resolve yet is saved (it may exist later);
    connecting checks again."""
    try:
        server_addresses(host, port, database, policy)
    except HostUnresolved:
        return
    except OwnDatabase as exc:
        msg = "names Egress's own metadata or warehouse database"
        raise Invalid.at(("body", "settings", "database"), msg) from exc
    except HostDenied as exc:
        msg = "host not allowed (EGRESS_CONNECTION_DENY_HOSTS, EGRESS_CONNECTION_ALLOW_HOSTS)"
        raise Invalid.at(("body", "settings", "host"), msg) from exc


def connect_timeout_s(own_s: float, policy: SourcePolicy) -> float:
    """A connection's connect and handshake limit: its own setting, capped by the policy."""
    return min(own_s, policy.connect_timeout_s)
