"""Long-running operations end as the specification says: what each one's Location URL finally answers.

``CustomImages_CreateOrUpdate`` is ``final-state-via: location``: its Location URL ends 200 with the image (a
client following the specification gets the resource, not an empty 204); ``Disks_RevokeAccess`` ends 200; deletes
end 204 (the specification allows 200 or 204, without a body). Checked both with a raw client reading the headers
and with the unmodified SDK told to follow the specification's ``final-state-via``.
"""

from __future__ import annotations

import time
import uuid
from typing import Any

import httpx
import pytest
from azure.mgmt.core.polling.arm_polling import ARMPolling
from azure.storage.blob import BlobType

from emulator.vhd import make_disk
from tests.emulator.conftest import SUB1, compute_client, credential, dtl_client
from tests.emulator.test_arm_devtestlabs import _image, _upload

pytestmark = pytest.mark.emulator

MIB = 1024 * 1024
DTL_VERSION = "api-version=2018-09-15"


def _arm(info: dict[str, Any]) -> httpx.Client:
    token = credential(info).get_token("https://management.azure.com/.default").token
    return httpx.Client(
        base_url=info["arm_endpoint"], verify=info["ca_bundle"], headers={"Authorization": f"Bearer {token}"}
    )


def _final(client: httpx.Client, location: str, deadline: float = 30.0) -> httpx.Response:
    """Poll a Location URL while it answers 202 (as its Retry-After says) and return its final answer."""
    end = time.monotonic() + deadline
    while True:
        answer = client.get(location)
        if answer.status_code != 202 or time.monotonic() > end:
            return answer
        assert answer.headers["Retry-After"].isdigit()
        time.sleep(min(1.0, float(answer.headers["Retry-After"])))


def _uploaded(info: dict[str, Any]) -> tuple[str, str]:
    name = f"lro-{uuid.uuid4().hex[:8]}"
    _upload(info, "rg-dev", "DevLab", f"{name}.vhd", make_disk(MIB, 3), blob_type=BlobType.PAGEBLOB)
    return name, f"{name}.vhd"


def test_a_custom_images_location_ends_with_the_image(local_azure: dict[str, Any]) -> None:
    name, blob = _uploaded(local_azure)
    path = f"/subscriptions/{SUB1}/resourceGroups/rg-dev/providers/Microsoft.DevTestLab/labs/DevLab/customimages/{name}"
    body = {"properties": {"vhd": {"imageName": blob, "osType": "Linux"}}, "tags": {"ImagePath": "x.json"}}
    with _arm(local_azure) as client:
        created = client.put(f"{path}?{DTL_VERSION}", json=body)
        assert created.status_code == 201
        assert created.json()["properties"]["provisioningState"] == "Creating"
        final = _final(client, created.headers["Location"])
        assert final.status_code == 200, final.text
        image = final.json()
        assert image["name"] == name and image["type"] == "Microsoft.DevTestLab/labs/customImages"
        assert image["properties"]["provisioningState"] == "Succeeded"
        assert image["properties"]["vhd"] == {"imageName": blob, "osType": "Linux"}
        deleted = client.delete(f"{path}?{DTL_VERSION}")
        assert deleted.status_code == 202 and "Location" in deleted.headers
        assert _final(client, deleted.headers["Location"]).status_code == 204


def test_the_sdk_following_final_state_via_location_gets_the_image(local_azure: dict[str, Any]) -> None:
    name, blob = _uploaded(local_azure)
    client = dtl_client(local_azure)
    polling = ARMPolling(1, lro_options={"final-state-via": "location"})
    image = client.custom_images.begin_create_or_update(
        "rg-dev", "DevLab", name, _image(blob, "Linux", False), polling=polling
    ).result()
    assert image is not None, "the Location URL ended without the image"
    assert image.name == name and image.provisioning_state == "Succeeded"
    client.custom_images.begin_delete("rg-dev", "DevLab", name).result()


def test_revoke_access_ends_200(local_azure: dict[str, Any]) -> None:
    machine = dtl_client(local_azure).virtual_machines.get(
        "rg-imagefactory", "ImageFactory", "vm-ubuntu", expand="properties($expand=computeVm)"
    )
    assert machine.compute_vm is not None and machine.compute_vm.os_disk_id
    disk = machine.compute_vm.os_disk_id
    compute_client(local_azure).disks.begin_grant_access(
        disk.split("/")[4], disk.split("/")[8], {"access": "Read", "durationInSeconds": 60}
    ).result()
    with _arm(local_azure) as client:
        revoked = client.post(f"{disk}/endGetAccess?api-version=2025-01-02")
        assert revoked.status_code == 202 and revoked.headers["Retry-After"].isdigit()
        final = _final(client, revoked.headers["Location"])
        assert final.status_code == 200
        assert final.content == b""
