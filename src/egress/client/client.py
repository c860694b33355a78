"""A small synchronous client for the Egress REST API."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any
from urllib.parse import unquote

import httpx

TERMINAL = {"COMPLETED", "COMPLETED_NO_DATA", "FAILED", "CANCELLED"}


class ApiError(Exception):
    """A problem+json answer from the API."""

    def __init__(self, status: int, problem: dict[str, Any]) -> None:
        super().__init__(f"{status}: {problem.get('detail', problem)}")
        self.status = status
        self.problem = problem


class Client:
    def __init__(self, base_url: str, token: str, timeout: float = 30.0) -> None:
        self._http = httpx.Client(
            base_url=base_url, headers={"Authorization": f"Bearer {token}"}, timeout=timeout
        )

    def close(self) -> None:
        self._http.close()

    def __enter__(self) -> Client:
        return self

    def __exit__(self, *_: object) -> None:
        self.close()

    def _call(self, method: str, path: str, **kwargs: Any) -> Any:
        response = self._http.request(method, path, **kwargs)
        if response.status_code >= 400:
            raise _error(response)
        return response.json() if response.content else None

    # -------------------------------------------------------------- resources
    def connections(self) -> list[dict[str, Any]]:
        return list(self._call("GET", "/api/v1/connections", params={"limit": 1000})["data"])

    def create_connection(self, **body: Any) -> dict[str, Any]:
        result: dict[str, Any] = self._call("POST", "/api/v1/connections", json=body)
        return result

    def update_connection(self, connection_id: str, **body: Any) -> dict[str, Any]:
        path = f"/api/v1/connections/{connection_id}"
        result: dict[str, Any] = self._call("PATCH", path, json=body)
        return result

    def templates(self, connection_id: str) -> list[dict[str, Any]]:
        params = {"connectionId": connection_id, "limit": 1000}
        return list(self._call("GET", "/api/v1/templates", params=params)["data"])

    def configurations(self) -> list[dict[str, Any]]:
        path = "/api/v1/extraction-configurations"
        return list(self._call("GET", path, params={"limit": 1000})["data"])

    def create_configuration(self, **body: Any) -> dict[str, Any]:
        result: dict[str, Any] = self._call("POST", "/api/v1/extraction-configurations", json=body)
        return result

    def submit(self, config_id: str) -> dict[str, Any]:
        path = f"/api/v1/extraction-configurations/{config_id}/submit"
        result: dict[str, Any] = self._call("POST", path)
        return result

    def trigger(self, config_id: str, **options: Any) -> dict[str, Any]:
        path = f"/api/v1/extraction-configurations/{config_id}/executions"
        result: dict[str, Any] = self._call("POST", path, json=options)
        return result

    def execution(self, config_id: str, execution_id: str) -> dict[str, Any]:
        path = f"/api/v1/extraction-configurations/{config_id}/executions/{execution_id}"
        result: dict[str, Any] = self._call("GET", path)
        return result

    def wait(
        self, config_id: str, execution_id: str, timeout: float = 600, interval: float = 0.2
    ) -> dict[str, Any]:
        """Poll until the latest run reaches a terminal status."""
        deadline = time.monotonic() + timeout
        while True:
            details = self.execution(config_id, execution_id)
            if details["latestStatus"] in TERMINAL:
                return details
            if time.monotonic() > deadline:
                raise TimeoutError(f"execution {execution_id} still {details['latestStatus']}")
            time.sleep(interval)

    def download(self, download_url: str, directory: Path) -> Path:
        """Stream a run's file into ``directory`` under the name the server gives it.

        With files in a bucket the API redirects to a presigned URL; httpx drops the token on
        the way there (another origin), and the object's key ends with the file name."""
        with self._http.stream("GET", download_url, follow_redirects=True) as response:
            if response.status_code >= 400:
                response.read()
                raise _error(response)
            name = _file_name(response)
            target = directory / Path(name).name
            directory.mkdir(parents=True, exist_ok=True)
            with target.open("wb") as fh:
                for chunk in response.iter_bytes():
                    fh.write(chunk)
        return target


def _file_name(response: httpx.Response) -> str:
    """RFC 6266: the exact UTF-8 ``filename*`` first, then the ASCII ``filename``; without
    either, the URL's last segment."""
    disposition: str = response.headers.get("content-disposition", "")
    if "filename*=UTF-8''" in disposition:
        return unquote(disposition.split("filename*=UTF-8''", 1)[1].split(";", 1)[0].strip())
    if 'filename="' in disposition:
        return disposition.split('filename="', 1)[1].split('"', 1)[0]
    return unquote(response.url.path.rsplit("/", 1)[-1])


def _error(response: httpx.Response) -> ApiError:
    """Problem JSON from the API; anything else (e.g. a bucket's XML error) as its text."""
    try:
        body = response.json()
    except ValueError:
        body = {"detail": response.text}
    return ApiError(response.status_code, body)
