"""DingTalkHook: the ``crawl_dingtalk`` connection as a DingTalk robot.

The connection: password = access token, extra ``{"secret": "..."}`` for a signed robot,
host (with scheme and port, e.g. ``http://127.0.0.1:8089``) overrides
``https://oapi.dingtalk.com``. Token, secret and signed URLs are registered with Airflow's
secret masker as soon as the connection is read.

    robot = DingTalkHook(timeout_seconds=10).get_conn()   # None: no channel configured
    robot.send_markdown("title", "text")
"""

from __future__ import annotations

from typing import Any

from airflow.sdk import BaseHook

from crawlops.names import DINGTALK_CONN_ID


class DingTalkHook(BaseHook):
    conn_name_attr = "dingtalk_conn_id"
    default_conn_name = DINGTALK_CONN_ID
    conn_type = "dingtalk"
    hook_name = "DingTalk robot"

    def __init__(self, dingtalk_conn_id: str = default_conn_name, *, timeout_seconds: float = 10.0) -> None:
        super().__init__()
        self.dingtalk_conn_id = dingtalk_conn_id
        self.timeout_seconds = timeout_seconds

    def get_conn(self) -> Any:
        """The connection's robot (a ``crawlops.channels.DingTalkRobot``), or None when the
        connection does not exist or holds no token: alerts are then stored and logged only."""
        from airflow.sdk.exceptions import AirflowNotFoundException

        try:
            conn = self.get_connection(self.dingtalk_conn_id)
        except AirflowNotFoundException:
            return None
        return self.robot_of(conn)

    def robot_of(self, conn: Any) -> Any:
        """The robot of a connection already read (None without a token); its secrets masked."""
        from airflow.sdk.log import mask_secret

        from crawlops.channels import DEFAULT_BASE_URL, DingTalkRobot

        base_url = DEFAULT_BASE_URL
        if conn.host:
            scheme = conn.conn_type if conn.conn_type in ("http", "https") else "https"
            base_url = conn.host if "://" in conn.host else f"{scheme}://{conn.host}"
            base_url += f":{conn.port}" if conn.port else ""
        robot = DingTalkRobot(
            token=conn.password or "",
            secret=conn.extra_dejson.get("secret") or None,
            base_url=base_url,
            timeout_seconds=self.timeout_seconds,
        )
        for value in robot.secrets():
            mask_secret(value)
        if robot.secret:
            mask_secret(robot.url())  # the signed URL, as a whole, too
        return robot if robot.token else None
