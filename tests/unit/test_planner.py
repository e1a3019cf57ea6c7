"""Tests of image_factory.planner: the pure distribution plan and the cross-region fan-out."""

from __future__ import annotations

from collections import Counter

import pytest

from image_factory import naming
from image_factory.fanout import region_fanout
from image_factory.models import ImageVersion, LabImage, LabInventory, LabRef, Pair, Plan
from image_factory.planner import plan

SUB1 = "11111111-1111-4111-8111-111111111111"
SUB2 = "22222222-2222-4222-8222-222222222222"
TODAY = "2024-05-03"


def image(path: str, version: str = TODAY, *, os_type: str = "Windows", sysprep: bool = True) -> ImageVersion:
    name = naming.image_name(path, version)
    return ImageVersion(
        image_name=name,
        image_path=path,
        version=version,
        vhd_blob=naming.vhd_blob(name),
        os_type=os_type,  # type: ignore[arg-type]
        sysprep=sysprep,
        description=f"{path} {version}",
        timestamp=f"{version}T02:00:00+00:00",
    )


def lab(name: str, *paths: str, sub: str = SUB1) -> LabRef:
    return LabRef(subscription_id=sub, lab_name=name, image_paths=paths, resource_group=f"rg-{name.lower()}")


def inv(
    ref: LabRef, *images: LabImage, location: str = "westeurope", status: str = "ok", msg: str = ""
) -> LabInventory:
    return LabInventory(
        lab=ref,
        status=status,  # type: ignore[arg-type]
        resource_group=f"rg-{ref.lab_name.lower()}-actual" if status == "ok" else None,
        location=location if status == "ok" else None,
        images=images,
        message=msg,
    )


def has(img: ImageVersion, state: str = "Succeeded") -> LabImage:
    return LabImage(name=img.image_name, provisioning_state=state, image_path=img.image_path, version=img.version)


CATALOGUE = [
    image("Win2012R2/VS2017.json"),
    image("Win2016/Datacenter.json"),
    image("Win2016/SQLExpress.json", sysprep=False),
    image("Win2016Core/Core.json"),
    image("Ubuntu/Ubuntu2204.json", os_type="Linux"),
]


def run(
    labs: list[LabRef], inventories: list[LabInventory], catalogue: list[ImageVersion] | None = None, **kwargs: object
) -> Plan:
    images = CATALOGUE if catalogue is None else catalogue
    args: dict[str, object] = {
        "factory_location": "West Europe",
        "images_to_save": 2,
        # Unless a test says otherwise, every catalogued ImagePath still has its golden image file.
        "golden_images": sorted({i.image_path for i in images}),
    }
    args.update(kwargs)
    return plan(
        labs=labs,
        catalogue_images=images,
        inventories={i.lab.key: i for i in inventories},
        **args,  # type: ignore[arg-type]
    )


def pairs_of(p: Plan) -> set[tuple[str, str, str]]:
    return {(x.lab_name, x.image_path, x.version) for x in p.pairs}


def skips_of(p: Plan) -> dict[tuple[str, str], str]:
    return {(s.lab_name, s.image_path): s.reason for s in p.skipped}


def test_demo_world_plans_seven_pairs() -> None:
    labs = [
        lab("DevLab", "Win2016", "Ubuntu"),
        lab("TestLab", "Win2012R2", "Win2016/Datacenter.json"),
        lab("QALab", "Win2016/SQLExpress.json", "Ubuntu/Ubuntu2204.json", sub=SUB2),
    ]
    catalogue = [i for i in CATALOGUE if "Core" not in i.image_path]
    p = run(labs, [inv(labs[0]), inv(labs[1]), inv(labs[2], location="northeurope")], catalogue)
    assert pairs_of(p) == {
        ("DevLab", "Win2016/Datacenter.json", TODAY),
        ("DevLab", "Win2016/SQLExpress.json", TODAY),
        ("DevLab", "Ubuntu/Ubuntu2204.json", TODAY),
        ("TestLab", "Win2012R2/VS2017.json", TODAY),
        ("TestLab", "Win2016/Datacenter.json", TODAY),
        ("QALab", "Win2016/SQLExpress.json", TODAY),
        ("QALab", "Ubuntu/Ubuntu2204.json", TODAY),
    }
    assert p.skipped == ()
    assert set(p.expected) == pairs_of(p)
    qa = [x for x in p.pairs if x.lab_name == "QALab"]
    assert all(x.cross_region and x.location == "northeurope" for x in qa)
    assert not any(x.cross_region for x in p.pairs if x.lab_name != "QALab")


