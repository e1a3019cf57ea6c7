"""Tests of image_factory.report: the plan table and the lab × image matrix."""

from __future__ import annotations

import json

from image_factory.models import LabImage, LabInventory, LabRef, Pair, Plan, SkippedPair
from image_factory.report import Cell, Matrix, build_matrix, plan_table

SUB = "11111111-1111-4111-8111-111111111111"
DEV = LabRef(SUB, "DevLab", ("Win2016", "Ubuntu"), "rg-dev")
TEST = LabRef(SUB, "TestLab", ("Win2016/Datacenter.json",), "rg-test")
QA = LabRef(SUB, "QALab", ("Ubuntu",), "rg-qa")
GONE = LabRef(SUB, "GoneLab", ("Ubuntu",), "rg-gone")


def pair(lab: str, path: str, version: str, *, cross: bool = False) -> Pair:
    return Pair(
        lab,
        SUB,
        f"rg-{lab}",
        "westeurope",
        f"img-{version}",
        path,
        version,
        f"img-{version}.vhd",
        "Windows",
        True,
        cross_region=cross,
    )


def img(path: str, version: str, state: str = "Succeeded") -> LabImage:
    return LabImage(name=f"{path}-{version}", provisioning_state=state, image_path=path, version=version, managed=True)


def test_plan_table_is_aligned_and_complete() -> None:
    plan = Plan(
        pairs=(
            pair("DevLab", "Win2016/Datacenter.json", "2024-05-03"),
            pair("QALab", "Ubuntu/Ubuntu2204.json", "2024-05-03", cross=True),
        ),
        skipped=(
            SkippedPair("TestLab", "Win2016/Datacenter.json", "already_present", "img is in the lab", "2024-05-03"),
            SkippedPair("GoneLab", "Ubuntu", "lab_not_found", "404 ResourceNotFound"),
        ),
        expected=(("DevLab", "Win2016/Datacenter.json", "2024-05-03"),),
    )
    text = plan_table(plan)
    lines = text.splitlines()
    assert lines[0].split() == ["LAB", "IMAGE", "PATH", "VERSION", "ACTION"]
    assert set(lines[1].replace(" ", "")) == {"-"}
    body = lines[2:6]
    assert [line.split()[0] for line in body] == ["DevLab", "GoneLab", "QALab", "TestLab"]
    # Columns line up: every row starts its version column at the same offset as the header.
    col = lines[0].index("VERSION")
    assert body[0][col:].startswith("2024-05-03")
    assert body[1][col:].startswith("-")
    assert "distribute (cross-region)" in body[2]
    assert body[0].rstrip().endswith("distribute")
    assert "skip: lab_not_found (404 ResourceNotFound)" in body[1]
    assert "skip: already_present (img is in the lab)" in body[3]
    assert lines[-1] == "2 to distribute, 2 skipped, 1 expected after the run"


def test_plan_table_empty() -> None:
    assert plan_table(Plan()).startswith("nothing planned")


def _demo_matrix() -> Matrix:
    expected = [
        ("DevLab", "Win2016/Datacenter.json", "2024-05-03"),
        ("DevLab", "Ubuntu/Ubuntu2204.json", "2024-05-03"),
        ("DevLab", "Ubuntu/Ubuntu2204.json", "2024-05-02"),
        ("TestLab", "Win2016/Datacenter.json", "2024-05-03"),
        ("QALab", "Ubuntu/Ubuntu2204.json", "2024-05-03"),
    ]
    inventories = {
        DEV.key: LabInventory(
            DEV,
            "ok",
            "rg-dev",
            "westeurope",
            (
                img("Win2016/Datacenter.json", "2024-05-03"),
                img("Win2016/Datacenter.json", "2024-05-02"),
                img("Ubuntu/Ubuntu2204.json", "2024-05-02"),
            ),
        ),
        TEST.key: LabInventory(
            TEST,
            "ok",
            "rg-test",
            "westeurope",
            (
                img("Win2016/Datacenter.json", "2024-05-03", "Failed"),
                img("Win2016/SQLExpress.json", "2024-05-01"),
            ),
        ),
        QA.key: LabInventory(
            QA,
            "ok",
            "rg-qa",
            "northeurope",
            (
                img("ubuntu\\ubuntu2204.json", "2024-05-03"),
                img("Ubuntu/Ubuntu2204.json", "2024-05-03", "Failed"),
            ),
        ),
        GONE.key: LabInventory(GONE, "not_found", message="lab GoneLab not found"),
    }
    return build_matrix([DEV, TEST, QA, GONE], expected, inventories)


