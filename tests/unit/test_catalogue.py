"""Tests of image_factory.catalogue: our sidecars, the PowerShell factory's, and the catalogue built from them."""

from __future__ import annotations

import codecs
import json

import pytest

from image_factory import naming
from image_factory.catalogue import (
    SCHEMA_VERSION,
    Catalogue,
    CatalogueError,
    build_catalogue,
    parse_sidecar,
    parse_timestamp,
    sidecar_json,
    version_from_name,
)
from image_factory.exceptions import ImageFactoryError
from image_factory.models import CaptureSource, ImageVersion
from tests.unit.catalogued import image_version

# What Windows PowerShell 5.1 wrote: ConvertTo-Json of a hashtable (random key order, two spaces after the
# colon, ' escaped as \u0027) piped to Out-File (UTF-16 LE with a BOM, CRLF line ends).
PS_WINDOWS = (
    "{\r\n"
    '    "imagePath":  "Win2016\\\\Datacenter.json",\r\n'
    '    "timestamp":  "3/14/2018 5:03:12 PM",\r\n'
    '    "vhdFileName":  "3f1b7a2e-5c1d-4e8b-9a57-2f0c6d1e9b44.vhd",\r\n'
    '    "osType":  "Windows",\r\n'
    '    "imageName":  "Win2016_Datacenter-Mar-14-2018",\r\n'
    '    "description":  "Windows Server 2016 Datacenter with the team\\u0027s tools"\r\n'
    "}\r\n"
)
# A Linux image from a factory whose agent ran in en-GB (day first) and wrote UTF-8 with a BOM (PowerShell 7
# `Out-File -Encoding utf8BOM`), osType in lower case, a description of null.
PS_LINUX = (
    "{\n"
    '  "imageName": "Ubuntu_Ubuntu1604-Nov-3-2019",\n'
    '  "imagePath": "Ubuntu\\\\Ubuntu1604.json",\n'
    '  "description": null,\n'
    '  "osType": "linux",\n'
    '  "vhdFileName": "9d0e6a44-0000-4b7e-8c1f-8a1b2c3d4e5f.vhd",\n'
    '  "timestamp": "23/11/2019 14:07:55"\n'
    "}\n"
)
# PowerShell 7's ConvertTo-Json of a DateTime: round-trip format with 7 fractional digits and an offset.
PS_ROUNDTRIP = json.dumps(
    {
        "imageName": "Win2012R2_VS2017-Jan-2-2021",
        "imagePath": "Win2012R2\\VS2017.json",
        "description": "VS 2017",
        "osType": "WINDOWS",
        "vhdFileName": "11111111-2222-4333-8444-555555555555.vhd",
        "timestamp": "2021-01-01T23:30:00.1234567-02:00",
    }
)


def _image(**overrides: object) -> ImageVersion:
    name = naming.image_name("Win2016/Datacenter.json", "2024-05-01")
    fields: dict[str, object] = {
        "image_name": name,
        "image_path": "Win2016/Datacenter.json",
        "version": "2024-05-01",
        "vhd_blob": naming.vhd_blob(name),
        "os_type": "Windows",
        "sysprep": True,
        "description": "Datacenter",
        "timestamp": "2024-05-01T02:13:00+00:00",
        "size_bytes": 136367309312,
        "source_vm": "vm-datacenter",
        "footer_sha256": "ab" * 32,
    }
    fields.update(overrides)
    return ImageVersion(**fields)  # type: ignore[arg-type]


def _ours(path: str, version: str, *, timestamp: str = "") -> tuple[str, bytes, str]:
    name = naming.image_name(path, version)
    image = _image(
        image_name=name,
        image_path=path,
        version=version,
        vhd_blob=naming.vhd_blob(name),
        timestamp=timestamp or f"{version}T02:00:00+00:00",
    )
    return naming.sidecar_blob(name), sidecar_json(image), naming.vhd_blob(name)


# --- our sidecars ---------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "image",
    [
        _image(),
        _image(sysprep=False, os_type="Linux", size_bytes=None, source_vm=None, footer_sha256=None),
        _image(description='Ünïcode ✔ "quoted"', timestamp=""),
    ],
)
def test_sidecar_round_trip(image: ImageVersion) -> None:
    data = sidecar_json(image)
    parsed = parse_sidecar(naming.sidecar_blob(image.image_name), data)
    assert parsed == image


