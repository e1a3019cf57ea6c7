"""
### Image Factory

Captures golden image VMs of the factory DevTest Lab into a VHD catalogue and distributes the newest
``ImagesToSave`` versions to every lab of `labs.json`, as custom images.

1. **validate_config** — `Configuration/` (labs.json, factory.json, GoldenImages/) and this run's params.
2. **capture** — `list_factory_vms` picks deallocated VMs tagged `ImagePath` not yet catalogued for this run's
   version; `capture_vm` copies each OS disk into `imagefactoryvhds/<image>.vhd` + a JSON sidecar. Skipped when
   `capture` is false, in a dry run, and in backfills.
3. **plan** — reads the catalogue and one inventory per lab; logs the plan table.
4. **distribute** — one mapped task per (lab, image), throttled by the `image_distribution` pool.
5. **verify** — re-reads the labs and fails listing what is missing; writes a JSON report.

The version of a run is the UTC date of its logical date (or of `run_after` for runs without one), so a re-run
of the same day never captures or distributes twice. Connections: `image_factory_arm` (azure) and
`image_factory_storage` (wasb), see docs/ARCHITECTURE.md.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

from airflow.sdk import DAG, Param, TaskGroup, get_current_context, task

from image_factory import settings, tasks
from image_factory.operators.capture import CaptureVmOperator
from image_factory.operators.distribute import DistributeImageOperator

POLL = "{{ params.copy_poll_seconds }}"

with DAG(
    dag_id=settings.DAG_ID,
    description="Capture golden image VMs and distribute them to DevTest Labs",
    schedule=settings.parse_time_schedule(),
    start_date=datetime(2024, 1, 1),
    catchup=False,
    max_active_runs=1,
    tags=list(settings.TAGS),
    doc_md=__doc__,
    default_args={
        "owner": settings.OWNER,
        "retries": 3,
        "retry_delay": timedelta(minutes=1),
        "retry_exponential_backoff": True,
        "max_retry_delay": timedelta(minutes=30),
        "on_failure_callback": tasks.on_failure,
    },
    params={
        "labs": Param(
            [],
            type="array",
            items={"type": "string"},
            title="Labs",
            description="Lab names from labs.json to distribute to; empty = all labs.",
        ),
        "image_paths": Param(
            [],
            type="array",
            items={"type": "string"},
            title="Image paths",
            description="ImagePaths (folders or files under GoldenImages/) to handle; empty = all.",
        ),
        "capture": Param(True, type="boolean", title="Capture", description="Capture factory VMs before distributing."),
        "dry_run": Param(
            False,
            type="boolean",
            title="Dry run",
            description="Plan and report only: no capture, no copy, no image is created.",
        ),
        "copy_poll_seconds": Param(
            settings.DEFAULT_POLL_SECONDS,
            type="integer",
            minimum=1,
            title="Poll seconds",
            description="Seconds between two status checks of a copy or a custom image.",
        ),
    },
) as dag:

    @task
    def validate_config() -> dict[str, Any]:
        """Validate Configuration/ and the run's params."""
        return tasks.validate_config(get_current_context()["params"])

    with TaskGroup("capture") as capture:

        @task
        def list_factory_vms() -> list[dict[str, Any]]:
            """List the factory VMs to capture for this run's version."""
            ctx = get_current_context()
            dag_run = ctx["dag_run"]
            return tasks.list_capture_jobs(
                ctx["params"],
                run_type=str(getattr(dag_run, "run_type", "") or ""),
                logical_date=ctx.get("logical_date"),
                run_after=getattr(dag_run, "run_after", None),
            )

        jobs = list_factory_vms()
        CaptureVmOperator.partial(
            task_id="capture_vm",
            # Captures are copies too: they share MaxConcurrentJobs with distribution.
            pool=settings.parse_time_pool(),
            poll_interval=POLL,
            map_index_template="{{ task.job['vm_name'] }}",
        ).expand(job=jobs)

    # all_done: one VM that fails to capture must not hold back what is already catalogued (the run still ends
    # failed, naming that VM); plan re-validates the configuration itself.
    @task(trigger_rule="all_done")
    def plan() -> list[dict[str, Any]]:
        """Plan the distribution; return the pairs to distribute (none in a dry run)."""
        ctx = get_current_context()
        result = tasks.make_plan(
            ctx["params"],
            logical_date=ctx.get("logical_date"),
            run_after=getattr(ctx["dag_run"], "run_after", None),
        )
        ctx["ti"].xcom_push(key="plan", value=result.to_dict())
        return tasks.pairs_for_mapping(result, ctx["params"])

    @task(trigger_rule="all_done", retries=0)
    def verify() -> dict[str, Any]:
        """Check every lab has what the plan expected; fail listing what is missing."""
        ctx = get_current_context()
        dag_run = ctx["dag_run"]
        return tasks.verify(
            ctx["ti"].xcom_pull(task_ids="plan", key="plan"),
            ctx["params"],
            version=tasks.run_version(ctx.get("logical_date"), getattr(dag_run, "run_after", None)),
            run_id=str(dag_run.run_id),
        )

    checked = validate_config()
    pairs = plan()
    distribute = DistributeImageOperator.partial(
        task_id="distribute",
        pool=settings.parse_time_pool(),
        map_index_template="{{ task.pair['lab_name'] }} / {{ task.pair['image_name'] }}",
        retries=settings.DISTRIBUTE_RETRIES,
        poll_interval=POLL,
    ).expand(pair=pairs)
    checked >> capture >> pairs
    distribute >> verify()
