"""Load a declarative world (tenant, principals, subscriptions, labs, factory VMs) from a JSON file."""

from __future__ import annotations

import hashlib
import json
import uuid
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

#: Storage account holding every managed disk's page blob.
DISK_ACCOUNT = "diskstore"
#: Container of the managed disks' page blobs.
DISK_CONTAINER = "disks"
#: Roles the emulator knows and whether they allow writes.
ROLE_WRITES = {"owner": True, "contributor": True, "reader": False}
#: When a world's labs, VMs and OS disks were created unless the world file says (a fixed past time, so that
#: restarting the same world gives the same disks; changes made while the emulator runs are stamped now).
DEFAULT_CREATED = datetime(2026, 1, 1, tzinfo=UTC)


class WorldError(ValueError):
    """The world file is not valid."""


@dataclass(frozen=True)
class RoleAssignment:
    """A role (Owner, Contributor, Reader) granted at a scope (a resource id prefix)."""

    scope: str
    role: str

    @property
    def can_write(self) -> bool:
        """Tell whether the role allows writes and actions."""
        return ROLE_WRITES[self.role.lower()]


@dataclass(frozen=True)
class Principal:
    """A service principal: client id, object id and its role assignments."""

    name: str
    client_id: str
    object_id: str
    roles: tuple[RoleAssignment, ...]


@dataclass(frozen=True)
class VmSpec:
    """A DevTest Labs VM of a lab (its OS disk is a page blob in ``diskstore``)."""

    name: str
    os_type: str
    tags: dict[str, str]
    provisioning_state: str = "Succeeded"
    power_state: str = "deallocated"
    disk_size_mib: int = 1
    size: str = "Standard_D2s_v3"
    #: When the VM and its OS disk were created (and the VM last started or deallocated).
    created: datetime = DEFAULT_CREATED


@dataclass(frozen=True)
class LabSpec:
    """A DevTest lab: where it lives and its storage account."""

    name: str
    subscription_id: str
    resource_group: str
    location: str
    storage_account: str
    vms: tuple[VmSpec, ...] = ()
    #: When the lab was created.
    created: datetime = DEFAULT_CREATED


#: The settings ``POST /_emulator/config`` and a world file's ``settings`` may change.
SETTING_KEYS = (
    "lro_seconds",
    "copy_seconds",
    "page_size",
    "token_lifetime",
    "vm_create_seconds",
    "artifact_seconds",
    "deallocate_seconds",
    "build_disk_mib",
)


@dataclass
class Settings:
    """Tunable timings and sizes (changed at run time through ``POST /_emulator/config``)."""

    lro_seconds: float = 2.0
    copy_seconds: float = 2.0
    page_size: int = 50
    token_lifetime: int = 3600
    #: Lab VM builds (template deployments): before the artifacts start, per artifact, from a sysprep/deprovision
    #: artifact's stop to the VM's deallocation, and the size of a built VM's OS disk.
    vm_create_seconds: float = 2.0
    artifact_seconds: float = 1.0
    deallocate_seconds: float = 2.0
    build_disk_mib: int = 1

    def update(self, values: dict[str, Any]) -> None:
        """Apply the known keys of ``values``; raise WorldError on an unknown key or a bad value."""
        for key, value in values.items():
            if key not in SETTING_KEYS:
                raise WorldError(f"unknown setting {key!r}")
            if not isinstance(value, int | float) or isinstance(value, bool) or value < 0:
                raise WorldError(f"setting {key!r} must be a non-negative number")
            if key == "build_disk_mib" and not 1 <= value <= 64:
                raise WorldError("setting 'build_disk_mib' must be between 1 and 64")
            if key in {"page_size", "token_lifetime", "build_disk_mib"}:
                if int(value) < 1:
                    raise WorldError(f"setting {key!r} must be at least 1")
                setattr(self, key, int(value))
            else:
                setattr(self, key, float(value))


