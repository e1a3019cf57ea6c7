"""The azure-core policies that put every ARM request of the factory through this process's pacer.

They sit after the retry policy (``per_retry_policies``), so a retry after a 429 — which azure-core's retry policy
already delays by the answer's ``Retry-After`` — is paced like any other attempt.
"""

from __future__ import annotations

import asyncio
from typing import Any

from azure.core.pipeline import PipelineRequest, PipelineResponse
from azure.core.pipeline.policies import AsyncHTTPPolicy, HTTPPolicy

from image_factory.pacing import PACERS, Pacers


class ArmPacingPolicy(HTTPPolicy[Any, Any]):
    """Wait for the request's turn (its kind's pacer) before sending it."""

    def __init__(self, pacers: Pacers = PACERS) -> None:
        super().__init__()
        self._pacers = pacers

    def send(self, request: PipelineRequest[Any]) -> PipelineResponse[Any, Any]:
        """Take a token of the request's kind, then send it on."""
        self._pacers.for_method(request.http_request.method).acquire()
        return self.next.send(request)


class AsyncArmPacingPolicy(AsyncHTTPPolicy[Any, Any]):
    """Async counterpart: waits with ``asyncio.sleep`` so the triggerer's loop keeps running."""

    def __init__(self, pacers: Pacers = PACERS) -> None:
        super().__init__()
        self._pacers = pacers

    async def send(self, request: PipelineRequest[Any]) -> PipelineResponse[Any, Any]:
        """Take a token of the request's kind, then send it on."""
        wait = self._pacers.for_method(request.http_request.method).reserve()
        if wait > 0:
            await asyncio.sleep(wait)
        return await self.next.send(request)
