"""Where the api-server finds the fleet: verify's snapshots and the task states, in Airflow's metadata database.

Read through Airflow's ORM models (``XComModel``, ``TaskInstance``, ``DagRun``) in the api-server's own session,
so every deployment (LocalExecutor on one host, Celery on several) shows the same fleet; nothing is read from a
host's files. The API talks to the :class:`FleetStore` protocol so that its tests can hand it a fake.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from types import SimpleNamespace
from typing import TYPE_CHECKING, Any, Protocol

from image_factory.fleet.snapshot import DISTRIBUTE_TASK_IDS, FLEET_XCOM_KEY, VERIFY_TASK_ID
from image_factory.settings import DAG_ID
from image_factory.tasks import PLAN_TASK_ID, PLAN_XCOM_KEY

if TYPE_CHECKING:
    from sqlalchemy.orm import Session

#: How many snapshots are read per query while looking for the labs the newer ones did not inventory.
BATCH = 5
#: The most snapshots read for one fleet (runs with ``labs=[…]`` each cover a few labs only).
MAX_SNAPSHOTS = 200


@dataclass(frozen=True)
class RunInfo:
    """One run of the factory DAG as the catch-up action needs it: its state, conf and planned pairs."""

    run_id: str
    state: str
    conf: dict[str, Any] = field(default_factory=dict)
    #: The labels (``<lab> / <image>``) of the pairs its plan chose; None while the plan has not run.
    planned: list[str] | None = None


class FleetStore(Protocol):
    """What the plugin's API reads."""

    def snapshots(self) -> list[dict[str, Any]]:
        """Return verify's snapshots newest first, as many as it takes to cover every lab (bounded)."""
        ...

    def task_states(self, run_ids: Iterable[str]) -> dict[tuple[str, str, int], str]:
        """Return (run_id, task_id, map_index) → state of the distribute tasks of those runs."""
        ...

    def run_states(self, run_ids: Iterable[str]) -> dict[str, str]:
        """Return run_id → state of those runs."""
        ...

    def run(self, run_id: str) -> RunInfo | None:
        """Return one run of the factory DAG, or None when there is no such run."""
        ...


def _decoded(value: Any) -> Any:
    from airflow.models.xcom import XComModel  # noqa: PLC0415 - the ORM only in the api-server

    return XComModel.deserialize_value(SimpleNamespace(value=value))


def covers_every_lab(snapshots: Sequence[dict[str, Any]]) -> bool:
    """Tell whether the snapshots (newest first) inventoried every lab the newest one lists."""
    if not snapshots:
        return False
    wanted = {str(lab["name"]).casefold() for lab in snapshots[0].get("all_labs", ())}
    for snapshot in snapshots:
        wanted -= {str(lab["name"]).casefold() for lab in snapshot.get("labs", ())}
    return not wanted


class OrmFleetStore:
    """The FleetStore of the api-server: Airflow's ORM on the request's session."""

    def __init__(self, session: Session, dag_id: str = DAG_ID) -> None:
        self.session = session
        self.dag_id = dag_id

    def snapshots(self) -> list[dict[str, Any]]:
        from airflow.models.xcom import XComModel  # noqa: PLC0415 - the ORM only in the api-server
        from sqlalchemy import select  # noqa: PLC0415

        query = (
            select(XComModel.value)
            .where(
                XComModel.dag_id == self.dag_id,
                XComModel.task_id == VERIFY_TASK_ID,
                XComModel.key == FLEET_XCOM_KEY,
                XComModel.map_index == -1,
            )
            .order_by(XComModel.timestamp.desc())
        )
        found: list[dict[str, Any]] = []
        for offset in range(0, MAX_SNAPSHOTS, BATCH):
            values = self.session.scalars(query.offset(offset).limit(BATCH)).all()
            found.extend(doc for doc in map(_decoded, values) if isinstance(doc, dict))
            if len(values) < BATCH or covers_every_lab(found):
                break
        return found

    def task_states(self, run_ids: Iterable[str]) -> dict[tuple[str, str, int], str]:
        from airflow.models.taskinstance import TaskInstance  # noqa: PLC0415
        from sqlalchemy import select  # noqa: PLC0415

        ids = sorted(set(run_ids))
        if not ids:
            return {}
        rows = self.session.execute(
            select(TaskInstance.run_id, TaskInstance.task_id, TaskInstance.map_index, TaskInstance.state).where(
                TaskInstance.dag_id == self.dag_id,
                TaskInstance.run_id.in_(ids),
                TaskInstance.task_id.in_(DISTRIBUTE_TASK_IDS),
            )
        ).all()
        return {(r[0], r[1], int(r[2])): str(r[3]) for r in rows if r[3] is not None}

    def run_states(self, run_ids: Iterable[str]) -> dict[str, str]:
        from airflow.models.dagrun import DagRun  # noqa: PLC0415
        from sqlalchemy import select  # noqa: PLC0415

        ids = sorted(set(run_ids))
        if not ids:
            return {}
        rows = self.session.execute(
            select(DagRun.run_id, DagRun.state).where(DagRun.dag_id == self.dag_id, DagRun.run_id.in_(ids))
        ).all()
        return {str(r[0]): str(r[1]) for r in rows}

    def run(self, run_id: str) -> RunInfo | None:
        from airflow.models.dagrun import DagRun  # noqa: PLC0415
        from airflow.models.xcom import XComModel  # noqa: PLC0415
        from sqlalchemy import select  # noqa: PLC0415

        row = self.session.execute(
            select(DagRun.state, DagRun.conf).where(DagRun.dag_id == self.dag_id, DagRun.run_id == run_id)
        ).first()
        if row is None:
            return None
        plan = self.session.scalars(
            select(XComModel.value).where(
                XComModel.dag_id == self.dag_id,
                XComModel.run_id == run_id,
                XComModel.task_id == PLAN_TASK_ID,
                XComModel.key == PLAN_XCOM_KEY,
                XComModel.map_index == -1,
            )
        ).first()
        document = _decoded(plan) if plan is not None else None
        planned = None
        if isinstance(document, dict):
            planned = [f"{p['lab_name']} / {p['image_name']}" for p in document.get("pairs", ())]
        return RunInfo(run_id, str(row[0]), dict(row[1] or {}), planned)
