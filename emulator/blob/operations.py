"""What a blob request is: the Blob service operation it names and the blob it addresses."""

from __future__ import annotations

import re
from dataclasses import dataclass
from urllib.parse import parse_qsl, unquote, urlsplit

from emulator.blob.asgi import RawHeaders, Scope, header_value

#: (account, container, blob) of a blob.
BlobKey = tuple[str, str, str]
#: Operations that write a blob's data (refused while a copy onto the blob is pending).
WRITE_OPERATIONS = frozenset(
    {
        "PutBlob",
        "PutBlobFromUrl",
        "CopyBlobFromUrl",
        "PutPage",
        "ClearPages",
        "PutBlock",
        "PutBlockList",
        "AppendBlock",
        "SetBlobProperties",
    }
)
_SIG = re.compile(r"(?i)(sig=)[^&]*")


def redact(url: str) -> str:
    """Return ``url`` with any SAS signature replaced by ``REDACTED``."""
    return _SIG.sub(r"\1REDACTED", url)


def account_of(url: str) -> str | None:
    """Return the account of a path-style blob URL (first path segment)."""
    path = urlsplit(url).path.lstrip("/")
    return unquote(path.split("/", 1)[0]) if path else None


_ACCOUNT_OPS = {
    ("GET", "list"): "ListContainers",
    ("GET", "properties"): "GetServiceProperties",
    ("PUT", "properties"): "SetServiceProperties",
    ("GET", "stats"): "GetServiceStats",
    ("POST", "userdelegationkey"): "GetUserDelegationKey",
    ("GET", "blobs"): "FindBlobsByTags",
    ("POST", "batch"): "SubmitBatch",
}
_CONTAINER_OPS = {
    ("PUT", ""): "CreateContainer",
    ("DELETE", ""): "DeleteContainer",
    ("GET", ""): "GetContainerProperties",
    ("GET", "metadata"): "GetContainerMetadata",
    ("PUT", "metadata"): "SetContainerMetadata",
    ("GET", "acl"): "GetContainerAcl",
    ("PUT", "acl"): "SetContainerAcl",
    ("PUT", "lease"): "LeaseContainer",
    ("GET", "list"): "ListBlobs",
    ("GET", "blobs"): "FindBlobsByTagsInContainer",
    ("PUT", "undelete"): "RestoreContainer",
    ("PUT", "rename"): "RenameContainer",
    ("POST", "batch"): "SubmitContainerBatch",
}
_BLOB_OPS = {
    ("GET", ""): "GetBlob",
    ("DELETE", ""): "DeleteBlob",
    ("PUT", "copy"): "AbortCopyBlob",
    ("PUT", "page"): "PutPage",
    ("GET", "pagelist"): "GetPageRanges",
    ("PUT", "incrementalcopy"): "IncrementalCopyBlob",
    ("PUT", "block"): "PutBlock",
    ("PUT", "blocklist"): "PutBlockList",
    ("GET", "blocklist"): "GetBlockList",
    ("PUT", "appendblock"): "AppendBlock",
    ("PUT", "seal"): "SealAppendBlob",
    ("PUT", "metadata"): "SetBlobMetadata",
    ("GET", "metadata"): "GetBlobMetadata",
    ("PUT", "properties"): "SetBlobProperties",
    ("PUT", "lease"): "LeaseBlob",
    ("PUT", "snapshot"): "SnapshotBlob",
    ("PUT", "undelete"): "UndeleteBlob",
    ("PUT", "tier"): "SetBlobTier",
    ("GET", "tags"): "GetBlobTags",
    ("PUT", "tags"): "SetBlobTags",
    ("PUT", "expiry"): "SetBlobExpiry",
    ("PUT", "immutabilitypolicies"): "SetImmutabilityPolicy",
    ("DELETE", "immutabilitypolicies"): "DeleteImmutabilityPolicy",
    ("PUT", "legalhold"): "SetLegalHold",
    ("POST", "query"): "QueryBlobContents",
}


