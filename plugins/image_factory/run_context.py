"""One run of the factory as every task sees it: its params parsed once, its day, its configuration.

The DAG's task bodies build a :class:`RunContext` from Airflow's context and hand it to the product's steps, so
no step reads a param by its string name, computes the run's day or loads the configuration on its own. Hooks are
made here too: the one place that imports the Azure SDKs lazily, so that parsing the DAG file stays light (a test
proves that parsing ``dags/`` imports no ``azure.mgmt`` or ``azure.storage`` module).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from functools import cached_property, wraps
from pathlib import Path
from typing import TYPE_CHECKING, Any, ParamSpec, Protocol, TypeVar

from airflow.sdk.exceptions import AirflowFailException

from image_factory import pacing, versions
from image_factory.configuration import Configuration, load_configuration
from image_factory.models import LabRef
from image_factory.settings import DEFAULT_POLL_SECONDS, config_dir

if TYPE_CHECKING:
    from image_factory.hooks.compute import FactoryComputeHook
    from image_factory.hooks.devtestlabs import DevTestLabsHook
    from image_factory.hooks.storage import FactoryStorageHook

#: Run type of the runs ``airflow backfill create`` makes (``DagRunType.BACKFILL_JOB``).
BACKFILL_RUN_TYPE = "backfill"

#: The ``build`` param's values: follow factory.json's ``Build.Enabled``, or build / do not build this run.
BUILD_FROM_CONFIG = "factory.json"
BUILD_CHOICES: dict[str, bool | None] = {BUILD_FROM_CONFIG: None, "on": True, "off": False}

P = ParamSpec("P")
R = TypeVar("R")


class XComReader(Protocol):
    """What a step needs of a task instance: its XCom (Airflow's ``RuntimeTaskInstance`` in a real run)."""

    def xcom_pull(self, task_ids: Any = ..., key: str = ..., **kwargs: Any) -> Any: ...

    def xcom_push(self, key: str, value: Any) -> None: ...


def _names(values: Any) -> tuple[str, ...]:
    if not values:
        return ()
    if isinstance(values, str):
        values = [values]
    return tuple(str(v).strip() for v in values if str(v).strip())


def _build_choice(value: Any) -> bool | str | None:
    """Return the ``build`` param as True/False/None (factory.json), or ``"?"`` when it is none of its choices."""
    if value is None or isinstance(value, bool):
        return value
    return BUILD_CHOICES.get(str(value).strip().casefold(), "?")


@dataclass(frozen=True)
class RunParams:
    """The run's params (the trigger form), parsed once.

    ``problems`` holds what could not be parsed; ``validate_config`` and ``plan`` refuse a run that has any.
    """

    labs: tuple[str, ...] = ()
    image_paths: tuple[str, ...] = ()
    #: ImagePath selectors captured even when their VM's disk is unchanged.
    recapture: tuple[str, ...] = ()
    capture: bool = True
    dry_run: bool = False
    copy_poll_seconds: int = DEFAULT_POLL_SECONDS
    retire: bool = True
    clean_factory: bool = False
    #: Build override: True/False for this run, None = factory.json's ``Build.Enabled``.
    build: bool | None = None
    #: ImagePath selectors the build is limited to (empty = every template the run would build).
    build_paths: tuple[str, ...] = ()
    problems: tuple[str, ...] = ()

    @classmethod
    def from_mapping(cls, params: Mapping[str, Any]) -> RunParams:
        """Parse Airflow's params (a missing key takes the form's default)."""
        poll = params.get("copy_poll_seconds", DEFAULT_POLL_SECONDS)
        problems: list[str] = []
        if not isinstance(poll, int) or isinstance(poll, bool) or poll < 1:
            problems.append(f"param copy_poll_seconds: {poll!r} must be an integer of at least 1")
            poll = DEFAULT_POLL_SECONDS
        build = _build_choice(params.get("build"))
        if build == "?":
            problems.append(f"param build: {params.get('build')!r} must be one of {', '.join(BUILD_CHOICES)}")
        return cls(
            labs=_names(params.get("labs")),
            image_paths=_names(params.get("image_paths")),
            recapture=_names(params.get("recapture")),
            capture=bool(params.get("capture", True)),
            dry_run=bool(params.get("dry_run", False)),
            copy_poll_seconds=poll,
            retire=bool(params.get("retire", True)),
            clean_factory=bool(params.get("clean_factory", False)),
            build=build if isinstance(build, bool) else None,  # '?' (a problem) builds nothing either way
            build_paths=_names(params.get("build_paths")),
            problems=tuple(problems),
        )

    def selects_lab(self, lab: LabRef) -> bool:
        """Tell whether the run handles ``lab`` (no ``labs`` param = every lab)."""
        return not self.labs or lab.lab_name.casefold() in {name.casefold() for name in self.labs}


@dataclass
class RunContext:
    """What every step of one run shares. Build it with :meth:`current` in a task, or directly in a test."""

    params: RunParams
    #: The run's UTC day (``versions.day_of_run``); a capture's version is this day or ``<day>.N`` after it.
    day: str
    run_id: str = "manual"
    run_type: str = ""
    folder: Path = field(default_factory=config_dir)
    ti: XComReader | None = None

    @classmethod
    def from_airflow(cls, context: Mapping[str, Any]) -> RunContext:
        """Build the context of the running task from Airflow's task context."""
        dag_run = context.get("dag_run")
        run_after = getattr(dag_run, "run_after", None) or datetime.now(UTC)
        return cls(
            params=RunParams.from_mapping(context.get("params") or {}),
            day=versions.day_of_run(context.get("logical_date"), run_after),
            run_id=str(getattr(dag_run, "run_id", "") or "manual"),
            run_type=str(getattr(dag_run, "run_type", "") or ""),
            ti=context.get("ti"),
        )

    @classmethod
    def current(cls) -> RunContext:
        """Build the context of the task running now (inside a task only)."""
        from airflow.sdk import get_current_context  # noqa: PLC0415 - only inside a running task

        return cls.from_airflow(get_current_context())

    @property
    def is_backfill(self) -> bool:
        """Tell whether this run was made by ``airflow backfill create``."""
        return self.run_type.lower().endswith(BACKFILL_RUN_TYPE)

    @cached_property
    def config(self) -> Configuration:
        """The configuration folder, loaded and validated once per task."""
        return load_configuration(self.folder)

    def selected_labs(self) -> list[LabRef]:
        """Return the labs of labs.json this run handles (the ``labs`` param, or all)."""
        return [lab for lab in self.config.labs if self.params.selects_lab(lab)]

    def xcom(self) -> XComReader:
        """Return the task instance, for XCom; a step run outside a task has none."""
        if self.ti is None:
            raise RuntimeError("this step needs a task instance (XCom): run it inside a task")
        return self.ti

    # Hooks: the factory's two connections, named in factory.json.
    def devtestlabs(self) -> DevTestLabsHook:
        """Return the DevTest Labs hook on the factory's ARM connection."""
        from image_factory.hooks.devtestlabs import DevTestLabsHook  # noqa: PLC0415 - light DAG parsing

        pacing.configure(self.config.factory.arm_budget)
        return DevTestLabsHook(arm_conn_id=self.config.factory.arm_conn_id)

    def compute(self) -> FactoryComputeHook:
        """Return the Compute hook on the factory's ARM connection (the factory VMs' managed disks)."""
        from image_factory.hooks.compute import FactoryComputeHook  # noqa: PLC0415 - light DAG parsing

        pacing.configure(self.config.factory.arm_budget)
        return FactoryComputeHook(azure_conn_id=self.config.factory.arm_conn_id)

    def storage(self) -> FactoryStorageHook:
        """Return the hook on the factory's storage account (the catalogue)."""
        from image_factory.hooks.storage import FactoryStorageHook  # noqa: PLC0415 - light DAG parsing

        return FactoryStorageHook(wasb_conn_id=self.config.factory.storage_conn_id)


def fails_fast(*errors: type[BaseException]) -> Callable[[Callable[P, R]], Callable[P, R]]:
    """Turn ``errors`` into ``AirflowFailException``: a broken configuration never fixes itself on a retry."""

    def decorate(step: Callable[P, R]) -> Callable[P, R]:
        @wraps(step)
        def run(*args: P.args, **kwargs: P.kwargs) -> R:
            try:
                return step(*args, **kwargs)
            except errors as exc:
                raise AirflowFailException(str(exc)) from exc

        return run

    return decorate
