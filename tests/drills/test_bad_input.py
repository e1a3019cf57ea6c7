"""Bad input drill: every broken input is refused naming the file or field, and Azure is left untouched.

The configuration cases (labs.json, factory.json, GoldenImages/, run params) call the product's own task code
in-process — ``validate_config`` and ``make_plan`` — with the connections pointing at a local Azure started
once for the module, and compare the emulator's whole state before and after. The access cases (a lab that
does not exist, a lab the principal may only read, a lab in a subscription it cannot see) and the REST param
cases need the real stack: they are ``drill``-marked.
"""

from __future__ import annotations

import json
import os
import shutil
from collections.abc import Callable, Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from airflow.sdk.exceptions import AirflowFailException

from image_factory import tasks, versions
from image_factory.exceptions import ConfigurationError
from image_factory.run_context import RunContext, RunParams
from stack.__main__ import DAG_ID, Stack, verify_report
from stack.localazure import LocalAzure, start_local_azure
from stack.rest import AirflowApiError
from tests.drills import invariants
from tests.drills.conftest import (
    DEMO_WORLD,
    FOREIGN_LAB,
    GHOST_LAB,
    READER_LAB,
    SUB1,
    access_labs,
    access_world,
    copy_config,
    drill_stack,
    run_to_end,
    task_states,
)

Mutation = Callable[[Path], None]
VALID_PARAMS: dict[str, Any] = {
    "labs": [],
    "image_paths": [],
    "capture": True,
    "dry_run": False,
    "copy_poll_seconds": 5,
}


# --------------------------------------------------------------------------------------------------------
# mutations of a copy of Configuration/


def _json(path: Path) -> Any:
    return json.loads(path.read_text(encoding="utf-8-sig"))


def _edit(name: str, change: Callable[[Any], None]) -> Mutation:
    def mutate(cfg: Path) -> None:
        doc = _json(cfg / name)
        change(doc)
        (cfg / name).write_text(json.dumps(doc, indent=2), encoding="utf-8")

    return mutate


def _write(name: str, data: bytes | str) -> Mutation:
    def mutate(cfg: Path) -> None:
        target = cfg / name
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_bytes(data.encode("utf-8") if isinstance(data, str) else data)

    return mutate


def _remove(name: str) -> Mutation:
    def mutate(cfg: Path) -> None:
        target = cfg / name
        if target.is_dir():
            shutil.rmtree(target)
        else:
            target.unlink()

    return mutate


def _lab0(key: str, value: Any) -> Mutation:
    def change(doc: Any) -> None:
        doc["Labs"][0][key] = value

    return _edit("labs.json", change)


def _factory(key: str, value: Any) -> Mutation:
    def change(doc: Any) -> None:
        doc[key] = value

    return _edit("factory.json", change)


def _symlink_out(cfg: Path) -> None:
    (cfg / "GoldenImages" / "Etc").symlink_to("/etc", target_is_directory=True)
    _lab0("ImagePaths", ["Etc"])(cfg)


def _template(change: Callable[[dict[str, Any]], None]) -> Mutation:
    def mutate(cfg: Path) -> None:
        path = cfg / "GoldenImages" / "Win2016" / "Datacenter.json"
        doc = _json(path)
        change(doc)
        path.write_text(json.dumps(doc), encoding="utf-8")

    return mutate


def _two_vms(doc: dict[str, Any]) -> None:
    doc["resources"].append(dict(doc["resources"][0]))


def _no_vm(doc: dict[str, Any]) -> None:
    doc["resources"] = []


def _secret_default(doc: dict[str, Any]) -> None:
    doc.setdefault("parameters", {})["adminPassword"] = {"type": "securestring", "defaultValue": "P@ssw0rd!"}


def _duplicate_lab(doc: Any) -> None:
    doc["Labs"].append(dict(doc["Labs"][0], LabName=doc["Labs"][0]["LabName"].upper()))


DUPLICATE_KEY = json.dumps({"Labs": [{"SubscriptionId": SUB1, "LabName": "DevLab", "ImagePaths": ["Ubuntu"]}]}).replace(
    '"LabName": "DevLab"', '"LabName": "DevLab", "labname": "X"'
)
NESTED = "[" * 100_000 + "]" * 100_000


def _misspell_lab_name(doc: Any) -> None:
    doc["Factory"]["LabNmae"] = doc["Factory"].pop("LabName")


def _keep_extra_keys(doc: Any) -> None:
    doc["Comment"] = "kept from the PowerShell factory"
    doc["Labs"][0]["Owner"] = "dev-team@example.com"


