"""The Crawl Ops app's operator actions (``crawlops.actions``): re-drive a Dead task, release
quarantined rows, and the audit trail.

Reading the audit trail needs what the page needs (reading both DAGs' runs). Acting needs more:
the user must be allowed to edit the runs of both crawl DAGs (Airflow's auth manager,
``is_authorized_dag(method="PUT")``: with the simple auth manager, role USER and above; a
VIEWER gets 403). Every action names its reason and must be confirmed (``"confirm": true``,
what the page's confirmation dialog sends); the actor is the Airflow user. A refused action
answers its status (400, 404, 409) with the reason, and changes nothing.
"""

# No "from __future__ import annotations": the routes' Annotated aliases are local to router(), and
# FastAPI resolves string annotations in the module's globals.

import datetime as dt
from typing import Annotated, Any

from fastapi import APIRouter, Depends, HTTPException, status
from pydantic import BaseModel, ConfigDict, Field


def airflow_editor() -> Any:
    """The dependency that lets an action in: a user allowed to edit both crawl DAGs' runs."""
    from crawlops_airflow.access import crawl_dag_access

    return crawl_dag_access("PUT", "act on")


class _Action(BaseModel):
    model_config = ConfigDict(extra="forbid")
    reason: str = Field(min_length=1, max_length=1000, description="Why: kept in the audit row")
    confirm: bool = Field(description="Must be true: the action was confirmed")


class Redrive(_Action):
    task_id: str = Field(min_length=1, max_length=255)
    budget: int = Field(description="Crawls of the task's unanswered elements, 1-10")


class Release(_Action):
    crawl_object: str = Field(min_length=1, max_length=64)
    rule: str = Field(min_length=1, max_length=128)


def _name(user: Any) -> str:
    get_name = getattr(user, "get_name", None)
    return str(get_name() if callable(get_name) else user)


def _act(body: _Action, run: Any) -> dict[str, Any]:
    from crawlops.actions import Refused

    if not body.confirm:
        raise HTTPException(status.HTTP_400_BAD_REQUEST, "the action must be confirmed (confirm: true)")
    try:
        return run()
    except Refused as refused:
        raise HTTPException(refused.status, str(refused)) from refused


def router(editor: Any, mysql: Any) -> APIRouter:
    """The routes; ``editor`` is the acting user's dependency (Airflow's unless a test swaps it),
    ``mysql`` the app's MySQL session dependency."""
    routes = APIRouter()
    Editor = Annotated[Any, Depends(editor)]
    Conn = Annotated[Any, Depends(mysql)]

    @routes.post("/api/actions/redrive", summary="Re-drive a Dead task with a retry budget of its own (audited)")
    def redrive(body: Redrive, user: Editor, conn: Conn) -> dict[str, Any]:
        from crawlops import actions
        from crawlops_airflow.hooks.redis import CrawlRedisHook
        from crawlops_airflow.variables import settings_or_defaults

        def run() -> dict[str, Any]:
            r = CrawlRedisHook().get_conn()
            try:
                return actions.redrive(conn, r, settings_or_defaults(), body.task_id, budget=body.budget,
                                       actor=_name(user), reason=body.reason)  # fmt: skip
            finally:
                r.close()

        return _act(body, run)

    @routes.post("/api/actions/release", summary="Release a rule's quarantined rows into the results table (audited)")
    def release(body: Release, user: Editor, conn: Conn) -> dict[str, Any]:
        from crawlops import actions

        return _act(body, lambda: actions.release(conn, body.crawl_object, body.rule, actor=_name(user),
                                                  reason=body.reason))  # fmt: skip

    @routes.get("/api/actions", summary="Operator actions of the last days, newest first")
    def audit_trail(conn: Conn, days: int = 7) -> dict[str, Any]:
        from crawlops.store import audit

        end = dt.datetime.now(dt.UTC).replace(tzinfo=None)
        days = max(1, min(days, 90))
        return {"days": days, "actions": audit.actions_between(conn, end - dt.timedelta(days=days), end)}

    return routes