@dataclass
class World:
    """Everything the emulator serves, as declared by the world file."""

    tenant_id: str
    principals: dict[str, Principal]
    default_principal: str
    subscriptions: dict[str, str]
    resource_groups: dict[tuple[str, str], str]
    labs: list[LabSpec]
    settings: Settings = field(default_factory=Settings)
    extra_accounts: tuple[str, ...] = ()

    def storage_accounts(self) -> list[str]:
        """List every storage account the world needs (labs' accounts, disk store, extras)."""
        names = [lab.storage_account for lab in self.labs] + [DISK_ACCOUNT, *self.extra_accounts]
        return list(dict.fromkeys(names))

    def principal_by_client_id(self, client_id: str) -> Principal | None:
        """Find a principal by its application (client) id."""
        for principal in self.principals.values():
            if principal.client_id.lower() == client_id.lower():
                return principal
        return None

    def principal_by_object_id(self, object_id: str) -> Principal | None:
        """Find a principal by its object id."""
        for principal in self.principals.values():
            if principal.object_id == object_id:
                return principal
        return None


def _require(data: dict[str, Any], key: str, where: str) -> Any:
    if key not in data:
        raise WorldError(f"{where}: missing key {key!r}")
    return data[key]


def disk_blob_name(lab: LabSpec, vm: VmSpec) -> str:
    """Name the page blob of a VM's OS disk in container ``disks`` of ``diskstore``."""
    return f"{lab.name}-{vm.name}-osdisk.vhd".lower()


def compute_resource_group(lab: LabSpec, vm: VmSpec) -> str:
    """Name the resource group DevTest Labs creates for a VM's compute resources (``<lab>-<vm>-<n>``)."""
    digest = hashlib.sha256(f"{lab.subscription_id}/{lab.name}/{vm.name}".encode()).hexdigest()
    return f"{lab.name}-{vm.name}-{int(digest[:8], 16) % 1_000_000:06d}"


def disk_seed(lab: LabSpec, vm: VmSpec) -> int:
    """Derive a stable seed for the content of a VM's disk."""
    return int(hashlib.sha256(f"{lab.name}/{vm.name}".encode()).hexdigest()[:8], 16)


def _parse_time(value: Any, where: str) -> datetime:
    """Read an ISO 8601 time of the world file (UTC when it names no offset)."""
    try:
        parsed = datetime.fromisoformat(str(value))
    except ValueError as exc:
        raise WorldError(f"{where}: 'created' must be an ISO 8601 time, not {value!r}") from exc
    return parsed.replace(tzinfo=UTC) if parsed.tzinfo is None else parsed.astimezone(UTC)


def _parse_vm(data: dict[str, Any], where: str, lab_created: datetime) -> VmSpec:
    name = str(_require(data, "name", where))
    os_type = str(data.get("os_type", "Windows"))
    if os_type not in {"Windows", "Linux"}:
        raise WorldError(f"{where}/{name}: os_type must be Windows or Linux")
    power = str(data.get("power_state", "deallocated"))
    if power not in {"deallocated", "running", "stopped"}:
        raise WorldError(f"{where}/{name}: power_state must be deallocated, running or stopped")
    size = int(data.get("disk_size_mib", 1))
    if not 1 <= size <= 64:
        raise WorldError(f"{where}/{name}: disk_size_mib must be between 1 and 64")
    return VmSpec(
        name=name,
        os_type=os_type,
        tags={str(k): str(v) for k, v in dict(data.get("tags", {})).items()},
        provisioning_state=str(data.get("provisioning_state", "Succeeded")),
        power_state=power,
        disk_size_mib=size,
        created=_parse_time(data["created"], f"{where}/{name}") if "created" in data else lab_created,
    )


def _parse_subscriptions(data: dict[str, Any]) -> tuple[dict[str, str], dict[tuple[str, str], str]]:
    """Return ``subscription id -> name`` and ``(subscription, lower-case group) -> group`` of the world."""
    subscriptions: dict[str, str] = {}
    resource_groups: dict[tuple[str, str], str] = {}
    for sub in _require(data, "subscriptions", "world"):
        sub_id = str(_require(sub, "id", "subscription")).lower()
        subscriptions[sub_id] = str(sub.get("name", sub_id))
        for rg in sub.get("resource_groups", []):
            rg_name = str(_require(rg, "name", f"subscription {sub_id}"))
            resource_groups[(sub_id, rg_name.lower())] = rg_name
    return subscriptions, resource_groups


