"""The image list's pure parts: who made each image, the rows' order, the table and the JSON document."""

from __future__ import annotations

import json

from image_factory.catalogue import build_catalogue
from image_factory.image_list import catalogue_rows, lab_rows, render_table, sorted_rows, to_document
from image_factory.models import MANAGED_BY_VALUE, LabImage

DC = "Win2016\\Datacenter.json"
IMAGES = [
    LabImage("Win2016_Datacenter-Nov-1-2026A", "Succeeded", image_path=DC),
    LabImage("Win2016_Datacenter-Nov-1-2026", "Succeeded", image_path=DC),
    LabImage(
        "Win2016_Datacenter-2026-12-01-1a2b3c4d",
        "Creating",
        image_path="Win2016/Datacenter.json",
        version="2026-12-01",
        managed=True,
        managed_by=MANAGED_BY_VALUE,
    ),
    LabImage("my-own-image", "Succeeded"),
]


def test_lab_rows_say_who_made_each_image_and_its_version() -> None:
    rows = {r.name: r for r in lab_rows("DevLab", IMAGES)}
    assert rows["Win2016_Datacenter-Nov-1-2026A"].made_by == "PowerShell factory"
    assert rows["Win2016_Datacenter-Nov-1-2026A"].version == "2026-11-01.2"
    assert rows["Win2016_Datacenter-Nov-1-2026A"].image_path == "Win2016/Datacenter.json"
    assert rows["Win2016_Datacenter-2026-12-01-1a2b3c4d"].made_by == "this factory"
    assert rows["Win2016_Datacenter-2026-12-01-1a2b3c4d"].state == "Creating"
    assert (rows["my-own-image"].made_by, rows["my-own-image"].version) == ("unknown", "")


def test_rows_sort_by_lab_path_then_newest_version_first() -> None:
    rows = sorted_rows(lab_rows("DevLab", IMAGES))
    assert [r.version for r in rows] == ["", "2026-12-01", "2026-11-01.2", "2026-11-01"]


def test_catalogue_rows_tell_the_powershell_sidecars_apart() -> None:
    ps = {"imageName": "Win2016_Datacenter-Nov-1-2026", "imagePath": DC, "osType": "Windows", "vhdFileName": "g.vhd"}
    ours = {**ps, "imageName": "x", "vhdFileName": "x.vhd", "version": "2026-12-01", "schemaVersion": 2}
    catalogue = build_catalogue(
        [("g.json", json.dumps(ps).encode("utf-16")), ("x.json", json.dumps(ours).encode())], {"g.vhd", "x.vhd"}
    )
    assert {(r.lab, r.version, r.made_by, r.state) for r in catalogue_rows(catalogue)} == {
        ("(factory storage)", "2026-11-01", "PowerShell factory", "catalogued"),
        ("(factory storage)", "2026-12-01", "this factory", "catalogued"),
    }


def test_table_and_document() -> None:
    rows = sorted_rows(lab_rows("DevLab", IMAGES[:1]))
    table = render_table(rows, ["QALab: not listed (forbidden: no access)"]).splitlines()
    assert table[0].split() == ["lab", "image_path", "version", "name", "made_by", "state"]
    assert set(table[1]) == {"-", " "}
    assert table[2].split() == [
        "DevLab", "Win2016/Datacenter.json", "2026-11-01.2", "Win2016_Datacenter-Nov-1-2026A", "PowerShell",
        "factory", "Succeeded",
    ]  # fmt: skip
    assert table[3] == "note: QALab: not listed (forbidden: no access)"
    assert "(no image in any lab)" in render_table([])
    doc = to_document(rows, ["n"])
    assert doc == {
        "images": [
            {
                "lab": "DevLab",
                "image_path": "Win2016/Datacenter.json",
                "version": "2026-11-01.2",
                "name": "Win2016_Datacenter-Nov-1-2026A",
                "made_by": "PowerShell factory",
                "state": "Succeeded",
            }
        ],
        "notes": ["n"],
    }
