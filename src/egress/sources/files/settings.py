"""Where a files connection points (a folder inside a files root, or an S3 bucket behind
an allowed endpoint), how its settings are admitted, and the S3 filesystem that reaches it."""

from __future__ import annotations

from typing import Any
from urllib.parse import urlparse, urlsplit

import pyarrow.fs as pafs
from pydantic import BaseModel, ConfigDict, Field, field_validator

from egress.domain.catalog import MAX_CSV_NULL_VALUES
from egress.domain.errors import Invalid
from egress.sources import confine
from egress.sources.guarded_proxy import proxy_options
from egress.sources.policy import HostDenied, SourcePolicy, allowed_addresses


class FilesSettings(BaseModel):
    model_config = ConfigDict(extra="forbid")

    url: str = Field(min_length=1, description="file:///abs/folder or s3://bucket/prefix")
    endpoint: str | None = Field(
        default=None, description="S3-compatible endpoint: http(s)://host[:port]"
    )
    region: str | None = None
    csvNullValues: list[str] = Field(
        default_factory=list,
        max_length=MAX_CSV_NULL_VALUES,
        description='CSV fields that also mean NULL (e.g. ["NA"]); an empty field always does',
    )

    @field_validator("url")
    @classmethod
    def _supported(cls, value: str) -> str:
        parsed = urlparse(value)
        if parsed.scheme == "file":
            confine.file_url_path(value)
        elif parsed.scheme == "s3":
            if not parsed.netloc:
                raise ValueError("an s3: URL needs a bucket, e.g. s3://bucket/prefix")
        else:
            raise ValueError("must be a file:///… or s3://bucket/… URL")
        return value

    @field_validator("endpoint")
    @classmethod
    def _endpoint(cls, value: str | None) -> str | None:
        if value is not None:
            endpoint_address(value)
        return value


def endpoint_address(endpoint: str) -> tuple[str, str, int]:
    """(scheme, host, port) of an S3 endpoint, which must be exactly ``http(s)://host[:port]``:
    a path, query, fragment or user name has no meaning for S3 and only hides the target."""
    problem = "must be http://host[:port] or https://host[:port]"
    parts = urlsplit(endpoint)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise ValueError(problem)
    if parts.path not in ("", "/") or parts.query or parts.fragment or "@" in parts.netloc:
        raise ValueError(problem)
    try:
        port = parts.port or (443 if parts.scheme == "https" else 80)
    except ValueError as exc:
        raise ValueError(problem) from exc
    return parts.scheme, parts.hostname, port


def admit(settings: FilesSettings, policy: SourcePolicy) -> None:
    """What a saved files connection may name: a folder inside a files root, or a bucket that
    is not Egress's own storage behind an endpoint the host lists allow."""
    try:
        checked_location(settings, policy)
    except confine.PathRefused as exc:
        raise Invalid.at(("body", "settings", "url"), str(exc)) from exc
    except HostDenied as exc:
        raise Invalid.at(("body", "settings", "endpoint"), str(exc)) from exc


def checked_location(settings: FilesSettings, policy: SourcePolicy) -> str:
    """The root the source lists: a real local folder, or ``bucket/prefix``. Raises
    PathRefused or HostDenied."""
    parsed = urlparse(settings.url)
    if parsed.scheme == "file":
        return str(confine.confined(confine.file_url_path(settings.url), policy))
    if policy.own_bucket is not None and parsed.netloc == policy.own_bucket:
        raise confine.PathRefused("names Egress's own storage bucket")
    if settings.endpoint:
        # A clear refusal up front; every request (and every redirect the S3 client follows)
        # is checked again by the guarded proxy, which connects to the address it checked.
        _, host, port = endpoint_address(settings.endpoint)
        allowed_addresses(host, port, policy)
    return f"{parsed.netloc}/{parsed.path.strip('/')}".rstrip("/")


def s3_filesystem(
    settings: FilesSettings, secrets: dict[str, str], policy: SourcePolicy
) -> pafs.FileSystem:
    options: dict[str, Any] = {
        "connect_timeout": policy.connect_timeout_s,
        # No bytes for this long fails the request (then retried by the SDK). Runs get it too:
        # an object read has no big sort behind it, so a silent bucket is a stalled one.
        "request_timeout": policy.connect_timeout_s,
    }
    if settings.endpoint:
        scheme, _, _ = endpoint_address(settings.endpoint)
        options["endpoint_override"] = urlsplit(settings.endpoint).netloc
        options["scheme"] = scheme
        # A tenant's endpoint may redirect anywhere (169.254.169.254) or change its DNS answer:
        # every request goes through Egress's guarded proxy, which resolves and checks each
        # destination itself and connects to the checked address.
        options["proxy_options"] = proxy_options(policy)
    if settings.region:
        options["region"] = settings.region
    if "accessKeyId" in secrets:
        options["access_key"] = secrets["accessKeyId"]
        options["secret_key"] = secrets.get("secretAccessKey", "")
    else:
        # Without keys the SDK would sign with the machine's own credentials (environment,
        # ~/.aws, instance metadata): only where the operator allows it, and never towards an
        # endpoint the tenant chose.
        options["anonymous"] = not (policy.ambient_credentials and not settings.endpoint)
    return pafs.S3FileSystem(**options)