def test_pair_fields_come_from_inventory_and_image() -> None:
    ref = lab("QALab", "Win2016/SQLExpress.json", sub=SUB2)
    p = run([ref], [inv(ref, location="North Europe")])
    (pair,) = p.pairs
    sql = CATALOGUE[2]
    assert pair == Pair(
        lab_name="QALab",
        subscription_id=SUB2,
        resource_group="rg-qalab-actual",
        location="North Europe",
        image_name=sql.image_name,
        image_path="Win2016/SQLExpress.json",
        version=TODAY,
        vhd_blob=sql.vhd_blob,
        os_type="Windows",
        sysprep=False,
        description=sql.description,
        cross_region=True,
    )


@pytest.mark.parametrize(
    ("lab_location", "cross"),
    [("westeurope", False), ("West Europe", False), ("WESTEUROPE ", False), ("northeurope", True), ("", True)],
)
def test_cross_region_flag(lab_location: str, cross: bool) -> None:
    ref = lab("L", "Ubuntu")
    (pair,) = run([ref], [inv(ref, location=lab_location)]).pairs
    assert pair.cross_region is cross


def test_selection_is_segment_wise_and_case_insensitive() -> None:
    ref = lab("L", "win2016", "UBUNTU\\ubuntu2204.json", "Ubuntu/Ubuntu2204")
    p = run([ref], [inv(ref)])
    assert pairs_of(p) == {
        ("L", "Win2016/Datacenter.json", TODAY),
        ("L", "Win2016/SQLExpress.json", TODAY),
        ("L", "Ubuntu/Ubuntu2204.json", TODAY),
    }
    # "Win2016" must not select Win2016Core/…, and "Ubuntu/Ubuntu2204" (no .json) is not a file it knows.
    assert skips_of(p) == {("L", "Ubuntu/Ubuntu2204"): "no_version"}


def test_selector_matching_nothing_is_no_version() -> None:
    ref = lab("L", "Win2019", "Ubuntu")
    p = run([ref], [inv(ref)])
    (skip,) = p.skipped
    assert (skip.lab_name, skip.image_path, skip.reason) == ("L", "Win2019", "no_version")
    assert "no catalogued image" in skip.detail


def test_a_deleted_golden_image_is_neither_planned_nor_expected() -> None:
    """Its versions stay in the catalogue until retention retires them: the plan must not keep them alive."""
    dev, qa = lab("DevLab", "Win2016"), lab("QALab", "Win2016/SQLExpress.json", "Ubuntu")
    catalogue = [
        image(p, v) for p in ("Win2016/Datacenter.json", "Win2016/SQLExpress.json") for v in (TODAY, "2024-05-02")
    ]
    catalogue.append(image("Ubuntu/Ubuntu2204.json", os_type="Linux"))
    golden = ["Win2016/Datacenter.json", "ubuntu/UBUNTU2204.json"]  # SQLExpress.json was deleted
    p = run([dev, qa], [inv(dev), inv(qa)], catalogue, golden_images=golden)
    assert pairs_of(p) == {
        ("DevLab", "Win2016/Datacenter.json", TODAY),
        ("DevLab", "Win2016/Datacenter.json", "2024-05-02"),
        ("QALab", "Ubuntu/Ubuntu2204.json", TODAY),
    }
    assert set(p.expected) == pairs_of(p)
    assert skips_of(p) == {("QALab", "Win2016/SQLExpress.json"): "no_version"}
    (skip,) = p.skipped
    assert skip.detail == (
        "no catalogued image matches this ImagePath: it selects no golden image file under GoldenImages"
    )


