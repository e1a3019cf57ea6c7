"""A notifier of another kind (as a chat notifier takes ``text``), recording what it would post."""

from __future__ import annotations

from typing import Any

from airflow.sdk import BaseNotifier

SENT: list[tuple[str, str]] = []


class RecordingNotifier(BaseNotifier):
    """Records (channel, text) instead of posting."""

    template_fields = ("text", "channel")

    def __init__(self, text: str, channel: str = "") -> None:
        super().__init__()
        self.text = text
        self.channel = channel

    def notify(self, context: Any) -> None:
        SENT.append((self.channel, self.text))
