"""Tests of image_factory.naming: image names and blob names."""

from __future__ import annotations

import itertools

import pytest

from image_factory import imagepaths, naming

VALID = naming.IMAGE_NAME_PATTERN


@pytest.mark.parametrize(
    ("path", "readable"),
    [
        ("Win2016/Datacenter.json", "Win2016_Datacenter"),
        ("Win2012R2\\VS2015 Enterprise with Azure SDK.json", "Win2012R2_VS2015-Enterprise-with-Azure-SDK"),
        ("top.json", "top"),
        ("a/b/Ubuntu 22.04.JSON", "b_Ubuntu-22_04"),
        ("/Win2016//Data.center.json/", "Win2016_Data_center"),
    ],
)
def test_image_name_reads_like_the_original(path: str, readable: str) -> None:
    name = naming.image_name(path, "2024-05-01")
    assert name == f"{readable}-2024-05-01-{naming.path_hash(path)}"
    assert VALID.match(name)


def test_image_name_is_deterministic() -> None:
    first = naming.image_name("Win2016/Datacenter.json", "2024-05-01")
    assert first == naming.image_name("Win2016/Datacenter.json", "2024-05-01")
    # The hash is a pure function of the path key (pinned so a change in the scheme is a visible decision).
    assert naming.path_hash("Win2016/Datacenter.json") == naming.path_hash("win2016\\DATACENTER.json")
    assert len(naming.path_hash("x")) == naming.HASH_LENGTH


@pytest.mark.parametrize(
    ("a", "b"),
    [
        ("Win 2016/a.json", "Win-2016/a.json"),
        ("Win2016/a.b.json", "Win2016/a_b.json"),
        ("x/Win2016/a.json", "y/Win2016/a.json"),
        ("Win2016/a.json", "Win2016/a"),
    ],
)
def test_paths_that_clean_up_alike_get_different_names(a: str, b: str) -> None:
    assert naming.readable_stem(a) == naming.readable_stem(b)
    assert naming.image_name(a, "2024-05-01") != naming.image_name(b, "2024-05-01")


def test_same_path_in_other_spelling_shares_the_hash() -> None:
    a = naming.image_name("Win2016/Datacenter.json", "2024-05-01")
    b = naming.image_name("win2016\\datacenter.json", "2024-05-01")
    assert a.casefold() == b.casefold()


def test_versions_make_different_names() -> None:
    assert naming.image_name("Win2016/a.json", "2024-05-01") != naming.image_name("Win2016/a.json", "2024-05-02")


@pytest.mark.parametrize(
    "path",
    [
        "Folder/" + "x" * 300 + ".json",
        "é/ü ñ.json",
        "__/--weird.json",
        "-/-.json",
        "Win2016/" + "a" * 59 + "-.json",
        "Ünïcode Folder/Ímage (copy) #2.json",
    ],
)
def test_image_name_is_always_valid(path: str) -> None:
    name = naming.image_name(path, "2024-05-01")
    assert VALID.match(name), name
    assert len(name) <= naming.MAX_IMAGE_NAME
    assert name.endswith(f"-2024-05-01-{naming.path_hash(path)}")


def test_long_names_keep_the_version_and_hash_and_stay_distinct() -> None:
    names = {naming.image_name(f"F/{'y' * 200}{i}.json", "2024-05-01") for i in range(20)}
    assert len(names) == 20
    assert all(len(n) == naming.MAX_IMAGE_NAME for n in names)


def test_no_collisions_over_many_similar_paths() -> None:
    parts = ["Win 2016", "Win-2016", "win2016", "Win_2016", "Win.2016"]
    files = ["a.json", "A.json", "a b.json", "a-b.json", "a.b.json"]
    paths = [f"{p}/{f}" for p, f in itertools.product(parts, files)]
    keys = {imagepaths.key(p) for p in paths}
    names = {naming.image_name(p, "2024-05-01").casefold() for p in paths}
    assert len(names) == len(keys)


@pytest.mark.parametrize("version", ["2024-5-1", "20240501", "2024-02-30", "", "2024-05-01T00:00"])
def test_image_name_rejects_a_bad_version(version: str) -> None:
    with pytest.raises(ValueError, match="ISO date"):
        naming.image_name("Win2016/a.json", version)


def test_image_name_rejects_an_empty_path() -> None:
    with pytest.raises(ValueError, match="empty"):
        naming.image_name(" / ", "2024-05-01")


def test_blob_names() -> None:
    name = naming.image_name("Win2016/Datacenter.json", "2024-05-01")
    assert naming.vhd_blob(name) == f"{name}.vhd"
    assert naming.sidecar_blob(name) == f"{name}.json"
    assert naming.upload_blob(name) == f"uploads/{name}.vhd"


@pytest.mark.parametrize("path", ["Win2016/Datacenter.json", "a/b/Ubuntu 22.04.JSON", "x" * 200 + ".json"])
def test_a_same_day_rebuild_has_its_own_valid_name(path: str) -> None:
    first = naming.image_name(path, "2026-12-01")
    names = [first, *(naming.image_name(path, f"2026-12-01.{n}") for n in (2, 9, 10))]
    assert len(set(names)) == len(names)
    assert all(VALID.match(name) and len(name) <= naming.MAX_IMAGE_NAME for name in names)
    assert "-2026-12-01-2-" in names[1]
    assert "-2026-12-01-10-" in names[3]


@pytest.mark.parametrize("version", ["2026-12-01.1", "2026-12-01.x", "2026-12-01A", "yesterday"])
def test_a_name_needs_a_version(version: str) -> None:
    with pytest.raises(ValueError, match="is not a version"):
        naming.image_name("Win2016/Datacenter.json", version)