def test_no_version_says_whether_the_image_path_selects_a_golden_image_file() -> None:
    """A golden image never captured yet has a file but no version; a removed or mistyped one has no file."""
    ref = lab("L", "Win2019", "Win2016/New.json", "Ubuntu")
    golden = [*sorted({i.image_path for i in CATALOGUE}), "Win2016/New.json"]
    p = run([ref], [inv(ref)], golden_images=golden)
    details = {s.image_path: s.detail for s in p.skipped}
    assert details == {
        "Win2019": "no catalogued image matches this ImagePath: it selects no golden image file under GoldenImages",
        "Win2016/New.json": "no catalogued image matches this ImagePath",
    }
    assert {x.image_path for x in p.pairs} == {"Ubuntu/Ubuntu2204.json"}


def test_lab_filter_is_case_insensitive() -> None:
    a, b = lab("DevLab", "Win2016"), lab("TestLab", "Ubuntu", "Nothing")
    p = run([a, b], [inv(a), inv(b)], lab_filter=["devlab"])
    assert {x.lab_name for x in p.pairs} == {"DevLab"}
    assert skips_of(p) == {
        ("TestLab", "Ubuntu/Ubuntu2204.json"): "filtered",
        ("TestLab", "Nothing"): "filtered",
    }
    assert all(e[0] == "DevLab" for e in p.expected)


def test_path_filter_is_segment_wise() -> None:
    ref = lab("L", "Win2016", "Ubuntu", "Win2016Core", "Gone")
    p = run([ref], [inv(ref)], path_filter=["win2016/datacenter.json", "Gone"])
    assert pairs_of(p) == {("L", "Win2016/Datacenter.json", TODAY)}
    assert skips_of(p) == {
        ("L", "Win2016/SQLExpress.json"): "filtered",
        ("L", "Ubuntu/Ubuntu2204.json"): "filtered",
        ("L", "Win2016Core/Core.json"): "filtered",
        ("L", "Gone"): "no_version",
    }
    assert set(p.expected) == pairs_of(p)


@pytest.mark.parametrize(
    ("status", "reason"), [("not_found", "lab_not_found"), ("forbidden", "forbidden"), ("error", "lab_error")]
)
def test_unavailable_labs_skip_every_subscribed_path(status: str, reason: str) -> None:
    bad, good = lab("Bad", "Win2016", "Nothing"), lab("Good", "Ubuntu")
    p = run([bad, good], [inv(bad, status=status, msg="lab Bad: 404 ResourceNotFound"), inv(good)])
    assert pairs_of(p) == {("Good", "Ubuntu/Ubuntu2204.json", TODAY)}
    assert skips_of(p) == {
        ("Bad", "Win2016/Datacenter.json"): reason,
        ("Bad", "Win2016/SQLExpress.json"): reason,
        ("Bad", "Nothing"): reason,
    }
    assert all(s.detail == "lab Bad: 404 ResourceNotFound" for s in p.skipped)
    assert all(e[0] == "Good" for e in p.expected)


def test_lab_without_inventory_is_a_lab_error() -> None:
    ref = lab("L", "Ubuntu")
    p = run([ref], [])
    assert [(s.reason, s.detail) for s in p.skipped] == [("lab_error", "no inventory was taken of this lab")]


