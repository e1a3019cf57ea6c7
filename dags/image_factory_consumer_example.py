"""
### Image Factory consumer (example)

Runs each time the image factory distributes a new image version: scheduled on the factory's asset alias
`image_factory_images`, which carries one event per ImagePath and version (extra: `image_path`, `version`,
`image_name`, `labs_done`, `labs_failed`, `size_bytes`, `footer_sha256`, `run_id`). Paused on creation: unpause it
to try it; copy it to start real work (rebuild environments from the new image, run smoke tests, tell a team).

To follow one golden image only, schedule on its asset instead:
`schedule=image_asset("Win2016/Datacenter.json")` (`from image_factory.assets import image_asset`).
"""

from __future__ import annotations

import logging
from datetime import datetime
from typing import Any

from airflow.sdk import DAG, task

from image_factory import assets, settings

log = logging.getLogger(__name__)

with DAG(
    dag_id="image_factory_consumer_example",
    description="Example: react to a new image version reaching its labs",
    schedule=assets.IMAGES,
    start_date=datetime(2024, 1, 1),
    catchup=False,
    is_paused_upon_creation=True,
    tags=[*settings.TAGS, "example"],
    doc_md=__doc__,
    default_args={"owner": settings.OWNER, "retries": 1},
):

    @task
    def new_images(**context: Any) -> list[dict[str, Any]]:
        """Log and return each new version that triggered this run, with the labs that hold it."""
        seen: dict[tuple[str, str, str], dict[str, Any]] = {}
        # An event reached through the alias is listed under the alias and under its asset: count it once.
        for events in context["triggering_asset_events"].values():
            for event in events:
                extra = dict(event.extra or {})
                key = (str(extra.get("run_id")), str(extra.get("image_path")), str(extra.get("version")))
                if key not in seen:
                    labs = ", ".join(extra.get("labs_done") or []) or "no lab"
                    log.info("%s: version %s reached %s", extra.get("image_path"), extra.get("version"), labs)
                    seen[key] = extra
        return list(seen.values())

    new_images()