def test_matrix_cells() -> None:
    m = _demo_matrix()
    assert m.labs == ("DevLab", "TestLab", "QALab", "GoneLab")
    assert m.image_paths == ("Ubuntu/Ubuntu2204.json", "Win2016/Datacenter.json", "Win2016/SQLExpress.json")
    assert m.cell("DevLab", "Win2016/Datacenter.json") == Cell("ok", "2024-05-03")
    dev_ubuntu = m.cell("DevLab", "ubuntu/UBUNTU2204.json")
    assert (dev_ubuntu.state, dev_ubuntu.version) == ("missing", "2024-05-03")
    assert dev_ubuntu.issues == (("2024-05-03", "missing", ""),)
    test_dc = m.cell("TestLab", "Win2016/Datacenter.json")
    assert (test_dc.state, test_dc.version, test_dc.detail) == ("failed", "2024-05-03", "provisioning state Failed")
    # TestLab is not subscribed to SQLExpress even though an image of it sits in the lab.
    assert m.cell("TestLab", "Win2016/SQLExpress.json").state == "not_subscribed"
    assert m.cell("TestLab", "Ubuntu/Ubuntu2204.json").state == "not_subscribed"
    # A Succeeded copy of a version wins over a failed one.
    assert m.cell("QALab", "Ubuntu/Ubuntu2204.json") == Cell("ok", "2024-05-03")
    # Subscribed, nothing expected (lab not found): skipped, with why.
    gone = m.cell("GoneLab", "Ubuntu/Ubuntu2204.json")
    assert (gone.state, gone.detail) == ("skipped", "lab not_found: lab GoneLab not found")
    # DevLab subscribes to Win2016: SQLExpress appears as a column, nothing expected nor present.
    assert m.cell("DevLab", "Win2016/SQLExpress.json").state == "skipped"


def test_matrix_problems_list_exactly_what_is_missing_or_failed() -> None:
    # A lab that cannot be read is a problem of the run (not a skip), named first with what to fix.
    assert _demo_matrix().problems() == [
        "GoneLab: lab not found (lab GoneLab not found): check LabName, ResourceGroup and SubscriptionId in labs.json,"
        " or create the lab",
        "DevLab: Ubuntu/Ubuntu2204.json 2024-05-03 is missing",
        "TestLab: Win2016/Datacenter.json 2024-05-03 is failed (provisioning state Failed)",
    ]


def test_matrix_lists_every_missing_version_of_a_cell() -> None:
    expected = [("QALab", "Ubuntu/Ubuntu2204.json", v) for v in ("2024-05-01", "2024-05-02", "2024-05-03")]
    inventories = {QA.key: LabInventory(QA, "ok", images=(img("Ubuntu/Ubuntu2204.json", "2024-05-02", "Canceled"),))}
    m = build_matrix([QA], expected, inventories)
    cell = m.cell("QALab", "Ubuntu/Ubuntu2204.json")
    assert (cell.state, cell.version) == ("failed", "2024-05-02")
    assert m.problems() == [
        "QALab: Ubuntu/Ubuntu2204.json 2024-05-03 is missing",
        "QALab: Ubuntu/Ubuntu2204.json 2024-05-02 is failed (provisioning state Canceled)",
        "QALab: Ubuntu/Ubuntu2204.json 2024-05-01 is missing",
    ]


def test_expected_image_of_an_unavailable_lab_is_missing_with_the_reason() -> None:
    expected = [("GoneLab", "Ubuntu/Ubuntu2204.json", "2024-05-03")]
    inventories = {GONE.key: LabInventory(GONE, "forbidden", message="403 AuthorizationFailed")}
    m = build_matrix([GONE], expected, inventories)
    assert m.problems() == [
        "GoneLab: access denied (403 AuthorizationFailed): grant the factory's principal DevTest Labs User (or"
        " Contributor) on the lab",
        "GoneLab: Ubuntu/Ubuntu2204.json 2024-05-03 is missing (lab forbidden: 403 AuthorizationFailed)",
    ]
    assert m.lab_problems() == m.problems()[:1]
    assert build_matrix([GONE], expected, {}).problems() == [
        "GoneLab: Ubuntu/Ubuntu2204.json 2024-05-03 is missing (lab not inventoried)"
    ]