def test_new_lab_catches_up_on_every_retained_version() -> None:
    catalogue = [image("Ubuntu/Ubuntu2204.json", v) for v in ("2024-05-01", "2024-05-02", TODAY)]
    old_lab, new_lab = lab("Old", "Ubuntu"), lab("New", "Ubuntu")
    old_inv = inv(old_lab, has(catalogue[1]), has(catalogue[0]))
    p = run([old_lab, new_lab], [old_inv, inv(new_lab)], catalogue, images_to_save=2)
    assert pairs_of(p) == {
        ("Old", "Ubuntu/Ubuntu2204.json", TODAY),
        ("New", "Ubuntu/Ubuntu2204.json", TODAY),
        ("New", "Ubuntu/Ubuntu2204.json", "2024-05-02"),
    }
    (present,) = p.skipped
    assert (present.lab_name, present.reason, present.version) == ("Old", "already_present", "2024-05-02")
    assert set(p.expected) == pairs_of(p) | {("Old", "Ubuntu/Ubuntu2204.json", "2024-05-02")}
    # Nothing outside the retention window is planned or expected.
    assert all(e[2] != "2024-05-01" for e in p.expected)


@pytest.mark.parametrize(
    ("keep", "versions"), [(1, {TODAY}), (2, {TODAY, "2024-05-02"}), (5, {TODAY, "2024-05-02", "2024-05-01"})]
)
def test_retention_window(keep: int, versions: set[str]) -> None:
    catalogue = [image("Ubuntu/Ubuntu2204.json", v) for v in ("2024-05-01", TODAY, "2024-05-02")]
    ref = lab("L", "Ubuntu")
    p = run([ref], [inv(ref)], catalogue, images_to_save=keep)
    assert {x.version for x in p.pairs} == versions


def test_path_not_captured_this_run_still_distributes_retained_versions() -> None:
    catalogue = [image("Ubuntu/Ubuntu2204.json", "2024-05-01")]
    ref = lab("L", "Ubuntu")
    p = run([ref], [inv(ref)], catalogue)
    assert pairs_of(p) == {("L", "Ubuntu/Ubuntu2204.json", "2024-05-01")}


def test_already_present_is_skipped_and_expected() -> None:
    ref = lab("L", "Ubuntu")
    ubuntu = CATALOGUE[4]
    present = LabImage(name=ubuntu.image_name.upper(), provisioning_state="succeeded")
    p = run([ref], [inv(ref, present)])
    assert p.pairs == ()
    assert skips_of(p) == {("L", "Ubuntu/Ubuntu2204.json"): "already_present"}
    assert p.expected == (("L", "Ubuntu/Ubuntu2204.json", TODAY),)


@pytest.mark.parametrize("state", ["Failed", "Canceled", "Creating"])
def test_failed_image_is_planned_again(state: str) -> None:
    ref = lab("L", "Ubuntu")
    p = run([ref], [inv(ref, has(CATALOGUE[4], state))])
    assert pairs_of(p) == {("L", "Ubuntu/Ubuntu2204.json", TODAY)}
    assert p.skipped == ()
    assert p.pairs[0].existing_state == state, "the distributor checks an image the plan saw in a bad state"


def test_duplicate_catalogue_entries_and_repeated_labs_do_not_duplicate_pairs() -> None:
    ref = lab("L", "Ubuntu", "Ubuntu/Ubuntu2204.json")
    twice = lab("l", "ubuntu")
    p = run([ref, twice], [inv(ref)], [*CATALOGUE, CATALOGUE[4]])
    assert len(p.pairs) == 1


def test_pairs_are_sorted_deterministically() -> None:
    labs = [lab(f"Lab{i}", "Win2016", "Ubuntu") for i in (3, 1, 2)]
    catalogue = [*CATALOGUE, image("Ubuntu/Ubuntu2204.json", "2024-05-02")]
    invs = [inv(x) for x in labs]
    p = run(labs, invs, catalogue)
    keys = [(x.version, x.image_path.casefold(), x.lab_name) for x in p.pairs]
    assert keys == sorted(keys)
    assert run(list(reversed(labs)), list(reversed(invs)), list(reversed(catalogue))) == p


def test_plan_round_trips_through_dict() -> None:
    ref = lab("L", "Win2016", "Nothing")
    p = run([ref], [inv(ref, has(CATALOGUE[1]))])
    assert Plan.from_dict(p.to_dict()) == p


def test_images_to_save_must_be_positive() -> None:
    with pytest.raises(ValueError, match="images_to_save"):
        run([], [], images_to_save=0)


