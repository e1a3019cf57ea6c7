"""Uploads left: grouped once per lab, with their bytes and the role that would let the factory delete them."""

from __future__ import annotations

from typing import Any

from image_factory.uploads_left import DELETE_ROLE, UploadLeft, account_of, by_lab, collect, from_results

DENIED = "AuthorizationPermissionMismatch"


def left(lab: str, blob: str, size: int | None = 2**30, reason: str = DENIED) -> UploadLeft:
    return UploadLeft(lab=lab, account=f"{lab.lower()}store", blob=blob, size=size, reason=reason)


def test_account_of_azure_and_path_style_urls() -> None:
    assert account_of("https://devlabstore.blob.core.windows.net/uploads/a.vhd") == "devlabstore"
    assert account_of("https://127.0.0.1:10000/devlabstore/uploads/a.vhd") == "devlabstore"


def test_one_entry_per_lab_with_bytes_and_the_fixing_role() -> None:
    labs = by_lab([left("TestLab", "b.vhd"), left("DevLab", "a.vhd"), left("TestLab", "c.vhd", size=None)], "app-1")
    assert [lab.lab for lab in labs] == ["DevLab", "TestLab"]
    test = labs[1].to_dict()
    assert test["blobs"] == ["b.vhd", "c.vhd"] and test["bytes"] == 2**30 and test["role"] == DELETE_ROLE
    assert "app-1" in test["fix"] and "testlabstore" in test["fix"]
    message = labs[1].message()
    assert message.startswith("Lab TestLab: 2 upload(s) left in testlabstore/uploads (1.00 GiB")
    assert DELETE_ROLE in message


def test_the_same_blob_reported_twice_counts_once() -> None:
    (lab,) = by_lab([left("DevLab", "a.vhd"), left("DevLab", "a.vhd")], "app")
    assert lab.bytes == 2**30 and lab.blobs == ("a.vhd",)


def test_a_transient_failure_names_no_role() -> None:
    (lab,) = by_lab([left("DevLab", "a.vhd", reason="ServiceRequestError")], "app")
    assert lab.to_dict()["role"] is None and "by hand" in lab.fix


def test_collect_reads_pair_results_and_the_seed_cleanup() -> None:
    class Ti:
        def xcom_pull(self, task_ids: Any, key: str = "return_value", **_: Any) -> Any:
            if key == "uploads_left":
                return [[left("QALab", "seed.vhd").to_dict()]]
            return [
                {"lab": "DevLab", "action": "created", "upload_left": left("DevLab", "a.vhd").to_dict()},
                {"lab": "TestLab", "action": "present"},
                None,
            ]

    assert [(u.lab, u.blob) for u in collect(Ti())] == [("DevLab", "a.vhd"), ("QALab", "seed.vhd")]
    assert from_results([None, 3, {"upload_left": None}]) == []
