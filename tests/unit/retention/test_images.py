"""Retention decisions (pure): keep N, removed golden images, unsubscribed paths, safety."""

from __future__ import annotations

import random

import pytest

from image_factory.models import ImageVersion, LabImage, LabInventory, LabRef
from image_factory.retention.decisions import FACTORY
from image_factory.retention.images import KEEP_IN_FLIGHT, retention_plan

SUB = "11111111-1111-4111-8111-111111111111"
GOLDEN = ["Ubuntu/Ubuntu2204.json", "Win2016/Datacenter.json", "Win2016/SQLExpress.json"]
VERSIONS = ["2026-11-20", "2026-11-22", "2026-11-24"]


def entry(path: str, version: str) -> ImageVersion:
    stem = path.replace("/", "_").removesuffix(".json")
    return ImageVersion(
        image_name=f"{stem}-{version}",
        image_path=path,
        version=version,
        vhd_blob=f"{stem}-{version}.vhd",
        os_type="Windows",
        sysprep=True,
    )


def image(path: str, version: str, *, managed: bool = True) -> LabImage:
    return LabImage(
        name=entry(path, version).image_name,
        provisioning_state="Succeeded",
        image_path=path,
        version=version,
        managed=managed,
    )


def lab(name: str, paths: list[str]) -> LabRef:
    return LabRef(subscription_id=SUB, lab_name=name, image_paths=tuple(paths), resource_group=f"rg-{name}")


def inventory(ref: LabRef, images: list[LabImage]) -> LabInventory:
    return LabInventory(
        lab=ref, status="ok", resource_group=ref.resource_group, location="westeurope", images=tuple(images)
    )


def deleted(plan: object, where: str) -> set[tuple[str | None, str | None]]:
    return {(d.image_path, d.version) for d in plan.deletions if d.where == where}  # type: ignore[attr-defined]


@pytest.mark.parametrize("keep", [1, 2, 3])
def test_keeps_the_newest_n_versions_in_the_catalogue_and_every_lab(keep: int) -> None:
    dev = lab("DevLab", ["Win2016", "Ubuntu"])
    catalogue = [entry(p, v) for p in GOLDEN for v in VERSIONS]
    inv = inventory(dev, [image(p, v) for p in GOLDEN for v in VERSIONS])
    plan = retention_plan(
        labs=[dev], catalogue=catalogue, inventories={dev.key: inv}, golden_images=GOLDEN, images_to_save=keep
    )
    old = {(p, v) for p in GOLDEN for v in VERSIONS[: max(0, len(VERSIONS) - keep)]}
    assert deleted(plan, FACTORY) == old
    assert deleted(plan, "DevLab") == old
    assert all(d.kind == "catalogue_version" for d in plan.deletions if d.where == FACTORY)


def test_removed_golden_image_goes_everywhere() -> None:
    dev = lab("DevLab", ["Win2016"])
    catalogue = [entry("Win2016/Datacenter.json", v) for v in VERSIONS]
    inv = inventory(dev, [image("Win2016/Datacenter.json", VERSIONS[-1])])
    golden = [g for g in GOLDEN if g != "Win2016/Datacenter.json"]
    plan = retention_plan(
        labs=[dev], catalogue=catalogue, inventories={dev.key: inv}, golden_images=golden, images_to_save=2
    )
    assert deleted(plan, FACTORY) == {("Win2016/Datacenter.json", v) for v in VERSIONS}
    assert deleted(plan, "DevLab") == {("Win2016/Datacenter.json", VERSIONS[-1])}
    assert all("no longer exists" in d.reason for d in plan.deletions)


def test_lab_that_no_longer_subscribes_loses_only_that_path() -> None:
    dev = lab("DevLab", ["Win2016/Datacenter.json"])  # SQLExpress was removed from this lab's ImagePaths
    inv = inventory(
        dev, [image("Win2016/Datacenter.json", VERSIONS[-1]), image("Win2016/SQLExpress.json", VERSIONS[-1])]
    )
    plan = retention_plan(labs=[dev], catalogue=[], inventories={dev.key: inv}, golden_images=GOLDEN, images_to_save=2)
    assert deleted(plan, "DevLab") == {("Win2016/SQLExpress.json", VERSIONS[-1])}
    assert "no longer subscribes" in plan.deletions[0].reason


