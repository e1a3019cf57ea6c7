"""What DevTest Labs says of a built VM's artifacts (``$expand=properties($expand=artifacts)``), read purely.

As the original's MakeVM: the build succeeded when the VM has no artifact or its ``artifactDeploymentStatus`` is
``Succeeded`` (and, stricter, no artifact reports another status); otherwise every artifact that did not
succeed is reported with its status and DevTest Labs' two messages, and the VM is deleted.
"""

from __future__ import annotations

from dataclasses import dataclass

from image_factory.redact import redact
from image_factory.states import ProvisioningState


@dataclass(frozen=True)
class ArtifactResult:
    """One artifact of the VM: its id, ``status`` and the messages of a failure."""

    artifact_id: str
    status: str | None = None
    deployment_status_message: str | None = None
    vm_extension_status_message: str | None = None
    install_time: str | None = None

    @property
    def name(self) -> str:
        """Return the artifact's name (the id's last segment, e.g. ``windows-sysprep``)."""
        return self.artifact_id.rstrip("/").rsplit("/", 1)[-1] or self.artifact_id

    @property
    def succeeded(self) -> bool:
        return ProvisioningState.SUCCEEDED.matches(self.status)

    def describe(self) -> str:
        """Say what became of the artifact, with the messages of a failure (redacted)."""
        status = self.status or "no status"
        if (self.status or "").casefold() in {"pending", "skipped"} or self.succeeded:
            return f"{self.name}: {status}"
        messages = [m for m in (self.deployment_status_message, self.vm_extension_status_message) if m]
        detail = " | ".join(redact(m.strip()) for m in messages) or "no message"
        return f"{self.name}: {status}: {detail}"


@dataclass(frozen=True)
class ArtifactReport:
    """The VM's ``artifactDeploymentStatus`` and its artifacts."""

    deployment_status: str | None = None
    total: int | None = None
    applied: int | None = None
    artifacts: tuple[ArtifactResult, ...] = ()

    @property
    def succeeded(self) -> bool:
        """Tell whether every artifact was applied (none at all counts as success, as in the original)."""
        if not self.artifacts and not self.total:
            return True
        return ProvisioningState.SUCCEEDED.matches(self.deployment_status) and all(a.succeeded for a in self.artifacts)

    def failures(self) -> list[str]:
        """Return one line per artifact that did not succeed (failed ones first, then pending/skipped)."""
        bad = [a for a in self.artifacts if not a.succeeded]
        order = {"failed": 0}
        return [a.describe() for a in sorted(bad, key=lambda a: order.get((a.status or "").casefold(), 1))]

    def summary(self) -> str:
        """Say how far the artifacts got (``2 of 3 artifacts applied, deployment Failed``)."""
        applied = self.applied if self.applied is not None else sum(a.succeeded for a in self.artifacts)
        total = self.total if self.total is not None else len(self.artifacts)
        return f"{applied} of {total} artifacts applied, deployment {self.deployment_status or 'status unknown'}"
