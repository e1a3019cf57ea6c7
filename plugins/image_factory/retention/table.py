"""The retention table people read in ``retire.decide``'s log and in the retire report."""

from __future__ import annotations

from image_factory.retention.decisions import RetentionPlan


def render_table(plan: RetentionPlan, *, dry_run: bool) -> str:
    """A readable table of the decisions (what was, or in a dry run would be, deleted where and why)."""
    rows = [("action", "kind", "where", "name", "version", "reason")]
    verb = "would delete" if dry_run else "delete"
    for d in plan.deletions:
        rows.append((verb + (" (error)" if d.error else ""), d.kind, d.where, d.name, d.version or "", d.reason))
    for d in plan.kept:
        rows.append(("keep", d.kind, d.where, d.name, d.version or "", d.reason))
    widths = [max(len(r[i]) for r in rows) for i in range(len(rows[0]))]
    lines = ["  ".join(cell.ljust(widths[i]) for i, cell in enumerate(r)).rstrip() for r in rows]
    lines.insert(1, "  ".join("-" * w for w in widths))
    lines.extend(f"note: {n}" for n in plan.notes)
    if len(rows) == 1:
        lines.append("(nothing to retire)")
    return "\n".join(lines)