_WRITE_VARIANTS = {
    ("", ""): "PutBlob",
    ("", "from-url"): "PutBlobFromUrl",
    ("", "sync-copy"): "CopyBlobFromUrl",
    ("", "copy"): "CopyBlob",
    ("page", "copy"): "PutPageFromUrl",
    ("page", "clear"): "ClearPages",
    ("block", "copy"): "PutBlockFromUrl",
}


def classify(
    method: str, parts: tuple[str | None, str | None, str | None], query: dict[str, str], headers: dict[str, str]
) -> str:
    """Name the Blob service operation of a request (``Unknown`` when it is none we know)."""
    account, container, blob = parts
    verb = "GET" if method == "HEAD" else method
    comp = query.get("comp", "").lower()
    restype = query.get("restype", "").lower()
    if restype == "account" and comp == "properties":
        return "GetAccountInfo"
    if account is None or (
        blob is None and container is not None and restype != "container" and comp not in ("list", "blobs")
    ):
        return "Unknown"
    if container is None:
        return _ACCOUNT_OPS.get((verb, comp), "Unknown")
    if blob is None:
        return _CONTAINER_OPS.get((verb, comp), "Unknown")
    if method == "HEAD" and comp == "":
        return "GetBlobProperties"
    return _classify_blob_write(verb, comp, headers) or _BLOB_OPS.get((verb, comp), "Unknown")


def _classify_blob_write(verb: str, comp: str, headers: dict[str, str]) -> str | None:
    """Name the blob PUT operations that headers (not the query) tell apart."""
    if verb != "PUT":
        return None
    variant = ""
    if "x-ms-copy-source" in headers:
        variant = "copy"
        if comp == "" and "x-ms-blob-type" in headers:
            variant = "from-url"
        elif comp == "" and headers.get("x-ms-requires-sync", "").lower() == "true":
            variant = "sync-copy"
    elif comp == "page" and headers.get("x-ms-page-write", "").lower() == "clear":
        variant = "clear"
    return _WRITE_VARIANTS.get((comp, variant))


@dataclass
class BlobRequest:
    """One client request as the proxy sees it."""

    method: str
    raw_path: bytes
    query_string: bytes
    headers: RawHeaders
    client: tuple[str, int] | None
    account: str | None
    container: str | None
    blob: str | None
    query: dict[str, str]
    operation: str
    internal: bool

    @property
    def path(self) -> str:
        """Return the decoded path ``/account/container/blob``."""
        return "/" + "/".join(part for part in (self.account, self.container, self.blob) if part is not None)

    @property
    def key(self) -> BlobKey | None:
        """Return (account, container, blob) when the request addresses a blob."""
        if self.account is None or self.container is None or self.blob is None:
            return None
        return (self.account, self.container, self.blob)

    def header(self, name: str) -> str | None:
        """Return the first value of a request header (case-insensitive), or None."""
        return header_value(self.headers, name)

    @classmethod
    def from_scope(cls, scope: Scope) -> BlobRequest:
        """Parse an ASGI HTTP scope."""
        raw_path: bytes = scope.get("raw_path") or scope["path"].encode("utf-8")
        query_string: bytes = scope.get("query_string", b"")
        segments = raw_path.decode("latin-1").lstrip("/").split("/", 2)
        decoded = [unquote(segment) for segment in segments if segment != ""]
        parts: list[str | None] = [*decoded[:3], None, None, None][:3]
        query = {k.lower(): v for k, v in parse_qsl(query_string.decode("latin-1"), keep_blank_values=True)}
        headers: RawHeaders = list(scope.get("headers", []))
        header_map = {k.decode("latin-1").lower(): v.decode("latin-1") for k, v in headers}
        method = str(scope["method"]).upper()
        client = scope.get("client")
        return cls(
            method=method,
            raw_path=raw_path,
            query_string=query_string,
            headers=headers,
            client=(str(client[0]), int(client[1])) if client else None,
            account=parts[0],
            container=parts[1],
            blob=parts[2],
            query=query,
            operation=classify(method, (parts[0], parts[1], parts[2]), query, header_map),
            internal=header_map.get("user-agent", "").lower().startswith("axios/"),
        )
