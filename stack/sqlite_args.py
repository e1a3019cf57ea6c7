"""SQLAlchemy connect args for Airflow's SQLite metadata DB on a 2-core machine (busy timeout, see the notes)."""

from __future__ import annotations

#: ``[database] sql_alchemy_connect_args`` — wait up to 60 s for a lock instead of failing with "database is locked".
CONNECT_ARGS: dict[str, object] = {"timeout": 60}
#: ``[database] sql_alchemy_connect_args_async`` (aiosqlite takes the same keyword).
CONNECT_ARGS_ASYNC: dict[str, object] = {"timeout": 60}
