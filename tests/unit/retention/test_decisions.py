"""Retention's decisions and the params filter on them."""

from __future__ import annotations

from image_factory.retention.decisions import Decision, RetentionPlan, limit_to_paths


def test_limit_to_paths_drops_decisions_outside_the_filter_and_says_so() -> None:
    keep = Decision("delete", "custom_image", "DevLab", "a", "old", "Win2016/Datacenter.json", "d1")
    other = Decision("delete", "custom_image", "DevLab", "b", "old", "Ubuntu/Ubuntu2204.json", "d1")
    untagged = Decision("delete", "factory_vm", "F", "vm-broken", "failed to provision", None, None, error=True)
    plan = RetentionPlan(deletions=(keep, other, untagged))
    assert limit_to_paths(plan, []) is plan
    limited = limit_to_paths(plan, ["win2016"])
    assert limited.deletions == (keep,)
    assert limited.notes == ("2 deletion(s) left for a run without an image_paths filter",)
