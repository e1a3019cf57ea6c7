"""The messages' text: failed tasks named from Airflow's task states, labs, what to do; HTML escaped."""

from __future__ import annotations

from image_factory.notifications.messages import (
    FailedTask,
    Message,
    failed_run_message,
    failed_tasks,
    labs_of,
    render,
)

LABELS = {"distribute": ["DevLab / A", "QALab / B"], "capture.capture_vm": ["vm1"], "retire.delete": []}


def test_failed_tasks_from_task_states() -> None:
    states = {
        "validate_config": "success",
        "distribute_0": "success",
        "distribute_1": "failed",
        "capture.capture_vm_0": "failed",
        "verify": "failed",
        "retire.delete_3": "failed",
        "outcome": "failed",
        "announce": "upstream_failed",
    }
    found = failed_tasks(states, LABELS, ignore=["outcome"])
    assert found == [
        FailedTask("capture.capture_vm", 0, "vm1"),
        FailedTask("distribute", 1, "QALab / B"),
        FailedTask("retire.delete", 3, ""),
        FailedTask("verify"),
    ]
    assert labs_of(found) == ["QALab"]


def test_the_failed_run_message_names_labs_and_says_what_to_do() -> None:
    tasks = [FailedTask("distribute", 1, "QALab / B"), FailedTask("distribute", 0, "DevLab / A")]
    message = failed_run_message("image_factory", "r1", tasks, reason="task_failure", url="http://ui/dags/x")
    assert message.subject == "Image Factory: run r1 failed: DevLab, QALab"
    assert "Run: http://ui/dags/x" in message.body
    assert 'labs=["DevLab", "QALab"]' in message.body


def test_render_escapes_html() -> None:
    body = render(Message("s", "<b>lab</b> & co"), "html")
    assert body == '<pre style="font-family: monospace">&lt;b&gt;lab&lt;/b&gt; &amp; co</pre>'
    assert render(Message("s", "b"), "text", with_subject=True) == "s\n\nb"
