"""The Image Factory view's FastAPI app, mounted by the plugin in Airflow's api-server.

A FastAPI app a plugin mounts is not behind Airflow's login: every route here depends on Airflow's own
authentication (``get_user``: a bearer token or the UI's ``_token`` cookie; none → 401, an invalid one → 403)
and authorization (``requires_access_dag`` on the factory DAG: read for the view, trigger for the action; no
right → 403). FastAPI's own docs routes are off, so no route is left open. Responses hold names, versions,
states, sizes and ARM ids only — never a key, SAS or password.

Routes (under the plugin's prefix, ``/image-factory``):

- ``GET /`` — the page (embedded in the UI's nav bar as "Image Factory");
- ``GET /api/fleet`` — the fleet model as JSON, with links to each lab's run and to the task of each pair;
- ``POST /api/labs/{lab}/catch-up`` ``{"dry_run": true}`` — trigger a dry run of the lab, then
  ``{"dry_run": false, "dry_run_id": "<its run id>"}`` — the real run, once that dry run succeeded;
- ``GET /api/runs/{run_id}`` — a run's state and what its plan chose (the dry run's answer).
"""

from __future__ import annotations

from typing import Annotated, Any
from urllib.parse import quote

from airflow.api_fastapi.auth.managers.models.resource_details import DagAccessEntity
from airflow.api_fastapi.common.db.common import SessionDep
from airflow.api_fastapi.core_api.security import requires_access_dag
from fastapi import Depends, FastAPI, HTTPException, Request
from fastapi.responses import HTMLResponse
from pydantic import BaseModel

from image_factory.fleet import URL_PREFIX
from image_factory.fleet.catch_up import AirflowApi, CatchUpRefused, RestAirflowApi, catch_up_conf, refusal
from image_factory.fleet.model import Fleet, build_fleet
from image_factory.fleet.page import page_html
from image_factory.fleet.store import FleetStore, OrmFleetStore
from image_factory.settings import DAG_ID


def get_store(session: SessionDep) -> FleetStore:
    """Return the store on the request's metadata DB session (Airflow's own session dependency)."""
    return OrmFleetStore(session)


def get_airflow_api(request: Request) -> AirflowApi:
    """Return Airflow's REST API at the api-server's ``[api] base_url`` (else the URL this request came to)."""
    from airflow.configuration import conf  # noqa: PLC0415

    base = conf.get("api", "base_url", fallback="") or str(request.base_url).removesuffix(URL_PREFIX + "/")
    return RestAirflowApi(base)


def user_token(request: Request) -> str:
    """Return the token the request was authenticated with (bearer header first, then the UI's cookie)."""
    from airflow.api_fastapi.auth.managers.base_auth_manager import COOKIE_NAME_JWT_TOKEN  # noqa: PLC0415

    header = request.headers.get("authorization", "")
    scheme, _, credentials = header.partition(" ")
    if scheme.lower() == "bearer" and credentials:
        return credentials.strip()
    return request.cookies.get(COOKIE_NAME_JWT_TOKEN, "")


def run_url(run_id: str) -> str:
    """Return the UI's page of a run of the factory DAG."""
    return f"/dags/{DAG_ID}/runs/{quote(run_id, safe='')}"


def task_url(run_id: str, task_id: str, map_index: int) -> str:
    """Return the UI's page of one mapped task instance of a run."""
    return f"{run_url(run_id)}/tasks/{quote(task_id, safe='')}/mapped/{map_index}"


def fleet_document(fleet: Fleet) -> dict[str, Any]:
    """Return the fleet as the API answers it: the model's document plus links into Airflow's UI."""
    document = fleet.to_dict()
    for lab in document["labs"]:
        last = lab["last_run"]
        if last is None:
            continue
        last["url"] = run_url(last["run_id"])
        for pair in last["pairs"]:
            pair["url"] = task_url(last["run_id"], pair["task_id"], pair["map_index"])
    return document


def load_fleet(store: FleetStore) -> Fleet:
    """Read the snapshots, the runs they came from and their distribute tasks' states; build the fleet."""
    snapshots = store.snapshots()
    run_ids = [str(s.get("run_id", "")) for s in snapshots]
    return build_fleet(snapshots, task_states=store.task_states(run_ids), run_states=store.run_states(run_ids))


#: The dependencies of the routes. Module level: FastAPI resolves the routes' string annotations (``from __future__
#: import annotations``) in this module's globals, so a dependency's types must be importable from here.
Store = Annotated[FleetStore, Depends(get_store)]
Api = Annotated[AirflowApi, Depends(get_airflow_api)]


class CatchUp(BaseModel):
    """The catch-up action's body: a dry run first, then the real run naming that dry run."""

    dry_run: bool = True
    dry_run_id: str | None = None


def create_app() -> FastAPI:
    """Return the plugin's app, every route behind Airflow's authentication and authorization."""
    read = [Depends(requires_access_dag("GET", param_dag_id=DAG_ID))]
    read_runs = [Depends(requires_access_dag("GET", DagAccessEntity.RUN, param_dag_id=DAG_ID))]
    trigger = [Depends(requires_access_dag("POST", DagAccessEntity.RUN, param_dag_id=DAG_ID))]
    app = FastAPI(title="Image Factory", docs_url=None, redoc_url=None, openapi_url=None)

    @app.get("/", response_class=HTMLResponse, dependencies=read)
    def page(request: Request) -> str:
        return page_html(request.scope.get("root_path", "") or URL_PREFIX)

    @app.get("/api/fleet", dependencies=read + read_runs)
    def fleet(store: Store) -> dict[str, Any]:
        return fleet_document(load_fleet(store))

    @app.get("/api/runs/{run_id}", dependencies=read_runs)
    def run(run_id: str, store: Store) -> dict[str, Any]:
        info = store.run(run_id)
        if info is None:
            raise HTTPException(404, f"no run {run_id} of {DAG_ID}")
        return {"run_id": info.run_id, "state": info.state, "conf": info.conf, "planned": info.planned,
                "url": run_url(info.run_id)}  # fmt: skip

    @app.post("/api/labs/{lab}/catch-up", dependencies=trigger)
    def catch_up(lab: str, body: CatchUp, request: Request, store: Store, api: Api) -> dict[str, Any]:
        row = load_fleet(store).lab(lab)
        if row is None:
            raise HTTPException(404, f"{lab} is not a lab of labs.json (as the newest verify read it)")
        if not body.dry_run:
            why = refusal(store.run(body.dry_run_id) if body.dry_run_id else None, row.name)
            if why:
                raise HTTPException(409, why)
        try:
            started = api.trigger(user_token(request), catch_up_conf(row.name, dry_run=body.dry_run))
        except CatchUpRefused as refused:
            raise HTTPException(refused.status, refused.detail) from refused
        run_id = str(started.get("dag_run_id", ""))
        return {"run_id": run_id, "dry_run": body.dry_run, "lab": row.name, "url": run_url(run_id)}

    return app
