"""The AuditError tree. Every user-facing error carries a hint naming the next step.

Exit codes (see `audit.cli`): 2 for usage and configuration errors, 3 for collection
and runtime errors. 1 is reserved for a failed policy gate.
"""

from __future__ import annotations


class AuditError(Exception):
    """Base of all errors the CLI reports as one line plus a hint."""

    exit_code = 3

    def __init__(self, message: str, hint: str = "") -> None:
        super().__init__(message)
        self.message = message
        self.hint = hint

    def __str__(self) -> str:
        return f"{self.message} (hint: {self.hint})" if self.hint else self.message


class UsageError(AuditError, ValueError):
    """The command line or a configuration value is wrong."""

    exit_code = 2


class InvalidRefError(UsageError):
    """REF is neither a Hub repo id, a local model folder nor a card file."""


class CollectionError(AuditError):
    """Collecting facts about the model failed."""


class RepoNotFoundError(CollectionError, LookupError):
    """The Hub says the repository does not exist (or is private)."""


class GatedRepoError(RepoNotFoundError):
    """The repository is gated and the request carried no token with access."""


class RevisionNotFoundError(CollectionError, LookupError):
    """The requested revision (branch, tag or commit) does not exist."""


class OfflineCacheMissError(CollectionError, FileNotFoundError):
    """Offline mode is on and the local cache does not hold what is needed."""


class HubUnavailableError(CollectionError, ConnectionError):
    """The Hub could not be reached or answered with a server error."""


class ReportNotFoundError(UsageError, FileNotFoundError):
    """A run directory holds no readable report.json."""


class RenderError(AuditError):
    """A renderer failed (nothing half-written is left behind)."""