def test_user_images_without_the_marker_survive_every_rule() -> None:
    dev = lab("DevLab", ["Ubuntu"])
    user_images = [
        image("Win2016/Datacenter.json", VERSIONS[0], managed=False),  # unsubscribed path
        image("Gone/Removed.json", VERSIONS[0], managed=False),  # removed golden image
        *[image("Ubuntu/Ubuntu2204.json", v, managed=False) for v in VERSIONS],  # more than N
    ]
    plan = retention_plan(
        labs=[dev],
        catalogue=[],
        inventories={dev.key: inventory(dev, user_images)},
        golden_images=GOLDEN,
        images_to_save=1,
    )
    assert plan.deletions == ()


def test_versions_in_flight_are_never_deleted() -> None:
    dev = lab("DevLab", ["Ubuntu"])
    catalogue = [entry("Ubuntu/Ubuntu2204.json", v) for v in VERSIONS]
    inv = inventory(dev, [image("Ubuntu/Ubuntu2204.json", v) for v in VERSIONS])
    plan = retention_plan(
        labs=[dev],
        catalogue=catalogue,
        inventories={dev.key: inv},
        golden_images=GOLDEN,
        images_to_save=1,
        in_flight=[("ubuntu/UBUNTU2204.json", VERSIONS[0])],
    )
    assert deleted(plan, FACTORY) == {("Ubuntu/Ubuntu2204.json", VERSIONS[1])}
    assert deleted(plan, "DevLab") == {("Ubuntu/Ubuntu2204.json", VERSIONS[1])}
    assert {k.version for k in plan.kept if k.reason.startswith(KEEP_IN_FLIGHT)} == {VERSIONS[0]}


def test_a_newer_failed_image_never_pushes_out_the_last_good_one() -> None:
    dev = lab("DevLab", ["Ubuntu"])
    failed = LabImage(
        name="Ubuntu-new",
        provisioning_state="Failed",
        image_path="Ubuntu/Ubuntu2204.json",
        version=VERSIONS[-1],
        managed=True,
    )
    inv = inventory(dev, [image("Ubuntu/Ubuntu2204.json", VERSIONS[0]), failed])
    plan = retention_plan(labs=[dev], catalogue=[], inventories={dev.key: inv}, golden_images=GOLDEN, images_to_save=1)
    assert plan.deletions == ()


@pytest.mark.parametrize("seed", range(40))
def test_a_subscribed_path_always_keeps_a_good_version_where_it_had_one(seed: int) -> None:
    rng = random.Random(seed)
    paths = rng.sample(GOLDEN, k=rng.randint(1, len(GOLDEN)))
    dev = lab("DevLab", paths)
    images = [
        LabImage(
            name=f"{p}-{v}",
            provisioning_state=rng.choice(["Succeeded", "Succeeded", "Failed"]),
            image_path=p,
            version=v,
            managed=True,
        )
        for p in GOLDEN
        for v in VERSIONS
        if rng.random() < 0.7
    ]
    in_flight = [(rng.choice(GOLDEN), rng.choice(VERSIONS)) for _ in range(rng.randint(0, 2))]
    plan = retention_plan(
        labs=[dev],
        catalogue=[],
        inventories={dev.key: inventory(dev, images)},
        golden_images=GOLDEN,
        images_to_save=rng.randint(1, 3),
        in_flight=in_flight,
    )
    gone = {d.name for d in plan.deletions}
    for p in paths:
        good = [i for i in images if i.image_path == p and i.provisioning_state == "Succeeded"]
        if good:
            assert any(i.name not in gone for i in good), (p, plan.deletions)
    for p in set(GOLDEN) - set(paths):
        assert all(i.name in gone or (p, i.version) in in_flight for i in images if i.image_path == p)


def test_lab_filter_limits_retention_and_spares_the_catalogue() -> None:
    dev, qa = lab("DevLab", ["Ubuntu"]), lab("QALab", ["Ubuntu"])
    images = [image("Ubuntu/Ubuntu2204.json", v) for v in VERSIONS]
    plan = retention_plan(
        labs=[dev, qa],
        catalogue=[entry("Ubuntu/Ubuntu2204.json", v) for v in VERSIONS],
        inventories={dev.key: inventory(dev, images), qa.key: inventory(qa, images)},
        golden_images=GOLDEN,
        images_to_save=1,
        lab_filter=["qalab"],
    )
    assert {d.where for d in plan.deletions} == {"QALab"}
    assert any("catalogue not retired" in n for n in plan.notes)


def test_unreachable_lab_is_noted_not_retired() -> None:
    dev = lab("DevLab", ["Ubuntu"])
    inv = LabInventory(lab=dev, status="forbidden", message="AuthorizationFailed")
    plan = retention_plan(labs=[dev], catalogue=[], inventories={dev.key: inv}, golden_images=GOLDEN, images_to_save=1)
    assert plan.deletions == () and "forbidden" in plan.notes[0]
