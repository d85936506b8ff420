"""Who may use the Crawl Ops app: Airflow's auth manager, asked about the runs of both crawl DAGs."""

from __future__ import annotations

from typing import Any, Literal

from fastapi import Depends, HTTPException, status

from crawlops.names import DISPATCH_DAG, SUPERVISION_DAG


def crawl_dag_access(method: Literal["GET", "PUT"], doing: str) -> Any:
    """A FastAPI dependency: the Airflow user (session cookie or bearer token), if the auth
    manager lets them ``method`` ("GET" to read, "PUT" to act) the runs of both crawl DAGs;
    else 403 ("not allowed to ``doing`` the runs of ...")."""
    from airflow.api_fastapi.app import get_auth_manager
    from airflow.api_fastapi.auth.managers.models.resource_details import DagAccessEntity, DagDetails
    from airflow.api_fastapi.core_api.security import get_user

    def allowed_user(user: Any = Depends(get_user)) -> Any:  # noqa: B008 - a dependency made at runtime
        manager = get_auth_manager()
        for dag_id in (DISPATCH_DAG, SUPERVISION_DAG):
            if not manager.is_authorized_dag(
                method=method, access_entity=DagAccessEntity.RUN, details=DagDetails(id=dag_id), user=user
            ):
                raise HTTPException(status.HTTP_403_FORBIDDEN, f"not allowed to {doing} the runs of {dag_id}")
        return user

    return allowed_user
