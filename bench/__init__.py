"""Benchmarks: the product ("ours") against a Python port of the PowerShell DistributeImages ("baseline")."""

from __future__ import annotations