def _parse_lab(lab: dict[str, Any], subscriptions: dict[str, str], world_created: datetime) -> LabSpec:
    name = str(_require(lab, "name", "lab"))
    sub_id = str(_require(lab, "subscription", f"lab {name}")).lower()
    rg = str(_require(lab, "resource_group", f"lab {name}"))
    if sub_id not in subscriptions:
        raise WorldError(f"lab {name}: unknown subscription {sub_id}")
    created = _parse_time(lab["created"], f"lab {name}") if "created" in lab else world_created
    return LabSpec(
        name=name,
        subscription_id=sub_id,
        resource_group=rg,
        location=str(lab.get("location", "westeurope")),
        storage_account=str(_require(lab, "storage_account", f"lab {name}")),
        vms=tuple(_parse_vm(vm, f"lab {name}", created) for vm in lab.get("vms", [])),
        created=created,
    )


def _parse_principal(item: dict[str, Any], tenant_id: str) -> Principal:
    name = str(_require(item, "name", "principal"))
    client_id = str(item.get("client_id") or uuid.uuid5(uuid.NAMESPACE_URL, f"{tenant_id}/{name}"))
    roles = []
    for assignment in item.get("roles", []):
        role = str(_require(assignment, "role", f"principal {name}"))
        if role.lower() not in ROLE_WRITES:
            raise WorldError(f"principal {name}: unknown role {role!r}")
        roles.append(RoleAssignment(scope=str(_require(assignment, "scope", name)).rstrip("/"), role=role))
    object_id = str(uuid.uuid5(uuid.NAMESPACE_OID, f"{tenant_id}/{client_id}"))
    return Principal(name=name, client_id=client_id, object_id=object_id, roles=tuple(roles))


def _parse_settings(data: dict[str, Any]) -> Settings:
    settings = Settings()
    try:
        settings.update(dict(data.get("settings", {})))
    except WorldError as exc:
        raise WorldError(f"world settings: {exc}") from exc
    return settings


def parse_world(data: dict[str, Any]) -> World:
    """Build a World from its JSON document; raise WorldError when it is inconsistent."""
    tenant_id = str(_require(data, "tenant_id", "world"))
    subscriptions, resource_groups = _parse_subscriptions(data)
    created = _parse_time(data["created"], "world") if "created" in data else DEFAULT_CREATED
    labs = [_parse_lab(lab, subscriptions, created) for lab in _require(data, "labs", "world")]
    for lab in labs:
        resource_groups.setdefault((lab.subscription_id, lab.resource_group.lower()), lab.resource_group)
    principals: dict[str, Principal] = {}
    for item in _require(data, "principals", "world"):
        principal = _parse_principal(item, tenant_id)
        principals[principal.name] = principal
    if not principals:
        raise WorldError("world: at least one principal is needed")
    default = str(data.get("default_principal", next(iter(principals))))
    if default not in principals:
        raise WorldError(f"world: default_principal {default!r} is not a principal")
    settings = _parse_settings(data)
    return World(
        tenant_id=tenant_id,
        principals=principals,
        default_principal=default,
        subscriptions=subscriptions,
        resource_groups=resource_groups,
        labs=labs,
        settings=settings,
        extra_accounts=tuple(str(a) for a in data.get("storage_accounts", [])),
    )


def load_world(path: str | Path) -> World:
    """Read and parse a world file."""
    try:
        data = json.loads(Path(path).read_text(encoding="utf-8"))
    except (OSError, json.JSONDecodeError) as exc:
        raise WorldError(f"cannot read world file {path}: {exc}") from exc
    if not isinstance(data, dict):
        raise WorldError(f"world file {path} must hold a JSON object")
    return parse_world(data)
