"""
### Image Factory

Captures golden image VMs of the factory DevTest Lab into a VHD catalogue and distributes the newest
``ImagesToSave`` versions to every lab of `labs.json`, as custom images.

1. **validate_config** — `Configuration/` (labs.json, factory.json, GoldenImages/) and this run's params.
2. **build** (factory.json `Build.Enabled`, param `build`) — `list_builds` lists the templates some lab subscribes
   to (param `build_paths` narrows them); `build_vm` (mapped, in the pool, deferred while ARM deploys) deploys each
   into the factory lab with `windows-sysprep` / `linux-deprovision` appended, reports and deletes a VM whose
   artifacts failed, tags the others `ImagePath` and waits until they are deallocated. A dry run lists them.
3. **capture** — `list_factory_vms` picks the VMs this run built on a build night; else deallocated VMs tagged
   `ImagePath` whose OS disk changed since the newest catalogued version of their ImagePath (a new disk, or the
   VM started or deallocated since; param `recapture` forces it); `capture_vm` copies each OS disk into
   `imagefactoryvhds/<image>.vhd` + a JSON sidecar recording the disk it came from. Skipped when `capture` is
   false, in a dry run, and in backfills.
4. **plan** — reads the catalogue and one inventory per lab; logs the plan table.
5. **distribute** — one mapped task per (lab, image), throttled by the `image_distribution` pool.
6. **verify** — re-reads the labs and fails listing what is missing; writes a JSON report, with what capture did
   of each ImagePath ("captured <version> from <vm>", "unchanged since <version>").
7. **retire** — after verify (whatever its outcome): `decide` keeps the newest `ImagesToSave` versions of every
   ImagePath in the catalogue, the factory lab and every lab, and deletes older ones, those whose golden image is
   gone and those a lab no longer subscribes to — only what the factory made, never a version this run planned
   for that lab or one still being uploaded into it; `delete` (mapped, in the pool) deletes; `report` records the
   outcomes.
   Param `retire` (default on); `clean_factory` (default off) also deletes captured and failed factory VMs.
   Honours `dry_run`, `labs` and `image_paths`. After capture, `clean_built_vms` deletes the VMs this run built
   once they are catalogued (the original's CleanUpFactory), so a build night leaves the factory lab empty.
8. **announce** — an asset event on `image_factory/<ImagePath>` (alias `image_factory_images`) per version this
   run distributed (extra: version, labs done and failed, size, footer digest); **notify_labs** — one message
   (factory.json `Notifications`) when labs became stale or behind. A failed run is told once too
   (`on_failure_callback`), naming its failed tasks and labs.

A capture's version is the run's day, the UTC date of its logical date (or of `run_after` for runs without one),
or `<day>.2`, `<day>.3`… for a same-day rebuild. An unchanged VM is never captured again, so a re-run, or a quiet
night, copies nothing. Connections: `image_factory_arm` (azure) and
`image_factory_storage` (wasb), see docs/ARCHITECTURE.md.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

from airflow.sdk import DAG, Param, TaskGroup, task
from airflow.sdk.exceptions import AirflowFailException

from image_factory import assets, settings, tasks
from image_factory.build import steps as building
from image_factory.build.operator import BuildVmOperator
from image_factory.configuration import parse_time_settings
from image_factory.notifications.fleet_alerts import notify_labs
from image_factory.notifications.send import FailedRunNotifier, collect_failures, outcome_message
from image_factory.notifications.settings import NotificationSettings
from image_factory.operators.capture import CaptureVmOperator
from image_factory.operators.distribute import DistributeImageOperator
from image_factory.retention import steps as retirement
from image_factory.retention.operator import RetireOperator
from image_factory.run_context import BUILD_CHOICES, BUILD_FROM_CONFIG, RunContext

POLL = "{{ params.copy_poll_seconds }}"
#: factory.json read once per parse with the tasks' reader (its defaults when it cannot be used).
FACTORY = parse_time_settings()

with DAG(
    dag_id=settings.DAG_ID,
    description="Capture golden image VMs and distribute them to DevTest Labs",
    schedule=FACTORY.schedule,
    start_date=datetime(2024, 1, 1),
    catchup=False,
    max_active_runs=1,
    tags=list(settings.TAGS),
    doc_md=__doc__,
    # One message per failed run (factory.json Notifications: SmtpNotifier by default, any notifier by class path).
    on_failure_callback=FailedRunNotifier(NotificationSettings.from_document(FACTORY.notifications)),
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
            items={"type": "string", "maxLength": 50},
            maxItems=5000,
            title="Labs",
            description="Lab names from labs.json to distribute to; empty = all labs.",
        ),
        "image_paths": Param(
            [],
            type="array",
            items={"type": "string", "maxLength": 1024},
            maxItems=500,
            title="Image paths",
            description="ImagePaths (folders or files under GoldenImages/) to handle; empty = all.",
        ),
        "recapture": Param(
            [],
            type="array",
            items={"type": "string", "maxLength": 1024},
            maxItems=500,
            title="Recapture",
            description=(
                "ImagePaths (folders or files under GoldenImages/) captured again even though their VM's disk is "
                "unchanged since the newest catalogued version (once per run); empty = capture only what changed."
            ),
        ),
        "capture": Param(True, type="boolean", title="Capture", description="Capture factory VMs before distributing."),
        "build": Param(
            BUILD_FROM_CONFIG,
            type="string",
            enum=list(BUILD_CHOICES),
            title="Build",
            description=(
                "Build the factory VMs from GoldenImages/ before capture: 'factory.json' follows its Build.Enabled, "
                "'on' / 'off' decide for this run."
            ),
        ),
        "build_paths": Param(
            [],
            type="array",
            items={"type": "string", "maxLength": 1024},
            maxItems=500,
            title="Build paths",
            description=(
                "ImagePaths (folders or files under GoldenImages/) to build; empty = every template a lab "
                "subscribes to."
            ),
        ),
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
        "retire": Param(
            True,
            type="boolean",
            title="Retire old images",
            description=(
                "After verify, delete image versions beyond the newest ImagesToSave (catalogue, factory lab, labs), "
                "images whose golden image is gone and images a lab no longer subscribes to. Only what the factory "
                "made; a dry run only shows the table."
            ),
        ),
        "clean_factory": Param(
            False,
            type="boolean",
            title="Clean up the factory",
            description=(
                "Also delete factory VMs already captured into the catalogue and VMs that failed to provision (the "
                "run then fails, naming them). FactoryIgnore-tagged VMs stay; untagged ones are only reported."
            ),
        ),
    },
) as dag:

    @task(retries=0)  # a configuration or params error never fixes itself: fail at once, naming it
    def validate_config() -> dict[str, Any]:
        """Validate Configuration/ and the run's params."""
        return tasks.validate_config(RunContext.current())

    with TaskGroup("build") as build:

        @task
        def list_builds() -> list[dict[str, Any]]:
            """List the templates to build as factory VMs (none when the run does not build, or in a dry run)."""
            return building.list_builds(RunContext.current())

        BuildVmOperator.partial(
            task_id="build_vm",
            # Builds are factory jobs too: they share MaxConcurrentJobs with captures and distributions.
            pool=FACTORY.pool,
            poll_interval=POLL,
            map_index_template="{{ task.job['image_path'] }}",
        ).expand(job=list_builds())

    with TaskGroup("capture") as capture:
        # all_done: a template that failed to build must not hold back the others' captures.
        @task(trigger_rule="all_done")
        def list_factory_vms() -> list[dict[str, Any]]:
            """List the factory VMs whose disk changed (or that recapture names), to capture."""
            return tasks.list_capture_jobs(RunContext.current())

        jobs = list_factory_vms()
        CaptureVmOperator.partial(
            task_id="capture_vm",
            # Captures are copies too: they share MaxConcurrentJobs with distribution.
            pool=FACTORY.pool,
            poll_interval=POLL,
            map_index_template="{{ task.job['vm_name'] }}",
        ).expand(job=jobs)

    # all_done: one VM that fails to capture must not hold back what is already catalogued (the run still ends
    # failed, naming that VM); plan re-validates the configuration itself.
    @task(task_id=tasks.PLAN_TASK_ID, trigger_rule="all_done")
    def plan() -> list[dict[str, Any]]:
        """Plan the distribution; return the pairs to distribute (none in a dry run)."""
        return tasks.plan_distribution(RunContext.current())

    @task(trigger_rule="all_done")
    def regional_pairs() -> list[dict[str, Any]]:
        """Return the pairs that copy from a lab of their own region (region fan-out), after the direct wave."""
        return tasks.regional_pairs(RunContext.current())

    @task(trigger_rule="all_done")
    def cleanup_uploads() -> int:
        """Delete the uploads region seeds kept for their region's other labs."""
        return tasks.cleanup_seed_uploads(RunContext.current())

    @task(trigger_rule="all_done", retries=0)
    def verify() -> dict[str, Any]:
        """Check every lab has what the plan expected; fail listing what is missing."""
        return tasks.verify(RunContext.current())

    checked = validate_config()
    pairs = plan()
    distribute = DistributeImageOperator.partial(
        task_id="distribute",
        pool=FACTORY.pool,
        map_index_template="{{ task.pair['lab_name'] }} / {{ task.pair['image_name'] }}",
        retries=settings.DISTRIBUTE_RETRIES,
        poll_interval=POLL,
    ).expand(pair=pairs)
    regional = DistributeImageOperator.partial(
        task_id="distribute_regional",
        pool=FACTORY.pool,
        map_index_template="{{ task.pair['lab_name'] }} / {{ task.pair['image_name'] }}",
        retries=settings.DISTRIBUTE_RETRIES,
        poll_interval=POLL,
    ).expand(pair=distribute >> regional_pairs())
    cleaned = regional >> cleanup_uploads()
    with TaskGroup("retire") as retire:
        # all_done: retention is safe whatever distribution did (it keeps what this run planned and what is still
        # uploading); it refuses to run without this run's plan.
        @task(trigger_rule="all_done")
        def decide() -> list[dict[str, Any]]:
            """Decide what retention and factory clean-up delete; return the deletions (none in a dry run)."""
            return retirement.decide(RunContext.current())

        deleted = RetireOperator.partial(
            task_id="delete",
            pool=FACTORY.pool,
            map_index_template="{{ task.deletion['where'] }} / {{ task.deletion['name'] }}",
        ).expand(deletion=decide())

        @task(trigger_rule="all_done", retries=0)
        def report() -> dict[str, Any]:
            """Write the retire report (decisions + outcomes); fail naming factory VMs that failed to provision."""
            return retirement.report(RunContext.current())

        deleted >> report()

    # all_done: a version that reached some labs is announced even when another lab failed (its extra says which).
    @task(trigger_rule="all_done", outlets=[assets.IMAGES])
    def announce(**context: Any) -> list[dict[str, Any]]:
        """Add an asset event per ImagePath whose new version this run distributed (version, labs, size, digest)."""
        return assets.announce(RunContext.current(), context["outlet_events"])

    # all_done: a night that left labs behind is exactly when people must be told.
    @task(task_id="notify_labs", trigger_rule="all_done", retries=1)
    def labs_alert(**context: Any) -> dict[str, Any]:
        """Tell people once (factory.json Notifications) when labs became stale or behind in verify's fleet."""
        return notify_labs(RunContext.current(), context)

    @task(trigger_rule="all_done")
    def clean_built_vms() -> dict[str, list[str]]:
        """Delete the VMs this run built once captured (the original's CleanUpFactory); keep the others."""
        return building.clean_built(RunContext.current())

    checked >> build >> capture >> pairs
    capture >> clean_built_vms()
    checked_labs = cleaned >> verify()
    checked_labs >> retire
    checked_labs >> announce()
    checked_labs >> labs_alert()

    @task(trigger_rule="one_failed", retries=0)
    def outcome(**context: Any) -> None:
        """Fail the run when any task failed: verify and retire run anyway, so a failure is not always a leaf."""
        # collect_failures also hands the failed tasks, named, to the run's failure notification.
        raise AirflowFailException(outcome_message(collect_failures(context)))

    # Downstream of every task: runs (and fails the run) only if one of them failed; skipped otherwise.
    watcher = outcome()
    for upstream in [t for t in dag.tasks if t.task_id != "outcome"]:
        upstream >> watcher
