"""Build VM names: at most 15 characters, a letter first, deterministic per (ImagePath, run), unique in a run."""

from __future__ import annotations

import pytest

from image_factory.build import naming

PATHS = [
    "Win2016/Datacenter.json",
    "Win2012R2/VS2015 Enterprise with Azure SDK.json",
    "Ubuntu/Ubuntu2204.json",
    "Linux/2204.json",
    "a/b/c.d_e f.JSON",
]


@pytest.mark.parametrize("path", PATHS)
def test_a_vm_name_fits_windows_and_starts_with_a_letter(path: str) -> None:
    name = naming.vm_name(path, "scheduled__2026-12-01T02:00:00+00:00")
    assert naming.VM_NAME_PATTERN.match(name), name
    assert len(name) <= naming.MAX_VM_NAME


def test_a_vm_name_reads_like_the_file_as_the_original_made_it() -> None:
    assert naming.vm_name("Win2016/Datacenter.json", "r").startswith("Datacente-")
    assert naming.vm_name("Win2012R2/VS2015 Enterprise with Azure SDK.json", "r").startswith("VS2015Ent-")
    # All digits cannot be a computer name: the original prefixed 'vm'.
    assert naming.vm_name("Linux/2204.json", "r").startswith("vm2204-")


def test_a_retry_of_the_run_finds_its_own_name_and_another_run_gets_another() -> None:
    first = naming.vm_name("Win2016/Datacenter.json", "run-1")
    # The same ImagePath in another spelling: the same VM (Azure compares names case-insensitively).
    assert naming.vm_name("win2016\\DATACENTER.json", "run-1").casefold() == first.casefold()
    assert naming.vm_name("Win2016/Datacenter.json", "run-2") != first


def test_names_in_a_run_are_unique_even_when_their_hashes_collide(monkeypatch: pytest.MonkeyPatch) -> None:
    paths = ["A/Datacenter.json", "B/Datacenter.json", "C/Datacenter.json"]
    real = naming.vm_name
    # Every first try collides: the salt moves each on until it is free.
    monkeypatch.setattr(naming, "vm_name", lambda p, r, salt=0: real("X/Datacenter.json", r, salt))
    names = naming.unique_vm_names(paths, "run")
    assert len({n.casefold() for n in names.values()}) == 3
    assert naming.unique_vm_names(list(reversed(paths)), "run") == names  # the order given does not matter


def test_the_deployment_is_named_after_its_vm() -> None:
    assert naming.deployment_name("Datacente-1a2b3") == "Build-Datacente-1a2b3"


def test_an_empty_path_is_refused() -> None:
    with pytest.raises(ValueError, match="empty"):
        naming.vm_name("/", "r")
