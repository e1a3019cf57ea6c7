"""World files for the local Azure and a generator of large worlds."""

from __future__ import annotations
