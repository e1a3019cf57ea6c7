"""Tell people through an Airflow notifier: the one factory.json names (``SmtpNotifier`` by default).

:class:`FailedRunNotifier` is the DAG's ``on_failure_callback`` (run by the dag-processor, or by ``dag.test``):
it reads which tasks failed from what the ``outcome`` task handed over (:func:`collect_failures`) and sends one
message naming them and their labs. :func:`send` is what the fleet alert task uses too.
"""

from __future__ import annotations

import importlib
import logging
from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any
from urllib.parse import quote

from airflow.sdk import BaseNotifier

from image_factory.notifications.messages import FailedTask, Message, failed_run_message, failed_tasks, render
from image_factory.notifications.settings import NotificationSettings

if TYPE_CHECKING:
    from airflow.sdk import Context

log = logging.getLogger(__name__)

#: The task that runs (and fails the run) when any task failed; it hands the failures over under this key.
OUTCOME_TASK_ID = "outcome"
FAILURES_XCOM_KEY = "failures"


def _raw(text: str) -> str:
    """Protect ``text`` from the notifier's Jinja rendering (every BaseNotifier renders its template fields)."""
    return "{% raw %}" + text.replace("{% endraw %}", "{ % endraw % }") + "{% endraw %}"


def make_notifier(settings: NotificationSettings, message: Message) -> BaseNotifier:
    """Instantiate the configured notifier with its arguments and the message (subject + body)."""
    module, _, name = settings.notifier.rpartition(".")
    cls = getattr(importlib.import_module(module), name, None)
    if not (isinstance(cls, type) and issubclass(cls, BaseNotifier)):
        raise TypeError(f"Notifications.Notifier {settings.notifier!r} is not an Airflow notifier (BaseNotifier)")
    kwargs: dict[str, Any] = dict(settings.arguments)
    if settings.subject_argument:
        kwargs[settings.subject_argument] = _raw(message.subject)
    body = render(message, settings.body_format, with_subject=settings.subject_argument is None)
    kwargs[settings.body_argument] = _raw(body)
    return cls(**kwargs)


def send(settings: NotificationSettings, message: Message, context: Context | Mapping[str, Any]) -> None:
    """Send ``message`` with the configured notifier (its errors propagate: the caller decides)."""
    notifier = make_notifier(settings, message)
    log.info("Notifying through %s: %s", settings.notifier, message.subject)
    notifier(_renderable(context))


def _renderable(context: Context | Mapping[str, Any]) -> Any:
    """Return ``context`` for a notifier's Jinja rendering: without a ``dag`` that cannot template.

    ``dag.test()`` hands DAG callbacks the scheduler's serialized DAG, which has no template environment.
    """
    dag = context.get("dag")
    if dag is None or hasattr(dag, "get_template_env"):
        return context
    return {k: v for k, v in context.items() if k != "dag"}


def ui_url(*parts: str) -> str:
    """Return the Airflow UI's address of ``/dags/<parts...>`` ([api] base_url), or "" when unknown."""
    from airflow.sdk.configuration import conf  # noqa: PLC0415

    base = str(conf.get("api", "base_url", fallback="") or "").rstrip("/")
    return f"{base}/{'/'.join(quote(p, safe='') for p in parts)}" if base else ""


def _labels(ti: Any) -> dict[str, list[str]]:
    """Per mapped task id, what each map index worked on, from what the upstream steps handed over."""

    def pulled(task_id: str, key: str | None = None) -> list[Any]:
        value = ti.xcom_pull(task_ids=task_id, key=key) if key else ti.xcom_pull(task_ids=task_id)
        return list(value) if isinstance(value, list) else []

    def pair(p: Any) -> str:
        return f"{p.get('lab_name', '?')} / {p.get('image_name', '?')}" if isinstance(p, Mapping) else ""

    return {
        "distribute": [pair(p) for p in pulled("plan")],
        "distribute_regional": [pair(p) for p in pulled("plan", "regional")],
        "capture.capture_vm": [
            str(j.get("vm_name", "")) if isinstance(j, Mapping) else "" for j in pulled("capture.list_factory_vms")
        ],
        # Only a lab's custom image names a lab ("<lab> / <image>"); catalogue versions and factory VMs do not.
        "retire.delete": [
            f"{d.get('where')}{' / ' if d.get('kind') == 'custom_image' else ': '}{d.get('name')}"
            if isinstance(d, Mapping)
            else ""
            for d in pulled("retire.decide")
        ],
    }


def collect_failures(context: Context | Mapping[str, Any]) -> list[FailedTask]:
    """Inside a task of the run: return the run's failed tasks, named, and hand them to the failure callback."""
    ti = context["ti"]
    dag_run = context["dag_run"]
    try:
        states = ti.get_task_states(dag_id=dag_run.dag_id, run_ids=[dag_run.run_id]).get(dag_run.run_id, {})
        found = failed_tasks(states, _labels(ti), ignore=[OUTCOME_TASK_ID])
    except Exception:  # the run must fail as it should even when the names cannot be read
        log.warning("Could not read which tasks failed; the failure message names none", exc_info=True)
        return []
    ti.xcom_push(key=FAILURES_XCOM_KEY, value=[t.to_dict() for t in found])
    return found


def outcome_message(failed: Sequence[FailedTask]) -> str:
    """The ``outcome`` task's failure: the run's failed tasks by id and what they worked on."""
    names = ", ".join(t.task_id + (f" [{t.label}]" if t.label else "") for t in failed) or "see the Grid view"
    return f"a task of this run failed ({names}): see its log and verify's report"


class FailedRunNotifier(BaseNotifier):
    """The DAG's ``on_failure_callback``: one message naming the failed tasks, their labs and what to do.

    :param settings: factory.json's ``Notifications`` (None: nobody is told; the failure is only logged).
    """

    def __init__(self, settings: NotificationSettings | None) -> None:
        super().__init__()
        self.settings = settings

    def render_template_fields(self, context: Context, jinja_env: Any = None) -> None:
        """Render nothing: this notifier has no template fields (the configured one renders its own)."""

    def notify(self, context: Context) -> None:
        """Build the message from the run's context and send it through the configured notifier."""
        settings = self.settings
        if settings is None or not settings.wants("run_failed"):
            log.info("No notification configured for a failed run (factory.json Notifications)")
            return
        dag = context.get("dag")
        dag_id = str(getattr(dag, "dag_id", "") or "image_factory")
        run_id = str(context.get("run_id") or getattr(context.get("dag_run"), "run_id", "") or "?")
        tasks = self._failures(context)
        reason = str(context.get("reason") or "")
        message = failed_run_message(dag_id, run_id, tasks, reason=reason, url=ui_url("dags", dag_id, "runs", run_id))
        send(settings, message, context)

    @staticmethod
    def _failures(context: Mapping[str, Any]) -> Sequence[FailedTask] | None:
        """Return what ``outcome`` handed over, or None when it cannot be read (the message then says so)."""
        ti = context.get("ti")
        try:
            handed = ti.xcom_pull(task_ids=OUTCOME_TASK_ID, key=FAILURES_XCOM_KEY) if ti is not None else None
        except Exception:  # the callback must still tell someone, even without the names
            log.warning("Could not read which tasks failed; the message names none", exc_info=True)
            return None
        if not isinstance(handed, list):
            return None
        return [FailedTask.from_dict(t) for t in handed if isinstance(t, Mapping)]
