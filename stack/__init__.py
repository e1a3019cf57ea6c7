"""Run the product the way a user does: the local Azure plus real Airflow 3 processes (``make demo``/``make up``).

This is tooling, not product code: it starts the emulator and Airflow, and speaks to both only over HTTP(S).
"""

from __future__ import annotations
