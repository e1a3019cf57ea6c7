"""The artifacts DevTest Labs reports: success, and each failure with its status and messages."""

from __future__ import annotations

from image_factory.build.artifacts import ArtifactReport, ArtifactResult

ID = "/subscriptions/s/resourcegroups/rg/providers/microsoft.devtestlab/labs/f/artifactsources/public repo/artifacts/"


def test_no_artifact_at_all_is_a_success_as_in_the_original() -> None:
    assert ArtifactReport(deployment_status="NotStarted", total=0).succeeded


def test_every_artifact_succeeded() -> None:
    report = ArtifactReport(
        "Succeeded", 2, 2, (ArtifactResult(ID + "a", "Succeeded"), ArtifactResult(ID + "b", "Succeeded"))
    )
    assert report.succeeded and report.failures() == []
    assert report.summary() == "2 of 2 artifacts applied, deployment Succeeded"


def test_a_failed_artifact_is_reported_with_both_messages_and_the_skipped_after_it() -> None:
    report = ArtifactReport(
        "Failed",
        3,
        1,
        (
            ArtifactResult(ID + "windows-7zip", "Succeeded"),
            ArtifactResult(ID + "windows-chocolatey", "Failed", "Exit code 1", "choco: package not found"),
            ArtifactResult(ID + "windows-sysprep", "Skipped"),
        ),
    )
    assert not report.succeeded
    assert report.failures() == [
        "windows-chocolatey: Failed: Exit code 1 | choco: package not found",
        "windows-sysprep: Skipped",
    ]


def test_a_status_other_than_succeeded_fails_even_if_the_deployment_says_succeeded() -> None:
    assert not ArtifactReport("Succeeded", 1, 0, (ArtifactResult(ID + "x", "Pending"),)).succeeded


def test_a_message_is_redacted() -> None:
    failed = ArtifactResult(ID + "x", "Failed", "download https://a/b?sv=1&sig=SECRET failed")
    assert "SECRET" not in failed.describe()
