"""Hooks of the factory: Azure DevTest Labs (ARM), managed disks (Compute) and the factory's blob storage."""

from __future__ import annotations