def test_sidecar_has_the_original_fields_and_ours() -> None:
    doc = json.loads(sidecar_json(_image(image_path="Win2016\\Datacenter.json")))
    assert doc["imageName"] == _image().image_name
    assert doc["imagePath"] == "Win2016/Datacenter.json"
    assert doc["osType"] == "Windows"
    assert doc["vhdFileName"] == f"{_image().image_name}.vhd"
    assert doc["timestamp"] == "2024-05-01T02:13:00+00:00"
    assert doc["description"] == "Datacenter"
    assert doc["version"] == "2024-05-01"
    assert doc["generalized"] is True
    assert doc["sizeBytes"] == 136367309312
    assert doc["sourceVm"] == "vm-datacenter"
    assert doc["footerSha256"] == "ab" * 32
    assert doc["schemaVersion"] == SCHEMA_VERSION == 2


SOURCE = CaptureSource(
    vm_id="/subscriptions/s/resourcegroups/rg-imagefactory/providers/microsoft.devtestlab/labs/imagefactory/"
    "virtualmachines/vm-datacenter",
    os_disk_id="/subscriptions/s/resourceGroups/ImageFactory-vm-datacenter-1/providers/Microsoft.Compute/disks/os",
    disk_unique_id="6f1c0b5e-1111-4a2b-9c3d-0123456789ab",
    disk_time_created="2026-11-30T02:00:00+00:00",
    disk_last_ownership_update_time="2026-12-01T01:00:00.5+00:00",
)


def test_sidecar_records_what_the_version_was_captured_from() -> None:
    image = _image(source=SOURCE, run_id="scheduled__2026-12-01T02:00:00+00:00")
    doc = json.loads(sidecar_json(image))
    assert doc["source"] == {
        "vmId": SOURCE.vm_id,
        "osDiskId": SOURCE.os_disk_id,
        "diskUniqueId": "6f1c0b5e-1111-4a2b-9c3d-0123456789ab",
        "diskTimeCreated": "2026-11-30T02:00:00+00:00",
        "diskLastOwnershipUpdateTime": "2026-12-01T01:00:00.5+00:00",
    }
    assert doc["runId"] == "scheduled__2026-12-01T02:00:00+00:00"
    parsed = parse_sidecar("x.json", sidecar_json(image))
    assert parsed == image
    assert parsed.source is not None and parsed.source.same_as(SOURCE)


def test_a_sidecar_without_source_has_an_unknown_source() -> None:
    doc = json.loads(sidecar_json(_image()))
    assert "source" not in doc and "runId" not in doc
    parsed = parse_sidecar("x.json", sidecar_json(_image()))
    assert parsed.source is None and parsed.run_id is None
    assert not SOURCE.same_as(parsed.source)


@pytest.mark.parametrize(
    ("source", "message"),
    [
        ("vm-datacenter", "'source' must be an object"),
        ({"vmId": "/vm", "osDiskId": "/disk", "diskUniqueId": 7}, "source.diskUniqueId must be a string"),
        ({"osDiskId": "/disk"}, "source needs vmId and osDiskId"),
    ],
)
def test_a_broken_source_names_the_sidecar(source: object, message: str) -> None:
    doc = json.loads(sidecar_json(_image()))
    doc["source"] = source
    with pytest.raises(CatalogueError, match=message):
        parse_sidecar("broken.json", json.dumps(doc).encode())


def test_specialized_image_keeps_its_flag() -> None:
    parsed = parse_sidecar("x.json", sidecar_json(_image(sysprep=False)))
    assert parsed.sysprep is False


# --- PowerShell sidecars ----------------------------------------------------------------------------------


def test_powershell_sidecar_utf16_with_bom() -> None:
    data = codecs.BOM_UTF16_LE + PS_WINDOWS.encode("utf-16-le")
    image = parse_sidecar("3f1b7a2e-5c1d-4e8b-9a57-2f0c6d1e9b44.json", data)
    assert image.image_name == "Win2016_Datacenter-Mar-14-2018"
    assert image.image_path == "Win2016/Datacenter.json"
    assert image.os_type == "Windows"
    assert image.sysprep is True
    assert image.vhd_blob == "3f1b7a2e-5c1d-4e8b-9a57-2f0c6d1e9b44.vhd"
    assert image.version == "2018-03-14"
    assert image.timestamp == "2018-03-14T17:03:12+00:00"
    assert image.description == "Windows Server 2016 Datacenter with the team's tools"
    assert image.size_bytes is None and image.source_vm is None and image.footer_sha256 is None


def test_powershell_sidecar_utf8_bom_day_first_linux() -> None:
    image = parse_sidecar("9d0e6a44.json", codecs.BOM_UTF8 + PS_LINUX.encode("utf-8"))
    assert image.os_type == "Linux"
    assert image.image_path == "Ubuntu/Ubuntu1604.json"
    assert image.description == ""
    # The name's date wins over the timestamp's: the labs' copies of the image carry that name.
    assert image.version == "2019-11-03"
    assert image.timestamp == "2019-11-23T14:07:55+00:00"
    assert image.sysprep is True


