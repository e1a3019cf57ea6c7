"""Asset events per ImagePath: which versions a run distributed, to which labs, with size and footer digest."""

from __future__ import annotations

from typing import Any

from image_factory import assets
from image_factory.models import ImageVersion, Pair, Plan, SkippedPair
from image_factory.run_context import RunContext, RunParams

DATACENTER = "Win2016/Datacenter.json"
UBUNTU = "Ubuntu/Ubuntu2204.json"


def pair(lab: str, path: str, version: str = "2026-12-01") -> Pair:
    name = path.replace("/", "_").removesuffix(".json")
    return Pair(lab, "sub", f"rg-{lab}", "westeurope", name, path, version, f"{name}.vhd", "Windows", True)


def done(p: Pair, action: str = "created") -> dict[str, Any]:
    return {"lab": p.lab_name, "image_name": p.image_name, "version": p.version, "action": action}


CATALOGUE = [
    ImageVersion("Win2016_Datacenter", DATACENTER, "2026-12-01", "Win2016_Datacenter.vhd", "Windows", True,
                 size_bytes=1024, footer_sha256="ab" * 32),
]  # fmt: skip


def test_an_asset_per_image_path_any_spelling() -> None:
    asset = assets.image_asset("win2016\\Datacenter.json")
    assert asset.name == "image_factory/win2016/Datacenter.json"
    assert asset.uri == "imagefactory://catalogue/win2016/Datacenter.json"
    spaced = assets.image_asset("Win2012R2/VS2015 Enterprise with Azure SDK.json")
    assert spaced.uri == "imagefactory://catalogue/Win2012R2/VS2015%20Enterprise%20with%20Azure%20SDK.json"


def test_one_release_per_version_with_the_labs_that_hold_it() -> None:
    dev, qa, test_ub = pair("DevLab", DATACENTER), pair("QALab", DATACENTER), pair("TestLab", UBUNTU)
    skipped = [SkippedPair("StagingLab", DATACENTER, "already_present", "", "2026-12-01")]
    [release] = assets.releases([dev, qa, test_ub], [done(dev), None], skipped, CATALOGUE)
    assert release.image_path == DATACENTER and release.version == "2026-12-01"
    assert release.labs_done == ("DevLab", "StagingLab")
    assert release.labs_failed == ("QALab",)
    assert (release.size_bytes, release.footer_sha256) == (1024, "ab" * 32)
    extra = release.event_extra("scheduled__x")
    assert extra["labs_done"] == ["DevLab", "StagingLab"] and extra["run_id"] == "scheduled__x"


def test_nothing_distributed_is_no_release() -> None:
    dev = pair("DevLab", DATACENTER)
    assert assets.releases([dev], [], [], CATALOGUE) == []
    assert assets.releases([dev], [{**done(dev), "action": "weird"}], [], CATALOGUE) == []


def test_a_result_stored_as_json_text_counts() -> None:
    import json

    dev = pair("DevLab", DATACENTER)
    [release] = assets.releases([dev], [json.dumps(done(dev)), "not json"], [], CATALOGUE)
    assert release.labs_done == ("DevLab",)


class FakeTi:
    def __init__(self, plan: Plan, regional: list[dict[str, Any]], results: list[Any]) -> None:
        direct = [p.to_dict() for p in plan.pairs if p.to_dict() not in regional]
        self.data = {("plan", "plan"): plan.to_dict(), ("plan", "regional"): regional, ("plan", "return_value"): direct}
        self.waves = {"distribute": results[: len(direct)], "distribute_regional": results[len(direct) :]}

    def xcom_pull(self, task_ids: Any = None, key: str = "return_value", map_indexes: Any = None) -> Any:
        if task_ids in self.waves:
            values = self.waves[task_ids]
            assert map_indexes == list(range(len(values)))
            return values
        return self.data.get((task_ids, key))

    def xcom_push(self, key: str, value: Any) -> None:
        raise AssertionError("announce pushes nothing")


class Events:
    """``outlet_events``: what was added, per alias."""

    def __init__(self) -> None:
        self.added: list[tuple[str, dict[str, Any]]] = []

    def __getitem__(self, alias: Any) -> Events:
        assert alias == assets.IMAGES
        return self

    def add(self, asset: Any, extra: dict[str, Any]) -> None:
        self.added.append((asset.name, extra))


def run_with(ti: FakeTi, **params: Any) -> RunContext:
    run = RunContext(RunParams(**params), day="2026-12-01", run_id="r1", ti=ti)
    return run


def test_announce_adds_an_event_per_release_through_the_alias(monkeypatch: Any) -> None:
    dev, qa = pair("DevLab", DATACENTER), pair("QALab", DATACENTER)
    ti = FakeTi(Plan(pairs=(dev, qa)), [qa.to_dict()], [done(dev), done(qa, "present")])
    monkeypatch.setattr("image_factory.tasks.read_catalogue", lambda run: type("C", (), {"images": CATALOGUE}))
    events = Events()
    extras = assets.announce(run_with(ti), events)
    assert events.added == [("image_factory/Win2016/Datacenter.json", extras[0])]
    assert extras[0]["labs_done"] == ["DevLab", "QALab"] and extras[0]["footer_sha256"] == "ab" * 32


def test_a_dry_run_announces_nothing(monkeypatch: Any) -> None:
    dev = pair("DevLab", DATACENTER)
    monkeypatch.setattr("image_factory.tasks.read_catalogue", lambda run: (_ for _ in ()).throw(AssertionError))
    events = Events()
    assert assets.announce(run_with(FakeTi(Plan(pairs=(dev,)), [], [done(dev)]), dry_run=True), events) == []
    assert assets.announce(run_with(FakeTi(Plan(), [], [])), events) == []
    assert events.added == []
