"""The one user-facing error type: a domain problem with a message that says what to do."""

from __future__ import annotations


class IncidentOpsError(Exception):
    """A problem the user can act on; the CLI prints it as `::error::` and exits 1."""

    def __init__(self, message: str, *, hint: str | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.hint = hint

    def __str__(self) -> str:
        return f"{self.message} {self.hint}" if self.hint else self.message


class UsageError(IncidentOpsError):
    """The command was called wrongly (an unknown event name, a bad argument); the CLI exits 2."""


class ConfigError(IncidentOpsError):
    """`incidentops.yaml` is missing, malformed or fails validation."""


class ApiError(IncidentOpsError):
    """An outside API (GitHub, Cloudflare) answered with an error or could not be reached."""

    def __init__(
        self,
        service: str,
        message: str,
        *,
        status: int | None = None,
        code: int | None = None,
        hint: str | None = None,
    ) -> None:
        super().__init__(f"{service}: {message}", hint=hint)
        self.service = service
        self.status = status
        self.code = code


class GitError(IncidentOpsError):
    """A git command failed in a way retrying will not fix."""
