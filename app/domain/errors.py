"""Domain errors. They carry a machine code and a human sentence, never an HTTP
status: `app/api/errors.py` maps each class to one."""

from __future__ import annotations

from typing import Any


class DomainError(Exception):
    """Base of every rule the service refuses to break."""

    code = "domain_error"

    def __init__(self, message: str | None = None, *, code: str | None = None, **details: Any) -> None:
        self.message = message or self.__doc__ or self.code
        if code:
            self.code = code
        self.details = details
        super().__init__(self.message)

    def __reduce__(self) -> tuple[Any, ...]:
        # Keep code and details when an error crosses a process boundary (the ML workers).
        return _restore, (type(self), self.__dict__.copy())


def _restore(cls: type[DomainError], state: dict[str, Any]) -> DomainError:
    error = cls.__new__(cls)
    Exception.__init__(error, state.get("message"))
    error.__dict__.update(state)
    return error


class NotFound(DomainError):
    """The requested resource does not exist."""

    code = "not_found"


class Conflict(DomainError):
    """The request conflicts with the current state."""

    code = "conflict"


class RuleViolation(DomainError):
    """The request breaks a business rule."""

    code = "rule_violation"


class InvalidInput(DomainError):
    """The input is malformed or unacceptable."""

    code = "invalid_input"


class Unauthenticated(DomainError):
    """The caller could not be authenticated."""

    code = "not_authenticated"


class Forbidden(DomainError):
    """The caller may not do this."""

    code = "forbidden"


class TooManyRequests(DomainError):
    """Too many attempts; try again later."""

    code = "rate_limited"

    def __init__(self, message: str | None = None, *, retry_after: int, limit: int | None = None, **kw: Any) -> None:
        super().__init__(message, **kw)
        self.retry_after = max(1, int(retry_after))
        self.limit = limit


class DeliveryFailed(DomainError):
    """A message could not be delivered; ask for it again."""

    code = "delivery_failed"


class ServiceUnavailable(DomainError):
    """A dependency (database, model) is not usable right now."""

    code = "service_unavailable"


# Identity: the frequent refusals, one class each so a raise site names only the case.
class InvalidOtp(InvalidInput):
    """The code is not valid."""

    code = "invalid_otp"


class OtpExpired(InvalidInput):
    """The code has expired; ask for a new one."""

    code = "otp_expired"


class OtpExhausted(InvalidInput):
    """Too many wrong codes; ask for a new one."""

    code = "otp_exhausted"


class WeakPassword(InvalidInput):
    """The password does not meet the policy."""

    code = "weak_password"


class InvalidIdentifier(InvalidInput):
    """Enter a valid email address or an E.164 phone number (+919876543210)."""

    code = "invalid_identifier"


class InvalidCredentials(Unauthenticated):
    """Invalid identifier or password."""

    code = "invalid_credentials"


class InvalidToken(Unauthenticated):
    """The token is invalid."""

    code = "invalid_token"


class SessionRevoked(Unauthenticated):
    """This session has ended; sign in again."""

    code = "session_revoked"


class AccountLocked(Forbidden):
    """Too many failed attempts; the account is locked for a while."""

    code = "account_locked"


class AccountSuspended(Forbidden):
    """This account is suspended."""

    code = "account_suspended"


class AccountNotVerified(Forbidden):
    """Verify your account with the code we sent first."""

    code = "account_not_verified"


class InsufficientRole(Forbidden):
    """Your role may not do this."""

    code = "insufficient_role"


class UserNotFound(NotFound):
    """The user does not exist."""

    code = "user_not_found"


class IdentifierTaken(Conflict):
    """An account with this email or phone already exists."""

    code = "identifier_taken"


# Idempotent requests.
class IdempotencyKeyReused(RuleViolation):
    """This Idempotency-Key was already used with a different request body."""

    code = "idempotency_key_reused"


class ConcurrentChange(Conflict):
    """Other requests kept changing the same records at the same moment; retry shortly."""

    code = "concurrent_change"


class IdempotencyInProgress(Conflict):
    """A request with this Idempotency-Key is still being processed; retry shortly."""

    code = "idempotency_in_progress"


# Inputs to the verification engine.
class InvalidImage(InvalidInput):
    """The file is not a readable JPEG, PNG or PDF image."""

    code = "invalid_image"


class FileTooLarge(InvalidInput):
    """The file is larger than allowed."""

    code = "file_too_large"


class RecordTooLarge(InvalidInput):
    """What this request would store is larger than a record may be."""

    code = "payload_too_large"


class NoFaceDetected(InvalidInput):
    """No face was found in the image."""

    code = "no_face_detected"


class ModelsUnavailable(ServiceUnavailable):
    """The verification models are not loaded."""

    code = "models_unavailable"


# Documents at rest.
class DocumentIntegrityError(Conflict):
    """The stored document failed its integrity check and cannot be shown."""

    code = "document_integrity_failed"


class DocumentKeyUnavailable(ServiceUnavailable):
    """The key this document was encrypted with is not configured."""

    code = "document_key_unavailable"
