"""Inventory many labs at once, within ARM's read budget.

Plan and verify read every lab: plan its region and images, verify its images. One lab after another, 1,000 labs
at ARM's ~100 ms a request take minutes; all at once, they would empty ARM's read bucket (250, refilled 25/s)
and spend the run in 429 back-off. So the labs are read by a bounded pool of threads (``ArmBudget.Concurrency``),
every request paced below ARM's refill by the process's pacer (``image_factory.pacing``).

Locating labs: when a subscription holds several labs of labs.json, one paged ``Labs_ListBySubscription`` answers
every lab's region and resource group (a page of 50 labs per read) instead of one ``Labs_Get`` per lab; a lab the
listing does not show (or a listing refused) is read alone, which says precisely what is wrong with it.
"""

from __future__ import annotations

import logging
from collections import defaultdict
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

from image_factory.exceptions import AzureRequestError
from image_factory.models import LabInventory, LabRef
from image_factory.pacing import bounded_map

if TYPE_CHECKING:
    from image_factory.hooks.devtestlabs import DevTestLabsHook

log = logging.getLogger(__name__)

#: A subscription with at least this many labs of labs.json to locate is listed instead of reading each lab.
LIST_FROM = 3


def _listed(hook: DevTestLabsHook, subscription_id: str) -> dict[str, Any]:
    """Return the labs a subscription's listing shows, by lower-cased name (empty when the listing is refused)."""
    try:
        labs = hook.list_labs(subscription_id)
    except AzureRequestError as exc:
        log.info("Subscription %s: cannot list its labs (%s); reading each lab instead", subscription_id, exc)
        return {}
    return {str(lab.name).lower(): lab for lab in labs}


def locate_by_listing(hook: DevTestLabsHook, labs: Sequence[LabRef], concurrency: int = 1) -> dict[str, Any]:
    """Return lab key → the SDK lab for the labs found by listing their subscription (only subscriptions that hold
    at least ``LIST_FROM`` of them; a lab whose resource group differs from labs.json's is left to read alone)."""
    by_subscription: dict[str, list[LabRef]] = defaultdict(list)
    for lab in labs:
        by_subscription[lab.subscription_id.lower()].append(lab)
    wanted = [refs for refs in by_subscription.values() if len(refs) >= LIST_FROM]
    listings = bounded_map(lambda refs: _listed(hook, refs[0].subscription_id), wanted, concurrency)
    found: dict[str, Any] = {}
    for refs, listing in zip(wanted, listings, strict=True):
        for lab in refs:
            match = listing.get(lab.lab_name.lower())
            if match is not None and _same_group(lab, str(match.id or "")):
                found[lab.key] = match
    return found


def _same_group(lab: LabRef, resource_id: str) -> bool:
    """Whether a listed lab is the one labs.json means (its resource group, when labs.json names one)."""
    if not lab.resource_group:
        return True
    return f"/resourcegroups/{lab.resource_group.lower()}/" in resource_id.lower()


def take_inventories(
    hook: DevTestLabsHook, labs: Sequence[LabRef], *, locate: bool = True, concurrency: int = 8
) -> dict[str, LabInventory]:
    """Inventory every lab (``DevTestLabsHook.inventory``), ``concurrency`` at a time; keyed by lab, in order."""
    located = locate_by_listing(hook, labs, concurrency) if locate else {}
    inventories = bounded_map(
        lambda lab: hook.inventory(lab, locate=locate, found=located.get(lab.key)), labs, concurrency
    )
    result: dict[str, LabInventory] = {}
    for lab, inventory in zip(labs, inventories, strict=True):
        if inventory.status != "ok":
            log.warning("Lab %s: %s (%s)", lab.lab_name, inventory.status, inventory.message)
        result[lab.key] = inventory
    return result