def test_matrix_render() -> None:
    text = _demo_matrix().render()
    lines = text.splitlines()
    assert lines[0].split() == ["LAB", "Ubuntu/Ubuntu2204.json", "Win2016/Datacenter.json", "Win2016/SQLExpress.json"]
    rows = {line.split()[0]: line for line in lines[2:]}
    assert set(rows) == {"DevLab", "TestLab", "QALab", "GoneLab"}
    col_ubuntu = lines[0].index("Ubuntu/")
    col_dc = lines[0].index("Win2016/Datacenter")
    col_sql = lines[0].index("Win2016/SQLExpress")
    assert rows["DevLab"][col_ubuntu:].startswith("missing")
    assert rows["DevLab"][col_dc:].startswith("✔ 2024-05-03")
    assert rows["TestLab"][col_dc:].startswith("failed")
    assert rows["TestLab"][col_sql:].startswith("·")
    assert rows["QALab"][col_ubuntu:].startswith("✔ 2024-05-03")
    assert rows["GoneLab"][col_ubuntu:].startswith("skipped")


def test_matrix_to_dict_is_json() -> None:
    m = _demo_matrix()
    doc = json.loads(json.dumps(m.to_dict()))
    assert doc["labs"] == list(m.labs)
    assert doc["image_paths"] == list(m.image_paths)
    assert doc["cells"]["DevLab"]["Win2016/Datacenter.json"] == {
        "state": "ok",
        "version": "2024-05-03",
        "detail": "",
        "issues": [],
    }
    assert doc["cells"]["TestLab"]["Win2016/SQLExpress.json"]["state"] == "not_subscribed"
    assert doc["cells"]["TestLab"]["Win2016/Datacenter.json"]["issues"] == [
        {"version": "2024-05-03", "state": "failed", "detail": "provisioning state Failed"}
    ]
    assert doc["problems"] == m.problems()


def test_empty_matrix() -> None:
    m = build_matrix([], [], {})
    assert m.problems() == []
    assert m.render() == "no labs or no images to show"


def test_powershell_made_lab_images_match_by_their_name_date() -> None:
    expected = [("QALab", "Ubuntu/Ubuntu2204.json", "2018-03-14"), ("QALab", "Ubuntu/Ubuntu2204.json", "2018-03-15")]
    legacy = LabImage(
        name="Ubuntu_Ubuntu2204-Mar-14-2018", provisioning_state="Succeeded", image_path="Ubuntu\\Ubuntu2204.json"
    )
    m = build_matrix([QA], expected, {QA.key: LabInventory(QA, "ok", images=(legacy,))})
    assert m.problems() == ["QALab: Ubuntu/Ubuntu2204.json 2018-03-15 is missing"]


def test_same_day_rebuilds_are_listed_by_their_ordinal_not_as_text() -> None:
    path = "Ubuntu/Ubuntu2204.json"
    day = "2024-05-03"
    expected = [("QALab", path, v) for v in (day, f"{day}.2", f"{day}.9", f"{day}.10")]
    inventories = {QA.key: LabInventory(QA, "ok", images=(img(path, f"{day}.9"), img(path, day)))}
    m = build_matrix([QA], expected, inventories)
    assert m.problems() == [f"QALab: {path} {day}.10 is missing", f"QALab: {path} {day}.2 is missing"]
    table = plan_table(Plan(pairs=tuple(pair("QALab", path, v) for v in (f"{day}.10", f"{day}.9", day))))
    rows = [line.split()[2] for line in table.splitlines()[2:-1]]
    assert rows == [day, f"{day}.9", f"{day}.10"]
    ok = build_matrix(
        [QA], [], {QA.key: LabInventory(QA, "ok", images=(img(path, f"{day}.9"), img(path, f"{day}.10")))}
    )
    assert ok.cell("QALab", path).version == f"{day}.10"
