"""The DevTest Labs Image Factory on Apache Airflow: capture, plan, distribute, verify, retire."""

from __future__ import annotations
