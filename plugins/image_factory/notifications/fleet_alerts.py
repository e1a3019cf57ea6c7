"""Tell people when a lab *becomes* stale or behind: once, in one message naming every such lab and what to do.

The labs' states come from the fleet model (:mod:`image_factory.fleet.model`, ``stale_labs`` / ``behind_labs``)
built from the snapshot verify hands over. What people were already told is an Airflow Variable (every host sees
it): a lab that stays behind night after night is named once; one that recovers and falls behind again is named
again. A run with ``labs=[…]`` only changes what it knows of those labs.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable, Mapping, Sequence
from typing import TYPE_CHECKING, Any

from image_factory.fleet.model import behind_labs, build_fleet, stale_labs
from image_factory.fleet.rows import Fleet, LabRow
from image_factory.fleet.snapshot import FLEET_XCOM_KEY, VERIFY_TASK_ID
from image_factory.notifications.messages import LabAlert, fleet_message
from image_factory.notifications.settings import NotificationSettings

if TYPE_CHECKING:
    from image_factory.run_context import RunContext

log = logging.getLogger(__name__)

#: The Airflow Variable holding what people were told: ``{"<lab>:<state>": "<run_id>"}``.
TOLD_VARIABLE = "image_factory_lab_alerts"


def _details(row: LabRow, states: Sequence[str]) -> str:
    cells = [c for c in row.cells if c.state in states or ("behind" in states and c.behind and c.state != "stale")]
    return "; ".join(f"{c.image_path}: {c.state}" + (f" ({c.detail})" if c.detail else "") for c in cells)


def alerts_of(fleet: Fleet) -> list[LabAlert]:
    """Return one alert per lab and kind: ``stale`` (stale_labs) and ``behind`` (behind_labs) of the fleet."""
    read = [row for row in fleet.labs if row.status != "unknown"]
    names = {row.name for row in read}
    out = [LabAlert(row.name, "stale", _details(row, ["stale"])) for row in stale_labs(fleet) if row.name in names]
    out += [
        LabAlert(row.name, "behind", _details(row, ["failed", "missing", "behind"]))
        for row in behind_labs(fleet)
        if row.name in names
    ]
    return out


def newly_told(
    told: Mapping[str, str], alerts: Iterable[LabAlert], inventoried: Iterable[str], run_id: str
) -> tuple[list[str], dict[str, str]]:
    """Return the alert keys not told before, and what is told after this run (pure).

    Only the ``inventoried`` labs' entries change: their alerts replace what was recorded for them.
    """
    mine = {lab.casefold() for lab in inventoried}
    current = {a.key: a for a in alerts}
    new = sorted(k for k in current if k not in told)
    kept = {k: v for k, v in told.items() if k.partition(":")[0] not in mine}
    return new, {**kept, **{k: told.get(k, run_id) for k in current}}


def _snapshot(run: RunContext) -> Mapping[str, Any] | None:
    snapshot = run.xcom().xcom_pull(task_ids=VERIFY_TASK_ID, key=FLEET_XCOM_KEY)
    return snapshot if isinstance(snapshot, Mapping) else None


def notify_labs(run: RunContext, context: Mapping[str, Any]) -> dict[str, Any]:
    """Send one message when labs became stale or behind in this run's verify; return what was told."""
    from airflow.sdk import Variable  # noqa: PLC0415 - only inside a task

    from image_factory.notifications.send import send, ui_url  # noqa: PLC0415

    snapshot = _snapshot(run)
    if snapshot is None or run.params.dry_run:
        log.info("No lab alert: %s", "dry run" if snapshot is not None else "verify handed over no fleet snapshot")
        return {"new": [], "alerts": []}
    settings = NotificationSettings.from_document(run.config.factory.notifications)
    wanted = [a for a in alerts_of(build_fleet([snapshot])) if settings is None or a.state in settings.events]
    told = Variable.get(TOLD_VARIABLE, default={}, deserialize_json=True)
    inventoried = [str(lab.get("name", "")) for lab in snapshot.get("labs", ())]
    new, after = newly_told(told if isinstance(told, dict) else {}, wanted, inventoried, run.run_id)
    summary = {"new": new, "alerts": [f"{a.lab}: {a.state}" for a in wanted]}
    if settings is None:
        log.warning("Labs stale or behind: %s; nobody is told (no Notifications in factory.json)", summary["alerts"])
        return summary
    if new:
        dag_id = str(getattr(context.get("dag"), "dag_id", "") or "image_factory")
        url = ui_url("dags", dag_id, "runs", run.run_id)
        send(settings, fleet_message(dag_id, wanted, new=new, url=url), context)
    else:
        log.info("No lab became stale or behind%s", f" (still: {', '.join(summary['alerts'])})" if wanted else "")
    if after != told:
        Variable.set(TOLD_VARIABLE, after, serialize_json=True)
    return summary
