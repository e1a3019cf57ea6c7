"""Notifications through Airflow's notifiers: a failed run, labs that became stale or behind."""
