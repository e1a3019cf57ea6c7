"""Uploads the factory could not delete: what each costs, grouped once per lab, and the role that would fix it.

DevTest Labs' ``generateUploadUri`` SAS grants read, create and write — never delete. The factory deletes a lab's
upload once its custom image exists with an Entra ID token of its own principal on the lab's storage account,
which needs the *Storage Blob Data Contributor* role there (ARM's Owner or Contributor grant no data action).
Without it the upload stays: that costs storage, never a pair. Distribution hands each upload left over in its
XCom; verify groups them per lab for its report and says so once per lab in the run's log.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import asdict, dataclass
from typing import Any
from urllib.parse import unquote, urlsplit

#: The built-in role that lets a principal delete blobs with a bearer token.
DELETE_ROLE = "Storage Blob Data Contributor"
#: Storage error codes that mean "this principal holds no data role allowing it" (Azure's 403 answers).
PERMISSION_CODES = frozenset({"AuthorizationPermissionMismatch", "AuthorizationFailure"})
#: XCom key under which cleanup hands verify the uploads it left.
XCOM_KEY = "uploads_left"


def account_of(blob_url: str) -> str:
    """Return the storage account of a blob URL (``<account>.blob.core.windows.net`` or path-style)."""
    parts = urlsplit(blob_url)
    host = parts.hostname or ""
    if ".blob." in host:
        return host.split(".", 1)[0]
    path = parts.path.lstrip("/")
    return unquote(path.split("/", 1)[0]) if path else host


@dataclass(frozen=True)
class UploadLeft:
    """One upload that stays in a lab's storage: where, how big, and why it was not deleted."""

    lab: str
    account: str
    blob: str
    #: Its size in bytes, when it could be read.
    size: int | None
    #: The storage error code (``AuthorizationPermissionMismatch``) or the exception's name.
    reason: str

    @property
    def missing_role(self) -> bool:
        """Tell whether a data role would have let the factory delete it."""
        return self.reason in PERMISSION_CODES

    def to_dict(self) -> dict[str, Any]:
        """Return the upload as XCom carries it (names and sizes only)."""
        return asdict(self)

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> UploadLeft:
        """Read an upload from ``to_dict``'s form."""
        size = data.get("size")
        return cls(
            lab=str(data["lab"]),
            account=str(data["account"]),
            blob=str(data["blob"]),
            size=int(size) if size is not None else None,
            reason=str(data.get("reason", "")),
        )


def gib(size: int) -> str:
    """Format a byte count for people (GiB with two decimals, or bytes when small)."""
    return f"{size / 2**30:.2f} GiB" if size >= 2**20 else f"{size} bytes"


@dataclass(frozen=True)
class LabUploadsLeft:
    """Every upload left in one lab, with what it costs and what would fix it."""

    lab: str
    account: str
    blobs: tuple[str, ...]
    #: Bytes the uploads occupy (those whose size could be read).
    bytes: int
    reasons: tuple[str, ...]
    principal: str

    @property
    def missing_role(self) -> bool:
        """Tell whether the factory lacked the data role (rather than meeting a transient failure)."""
        return any(reason in PERMISSION_CODES for reason in self.reasons)

    @property
    def fix(self) -> str:
        """Say what would let the factory delete these uploads."""
        if self.missing_role:
            return (
                f"assign principal {self.principal} the '{DELETE_ROLE}' role on storage account {self.account} "
                f"(lab {self.lab}), or on its resource group; the next run deletes what it uploads"
            )
        return f"delete them by hand in storage account {self.account} (container uploads) or let the next run retry"

    def message(self) -> str:
        """Return the one log line of this lab."""
        return (
            f"Lab {self.lab}: {len(self.blobs)} upload(s) left in {self.account}/uploads ({gib(self.bytes)}, "
            f"{', '.join(self.reasons)}): {', '.join(self.blobs)}. To fix: {self.fix}"
        )

    def to_dict(self) -> dict[str, Any]:
        """Return the lab's section of verify's report."""
        return {
            "lab": self.lab,
            "account": self.account,
            "blobs": list(self.blobs),
            "bytes": self.bytes,
            "reasons": list(self.reasons),
            "role": DELETE_ROLE if self.missing_role else None,
            "fix": self.fix,
        }


def by_lab(uploads: Iterable[UploadLeft], principal: str) -> list[LabUploadsLeft]:
    """Group uploads left per lab (one entry each, sorted by lab; the same blob counted once)."""
    grouped: dict[str, dict[str, UploadLeft]] = {}
    for upload in uploads:
        grouped.setdefault(upload.lab, {}).setdefault(upload.blob, upload)
    result = []
    for lab in sorted(grouped, key=str.casefold):
        items = sorted(grouped[lab].values(), key=lambda u: u.blob)
        result.append(
            LabUploadsLeft(
                lab=lab,
                account=items[0].account,
                blobs=tuple(u.blob for u in items),
                bytes=sum(u.size or 0 for u in items),
                reasons=tuple(sorted({u.reason for u in items})),
                principal=principal,
            )
        )
    return result


def from_results(results: Iterable[Any]) -> list[UploadLeft]:
    """Collect the uploads left that task results carry (``{"upload_left": {...}}`` or lists of them)."""
    found: list[UploadLeft] = []
    for result in results:
        if isinstance(result, Mapping) and isinstance(result.get("upload_left"), Mapping):
            found.append(UploadLeft.from_dict(result["upload_left"]))
        elif isinstance(result, list | tuple):
            found.extend(UploadLeft.from_dict(item) for item in result if isinstance(item, Mapping))
    return found


#: Tasks whose results carry the uploads they left: the distribution waves (return values, one per pair) and the
#: clean-up of region seeds (a list under ``XCOM_KEY``).
DISTRIBUTE_TASK_IDS = ("distribute", "distribute_regional")
CLEANUP_TASK_ID = "cleanup_uploads"


def collect(xcom: Any) -> list[UploadLeft]:
    """Read the uploads this run's tasks left from their XComs (``xcom``: the task instance)."""
    results = xcom.xcom_pull(task_ids=list(DISTRIBUTE_TASK_IDS)) or []
    seeds = xcom.xcom_pull(task_ids=[CLEANUP_TASK_ID], key=XCOM_KEY) or []
    return from_results([*results, *seeds])
