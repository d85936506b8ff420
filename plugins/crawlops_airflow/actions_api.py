"""The Crawl Ops app's operator actions (``crawlops.actions``): re-drive a Dead task, release
quarantined rows, re-run an hour's checks, acknowledge an alert or mark it expected, mute a
check; the alert board, the mutes in force and the audit trail.

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


class Rerun(_Action):
    hour: dt.datetime = Field(description="The hour to check again: its start, ISO 8601 (DAG timezone if naive)")


class Mute(_Action):
    check: str = Field(min_length=1, max_length=128)
    subject: str = Field(default="", max_length=255, description="Only this subject; empty: every subject")
    minutes: int = Field(description="How long, 1 minute to 7 days")


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

    _alert_routes(routes, Editor, Conn)
    return routes


def _alert_routes(routes: APIRouter, Editor: Any, Conn: Any) -> None:
    """Re-running an hour's checks, and what people do with alerts: acknowledge, expect, mute."""

    @routes.post("/api/actions/rerun", summary="Run an hour's checks again: a supervision run for it (audited)")
    def rerun(body: Rerun, user: Editor, conn: Conn) -> dict[str, Any]:
        return _act(body, lambda: _rerun(conn, body, _name(user)))

    @routes.post("/api/alerts/{alert_id}/{verb}", summary="Acknowledge an alert, or mark it expected (audited)")
    def set_status(alert_id: int, verb: str, body: _Action, user: Editor, conn: Conn) -> dict[str, Any]:
        from crawlops import actions

        wanted = {"acknowledge": "acknowledged", "expected": "expected"}.get(verb)
        if wanted is None:
            raise HTTPException(404, f"no alert action {verb!r}: acknowledge or expected")
        return _act(body, lambda: actions.set_alert_status(conn, alert_id, wanted, actor=_name(user),
                                                           reason=body.reason))  # fmt: skip

    @routes.post("/api/mutes", summary="Mute a check (one subject, or every one) for some minutes (audited)")
    def mute(body: Mute, user: Editor, conn: Conn) -> dict[str, Any]:
        from crawlops import actions

        return _act(body, lambda: actions.mute(conn, body.check, subject=body.subject, minutes=body.minutes,
                                               actor=_name(user), reason=body.reason))  # fmt: skip

    @routes.post("/api/mutes/{mute_id}/end", summary="End a mute now (audited)")
    def unmute(mute_id: int, body: _Action, user: Editor, conn: Conn) -> dict[str, Any]:
        from crawlops import actions

        return _act(body, lambda: actions.unmute(conn, mute_id, actor=_name(user), reason=body.reason))

    @routes.get("/api/mutes", summary="Mutes in force now, soonest to end first")
    def mutes(conn: Conn) -> dict[str, Any]:
        from crawlops.store import incidents

        return {"mutes": incidents.active_mutes(conn)}


def _rerun(conn: Any, body: Rerun, actor: str) -> dict[str, Any]:
    """Trigger a supervision run checking ``body.hour`` (Airflow's own trigger, as the form's),
    audited; a future or unfinished hour is refused."""
    from zoneinfo import ZoneInfo

    from airflow.api.common.trigger_dag import trigger_dag
    from airflow.exceptions import DagNotFound, DagRunAlreadyExists
    from airflow.utils.types import DagRunTriggeredByType

    from crawlops.actions import Refused
    from crawlops.model import hour_window_starting
    from crawlops.names import SUPERVISION_DAG
    from crawlops.settings import dag_timezone
    from crawlops.store import audit

    tz = dag_timezone()
    try:
        hour = hour_window_starting(body.hour, tz)
    except ValueError as exc:
        raise Refused(400, str(exc)) from exc
    if hour.end > dt.datetime.now(dt.UTC):
        raise Refused(409, f"the hour {hour.start.isoformat()} has not closed yet")
    conf = {"check_hour": hour.start.astimezone(ZoneInfo(tz)).isoformat(), "run_hourly": True}
    run_id = f"rerun__{hour.start:%Y-%m-%dT%H}__{dt.datetime.now(dt.UTC):%Y%m%dT%H%M%S%f}"
    try:
        run = trigger_dag(SUPERVISION_DAG, triggered_by=DagRunTriggeredByType.REST_API, triggering_user_name=actor,
                          run_id=run_id, conf=conf, note=f"{actor}: {body.reason}"[:1000])  # fmt: skip
    except DagNotFound as exc:
        raise Refused(404, f"{SUPERVISION_DAG} is not loaded: {exc}") from exc
    except (DagRunAlreadyExists, ValueError) as exc:  # ValueError: the DAG does not allow this run
        raise Refused(409, str(exc)) from exc
    from airflow.models.dag import DagModel

    model = DagModel.get_dagmodel(SUPERVISION_DAG)
    outcome = {"dag_id": SUPERVISION_DAG, "run_id": run.run_id if run else run_id, "conf": conf,
               "paused": bool(model and model.is_paused)}  # fmt: skip
    with conn.cursor() as cur:
        outcome["audit_id"] = audit.record(cur, action="rerun", subject=f"hour {conf['check_hour']}", actor=actor,
                                           reason=body.reason, params={"hour": conf["check_hour"]},
                                           outcome=dict(outcome))  # fmt: skip
    conn.commit()
    return outcome
