"""``python -m image_factory.configuration [DIR]``: check a configuration folder (see ``cli``)."""

from __future__ import annotations

import sys

from image_factory.configuration.cli import main

sys.exit(main())
