"""docker-compose.yaml: valid per the Compose Specification, and in step with what `make up` runs."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import jsonschema
import pytest
import yaml

from stack.airflow import PROCESSES, AirflowSettings, AirflowStack

REPO = Path(__file__).resolve().parents[2]
COMPOSE_SCHEMA = REPO.parent / "shared" / "specs" / "compose-spec.json"

#: Settings that legitimately differ between a laptop stack and containers: executor, database, paths, ports,
#: secrets and how connections are provided.
MACHINE_SPECIFIC = {
    "AIRFLOW__CORE__EXECUTOR",
    "AIRFLOW__CORE__PARALLELISM",
    "AIRFLOW__CORE__DAGS_FOLDER",
    "AIRFLOW__CORE__PLUGINS_FOLDER",
    "AIRFLOW__CORE__SIMPLE_AUTH_MANAGER_PASSWORDS_FILE",
    "AIRFLOW__DATABASE__SQL_ALCHEMY_CONN",
    "AIRFLOW__DATABASE__SQL_ALCHEMY_CONNECT_ARGS",
    "AIRFLOW__DATABASE__SQL_ALCHEMY_CONNECT_ARGS_ASYNC",
    "AIRFLOW__API__HOST",
    "AIRFLOW__API__PORT",
    "AIRFLOW__API__BASE_URL",
    "AIRFLOW__API_AUTH__JWT_SECRET",
    "AIRFLOW__LOGGING__WORKER_LOG_SERVER_PORT",
    "AIRFLOW__LOGGING__TRIGGER_LOG_SERVER_PORT",
    "AIRFLOW__LOGGING__BASE_LOG_FOLDER",
}


@pytest.fixture(scope="module")
def compose() -> dict[str, Any]:
    return dict(yaml.safe_load((REPO / "docker-compose.yaml").read_text()))


@pytest.fixture(scope="module")
def stack_env(tmp_path_factory: pytest.TempPathFactory) -> dict[str, str]:
    stack = AirflowStack(AirflowSettings(home=tmp_path_factory.mktemp("home"), port=8080), connections_env={})
    return stack.env()


def test_compose_file_validates_against_the_compose_specification(compose: dict[str, Any]) -> None:
    assert COMPOSE_SCHEMA.exists(), f"the Compose schema is expected beside the repo at {COMPOSE_SCHEMA}"
    schema = json.loads(COMPOSE_SCHEMA.read_text())
    jsonschema.validate(compose, schema)


def test_compose_runs_the_same_airflow_processes_as_make_up(compose: dict[str, Any]) -> None:
    commands = {name: svc.get("command") for name, svc in compose["services"].items()}
    for process in PROCESSES:
        assert process in commands.values(), f"no compose service runs `airflow {process}`"
    assert "celery worker" in commands.values()
    init = " ".join(compose["services"]["airflow-init"]["command"])
    assert "airflow db migrate" in init
    assert "python -m image_factory.pools" in init and "airflow pools import" in init


def test_compose_airflow_settings_match_the_local_stack(compose: dict[str, Any], stack_env: dict[str, str]) -> None:
    declared = {k: str(v) for k, v in compose["x-airflow-common"]["environment"].items()}
    ours = {k: v for k, v in stack_env.items() if k.startswith("AIRFLOW__") and k not in MACHINE_SPECIFIC}
    assert ours, "the stack sets Airflow options"
    mismatched = {k: (v, declared.get(k)) for k, v in ours.items() if declared.get(k) != v}
    assert not mismatched, f"compose differs from `make up` (stack value, compose value): {mismatched}"
    for key in ("IMAGE_FACTORY_CONFIG_DIR", "IMAGE_FACTORY_REPORT_DIR"):
        assert key in declared


def test_compose_mounts_the_project_folders(compose: dict[str, Any]) -> None:
    mounts = compose["x-airflow-common"]["volumes"]
    for folder in ("./dags", "./plugins", "./Configuration"):
        assert any(m.startswith(f"{folder}:") for m in mounts), folder
