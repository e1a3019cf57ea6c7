"""What retention reads from Azure before deleting: the uploads in flight, per lab."""

from __future__ import annotations

from typing import Any

import pytest

from image_factory.exceptions import AzureRequestError
from image_factory.retention import facts
from image_factory.retention.in_flight import UploadCheck

SUB = "11111111-1111-4111-8111-111111111111"
UB, V = "Ubuntu/Ubuntu2204.json", "2025-01-01"


def check(lab: str) -> UploadCheck:
    return UploadCheck(SUB, f"rg-{lab}", lab, "ub.vhd", UB, V)


def test_an_upload_protects_its_version_in_the_lab_it_is_uploading_into(monkeypatch: pytest.MonkeyPatch) -> None:
    """An upload into QALab is QALab's copy in flight (and needs the catalogue's VHD), not DevLab's image."""

    def present(_arm: Any, c: UploadCheck) -> bool:
        if c.lab_name == "TestLab":
            raise AzureRequestError("generateUploadUri refused", status=500)
        return c.lab_name == "QALab"

    monkeypatch.setattr(facts, "upload_present", present)
    notes: list[str] = []
    busy = facts.uploading_versions(None, [check("DevLab"), check("QALab"), check("TestLab")], notes)  # type: ignore[arg-type]
    assert busy == {("QALab", UB, V), ("TestLab", UB, V)}
    assert len(notes) == 1 and "TestLab" in notes[0] and facts.KEEP_UPLOAD_UNKNOWN in notes[0]
