"""Retention and factory clean-up: the original's RetireImages and CleanUpFactory, made safe.

Pure rules (nothing here talks to Azure):

- ``decisions``: one row per thing deleted or kept (``Decision``), the plan that collects them, the params filter;
- ``images``: which image versions go (keep-N, removed golden images, unsubscribed paths) and which survive;
- ``factory_vms``: which factory VMs go (captured, failed to provision) and which stay;
- ``in_flight``: what must survive because a distribution uses it (this run's plan, uploads to look for);
- ``table``: the table people read.

The task steps: ``facts`` gathers what the rules need from Azure, ``steps`` holds the ``retire`` group's
``decide`` and ``report`` (handing the decisions over through XCom), ``operator`` the mapped delete.
"""

from __future__ import annotations
