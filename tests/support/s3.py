"""A real S3 endpoint for tests: moto's server (``moto[server]``, a dev dependency) as a
subprocess on 127.0.0.1, reached over plain HTTP exactly as Egress reaches a bucket."""

from __future__ import annotations

import secrets
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

import httpx
import obstore
from obstore.store import S3Store

REGION = "us-east-1"
# moto accepts any credentials; fixed dummies keep the tests independent of the host's AWS setup.
ACCESS_KEY = "egress-test"
SECRET_KEY = "egress-test-secret"
START_TIMEOUT_S = 30.0


class S3Unavailable(RuntimeError):
    """moto_server could not be started or did not answer."""


@dataclass
class S3Server:
    endpoint: str
    bucket: str  # created at start; a test that inspects a whole bucket makes its own
    process: subprocess.Popen[bytes]
    log_path: Path

    @property
    def env(self) -> dict[str, str]:
        """The variables obstore reads to reach this server (as a deployment would set them)."""
        return {
            "AWS_ENDPOINT_URL": self.endpoint,
            "AWS_ACCESS_KEY_ID": ACCESS_KEY,
            "AWS_SECRET_ACCESS_KEY": SECRET_KEY,
            "AWS_REGION": REGION,
            "AWS_ALLOW_HTTP": "true",
        }

    def new_bucket(self) -> str:
        """A fresh, empty bucket: what a test finds in it is its own doing."""
        return _new_bucket(self.endpoint)

    def store(self, bucket: str) -> S3Store:
        """Direct access to ``bucket`` for assertions, configured explicitly rather than
        through the environment, so it checks Egress's work instead of sharing its setup."""
        return S3Store(
            bucket,
            endpoint=self.endpoint,
            access_key_id=ACCESS_KEY,
            secret_access_key=SECRET_KEY,
            region=REGION,
            client_options={"allow_http": True},
        )

    def keys(self, bucket: str) -> list[str]:
        """Every key in ``bucket``, sorted."""
        return sorted(meta["path"] for page in obstore.list(self.store(bucket)) for meta in page)

    def stop(self) -> None:
        self.process.terminate()
        try:
            self.process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()


def _new_bucket(endpoint: str) -> str:
    name = f"egress-{secrets.token_hex(6)}"
    # moto takes an unsigned CreateBucket, which spares the tests an S3 client of their own.
    httpx.put(f"{endpoint}/{name}", timeout=10).raise_for_status()
    return name


def start_s3_server(port: int, log_dir: Path) -> S3Server:
    """Start moto_server on ``port``, wait until it answers and create a bucket."""
    endpoint = f"http://127.0.0.1:{port}"
    log_path = log_dir / f"moto-{port}.log"
    process = subprocess.Popen(
        [sys.executable, "-m", "moto.server", "-H", "127.0.0.1", "-p", str(port)],
        stdout=log_path.open("wb"),
        stderr=subprocess.STDOUT,
    )
    deadline = time.monotonic() + START_TIMEOUT_S
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise S3Unavailable(f"moto_server exited: {log_path.read_text(errors='replace')}")
        try:
            if httpx.get(endpoint, timeout=1).status_code == 200:
                return S3Server(endpoint, _new_bucket(endpoint), process, log_path)
        except httpx.HTTPError:
            pass
        time.sleep(0.1)
    process.kill()
    process.wait()
    raise S3Unavailable(f"moto_server did not answer within {START_TIMEOUT_S:.0f} s")