def test_powershell_version_from_timestamp_when_the_name_has_no_date() -> None:
    doc = json.loads(PS_ROUNDTRIP)
    doc["imageName"] = "Renamed_by_hand"
    assert parse_sidecar("x.json", json.dumps(doc).encode()).version == "2021-01-02"


@pytest.mark.parametrize(
    ("name", "version"),
    [
        ("Win2016_Datacenter-Mar-14-2018", "2018-03-14"),
        ("Win2016_Datacenter-Dec-1-2017", "2017-12-01"),
        # A same-day rebuild: A is the day's second image, B its third.
        ("Win2016_Datacenter-Dec-1-2017A", "2017-12-01.2"),
        ("Win2016_Datacenter-Dec-1-2017B", "2017-12-01.3"),
        ("-Dec-1-2017", None),
        ("a-sep-30-2020", "2020-09-30"),
        ("Win2016_Datacenter-Feb-30-2018", None),
        ("Win2016_Datacenter-Foo-1-2018", None),
        ("Win2016_Datacenter-2024-05-01-9eaf4450", None),
    ],
)
def test_version_from_name(name: str, version: str | None) -> None:
    assert version_from_name(name) == version


def test_powershell_roundtrip_timestamp_converted_to_utc_date() -> None:
    image = parse_sidecar("11111111.json", PS_ROUNDTRIP.encode("utf-8"))
    # 23:30 at -02:00 is 01:30 UTC the next day.
    assert image.version == "2021-01-02"
    assert image.timestamp == "2021-01-02T01:30:00.123456+00:00"
    assert image.os_type == "Windows"


def test_powershell_version_from_name_when_timestamp_is_unreadable() -> None:
    doc = json.loads(PS_ROUNDTRIP)
    doc["timestamp"] = "Dienstag, 5. Januar 2021 10:00:00"
    doc["imageName"] = "Win2012R2_VS2017-Jan-5-2021B"
    image = parse_sidecar("x.json", json.dumps(doc).encode())
    assert image.version == "2021-01-05.3"
    assert image.timestamp == "Dienstag, 5. Januar 2021 10:00:00"


def test_sidecar_without_vhd_file_name_uses_its_blob_stem() -> None:
    doc = json.loads(PS_ROUNDTRIP)
    del doc["vhdFileName"]
    assert parse_sidecar("folder/abc.json", json.dumps(doc).encode()).vhd_blob == "abc.vhd"


@pytest.mark.parametrize(
    ("text", "iso"),
    [
        ("3/14/2018 5:03:12 PM", "2018-03-14T17:03:12+00:00"),
        ("03/14/2018 17:03:12", "2018-03-14T17:03:12+00:00"),
        ("14/03/2018 17:03:12", "2018-03-14T17:03:12+00:00"),
        ("14.03.2018 17:03:12", "2018-03-14T17:03:12+00:00"),
        ("2018-03-14T17:03:12.1234567+01:00", "2018-03-14T16:03:12.123456+00:00"),
        ("2018-03-14T17:03:12Z", "2018-03-14T17:03:12+00:00"),
        ("2018-03-14 17:03:12", "2018-03-14T17:03:12+00:00"),
        ("/Date(1521047000000)/", "2018-03-14T17:03:20+00:00"),
    ],
)
def test_parse_timestamp_forms(text: str, iso: str) -> None:
    moment = parse_timestamp(text)
    assert moment is not None
    assert moment.isoformat() == iso


@pytest.mark.parametrize("text", ["", "  ", "yesterday", "13/13/2018 10:00:00"])
def test_parse_timestamp_unknown(text: str) -> None:
    assert parse_timestamp(text) is None


