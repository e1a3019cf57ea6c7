"""The PowerShell factory's images, catalogue versions and captured VMs: recognised, kept, or adopted (pure)."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import UTC, datetime

import pytest

from image_factory.models import MANAGED_BY_VALUE, FactoryVm, ImageVersion, LabImage, LabInventory, LabRef
from image_factory.retention.decisions import FACTORY, RetentionPlan
from image_factory.retention.factory_vms import KEEP_POWERSHELL_CAPTURE, cleanup_plan, powershell_captured_vms
from image_factory.retention.images import retention_plan
from image_factory.retention.powershell import (
    KEEP_NOT_ADOPTED,
    made_by,
    original_stem,
    still_adoptable,
    untagged_notes,
    version_of,
)

SUB = "11111111-1111-4111-8111-111111111111"
DC = "Win2016/Datacenter.json"
VS = "Win2012R2/VS2015 Enterprise with Azure SDK.json"
GOLDEN = [DC, VS]


def ps_image(name: str, tag: str | None = "Win2016\\Datacenter.json", **kw: object) -> LabImage:
    return LabImage(name=name, provisioning_state="Succeeded", image_path=tag, **kw)  # type: ignore[arg-type]


def ours(version: str, path: str = DC) -> LabImage:
    return LabImage(
        name=f"Win2016_Datacenter-{version}-abcd1234",
        provisioning_state="Succeeded",
        image_path=path,
        version=version,
        managed=True,
        managed_by=MANAGED_BY_VALUE,
    )


@pytest.mark.parametrize(
    ("path", "stem"),
    [
        (DC, "Win2016_Datacenter"),
        ("Win2016\\Datacenter.json", "Win2016_Datacenter"),
        (VS, "Win2012R2_VS2015-Enterprise-with-Azure-SDK"),
        ("Deep/er/Win10 1709.json", "er_Win10-1709"),
        ("Top.json", "Top"),
    ],
)
def test_original_stem_is_the_originals_image_name_without_its_date(path: str, stem: str) -> None:
    assert original_stem(path) == stem


def test_who_made_an_image() -> None:
    assert made_by(ps_image("Win2016_Datacenter-Dec-1-2026")) == "powershell"
    assert made_by(ps_image("win2016_datacenter-Dec-1-2026A")) == "powershell"
    assert made_by(ours("2026-12-01")) == "factory"
    # No ImagePath tag, a name that is not the original's for its tag, another factory's marker: someone else's.
    assert made_by(ps_image("Win2016_Datacenter-Dec-1-2026", tag=None)) == "unknown"
    assert made_by(ps_image("Ubuntu_Ubuntu2204-Dec-1-2026")) == "unknown"
    assert made_by(ps_image("Win2016_Datacenter-mine")) == "unknown"
    assert made_by(ps_image("Win2016_Datacenter-Dec-1-2026", managed_by="someone-else")) == "unknown"


def test_a_powershell_image_is_dated_by_its_name_then_its_creation_date() -> None:
    assert version_of(ps_image("Win2016_Datacenter-Dec-1-2026")) == "2026-12-01"
    assert version_of(ps_image("Win2016_Datacenter-Dec-1-2026A")) == "2026-12-01.2"
    assert version_of(ps_image("Win2016_Datacenter-Dec-1-2026C")) == "2026-12-01.4"
    created = datetime(2026, 11, 30, 23, 30, tzinfo=UTC)
    assert version_of(ps_image("renamed", created=created)) == "2026-11-30"
    assert version_of(ps_image("renamed")) is None


def test_untagged_images_with_a_powershell_name_are_warned_about() -> None:
    notes = untagged_notes([ps_image("Win2016_Datacenter-Dec-1-2026", tag=None), ps_image("mine", tag=None)], "Dev")
    assert len(notes) == 1 and "Win2016_Datacenter-Dec-1-2026" in notes[0] and "no ImagePath tag" in notes[0]


def test_still_adoptable_needs_the_same_path_and_no_marker() -> None:
    image = ps_image("Win2016_Datacenter-Dec-1-2026")
    assert still_adoptable(image, DC)
    assert not still_adoptable(image, VS)
    assert not still_adoptable(ps_image("Win2016_Datacenter-Dec-1-2026", managed_by=MANAGED_BY_VALUE), DC)


DEV = LabRef(SUB, "DevLab", ("Win2016",), "rg-dev")
LEGACY = [
    ps_image("Win2016_Datacenter-Nov-1-2026"),
    ps_image("Win2016_Datacenter-Nov-1-2026A"),
    ps_image("Win2016_Datacenter-Nov-2-2026"),
]
#: Not the PowerShell factory's: no ImagePath tag; a name that is not the original's.
FOREIGN = [ps_image("Win2016_Datacenter-Oct-1-2026", tag=None), ps_image("Win2016_Datacenter-mine")]
#: The PowerShell factory's, of a golden image this factory does not know.
UNKNOWN_PATH = ps_image("Gone_Image-Oct-1-2026", tag="Gone\\Image.json")


def _plan(adopt: bool, images: list[LabImage], catalogue: Sequence[ImageVersion] = ()) -> RetentionPlan:
    inv = LabInventory(lab=DEV, status="ok", resource_group="rg-dev", images=tuple(images))
    return retention_plan(
        labs=[DEV],
        catalogue=list(catalogue),
        inventories={DEV.key: inv},
        golden_images=GOLDEN,
        images_to_save=2,
        adopt_powershell=adopt,
    )


def test_adoption_off_keeps_and_lists_every_powershell_image() -> None:
    plan = _plan(False, [*LEGACY, *FOREIGN, UNKNOWN_PATH, ours("2026-12-01"), ours("2026-12-02"), ours("2026-12-03")])
    assert [(d.name, d.version) for d in plan.deletions] == [("Win2016_Datacenter-2026-12-01-abcd1234", "2026-12-01")]
    listed = {k.name: k.reason for k in plan.kept}
    assert {i.name for i in LEGACY} <= set(listed)
    assert all(listed[i.name] == KEEP_NOT_ADOPTED for i in (*LEGACY, UNKNOWN_PATH))
    assert not {i.name for i in FOREIGN} & set(listed)
    assert any("no ImagePath tag" in n for n in plan.notes)


def test_adoption_on_counts_both_kinds_in_keep_n_and_deletes_only_powershell_images_it_recognises() -> None:
    plan = _plan(True, [*LEGACY, *FOREIGN, UNKNOWN_PATH, ours("2026-12-01")])
    # Newest two across both kinds: ours (Dec 1) and Nov 2; Nov 1's A (.2) and Nov 1 go.
    gone = [(d.name, d.version, d.adopted) for d in plan.deletions]
    assert gone == [
        ("Win2016_Datacenter-Nov-1-2026A", "2026-11-01.2", True),
        ("Win2016_Datacenter-Nov-1-2026", "2026-11-01", True),
    ]
    assert all(d.reason.startswith("adopted from the PowerShell factory") for d in plan.deletions)
    assert "no golden image this factory knows" in {k.name: k.reason for k in plan.kept}[UNKNOWN_PATH.name]


def test_adopted_images_of_an_unknown_path_or_an_unsubscribed_one_are_kept() -> None:
    other = LabRef(SUB, "DevLab", ("Win2012R2",), "rg-dev")
    images = [UNKNOWN_PATH, *LEGACY]
    inv = LabInventory(lab=other, status="ok", resource_group="rg-dev", images=tuple(images))
    plan = retention_plan(
        labs=[other],
        catalogue=[],
        inventories={other.key: inv},
        golden_images=GOLDEN,
        images_to_save=1,
        adopt_powershell=True,
    )
    assert plan.deletions == ()
    reasons = {k.name: k.reason for k in plan.kept}
    assert "no golden image this factory knows" in reasons["Gone_Image-Oct-1-2026"]
    assert all("only beyond keep-N" in reasons[i.name] for i in LEGACY)


def _sidecar(name: str, version: str, *, by_powershell: bool) -> ImageVersion:
    return ImageVersion(
        image_name=name,
        image_path="Win2016\\Datacenter.json",
        version=version,
        vhd_blob=f"{name}.vhd",
        os_type="Windows",
        sysprep=True,
        timestamp=f"{version[:10]}T03:00:00+00:00",
        by_powershell=by_powershell,
    )


CATALOGUE = [
    _sidecar("11111111-aaaa", "2026-11-01", by_powershell=True),
    _sidecar("22222222-bbbb", "2026-11-02", by_powershell=True),
    _sidecar("Win2016_Datacenter-2026-12-01-abcd1234", "2026-12-01", by_powershell=False),
]


@pytest.mark.parametrize(("adopt", "gone"), [(False, set()), (True, {"2026-11-01"})])
def test_catalogue_versions_the_powershell_factory_wrote(adopt: bool, gone: set[str]) -> None:
    plan = _plan(adopt, [], CATALOGUE)
    assert {d.version for d in plan.deletions if d.where == FACTORY} == gone
    kept = {k.version for k in plan.kept if k.where == FACTORY}
    assert kept == (set() if adopt else {"2026-11-01", "2026-11-02"})


def test_factory_vms_the_powershell_factory_captured_are_listed_and_kept() -> None:
    created = datetime(2026, 11, 1, 1, tzinfo=UTC)
    vm = FactoryVm(name="Win2016Datacenter", tags={"ImagePath": "Win2016\\Datacenter.json"}, created=created)
    young = FactoryVm(name="fresh", tags={"ImagePath": DC}, created=datetime(2026, 12, 5, tzinfo=UTC))
    found = powershell_captured_vms([vm, young], CATALOGUE)
    assert found == {"Win2016Datacenter"}
    plan = cleanup_plan(
        vms=[vm, young],
        captured_vms=[],
        where="Factory",
        subscription_id=SUB,
        resource_group="rg",
        powershell_captured=found,
    )
    assert plan.deletions == ()
    assert {k.name: k.reason for k in plan.kept} == {
        "Win2016Datacenter": KEEP_POWERSHELL_CAPTURE,
        "fresh": "not captured yet",
    }
