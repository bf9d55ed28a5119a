"""The typed errors every storage implementation raises (the contract's codes, see
:mod:`shiren.storage.ports`).

One constructor per code, shared by the in-memory reference and the SQL repositories, so that
both backends raise exactly the same :class:`~shiren.errors.StateError` — same code, same
message, same ``detail`` — and the contract tests can compare them.  It sits at the bottom of the
package (it imports nothing from storage) so that any module may use it without a cycle.
"""

from __future__ import annotations

from shiren.errors import ErrorCode, StateError


def not_found(what: str) -> StateError:
    """The one error for a row that does not exist *for this tenant* (never says which)."""
    return StateError(f"{what} not found", code=ErrorCode.RECORD_NOT_FOUND, detail={"entity": what})


def conflict(what: str, expected: str, actual: str) -> StateError:
    """An optimistic-concurrency failure: the row is not in the state the caller expected."""
    return StateError(
        f"{what} is {actual}, expected {expected}",
        code=ErrorCode.RECORD_CONFLICT,
        detail={"entity": what, "expected": expected, "actual": actual},
    )


def duplicate(what: str) -> StateError:
    """A unique key (id, nonce, external_ref, API key hash, audit seq) already exists."""
    return StateError(
        f"{what} already exists", code=ErrorCode.RECORD_DUPLICATE, detail={"entity": what}
    )


def already_used() -> StateError:
    """The error of every ``SessionRepository.mark_used`` after the first."""
    return StateError("session already used", code=ErrorCode.SESSION_ALREADY_USED)


def nonce_mismatch() -> StateError:
    """The presented nonce is not the session's: a forged or mixed-up challenge."""
    return StateError("session nonce does not match", code=ErrorCode.CHALLENGE_INVALID)


__all__ = ["already_used", "conflict", "duplicate", "nonce_mismatch", "not_found"]
