"""Inventories: a subscription with several labs is listed once; the rest read alone; concurrently, in order."""

from __future__ import annotations

import threading
from dataclasses import dataclass, field
from types import SimpleNamespace
from typing import Any

from image_factory.exceptions import AzureRequestError
from image_factory.inventories import take_inventories
from image_factory.models import LabInventory, LabRef

SUB1 = "11111111-1111-4111-8111-111111111111"
SUB2 = "22222222-2222-4222-8222-222222222222"


def lab(name: str, sub: str = SUB1, group: str | None = "rg") -> LabRef:
    return LabRef(subscription_id=sub, lab_name=name, image_paths=("Win2016",), resource_group=group)


def listed(name: str, group: str = "rg") -> Any:
    return SimpleNamespace(
        name=name, location="westeurope", id=f"/subscriptions/x/resourceGroups/{group}/providers/lab/{name}"
    )


@dataclass
class FakeHook:
    listing: dict[str, list[Any]] = field(default_factory=dict)
    refuse_listing: bool = False
    listed: list[str] = field(default_factory=list)
    read_alone: list[str] = field(default_factory=list)
    threads: set[int] = field(default_factory=set)

    def list_labs(self, subscription_id: str) -> list[Any]:
        self.listed.append(subscription_id)
        if self.refuse_listing:
            raise AzureRequestError("forbidden", status=403)
        return self.listing.get(subscription_id, [])

    def inventory(self, ref: LabRef, *, locate: bool = True, found: Any = None) -> LabInventory:
        self.threads.add(threading.get_ident())
        if locate and found is None:
            self.read_alone.append(ref.lab_name)
        location = found.location if found is not None else "northeurope"
        return LabInventory(lab=ref, status="ok", resource_group=ref.resource_group, location=location)


def test_a_subscription_of_several_labs_is_listed_once() -> None:
    labs = [lab(f"Lab{i}") for i in range(10)] + [lab("Other", SUB2)]
    hook = FakeHook(listing={SUB1: [listed(f"Lab{i}") for i in range(9)] + [listed("Lab9", group="elsewhere")]})
    found = take_inventories(hook, labs, concurrency=4)  # type: ignore[arg-type]
    assert hook.listed == [SUB1], "a subscription with one lab of labs.json is not listed"
    assert sorted(hook.read_alone) == ["Lab9", "Other"], "a lab in another group than listed is read alone"
    assert list(found) == [ref.key for ref in labs], "in labs.json's order"
    assert found[labs[0].key].location == "westeurope"
    assert len(hook.threads) > 1, "labs are read concurrently"


def test_a_refused_listing_reads_each_lab() -> None:
    labs = [lab(f"Lab{i}") for i in range(4)]
    hook = FakeHook(refuse_listing=True)
    take_inventories(hook, labs, concurrency=2)  # type: ignore[arg-type]
    assert sorted(hook.read_alone) == [f"Lab{i}" for i in range(4)]


def test_verify_never_lists() -> None:
    labs = [lab(f"Lab{i}") for i in range(5)]
    hook = FakeHook()
    take_inventories(hook, labs, locate=False, concurrency=1)  # type: ignore[arg-type]
    assert hook.listed == [] and hook.read_alone == []
