"""Parsing dags/ stays light: no Azure SDK is imported until a task runs (the hooks are made lazily)."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
HEAVY = ("azure.mgmt", "azure.storage", "azure.identity")

# Parsed in a fresh interpreter: this test process has imported the SDKs already through other tests.
PROBE = f"""
import json, sys
from airflow.dag_processing.dagbag import DagBag
bag = DagBag(dag_folder={str(ROOT / "dags")!r})
heavy = sorted(n for n in sys.modules if n.startswith({HEAVY!r}))
print(json.dumps({{"errors": {{k: str(v) for k, v in bag.import_errors.items()}}, "dags": sorted(bag.dag_ids),
                  "heavy": heavy}}))
"""


def test_parsing_the_dags_imports_no_azure_sdk() -> None:
    env = {"PYTHONPATH": str(ROOT / "plugins"), "AIRFLOW__CORE__LOAD_EXAMPLES": "False", "PATH": "/usr/bin:/bin"}
    done = subprocess.run(
        [sys.executable, "-c", PROBE], capture_output=True, text=True, env=env, cwd=ROOT, timeout=300, check=False
    )
    assert done.returncode == 0, done.stderr[-3000:]
    result = json.loads(done.stdout.strip().splitlines()[-1])
    assert result["errors"] == {}
    assert "image_factory" in result["dags"]
    assert result["heavy"] == [], f"DAG parsing imported {result['heavy'][:5]}: import hooks inside execute()"