@pytest.mark.parametrize(
    ("data", "message"),
    [
        (b"\x00\xff not json", "not JSON"),
        (b"[1, 2]", "not a JSON object"),
        (b"{", "not JSON"),
        (json.dumps({"imageName": "a", "osType": "Windows"}).encode(), "'imagePath'"),
        (json.dumps({"imagePath": "a/b.json", "osType": "Solaris", "timestamp": "2020-01-01"}).encode(), "Solaris"),
        (json.dumps({"imagePath": "a/b.json", "timestamp": "2020-01-01"}).encode(), "'osType'"),
        (json.dumps({"imagePath": "\\", "osType": "Linux", "timestamp": "2020-01-01"}).encode(), "empty"),
        (json.dumps({"imagePath": "a/b.json", "osType": "Linux", "imageName": "x"}).encode(), "no version"),
        (json.dumps({"imagePath": 3, "osType": "Linux"}).encode(), "must be a string"),
        (
            json.dumps({"imagePath": "a/b.json", "osType": "Linux", "version": "May 1", "schemaVersion": 2}).encode(),
            "ISO date",
        ),
        (
            json.dumps(
                {"imagePath": "a/b.json", "osType": "Linux", "version": "2024-05-01", "generalized": "yes"}
            ).encode(),
            "generalized",
        ),
        (
            json.dumps({"imagePath": "a/b.json", "osType": "Linux", "version": "2024-05-01", "sizeBytes": -1}).encode(),
            "sizeBytes",
        ),
    ],
)
def test_junk_sidecars_raise_naming_the_blob(data: bytes, message: str) -> None:
    with pytest.raises(CatalogueError, match=message) as info:
        parse_sidecar("junk-blob.json", data)
    assert "junk-blob.json" in str(info.value)
    assert isinstance(info.value, ImageFactoryError)


# --- the catalogue -----------------------------------------------------------------------------------------


def test_build_catalogue_reports_problems() -> None:
    good = _ours("Win2016/Datacenter.json", "2024-05-01")
    no_vhd = _ours("Ubuntu/Ubuntu2204.json", "2024-05-01")
    ps_data = codecs.BOM_UTF16_LE + PS_WINDOWS.encode("utf-16-le")
    entries = [
        (good[0], good[1]),
        (no_vhd[0], no_vhd[1]),
        ("broken.json", b"{not json"),
        ("3f1b7a2e-5c1d-4e8b-9a57-2f0c6d1e9b44.json", ps_data),
    ]
    vhds = {good[2], "3f1b7a2e-5c1d-4e8b-9a57-2f0c6d1e9b44.vhd", "orphan.vhd"}
    cat = build_catalogue(entries, vhds)
    assert sorted(i.image_name for i in cat.images) == sorted(
        [naming.image_name("Win2016/Datacenter.json", "2024-05-01"), "Win2016_Datacenter-Mar-14-2018"]
    )
    assert len(cat.problems) == 3
    joined = "\n".join(cat.problems)
    assert f"sidecar {no_vhd[0]} names VHD {no_vhd[2]}" in joined
    assert "VHD orphan.vhd has no sidecar" in joined
    assert "broken.json" in joined


def test_catalogue_newest_and_versions_of_a_path() -> None:
    versions = ["2024-05-01", "2024-05-03", "2024-05-02"]
    entries = []
    vhds = set()
    for v in versions:
        blob, data, vhd = _ours("Win2016/Datacenter.json", v)
        entries.append((blob, data))
        vhds.add(vhd)
    blob, data, vhd = _ours("Ubuntu/Ubuntu2204.json", "2024-05-02")
    entries.append((blob, data))
    vhds.add(vhd)
    cat = build_catalogue(entries, vhds)
    assert cat.problems == []
    assert [(i.image_path, i.version) for i in cat.images] == [
        ("Win2016/Datacenter.json", "2024-05-03"),
        ("Win2016/Datacenter.json", "2024-05-02"),
        ("Ubuntu/Ubuntu2204.json", "2024-05-02"),
        ("Win2016/Datacenter.json", "2024-05-01"),
    ]
    found = cat.newest("WIN2016\\datacenter.json")
    assert found is not None and found.version == "2024-05-03"
    assert cat.versions_of("win2016/DATACENTER.json") == ["2024-05-03", "2024-05-02", "2024-05-01"]
    assert cat.newest("Win2016") is None and cat.versions_of("Win2016") == []
    assert cat.newest("Win2012R2/VS2017.json") is None


def test_catalogue_lists_sidecar_then_vhd_of_every_copy_of_aimage_version() -> None:
    a = image_version("Win2016/Datacenter.json", "2025-01-01", ts="2025-01-01T02:00:00+00:00")
    dup = image_version("win2016\\DATACENTER.json", "2025-01-01", name="old-copy", ts="2025-01-01T01:00:00+00:00")
    b = image_version("Ubuntu/Ubuntu2204.json", "2025-01-02")
    sidecars = [(f"{i.image_name}.json", sidecar_json(i)) for i in (a, dup, b)]
    sidecars.append(("junk.json", b"not json"))
    found = build_catalogue(sidecars, {a.vhd_blob, dup.vhd_blob, b.vhd_blob, "orphan.vhd"})
    assert [i.image_name for i in found.images] == [b.image_name, a.image_name]
    assert {i.image_name for i in found.all_images} == {a.image_name, dup.image_name, b.image_name}
    blobs = found.blobs_of("WIN2016/Datacenter.json", "2025-01-01")
    assert sorted(blobs[:2]) == sorted([f"{a.image_name}.json", "old-copy.json"])
    assert sorted(blobs[2:]) == sorted([a.vhd_blob, dup.vhd_blob])
    assert found.blobs_of("Ubuntu/Ubuntu2204.json", "2025-01-01") == []
    assert any("orphan.vhd" in p for p in found.problems)


