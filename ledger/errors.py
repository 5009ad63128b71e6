"""One hierarchy of errors, each with its error code and exit status (README: exit statuses)."""

from __future__ import annotations

TYPE_CHECKING = False  # not typing's: it is not loaded by `verify-receipt` (commands/offline.py)
if TYPE_CHECKING:
    from typing import Any


class LedgerError(Exception):
    """Base of every error the ledger reports to a caller."""

    code = "error"
    exit_code = 1

    def __init__(self, message: str, **details: Any) -> None:
        super().__init__(message)
        self.message = message
        self.details = details

    def to_dict(self) -> dict[str, Any]:
        return {"code": self.code, "message": self.message, **self.details}


class Refused(LedgerError):
    """Refused by a domain rule (exit 1). `code` is set per instance."""

    exit_code = 1

    def __init__(self, code: str, message: str, **details: Any) -> None:
        super().__init__(message, **details)
        self.code = code


class LastAdmin(Refused):
    """Deactivating the last active admin would leave nobody to run the ledger (exit 1)."""

    def __init__(self, message: str, **details: Any) -> None:
        super().__init__("last_admin", message, **details)


class InvalidInput(LedgerError):
    code = "invalid_input"
    exit_code = 2


class NotFound(LedgerError):
    exit_code = 3

    def __init__(self, code: str, message: str, **details: Any) -> None:
        super().__init__(message, **details)
        self.code = code


class PermissionDenied(LedgerError):
    code = "permission_denied"
    exit_code = 4


class StoreUnavailable(LedgerError):
    code = "store_unavailable"
    exit_code = 5


class IntegrityViolation(LedgerError):
    code = "integrity_violation"
    exit_code = 6