#: (case id, mutation, what the warnings must say): what the PowerShell factory accepted is accepted with a warning.
LENIENT_CASES: list[tuple[str, Mutation, tuple[str, ...]]] = [
    ("labs-extra-keys", _edit("labs.json", _keep_extra_keys), ("'Comment' is ignored", "'Owner' is ignored")),
    ("factory-unknown-key", _factory("MaxConcurentJobs", 3), ("'MaxConcurentJobs' is ignored; did you mean",)),
    ("lab-path-no-match", _lab0("ImagePaths", ["Win2019", "Ubuntu"]), ("'Win2019' selects no golden image file",)),
    ("lab-path-stem", _lab0("ImagePaths", ["Win2016\\Datacenter"]), ("write 'Win2016/Datacenter.json'",)),
]

#: (case id, mutation, substrings the refusal must contain: the file and the field).
CONFIG_CASES: list[tuple[str, Mutation, tuple[str, ...]]] = [
    # labs.json
    ("labs-not-json", _write("labs.json", '{"Labs": [ {'), ("labs.json", "not valid JSON")),
    ("labs-empty", _write("labs.json", ""), ("labs.json", "empty")),
    ("labs-missing", _remove("labs.json"), ("labs.json",)),
    ("labs-not-utf8", _write("labs.json", b'{"Labs": ["\xff\xfe\xfa"]}'), ("labs.json", "not UTF-8")),
    ("labs-nan", _write("labs.json", '{"Labs": NaN}'), ("labs.json", "NaN")),
    ("labs-nested", _write("labs.json", NESTED), ("labs.json",)),
    ("labs-huge", _write("labs.json", b" " * (16 * 1024 * 1024 + 10) + b"{}"), ("labs.json", "limit")),
    ("labs-array", _write("labs.json", "[]"), ("labs.json",)),
    ("labs-duplicate-key", _write("labs.json", DUPLICATE_KEY), ("labs.json", "Labs[0]", "more than once")),
    ("labs-duplicate-lab", _edit("labs.json", _duplicate_lab), ("labs.json", "Labs[3]", "already listed")),
    ("labs-misspelt-key", _edit("labs.json", lambda d: d.update(Lab=d.pop("Labs"))), ("labs.json", "'Labs'", "'Lab'")),
    ("labs-not-list", _edit("labs.json", lambda d: d.update(Labs={"DevLab": {}})), ("labs.json", "Labs")),
    ("lab-missing-name", _edit("labs.json", lambda d: d["Labs"][0].pop("LabName")), ("labs.json", "LabName")),
    ("lab-bad-subscription", _lab0("SubscriptionId", "not-a-guid"), ("labs.json", "Labs[0].SubscriptionId")),
    ("lab-bad-name", _lab0("LabName", "Dev Lab!"), ("labs.json", "Labs[0].LabName")),
    ("lab-bad-group", _lab0("ResourceGroup", "rg/../x"), ("labs.json", "Labs[0].ResourceGroup")),
    ("lab-paths-string", _lab0("ImagePaths", "Win2016"), ("labs.json", "Labs[0].ImagePaths")),
    ("lab-path-number", _lab0("ImagePaths", [2016]), ("labs.json", "Labs[0].ImagePaths[0]")),
    ("lab-path-absolute", _lab0("ImagePaths", ["/etc/passwd"]), ("labs.json", "Labs[0].ImagePaths[0]", "absolute")),
    ("lab-path-dotdot", _lab0("ImagePaths", ["Win2016/../../x"]), ("labs.json", "Labs[0].ImagePaths[0]", "..")),
    ("lab-path-symlink-out", _symlink_out, ("GoldenImages",)),
    ("lab-too-many-paths", _lab0("ImagePaths", ["Ubuntu"] * 501), ("labs.json", "Labs[0].ImagePaths")),
    # factory.json
    ("factory-missing", _remove("factory.json"), ("factory.json",)),
    ("factory-not-json", _write("factory.json", "{'Factory': 1}"), ("factory.json", "not valid JSON")),
    ("factory-no-lab", _edit("factory.json", lambda d: d["Factory"].pop("LabName")), ("factory.json", "LabName")),
    ("factory-jobs-zero", _factory("MaxConcurrentJobs", 0), ("factory.json", "MaxConcurrentJobs")),
    ("factory-jobs-string", _factory("MaxConcurrentJobs", "3"), ("factory.json", "MaxConcurrentJobs")),
    ("factory-keep-huge", _factory("ImagesToSave", 10_000), ("factory.json", "ImagesToSave")),
    ("factory-bad-cron", _factory("Schedule", "every night at two"), ("factory.json", "Schedule")),
    ("factory-bad-container", _factory("Container", "Bad_Container!"), ("factory.json", "Container")),
    ("factory-misspelt-key", _edit("factory.json", _misspell_lab_name), ("factory.json", "'LabName'", "'LabNmae'")),
    ("factory-copy-minutes", _factory("Timeouts", {"CopyMinutes": "4h"}), ("factory.json", "CopyMinutes")),
    ("factory-sas-hours", _factory("ReadSasHours", -1), ("factory.json", "ReadSasHours")),
    ("factory-disk-seconds", _factory("DiskAccessSeconds", 0), ("factory.json", "DiskAccessSeconds")),
    ("factory-bad-conn", _factory("Connections", {"Arm": "a b c"}), ("factory.json", "Arm")),
    # GoldenImages
    ("golden-missing", _remove("GoldenImages"), ("GoldenImages",)),
    ("golden-not-json", _write("GoldenImages/Win2016/Datacenter.json", "<xml/>"), ("Datacenter.json", "JSON")),
    ("golden-no-vm", _template(_no_vm), ("Datacenter.json", "resources")),
    ("golden-two-vms", _template(_two_vms), ("Datacenter.json", "resources[1]", "more than one")),
    ("golden-secret-default", _template(_secret_default), ("Datacenter.json", "adminPassword", "defaultValue")),
    ("golden-not-template", _write("GoldenImages/Win2016/Datacenter.json", "[1, 2]"), ("Datacenter.json",)),
    ("golden-huge", _write("GoldenImages/Win2016/Datacenter.json", b" " * (4 * 1024 * 1024 + 1)), ("Datacenter.json",)),
]

