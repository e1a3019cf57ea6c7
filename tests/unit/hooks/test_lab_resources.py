"""DevTest Labs resources: the custom image PUT body, ARM id parsing."""

from __future__ import annotations

from image_factory.hooks.lab_resources import custom_image_body, resource_group_of


def test_custom_image_body_tags_and_flags() -> None:
    body = custom_image_body(
        vhd_name="x.vhd", os_type="Linux", sysprep=False, image_path="Ubuntu/U.json", version="2025-03-01"
    )
    data = body.serialize()
    assert data["properties"]["vhd"] == {"imageName": "x.vhd", "sysPrep": False, "osType": "Linux"}
    assert data["tags"]["ImageFactory.ManagedBy"] == "airflow-image-factory"
    assert data["tags"]["ImagePath"] == "Ubuntu/U.json"


def test_ids_parse() -> None:
    assert resource_group_of("/subscriptions/s/resourceGroups/rg-dev/providers/x/labs/L") == "rg-dev"
