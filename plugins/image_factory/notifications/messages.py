"""What people are told: one message for a failed run, one for labs that became stale or behind (pure).

Each message names the labs and says what to do. :func:`render` turns it into the notifier's body: HTML for an
e-mail (escaped, preformatted), plain text for chat notifiers.
"""

from __future__ import annotations

import html
import json
import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from image_factory.notifications.settings import BodyFormat

#: States of a task instance that mean "this task failed" (an upstream_failed task only follows one).
FAILED_STATES = frozenset({"failed"})
_MAPPED_KEY = re.compile(r"^(?P<task>.+)_(?P<index>\d+)$")


@dataclass(frozen=True)
class Message:
    """A subject and a plain-text body."""

    subject: str
    body: str


@dataclass(frozen=True)
class FailedTask:
    """One failed task instance of a run: its task id, map index (-1 unmapped) and what it worked on."""

    task_id: str
    map_index: int = -1
    label: str = ""

    @property
    def lab(self) -> str | None:
        """The lab a ``<lab> / <image>`` task worked on (distribute, distribute_regional, retire.delete)."""
        lab, sep, _ = self.label.partition(" / ")
        return lab.strip() or None if sep else None

    def to_dict(self) -> dict[str, Any]:
        return {"task_id": self.task_id, "map_index": self.map_index, "label": self.label}

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> FailedTask:
        return cls(str(data["task_id"]), int(data.get("map_index", -1)), str(data.get("label", "")))


def failed_tasks(
    states: Mapping[str, Any], labels: Mapping[str, Sequence[str]], *, ignore: Iterable[str] = ()
) -> list[FailedTask]:
    """Return the failed task instances of one run from Airflow's task states (``task_id`` or ``task_id_<n>``).

    ``labels`` gives, per mapped task id, what each map index worked on (``<lab> / <image>``, a VM name).
    """
    skip = set(ignore)
    found: list[FailedTask] = []
    for key, state in states.items():
        if str(state) not in FAILED_STATES:
            continue
        task_id, index = key, -1
        mapped = _MAPPED_KEY.match(key)
        if mapped and key not in labels and mapped["task"] in labels:
            task_id, index = mapped["task"], int(mapped["index"])
        if task_id in skip:
            continue
        names = labels.get(task_id, ())
        found.append(FailedTask(task_id, index, names[index] if 0 <= index < len(names) else ""))
    return sorted(found, key=lambda t: (t.task_id, t.map_index))


def labs_of(tasks: Iterable[FailedTask]) -> list[str]:
    """Return the labs the failed tasks worked on, sorted, once each."""
    return sorted({t.lab for t in tasks if t.lab}, key=str.casefold)


def _task_line(task: FailedTask) -> str:
    where = f" [{task.label}]" if task.label else (f" [{task.map_index}]" if task.map_index >= 0 else "")
    return f"  - {task.task_id}{where}"


def failed_run_message(
    dag_id: str, run_id: str, tasks: Sequence[FailedTask] | None, *, reason: str = "", url: str = ""
) -> Message:
    """The message of a failed run: which tasks and labs, and what to do (``tasks`` None: they are not known)."""
    labs = labs_of(tasks or ())
    about = f": {', '.join(labs)}" if labs else ""
    lines = [f"The image factory run {run_id} ({dag_id}) failed" + (f" ({reason})." if reason else ".")]
    if url:
        lines.append(f"Run: {url}")
    lines.append("")
    if tasks:
        lines += ["Failed tasks:", *(_task_line(t) for t in tasks), ""]
    elif tasks is None:
        lines += ["Which tasks failed is not known here: see the run's Grid view.", ""]
    else:
        lines += ["No failed task was found: the run may have timed out or been marked failed by hand.", ""]
    if labs:
        lines.append(f"Labs concerned: {', '.join(labs)}")
        lines.append("")
    lines.append("What to do:")
    lines.append("  1. Open each failed task's log (the run's Grid view) and fix what it names.")
    if labs:
        lines.append(
            f"  2. Clear the failed tasks, or trigger {dag_id} with labs={json.dumps(labs)} (a dry run first):"
            " what a lab already has is skipped."
        )
    else:
        lines.append(f"  2. Clear the failed tasks, or trigger {dag_id} again: what is done is skipped.")
    return Message(f"Image Factory: run {run_id} failed{about}", "\n".join(lines))


@dataclass(frozen=True)
class LabAlert:
    """A lab that needs attention: ``stale`` (older than the freshness target) or ``behind`` the catalogue."""

    lab: str
    state: str
    detail: str = ""

    @property
    def key(self) -> str:
        return f"{self.lab.casefold()}:{self.state}"


def fleet_message(dag_id: str, alerts: Sequence[LabAlert], *, new: Iterable[str] = (), url: str = "") -> Message:
    """The message naming the labs that are stale or behind (``new``: keys of the alerts not told before)."""
    fresh = set(new)
    labs = sorted({a.lab for a in alerts}, key=str.casefold)
    by_state: dict[str, list[LabAlert]] = {}
    for alert in sorted(alerts, key=lambda a: (a.state, a.lab.casefold())):
        by_state.setdefault(alert.state, []).append(alert)
    what = "; ".join(f"{state}: {', '.join(a.lab for a in items)}" for state, items in sorted(by_state.items()))
    lines = [f"{len(labs)} lab(s) need attention ({what})."]
    if url:
        lines.append(f"Fleet: {url}")
    titles = {
        "stale": "Stale (their newest image is older than FreshnessDays)",
        "behind": "Behind the catalogue (an image version they should have is not there)",
    }
    for state, items in sorted(by_state.items()):
        lines += ["", f"{titles.get(state, state.capitalize())}:"]
        for alert in items:
            mark = " (new)" if alert.key in fresh else ""
            lines.append(f"  - {alert.lab}{mark}" + (f": {alert.detail}" if alert.detail else ""))
    lines += [
        "",
        "What to do:",
        f"  1. Catch the labs up: trigger {dag_id} with labs={json.dumps(labs)} and dry_run=true to see the plan,"
        " then without dry_run (or use 'Catch up this lab' in the Image Factory view).",
        "  2. If a lab stays behind, read the distribute task of that lab in the last run: access, quota or a"
        " deleted lab are named there.",
        "  3. Stale everywhere: the golden image VMs were not changed or not captured; update them in the factory"
        " lab (the next run captures what changed).",
    ]
    return Message(f"Image Factory: {len(labs)} lab(s) stale or behind: {', '.join(labs)}", "\n".join(lines))


def render(message: Message, fmt: BodyFormat, *, with_subject: bool = False) -> str:
    """Return the body to hand a notifier: escaped preformatted HTML, or plain text."""
    text = f"{message.subject}\n\n{message.body}" if with_subject else message.body
    if fmt == "html":
        return f'<pre style="font-family: monospace">{html.escape(text)}</pre>'
    return text