#: Run params the api-server lets through but the configuration refuses (validate_config and plan).
PARAM_CASES: list[tuple[str, dict[str, Any], tuple[str, ...]]] = [
    ("param-unknown-lab", {"labs": ["NoSuchLab"]}, ("param labs", "NoSuchLab")),
    ("param-unknown-path", {"image_paths": ["Win2019"]}, ("param image_paths", "Win2019")),
    ("param-path-outside", {"image_paths": ["../../etc"]}, ("param image_paths", "../../etc")),
    ("param-poll-zero", {"copy_poll_seconds": 0}, ("param copy_poll_seconds",)),
    ("param-poll-bool", {"copy_poll_seconds": True}, ("param copy_poll_seconds",)),
]


# --------------------------------------------------------------------------------------------------------
# in-process: the product's task code against a local Azure


@pytest.fixture(scope="module")
def local_azure(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LocalAzure]:
    root = tmp_path_factory.mktemp("bad-input-azure")
    azure = start_local_azure(world=DEMO_WORLD, state_dir=root / "state", log_dir=root / "logs")
    try:
        yield azure
    finally:
        azure.stop()


@pytest.fixture
def connected(local_azure: LocalAzure, monkeypatch: pytest.MonkeyPatch) -> LocalAzure:
    """Point the product's connections at the module's local Azure (as the stack's env vars do)."""
    for key, value in local_azure.connections_env(subscription_id=SUB1).items():
        monkeypatch.setenv(key, value)
    return local_azure


def _run(params: dict[str, Any], folder: Path | None = None) -> RunContext:
    run = RunContext(params=RunParams.from_mapping(params), day=versions.day_of_run(None, datetime.now(UTC)))
    if folder is not None:
        run.folder = folder
    return run


def _refused(call: Callable[[], Any]) -> str:
    # validate_config fails the task at once (AirflowFailException), with the configuration error's message.
    with pytest.raises((ConfigurationError, AirflowFailException)) as caught:
        call()
    return str(caught.value)


def _assert_refused_everywhere(cfg: Path, params: dict[str, Any], expected: tuple[str, ...]) -> None:
    message = _refused(lambda: tasks.validate_config(_run(params, cfg)))
    for part in expected:
        assert part in message, f"{part!r} not named in: {message[:2000]}"
    plan_message = _refused(lambda: tasks.make_plan(_run(params, cfg)))
    assert plan_message == message, "plan must refuse with the same findings as validate_config"


def test_the_valid_configuration_passes(connected: LocalAzure, tmp_path: Path) -> None:
    """The baseline the cases break: the sample configuration and params are accepted (no Azure call)."""
    cfg = copy_config(tmp_path / "Configuration")
    before = connected.state()
    summary = tasks.validate_config(_run(VALID_PARAMS, cfg))
    assert summary["labs"] == ["DevLab", "TestLab", "QALab"]
    assert connected.state() == before


