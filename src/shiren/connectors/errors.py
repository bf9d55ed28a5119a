"""Typed connector failures.

:class:`ConnectorError` (a :class:`~shiren.errors.ServiceError`) says *the provider could not
answer*: down, too slow, the circuit is open, or it answered something unreadable.  It is
retryable (HTTP 503 at the API) except ``connector.auth_failed`` (our credentials: an operator
must fix the settings).  The provider refusing our *data* is an
:class:`~shiren.errors.InputError` (``input.connector_rejected``): retrying the same data cannot
help.  ``detail`` carries the provider name and an HTTP status at most — never the request.
"""

from __future__ import annotations

from shiren.errors import ErrorCode, ServiceError


class ConnectorError(ServiceError):
    code = ErrorCode.CONNECTOR_UNAVAILABLE
    retryable = True

    def __init__(
        self,
        message: str,
        *,
        code: ErrorCode | None = None,
        provider: str = "",
        status: int | None = None,
        retryable: bool | None = None,
    ) -> None:
        detail: dict[str, object] = {"provider": provider}
        if status is not None:
            detail["status"] = status
        super().__init__(message, code=code, detail=detail)
        if retryable is not None:
            self.retryable = retryable


def unavailable(provider: str, why: str, status: int | None = None) -> ConnectorError:
    return ConnectorError(
        f"{provider} is unavailable ({why})",
        code=ErrorCode.CONNECTOR_UNAVAILABLE,
        provider=provider,
        status=status,
    )


def timeout(provider: str) -> ConnectorError:
    return ConnectorError(
        f"{provider} did not answer in time", code=ErrorCode.CONNECTOR_TIMEOUT, provider=provider
    )


def circuit_open(provider: str) -> ConnectorError:
    return ConnectorError(
        f"calls to {provider} are paused (circuit open)",
        code=ErrorCode.CONNECTOR_CIRCUIT_OPEN,
        provider=provider,
    )


def bad_response(provider: str, why: str, status: int | None = None) -> ConnectorError:
    return ConnectorError(
        f"{provider} sent an invalid answer ({why})",
        code=ErrorCode.CONNECTOR_BAD_RESPONSE,
        provider=provider,
        status=status,
    )


def auth_failed(provider: str, status: int) -> ConnectorError:
    return ConnectorError(
        f"{provider} refused our credentials",
        code=ErrorCode.CONNECTOR_AUTH_FAILED,
        provider=provider,
        status=status,
        retryable=False,
    )


__all__ = [
    "ConnectorError",
    "auth_failed",
    "bad_response",
    "circuit_open",
    "timeout",
    "unavailable",
]