def test_each_sidecar_is_parsed_once(monkeypatch: pytest.MonkeyPatch) -> None:
    import image_factory.catalogue as catalogue_module

    a = image_version("Win2016/Datacenter.json", "2025-01-01")
    b = image_version("Ubuntu/Ubuntu2204.json", "2025-01-02")
    parsed: list[str] = []
    real = catalogue_module.parse_sidecar

    def counting(blob_name: str, data: bytes) -> ImageVersion:
        parsed.append(blob_name)
        return real(blob_name, data)

    monkeypatch.setattr(catalogue_module, "parse_sidecar", counting)
    found = build_catalogue([(f"{i.image_name}.json", sidecar_json(i)) for i in (a, b)], {a.vhd_blob, b.vhd_blob})
    assert sorted(parsed) == sorted(f"{i.image_name}.json" for i in (a, b))
    assert found.blobs_of(a.image_path, a.version) == [f"{a.image_name}.json", a.vhd_blob]


def test_same_day_powershell_images_are_successive_versions() -> None:
    base = json.loads(PS_ROUNDTRIP)
    early = {
        **base,
        "imageName": "Win2012R2_VS2017-Jan-2-2021",
        "vhdFileName": "a.vhd",
        "timestamp": "1/2/2021 8:00:00 AM",
    }
    late = {
        **base,
        "imageName": "Win2012R2_VS2017-Jan-2-2021A",
        "vhdFileName": "b.vhd",
        "timestamp": "1/2/2021 3:00:00 PM",
    }
    cat = build_catalogue(
        [("a.json", json.dumps(early).encode()), ("b.json", json.dumps(late).encode())], {"a.vhd", "b.vhd"}
    )
    # The letter is the same-day ordinal: A is the day's second image, newer than the first.
    assert [(i.image_name, i.version) for i in cat.images] == [
        ("Win2012R2_VS2017-Jan-2-2021A", "2021-01-02.2"),
        ("Win2012R2_VS2017-Jan-2-2021", "2021-01-02"),
    ]
    assert cat.newest("Win2012R2/VS2017.json") == cat.images[0]
    assert all(i.by_powershell for i in cat.all_images)
    assert cat.blobs_of("Win2012R2\\VS2017.json", "2021-01-02") == ["a.json", "a.vhd"]
    assert cat.blobs_of("Win2012R2\\VS2017.json", "2021-01-02.2") == ["b.json", "b.vhd"]
    assert cat.problems == []


def test_mixed_old_and_new_sidecars_share_one_path() -> None:
    ours = _ours("Win2016/Datacenter.json", "2024-05-01")
    ps_data = codecs.BOM_UTF16_LE + PS_WINDOWS.encode("utf-16-le")
    cat = build_catalogue(
        [(ours[0], ours[1]), ("3f1b.json", ps_data)], {ours[2], "3f1b7a2e-5c1d-4e8b-9a57-2f0c6d1e9b44.vhd"}
    )
    assert [(i.image_path, i.version) for i in cat.images] == [
        ("Win2016/Datacenter.json", "2024-05-01"),
        ("Win2016/Datacenter.json", "2018-03-14"),
    ]


def test_empty_catalogue() -> None:
    cat = build_catalogue([], set())
    assert cat == Catalogue()
    assert cat.images == [] and cat.all_images == [] and cat.blobs == {}


def test_same_day_rebuilds_sort_by_their_ordinal_not_as_text() -> None:
    day = "2024-05-01"
    entries, vhds = [], set()
    for v in (day, f"{day}.9", f"{day}.10", f"{day}.2", "2024-04-30"):
        blob, data, vhd = _ours("Win2016/Datacenter.json", v, timestamp=f"{day}T02:00:00+00:00")
        entries.append((blob, data))
        vhds.add(vhd)
    cat = build_catalogue(entries, vhds)
    assert cat.problems == []
    assert [i.version for i in cat.images] == [f"{day}.10", f"{day}.9", f"{day}.2", day, "2024-04-30"]