@pytest.mark.parametrize(("case", "mutate", "expected"), CONFIG_CASES, ids=[c[0] for c in CONFIG_CASES])
def test_broken_configuration_is_refused_naming_it(
    connected: LocalAzure, tmp_path: Path, case: str, mutate: Mutation, expected: tuple[str, ...]
) -> None:
    cfg = copy_config(tmp_path / "Configuration")
    mutate(cfg)
    before = connected.state()
    connected.post("/reset-stats", {})
    _assert_refused_everywhere(cfg, VALID_PARAMS, expected)
    assert connected.state() == before, f"{case}: Azure changed"
    stats = connected.stats()
    assert sum(stats["arm"]["requests"].values()) == 0, f"{case}: a refused configuration reached ARM"
    assert sum(stats["blob"]["requests"].values()) == 0, f"{case}: a refused configuration reached storage"


@pytest.mark.parametrize(("case", "mutate", "warned"), LENIENT_CASES, ids=[c[0] for c in LENIENT_CASES])
def test_what_the_powershell_factory_accepted_runs_with_a_warning(
    connected: LocalAzure, tmp_path: Path, case: str, mutate: Mutation, warned: tuple[str, ...]
) -> None:
    cfg = copy_config(tmp_path / "Configuration")
    mutate(cfg)
    summary = tasks.validate_config(_run(VALID_PARAMS, cfg))
    for part in warned:
        assert any(part in w for w in summary["warnings"]), f"{part!r} not warned: {summary['warnings']}"
    before = connected.state()
    result = tasks.make_plan(_run({**VALID_PARAMS, "dry_run": True}, cfg))
    assert connected.state() == before, f"{case}: planning changed Azure"
    skipped = {(s.lab_name, s.image_path): s.detail for s in result.skipped}
    if case == "lab-path-no-match":
        # DevLab gets nothing for Win2019 and still gets Ubuntu; the plan table says why
        assert skipped[("DevLab", "Win2019")].endswith("it selects no golden image file under GoldenImages")
        ubuntu_planned = any(p.lab_name == "DevLab" and p.image_path.startswith("Ubuntu/") for p in result.pairs)
        assert ubuntu_planned or skipped[("DevLab", "Ubuntu")] == "no catalogued image matches this ImagePath"


@pytest.mark.parametrize(("case", "params", "expected"), PARAM_CASES, ids=[c[0] for c in PARAM_CASES])
def test_params_that_do_not_match_the_configuration_are_refused(
    connected: LocalAzure, tmp_path: Path, case: str, params: dict[str, Any], expected: tuple[str, ...]
) -> None:
    cfg = copy_config(tmp_path / "Configuration")
    before = connected.state()
    connected.post("/reset-stats", {})
    _assert_refused_everywhere(cfg, {**VALID_PARAMS, **params}, expected)
    assert connected.state() == before, f"{case}: Azure changed"
    assert sum(connected.stats()["arm"]["requests"].values()) == 0


def test_config_dir_that_does_not_exist_is_refused(connected: LocalAzure, tmp_path: Path) -> None:
    missing = tmp_path / "nowhere"
    message = _refused(lambda: tasks.validate_config(_run(VALID_PARAMS, missing)))
    assert str(missing) in message


