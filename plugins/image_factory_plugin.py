"""The Image Factory plugin: the fleet view in Airflow's nav bar ("Image Factory") and its data API.

``fastapi_apps`` mounts :mod:`image_factory.fleet.api` in the api-server at ``/image-factory`` (every route behind
Airflow's authentication and authorization); ``external_views`` puts its page in the nav bar, embedded in the UI.
Every Airflow process loads plugins (task runners too), so the app is built on its first request only: importing
this module stays light. Plugins are loaded when a process starts: restart the api-server after changing this.
"""

from __future__ import annotations

from typing import Any

from airflow.plugins_manager import AirflowPlugin

from image_factory.fleet import URL_PREFIX


class LazyApp:
    """An ASGI app that builds the view's FastAPI app on its first request (in the api-server only)."""

    def __init__(self) -> None:
        self._app: Any = None

    async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
        if self._app is None:
            from image_factory.fleet.api import create_app  # noqa: PLC0415 - heavy: FastAPI, Airflow's security

            self._app = create_app()
        await self._app(scope, receive, send)


class ImageFactoryPlugin(AirflowPlugin):
    """The fleet at a glance: labs × ImagePaths, the catalogue, and "catch up this lab"."""

    name = "image_factory"
    # Airflow's plugin API: class attributes holding lists.
    fastapi_apps = [{"app": LazyApp(), "url_prefix": URL_PREFIX, "name": "Image Factory API"}]  # noqa: RUF012
    external_views = [  # noqa: RUF012
        {
            "name": "Image Factory",
            "href": f"{URL_PREFIX}/",
            "destination": "nav",
            # In the nav bar itself, not under its "Plugins" menu; the page is embedded at /plugin/image-factory.
            "nav_top_level": True,
            "url_route": "image-factory",
        }
    ]
