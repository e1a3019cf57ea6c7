"""A catalogued image version for tests of the catalogue and of retention."""

from __future__ import annotations

from image_factory.models import ImageVersion


def image_version(path: str, day: str, *, name: str | None = None, vm: str | None = None, ts: str = "") -> ImageVersion:
    """Return the version ``day`` of ``path`` (named ``<path>-<day>`` unless ``name``), made from ``vm`` at ``ts``."""
    stem = name or f"{path.replace('/', '_').removesuffix('.json')}-{day}"
    return ImageVersion(
        image_name=stem,
        image_path=path,
        version=day,
        vhd_blob=f"{stem}.vhd",
        os_type="Windows",
        sysprep=True,
        source_vm=vm,
        timestamp=ts,
    )
