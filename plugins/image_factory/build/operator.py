"""Build one factory VM from its golden image template, deferrably (the original's MakeVM, mended).

``execute`` checks the VM's name is free (or finds what an earlier attempt of this run made), rewrites the
template, makes the admin password and PUTs the deployment — the only request that carries the password — and
defers to ``BuildTrigger`` until the deployment ends. On resume it reads the VM's artifacts: any that did not
succeed are reported (status and messages) and the VM and the deployment record are deleted; otherwise the VM
is tagged ``ImagePath`` (and ``ImageFactory.BuildRun``), the deployment record is deleted, and the operator
defers again until the sysprep / deprovision artifact has left the VM deallocated, ready for capture.
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

from airflow.sdk import BaseOperator
from airflow.sdk.exceptions import AirflowFailException

from image_factory.build.plan import BuildJob
from image_factory.exceptions import BuildError
from image_factory.models import IMAGE_PATH_TAG, IMAGE_TYPE_TAG
from image_factory.operators import factory_settings, poll_seconds, require_keys
from image_factory.settings import DEFAULT_POLL_SECONDS, MIN_TRIGGER_SECONDS

if TYPE_CHECKING:
    from airflow.sdk import Context
    from azure.mgmt.devtestlabs.models import LabVirtualMachine

    from image_factory.build.hook import DeploymentsHook, DeploymentState
    from image_factory.build.trigger import Phase
    from image_factory.configuration import FactorySettings
    from image_factory.hooks.devtestlabs import DevTestLabsHook

REQUIRED_JOB_KEYS = ("image_path", "vm_name", "deployment_name", "run_id")
#: Tag a built VM carries with the run that built it: a retry of that run recognises its own VM by it.
BUILD_RUN_TAG = "ImageFactory.BuildRun"


class BuildVmOperator(BaseOperator):
    """Deploy one golden image template into the factory lab and leave its VM deallocated, tagged, for capture.

    :param job: a ``BuildJob`` as a dict (from ``build.list_builds``).
    :param poll_interval: the longest wait between two reads in the trigger (templated).
    """

    template_fields: Sequence[str] = ("job", "poll_interval")
    ui_color = "#ffe8c2"

    def __init__(
        self, *, job: dict[str, Any], poll_interval: float | str = DEFAULT_POLL_SECONDS, **kwargs: Any
    ) -> None:
        super().__init__(**kwargs)
        require_keys(job, REQUIRED_JOB_KEYS, "build job", "pass BuildJob.to_dict()")
        self.job = job
        self.poll_interval = poll_interval

    # helpers ------------------------------------------------------------------------------------------------
    def _job(self) -> BuildJob:
        return BuildJob.from_dict(self.job)

    def _hooks(self) -> tuple[FactorySettings, DevTestLabsHook, DeploymentsHook]:
        from image_factory.build.hook import DeploymentsHook  # noqa: PLC0415 - light DAG parsing
        from image_factory.hooks.devtestlabs import DevTestLabsHook  # noqa: PLC0415

        settings = factory_settings()
        return settings, DevTestLabsHook(arm_conn_id=settings.arm_conn_id), DeploymentsHook(settings.arm_conn_id)

    def _defer(self, settings: FactorySettings, job: BuildJob, phase: Phase) -> None:
        from image_factory.build.trigger import BuildTrigger  # noqa: PLC0415

        minutes = settings.build_deploy_minutes if phase == "deployment" else settings.build_stop_minutes
        self.defer(
            trigger=BuildTrigger(
                phase=phase,
                subscription_id=settings.subscription_id,
                resource_group=settings.resource_group,
                lab_name=settings.lab_name,
                vm_name=job.vm_name,
                deployment_name=job.deployment_name,
                arm_conn_id=settings.arm_conn_id,
                deadline=time.time() + minutes * 60,
                poll_interval=poll_seconds(self.poll_interval, DEFAULT_POLL_SECONDS),
                label=f"build {job.image_path} → {job.vm_name}",
                not_before=time.time() + MIN_TRIGGER_SECONDS,
            ),
            method_name="build_complete",
        )

    def _vm(
        self, settings: FactorySettings, dtl: DevTestLabsHook, job: BuildJob, expand: str
    ) -> LabVirtualMachine | None:
        from image_factory.build.hook import get_lab_vm  # noqa: PLC0415

        return get_lab_vm(
            dtl,
            settings.subscription_id,
            settings.resource_group,
            settings.lab_name,
            vm_name=job.vm_name,
            expand=expand,
        )

    def _result(self, job: BuildJob, action: str) -> dict[str, Any]:
        return {"image_path": job.image_path, "vm_name": job.vm_name, "action": action, "generalize": job.generalize}

    # execution ------------------------------------------------------------------------------------------
    def execute(self, context: Context) -> dict[str, Any]:
        """Start the build, or adopt what an earlier attempt of this run started or finished."""
        from image_factory.build.hook import ARTIFACTS_EXPAND  # noqa: PLC0415

        job = self._job()
        if job.error:
            raise AirflowFailException(f"{job.image_path} cannot be built: {job.error}")
        settings, dtl, deployments = self._hooks()
        vm = self._vm(settings, dtl, job, ARTIFACTS_EXPAND)
        deployment = deployments.state(settings.subscription_id, settings.resource_group, job.deployment_name)
        if vm is not None and (vm.tags or {}).get(BUILD_RUN_TAG) == job.run_id:
            self.log.info("%s was built by an earlier attempt of this run: waiting for it to stop", job.vm_name)
            return self._await_deallocation(settings, dtl, job)
        if vm is not None and deployment is None:
            raise AirflowFailException(
                f"{job.image_path}: the factory lab {settings.lab_name} already has a VM named {job.vm_name} that "
                "this run did not build: rename or delete it (the other templates still build)"
            )
        if deployment is not None and not _ended(deployment):
            self.log.info(
                "Deployment %s is already %s: adopting it", job.deployment_name, deployment.provisioning_state
            )
            self._defer(settings, job, "deployment")
        if deployment is not None and vm is not None:
            return self._after_deployment(settings, dtl, deployments, job, deployment)
        self._start(settings, deployments, job)
        self._defer(settings, job, "deployment")
        raise AssertionError("unreachable: defer() raises TaskDeferred")  # pragma: no cover

    def _start(self, settings: FactorySettings, deployments: DeploymentsHook, job: BuildJob) -> None:
        """Rewrite the template and PUT the deployment: the one place the admin password exists."""
        from image_factory.build import password as passwords  # noqa: PLC0415
        from image_factory.build.hook import deployment_body  # noqa: PLC0415
        from image_factory.build.steps import read_template  # noqa: PLC0415
        from image_factory.build.template import for_build  # noqa: PLC0415
        from image_factory.exceptions import AzureRequestError  # noqa: PLC0415

        built = for_build(read_template(job.image_path))
        values = {
            "labName": settings.lab_name,
            "newVMName": job.vm_name,
            "userName": settings.build_admin_user,
            "password": passwords.admin_password(settings.build_password_conn_id),
            "size": settings.build_vm_size,
        }
        body = deployment_body(built.template, {name: values[name] for name in built.parameters})
        del values
        try:
            state = deployments.start(settings.subscription_id, settings.resource_group, job.deployment_name, body)
        except AzureRequestError as exc:
            if exc.status in {400, 403, 404}:  # the template, a parameter or a role: no retry fixes it
                raise AirflowFailException(f"{job.image_path}: {exc}") from exc
            raise
        finally:
            del body
        self.log.info(
            "Deploying %s as VM %s (%s, size %s, user %s) with deployment %s: %s",
            job.image_path,
            job.vm_name,
            f"+ {built.appended}" if built.appended else ("specialized" if not built.generalize else "generalized"),
            settings.build_vm_size,
            settings.build_admin_user,
            job.deployment_name,
            state.provisioning_state,
        )

    def build_complete(self, context: Context, event: dict[str, Any]) -> dict[str, Any]:
        """Resume after a phase: check the artifacts and tag, or check the VM is deallocated."""
        from image_factory.build.trigger import BuildEvent  # noqa: PLC0415

        job = self._job()
        settings, dtl, deployments = self._hooks()
        fired = BuildEvent.from_payload(event)
        if fired.phase == "deallocation":
            if fired.status != "success":
                self._discard(settings, dtl, deployments, job, why=fired.message)
            self.log.info("%s is deallocated: ready for capture", job.vm_name)
            return self._result(job, "built")
        state = deployments.state(settings.subscription_id, settings.resource_group, job.deployment_name)
        if fired.status != "success" or state is None:
            self._discard(settings, dtl, deployments, job, why=fired.message)
        assert state is not None  # _discard raises
        return self._after_deployment(settings, dtl, deployments, job, state)

    def _after_deployment(
        self,
        settings: FactorySettings,
        dtl: DevTestLabsHook,
        deployments: DeploymentsHook,
        job: BuildJob,
        state: DeploymentState,
    ) -> dict[str, Any]:
        """Check the artifacts; tag the VM and delete the deployment record; wait for the VM to stop."""
        from image_factory.build.hook import ARTIFACTS_EXPAND, artifact_report, stop_vm, tag_vm  # noqa: PLC0415

        if not _succeeded(state):
            self._discard(settings, dtl, deployments, job, why=f"deployment {state.provisioning_state}: {state.error}")
        vm = self._vm(settings, dtl, job, ARTIFACTS_EXPAND)
        if vm is None:
            self._discard(settings, dtl, deployments, job, why="the deployment succeeded but the VM does not exist")
        assert vm is not None
        report = artifact_report(vm)
        if not report.succeeded:
            self._discard(
                settings,
                dtl,
                deployments,
                job,
                why=f"artifacts failed ({report.summary()})",
                failures=report.failures(),
            )
        tags = {IMAGE_PATH_TAG: job.image_path, BUILD_RUN_TAG: job.run_id}
        if not job.generalize:
            tags[IMAGE_TYPE_TAG] = "Specialized"
        where = (settings.subscription_id, settings.resource_group, settings.lab_name)
        tag_vm(dtl, *where, vm=vm, tags=tags)
        deployments.delete(settings.subscription_id, settings.resource_group, job.deployment_name)
        self.log.info(
            "Built %s from %s (%s); tagged ImagePath=%s", job.vm_name, job.image_path, report.summary(), job.image_path
        )
        if not job.generalize:
            self.log.info("%s is specialized: no artifact stops it, stopping it", job.vm_name)
            stop_vm(dtl, *where, job.vm_name)
        return self._await_deallocation(settings, dtl, job)

    def _await_deallocation(self, settings: FactorySettings, dtl: DevTestLabsHook, job: BuildJob) -> dict[str, Any]:
        from image_factory.build.trigger import DEALLOCATED  # noqa: PLC0415
        from image_factory.hooks.devtestlabs import VM_EXPAND  # noqa: PLC0415
        from image_factory.hooks.lab_resources import power_state  # noqa: PLC0415

        vm = self._vm(settings, dtl, job, VM_EXPAND)
        if vm is not None and power_state(vm).casefold() == DEALLOCATED:
            self.log.info("%s is deallocated: ready for capture", job.vm_name)
            return self._result(job, "built")
        self._defer(settings, job, "deallocation")
        raise AssertionError("unreachable: defer() raises TaskDeferred")  # pragma: no cover

    def _discard(
        self,
        settings: FactorySettings,
        dtl: DevTestLabsHook,
        deployments: DeploymentsHook,
        job: BuildJob,
        *,
        why: str,
        failures: Sequence[str] = (),
    ) -> None:
        """Report a failed build, delete its VM and deployment record, and fail the task.

        No retry: a build takes an hour in Azure and what failed (an artifact, the template) fails again; the next
        night builds anew. A VM of that name that the deployment did not make (``Conflict``) is left alone.
        """
        from image_factory.exceptions import AzureRequestError  # noqa: PLC0415

        for line in failures:
            self.log.error("%s: artifact %s", job.vm_name, line)
        deleted = False
        if "conflict" not in why.casefold():
            deleted = dtl.delete_vm(settings.subscription_id, settings.resource_group, settings.lab_name, job.vm_name)
        try:
            deployments.delete(settings.subscription_id, settings.resource_group, job.deployment_name)
        except AzureRequestError as exc:  # e.g. still running at its deadline: ARM refuses, the record stays
            self.log.warning("Could not delete deployment %s: %s", job.deployment_name, exc)
        gone = "its VM was deleted" if deleted else "no VM of this build was left"
        detail = "".join(f"\n  - {line}" for line in failures)
        raise AirflowFailException(
            str(BuildError(f"build of {job.image_path} as {job.vm_name} failed: {why}; {gone}{detail}"))
        )


def _ended(state: DeploymentState) -> bool:
    from image_factory.states import FAILED_PROVISIONING, ProvisioningState  # noqa: PLC0415

    value = state.provisioning_state
    return ProvisioningState.SUCCEEDED.matches(value) or any(s.matches(value) for s in FAILED_PROVISIONING)


def _succeeded(state: DeploymentState) -> bool:
    from image_factory.states import ProvisioningState  # noqa: PLC0415

    return ProvisioningState.SUCCEEDED.matches(state.provisioning_state)
