"""The factory's configuration folder: labs.json, factory.json and the GoldenImages templates.

``python -m image_factory.configuration [DIR]`` (``make validate``) checks a folder; the tasks load it with
:func:`load_configuration`, the DAG file reads its schedule and pool with :func:`parse_time_settings`.

Modules: ``reader`` (the one JSON reader: file lookup in any casing, BOM/UTF-16 decoding, size limits),
``scanner`` (line-aware scanning: repeated keys, the line of a JSON path), ``schema`` (the JSON Schemas in
``schemas/``), ``labs``, ``factory`` (with the FactorySettings model), ``golden``, ``validator`` (the whole
folder), ``findings`` (Finding, Report) and ``cli``.
"""

from __future__ import annotations

from image_factory.configuration.factory import (
    FactorySettings,
    find_factory_file,
    load_factory_settings,
    parse_time_settings,
)
from image_factory.configuration.findings import Finding, Report
from image_factory.configuration.golden import golden_images, golden_images_dir
from image_factory.configuration.labs import find_labs_file, load_labs
from image_factory.configuration.validator import Configuration, load_configuration, validate_configuration

__all__ = [
    "Configuration",
    "FactorySettings",
    "Finding",
    "Report",
    "find_factory_file",
    "find_labs_file",
    "golden_images",
    "golden_images_dir",
    "load_configuration",
    "load_factory_settings",
    "load_labs",
    "parse_time_settings",
    "validate_configuration",
]
