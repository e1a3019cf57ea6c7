"""The factory's exceptions: each message says what is wrong and what to fix."""

from __future__ import annotations


class ImageFactoryError(Exception):
    """Base of every error the factory raises on purpose."""


class ConfigurationError(ImageFactoryError):
    """Configuration/ (labs.json, factory.json, golden images) or the run's params are invalid."""

    def __init__(self, message: str, findings: list[str] | None = None) -> None:
        self.findings = findings or []
        detail = "".join(f"\n  - {f}" for f in self.findings)
        super().__init__(f"{message}{detail}")


class AzureRequestError(ImageFactoryError):
    """Azure refused a request; ``code`` is ARM's error code (e.g. AuthorizationFailed)."""

    def __init__(self, message: str, code: str | None = None, status: int | None = None) -> None:
        self.code = code
        self.status = status
        super().__init__(message)


class LabNotFoundError(AzureRequestError):
    """A lab named in labs.json does not exist (or is not visible to the factory's principal)."""


class ForbiddenError(AzureRequestError):
    """The factory's principal lacks a role it needs (403 AuthorizationFailed)."""


class CopyFailedError(ImageFactoryError):
    """A server-side blob copy ended failed or aborted, or did not finish before its deadline."""


class ImageCreationError(ImageFactoryError):
    """A custom image's long-running operation ended Failed or Canceled, or timed out."""


class CaptureError(ImageFactoryError):
    """A factory VM could not be captured (disk access, copy, or the VHD is not a fixed VHD)."""


class BuildError(ImageFactoryError):
    """A factory VM could not be built from its template (deployment, artifacts, or it never stopped)."""