def test_config_dir_from_the_environment_is_the_one_refused(
    connected: LocalAzure, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Without ``folder`` the task reads IMAGE_FACTORY_CONFIG_DIR, as in the DAG."""
    cfg = copy_config(tmp_path / "Configuration")
    _lab0("LabName", "Dev Lab!")(cfg)
    monkeypatch.setenv("IMAGE_FACTORY_CONFIG_DIR", str(cfg))
    message = _refused(lambda: tasks.validate_config(_run(VALID_PARAMS)))
    assert str(cfg / "labs.json") in message and "Labs[0].LabName" in message
    assert os.environ["IMAGE_FACTORY_CONFIG_DIR"] == str(cfg)


# --------------------------------------------------------------------------------------------------------
# the real stack: REST params and labs the principal cannot use


@pytest.fixture(scope="module")
def access_stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Stack]:
    """A stack whose world adds ReaderLab (Reader only) and ForeignLab (no access), and whose labs.json also
    names GhostLab (exists nowhere). Unpausing runs the nightly slot: that run is the access drill."""
    root = tmp_path_factory.mktemp("access")
    world = access_world(root)
    cfg = copy_config(root / "Configuration")
    access_labs(cfg)
    with drill_stack(root, world=world, config_dir=cfg) as stack:
        yield stack


REST_400_CASES: list[tuple[str, dict[str, Any]]] = [
    ("labs-string", {"labs": "DevLab"}),
    ("labs-numbers", {"labs": [1, 2]}),
    ("paths-object", {"image_paths": {"Win2016": True}}),
    ("capture-string", {"capture": "yes"}),
    ("dry-run-number", {"dry_run": 1}),
    ("poll-zero", {"copy_poll_seconds": 0}),
    ("poll-string", {"copy_poll_seconds": "15"}),
    ("poll-float", {"copy_poll_seconds": 1.5}),
    ("labs-huge", {"labs": [f"Lab{i}" for i in range(20_000)]}),
    ("paths-huge-string", {"image_paths": ["x" * 100_000]}),
]


@pytest.mark.drill
def test_rest_trigger_with_bad_params_is_refused_with_400(access_stack: Stack) -> None:
    before_runs = len(access_stack.client.dag_runs(DAG_ID))
    before = access_stack.azure.state()
    accepted = []
    for case, conf in REST_400_CASES:
        try:
            run_id = access_stack.client.trigger(DAG_ID, conf=conf)
        except AirflowApiError as exc:
            assert ": 400 " in str(exc), f"{case}: {exc}"
            continue
        accepted.append(f"{case} -> run {run_id}")
    assert accepted == [], "the api-server accepted params that break the DAG's schema"
    assert len(access_stack.client.dag_runs(DAG_ID)) == before_runs
    assert access_stack.azure.state() == before


@pytest.mark.drill
@pytest.mark.timeout(900)
def test_unknown_lab_or_path_in_params_fails_at_validate_config_naming_them(access_stack: Stack) -> None:
    before = access_stack.azure.state()
    run_id, run = run_to_end(access_stack, {"labs": ["NoSuchLab"], "image_paths": ["Win2019"]}, timeout=300)
    assert run["state"] == "failed"
    assert task_states(access_stack, run_id, "validate_config") == ["failed"]
    log = task_log(access_stack, run_id, "validate_config")
    assert "NoSuchLab" in log and "Win2019" in log, log[-2000:]
    assert access_stack.azure.state() == before


def task_log(stack: Stack, run_id: str, task_id: str) -> str:
    """Return the text of every log file of one task (all map indexes and tries) in one run."""
    root = stack.airflow.settings.home / "task-logs"
    return "\n".join(
        p.read_text(errors="replace")
        for p in sorted(root.rglob("*"))
        if p.is_file() and f"run_id={run_id}" in str(p) and f"task_id={task_id}" in str(p)
    )


@pytest.mark.drill
@pytest.mark.timeout(1200)
def test_labs_without_access_fail_clearly_and_the_others_complete(access_stack: Stack) -> None:
    runs = [r for r in access_stack.client.dag_runs(DAG_ID) if r.get("run_type") == "scheduled"]
    assert runs, "unpausing schedules the nightly run"
    run_id = str(runs[0]["dag_run_id"])
    assert runs[0]["state"] == "failed", "a lab the factory cannot write to must fail the run"
    state = access_stack.azure.state()
    images = invariants.lab_images(state)
    for lab in ("DevLab", "TestLab", "QALab"):
        assert images[lab], f"{lab} must be complete despite the broken labs"
    assert images[READER_LAB["name"]] == [] and images[FOREIGN_LAB["name"]] == []
    report = verify_report(access_stack, run_id)
    assert report is not None
    problems = "\n".join(report["problems"])
    assert READER_LAB["name"] in problems, f"verify must name the lab it could not write to:\n{problems}"
    cells = report["matrix"]["cells"]
    for lab, why in ((FOREIGN_LAB["name"], "lab forbidden"), (GHOST_LAB["name"], "lab not_found")):
        cell = cells[lab]["Ubuntu/Ubuntu2204.json"]
        assert cell["state"] == "skipped" and cell["detail"].startswith(why), f"verify must explain {lab}: {cell}"
        assert lab in report["plan_table"], "the plan names the skipped lab"
        assert any(p.startswith(f"{lab}: ") for p in report["problems"]), f"a lab it cannot read is a problem: {lab}"
    assert not any(p.startswith(("DevLab", "TestLab", "QALab")) for p in report["problems"]), problems
    invariants.assert_invariants(state, report)
    distribute_log = task_log(access_stack, run_id, "distribute")
    assert "may not" in distribute_log and "DevTest Labs User" in distribute_log, "ReaderLab's 403 says what to fix"
