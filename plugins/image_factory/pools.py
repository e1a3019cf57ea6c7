"""The Airflow pool that stands in for the original's ``maxConcurrentJobs``, generated from factory.json.

``python -m image_factory.pools [CONFIG_DIR] > pools.json`` writes the file ``airflow pools import`` reads.
``include_deferred`` is on: a task waiting on its copy in the triggerer keeps its slot, so the pool bounds the
copies actually running in Azure, not just the worker processes.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any

from image_factory.configuration import FactorySettings, load_factory_settings
from image_factory.settings import config_dir


def pool_definition(settings: FactorySettings) -> dict[str, dict[str, Any]]:
    """Return the ``airflow pools import`` document for the factory's distribution pool."""
    return {
        settings.pool: {
            "slots": settings.max_concurrent_jobs,
            "description": (
                f"Image Factory: at most {settings.max_concurrent_jobs} image copies/creations at once "
                "(MaxConcurrentJobs in factory.json)"
            ),
            "include_deferred": True,
        }
    }


def main(argv: list[str] | None = None) -> int:
    """Print the pool file for the configuration folder given (default: the configured one)."""
    args = sys.argv[1:] if argv is None else argv
    folder = Path(args[0]) if args else config_dir()
    json.dump(pool_definition(load_factory_settings(folder)), sys.stdout, indent=2)
    sys.stdout.write("\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
