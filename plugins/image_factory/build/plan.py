"""Which templates a run builds, as which VMs (pure: the configuration and the templates in, the jobs out).

A run builds the templates some lab *it distributes to* subscribes to (the ``labs`` param's labs, or all), not
every file under ``GoldenImages/``: a template no lab subscribes to would cost a 30–90 minute VM build every night
for an image nobody receives (validation already warns about such a file). The ``image_paths`` and
``build_paths`` params narrow it further. Each job names its VM and deployment deterministically from
(ImagePath, run) (see ``build.naming``), so a retry finds what it made.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from image_factory import imagepaths
from image_factory.build import naming
from image_factory.build.template import BuildTemplate, TemplateError, for_build
from image_factory.configuration import FactorySettings
from image_factory.models import LabRef, OsType
from image_factory.run_context import RunParams


@dataclass(frozen=True)
class BuildJob:
    """One template to build into one factory VM (a mapped ``build_vm`` task); never holds a secret."""

    image_path: str
    vm_name: str
    deployment_name: str
    run_id: str
    os_type: OsType | None = None
    #: False: the template asks for a specialized image (no sysprep/deprovision artifact).
    generalize: bool = True
    #: The artifact the rewriting appends (None: already last, or specialized).
    appended: str | None = None
    #: Why the template cannot be built as it is (its task fails with it; the others build).
    error: str | None = None

    def to_dict(self) -> dict[str, Any]:
        return {
            "image_path": self.image_path,
            "vm_name": self.vm_name,
            "deployment_name": self.deployment_name,
            "run_id": self.run_id,
            "os_type": self.os_type,
            "generalize": self.generalize,
            "appended": self.appended,
            "error": self.error,
        }

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> BuildJob:
        return cls(
            image_path=str(data["image_path"]),
            vm_name=str(data["vm_name"]),
            deployment_name=str(data["deployment_name"]),
            run_id=str(data["run_id"]),
            os_type=data.get("os_type"),
            generalize=bool(data.get("generalize", True)),
            appended=data.get("appended"),
            error=data.get("error"),
        )

    def describe(self) -> str:
        """Say what the build does, for the log and the report (``VM Datacente-1a2b3 (Windows, + windows-sysprep)``)."""
        if self.error:
            return f"cannot be built: {self.error}"
        how = f"+ {self.appended}" if self.appended else ("specialized" if not self.generalize else "ends generalized")
        return f"VM {self.vm_name} ({self.os_type or 'OS unknown'}, {how})"


def build_enabled(params: RunParams, factory: FactorySettings) -> bool:
    """Tell whether the run builds: its ``build`` param, else factory.json's ``Build.Enabled``."""
    return factory.build_enabled if params.build is None else params.build


def skip_reason(params: RunParams, factory: FactorySettings, *, is_backfill: bool) -> str | None:
    """Return why this run builds nothing, or None (a dry run plans the builds, then makes none)."""
    if not build_enabled(params, factory):
        if params.build is False:
            return "build is off for this run (param build=off)"
        return "build is off (factory.json Build.Enabled is false; param build=on builds one run)"
    if not params.capture:
        return "capture is off for this run (param capture=false): a build is only worth its capture"
    if is_backfill:
        return "a backfill never builds: it distributes what the catalogue already holds"
    return None


def templates_to_build(labs: Iterable[LabRef], golden_images: Sequence[str], params: RunParams) -> list[str]:
    """Return the ImagePaths (golden image files) some of ``labs`` subscribes to, narrowed by the params."""
    subscribed = {path for lab in labs for path in imagepaths.selected(lab.image_paths, golden_images)}
    chosen = [path for path in golden_images if path in subscribed]
    for selectors in (params.image_paths, params.build_paths):
        if selectors:
            chosen = imagepaths.selected(selectors, chosen)
    return sorted(chosen, key=imagepaths.key)


def plan_builds(image_paths: Sequence[str], read: Callable[[str], Mapping[str, Any]], run_id: str) -> list[BuildJob]:
    """Return one job per ImagePath, its template read with ``read`` and rewritten to see what the build does."""
    names = naming.unique_vm_names(image_paths, run_id)
    jobs: list[BuildJob] = []
    for path in image_paths:
        vm = names[path]
        base = BuildJob(image_path=path, vm_name=vm, deployment_name=naming.deployment_name(vm), run_id=run_id)
        try:
            built: BuildTemplate = for_build(read(path))
        except (TemplateError, OSError, ValueError) as exc:
            jobs.append(BuildJob(**{**base.to_dict(), "error": f"{path}: {exc}"}))
            continue
        jobs.append(
            BuildJob(
                **{
                    **base.to_dict(),
                    "os_type": built.os_type,
                    "generalize": built.generalize,
                    "appended": built.appended,
                }
            )
        )
    return jobs
