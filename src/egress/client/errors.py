"""The SDK's exceptions: one class per problem a caller handles differently, each carrying the
server's RFC 9457 problem JSON (``problem``) where there is one."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import httpx

if TYPE_CHECKING:
    from egress.client.models import Execution


class EgressError(Exception):
    """Every error the SDK raises on purpose."""


class ApiError(EgressError):
    """The API answered an error: ``status``, the problem JSON, and its field ``errors``."""

    def __init__(self, status: int, problem: dict[str, Any], retry_after: float | None = None):
        detail = problem.get("detail") or problem.get("title") or "error"
        super().__init__(f"{status}: {detail}")
        self.status = status
        self.problem = problem
        self.detail: str = str(detail)
        self.retry_after = retry_after

    @property
    def errors(self) -> list[dict[str, Any]]:
        """Per-field errors (``{"field", "location", "message"}``); empty when there are none."""
        return list(self.problem.get("errors") or [])


class BadRequest(ApiError):
    """400: the request could not have come from a well-behaved client (bad JSON, a forged
    cursor)."""


class Unauthorized(ApiError):
    """401: no token, or one that is unknown, expired or revoked."""


class Forbidden(ApiError):
    """403: the token's role may not do this."""


class NotFound(ApiError):
    """404: no such object in the token's workspace."""


class Conflict(ApiError):
    """409: the object's current state forbids the request (e.g. re-running a running
    execution)."""


class PayloadTooLarge(ApiError):
    """413: the request body is over the server's limit."""


class RangeNotSatisfiable(ApiError):
    """416: a resumed download asked for bytes past the end of the file."""


class Invalid(ApiError):
    """422: the input breaks a rule; ``errors`` name the fields."""


class RateLimited(ApiError):
    """429: too many calls of this kind; retry after ``retry_after`` seconds."""


class ServerError(ApiError):
    """5xx: the server could not answer (503 while it shuts down carries ``retry_after``)."""


_BY_STATUS: dict[int, type[ApiError]] = {
    400: BadRequest,
    401: Unauthorized,
    403: Forbidden,
    404: NotFound,
    409: Conflict,
    413: PayloadTooLarge,
    416: RangeNotSatisfiable,
    422: Invalid,
    429: RateLimited,
}


def retry_after(response: httpx.Response) -> float | None:
    """``Retry-After`` in seconds (the delay form; an HTTP date is not used by Egress)."""
    value = response.headers.get("retry-after")
    try:
        return max(0.0, float(value)) if value is not None else None
    except ValueError:
        return None


def api_error(response: httpx.Response) -> ApiError:
    """The exception for an error answer: problem JSON from the API; anything else (a bucket's
    XML error, a proxy's HTML page) with its text as the detail."""
    try:
        body = response.json()
    except ValueError:
        body = None
    if not isinstance(body, dict):
        body = {"status": response.status_code, "detail": response.text[:2000]}
    status = response.status_code
    cls = _BY_STATUS.get(status, ServerError if status >= 500 else ApiError)
    return cls(status, body, retry_after(response))


class RunFailed(EgressError):
    """The execution's latest run FAILED: ``error_message`` says why, ``retryable`` whether a
    re-run may succeed without fixing anything."""

    def __init__(self, execution: Execution) -> None:
        latest = execution.runs[-1] if execution.runs else None
        self.execution = execution
        self.error_message: str | None = latest.error_message if latest else None
        self.retryable: bool | None = latest.retryable if latest else None
        super().__init__(f"execution {execution.id} failed: {self.error_message}")


class WaitTimeout(EgressError, TimeoutError):
    """``wait`` gave up before the execution finished; ``execution`` is the last one seen."""

    def __init__(self, execution: Execution, timeout: float) -> None:
        self.execution = execution
        super().__init__(
            f"execution {execution.id} still {execution.latest_status} after {timeout:g}s"
        )


class NoFile(EgressError):
    """The run published no file to download (COMPLETED_NO_DATA, or not finished)."""


class ChecksumMismatch(EgressError):
    """The downloaded bytes do not hash to the run's ``sha256``: nothing was put in place."""

    def __init__(self, name: str, expected: str, actual: str) -> None:
        self.name, self.expected, self.actual = name, expected, actual
        super().__init__(f"{name}: sha256 {actual} does not match the run's {expected}")


class ExportFailed(EgressError):
    """A bulk-export job ended ``Failed``: ``message`` says why, ``retryable`` whether starting
    it again (``export_all`` once more: it resumes from the last completed cursor) may help."""

    def __init__(self, request_id: str, message: str | None, retryable: bool) -> None:
        self.request_id, self.message, self.retryable = request_id, message, retryable
        super().__init__(f"export job {request_id} failed: {message}")
