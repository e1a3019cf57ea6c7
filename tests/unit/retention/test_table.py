"""The retention table people read."""

from __future__ import annotations

from image_factory.models import FactoryVm
from image_factory.retention.factory_vms import cleanup_plan
from image_factory.retention.table import render_table

SUB = "11111111-1111-4111-8111-111111111111"


def test_table_says_would_in_a_dry_run() -> None:
    plan = cleanup_plan(
        vms=[FactoryVm("vm-broken", {}, "Failed")], captured_vms=[], where="F", subscription_id=SUB, resource_group="rg"
    )
    assert "would delete (error)" in render_table(plan, dry_run=True)
    assert "would delete" not in render_table(plan, dry_run=False)