def test_large_world_is_complete_and_consistent() -> None:
    paths = [f"Family{f}/Image{i}.json" for f in range(10) for i in range(5)]
    catalogue = [image(p, v) for p in paths for v in ("2024-05-01", "2024-05-02", TODAY)]
    labs = [lab(f"Lab{n:03d}", *(f"Family{f}" for f in range(10)), sub=SUB1 if n % 2 else SUB2) for n in range(100)]
    regions = ["westeurope", "northeurope", "eastus"]
    invs = [inv(x, location=regions[n % 3]) for n, x in enumerate(labs)]
    # Every lab already has yesterday's images: only today's are planned (5,000 pairs).
    invs = [
        LabInventory(
            i.lab,
            "ok",
            i.resource_group,
            i.location,
            tuple(has(img) for img in catalogue if img.version == "2024-05-02"),
        )
        for i in invs
    ]
    p = run(labs, invs, catalogue)
    assert len(p.pairs) == 5000
    assert {x.version for x in p.pairs} == {TODAY}
    assert Counter(s.reason for s in p.skipped) == Counter({"already_present": 5000})
    assert len(p.expected) == 10000
    assert sum(x.cross_region for x in p.pairs) == 5000 - 34 * 50
    groups = region_fanout(p.pairs)
    assert len(groups) == 2 * 50
    assert sum(1 + len(g.rest) for g in groups.values()) == 5000 - 34 * 50


# --- region fan-out ------------------------------------------------------------------------------------------


def test_region_fanout_groups_cross_region_pairs_once_per_version_image_region() -> None:
    labs = [
        lab("Zeta", "Ubuntu"),
        lab("alpha", "Ubuntu"),
        lab("Mid", "Ubuntu"),
        lab("Home", "Ubuntu"),
        lab("Far", "Ubuntu"),
    ]
    invs = [
        inv(labs[0], location="North Europe"),
        inv(labs[1], location="northeurope"),
        inv(labs[2], location="northeurope"),
        inv(labs[3], location="westeurope"),
        inv(labs[4], location="eastus"),
    ]
    catalogue = [image("Ubuntu/Ubuntu2204.json", v) for v in ("2024-05-02", TODAY)]
    p = run(labs, invs, catalogue)
    groups = region_fanout(p.pairs)
    ubuntu_today = naming.image_name("Ubuntu/Ubuntu2204.json", TODAY).casefold()
    assert set(groups) == {
        (v, naming.image_name("Ubuntu/Ubuntu2204.json", v).casefold(), r)
        for v in ("2024-05-02", TODAY)
        for r in ("northeurope", "eastus")
    }
    north = groups[(TODAY, ubuntu_today, "northeurope")]
    assert north.seed.lab_name == "alpha"
    assert [x.lab_name for x in north.rest] == ["Mid", "Zeta"]
    east = groups[(TODAY, ubuntu_today, "eastus")]
    assert (east.seed.lab_name, east.rest) == ("Far", ())
    grouped = [x for g in groups.values() for x in (g.seed, *g.rest)]
    assert all(x.cross_region for x in grouped)
    assert "Home" not in {x.lab_name for x in grouped}


def test_same_day_rebuilds_retain_and_order_by_their_ordinal_not_as_text() -> None:
    day = "2024-05-03"
    catalogue = [image("Win2016/Datacenter.json", v) for v in (day, f"{day}.9", f"{day}.10", f"{day}.2")]
    ref = lab("Dev", "Win2016")
    p = run([ref], [inv(ref)], catalogue)
    # The newest two are .10 and .9 (as text, .9 would sort after .10 and .2 after both).
    assert pairs_of(p) == {
        ("Dev", "Win2016/Datacenter.json", f"{day}.10"),
        ("Dev", "Win2016/Datacenter.json", f"{day}.9"),
    }
    assert [x.version for x in p.pairs] == [f"{day}.9", f"{day}.10"]
    assert [e[2] for e in p.expected] == [f"{day}.9", f"{day}.10"]
