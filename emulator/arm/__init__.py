"""The Azure Resource Manager half of the local Azure: DevTest Labs, managed disks, control API."""

from __future__ import annotations
