"""Alert channels from Airflow connections: each name in the ``[alerts]`` routes is a connection id.

- conn type ``apprise`` (``apache-airflow-providers-apprise``): extra ``{"config": [{"path":
  "feishu://...", "tag": ...}, ...]}``, anything Apprise reaches (Feishu/Lark, WeCom, Slack,
  email, a JSON webhook...). The provider's ``AppriseHook`` reads the connection; the
  message is sent here, not through ``AppriseHook.notify``, because that drops Apprise's
  answer and delivery must know a failure to retry it.
- any other type is a DingTalk robot (``DingTalkHook``: password = token, extra ``secret``).

Tokens, webhook paths and signed URLs are registered with Airflow's secret masker as soon as
a connection is read, and Apprise's own log lines are redacted while a channel sends.
"""

from __future__ import annotations

import urllib.parse
from collections.abc import Iterable
from typing import Any

from crawlops.channels import URL_LOGGERS, Channel, DeliveryError, redacting
from crawlops.routing import NO_MENTIONS, Mentions
from crawlops.settings import AlertSettings


def channel_names(settings: AlertSettings) -> list[str]:
    """Every connection id the alert settings send to."""
    names = [*settings.default_channels, *settings.escalation.channels]
    for route in settings.routes:
        names += route.channels
    return list(dict.fromkeys(names))


def build_channels(names: Iterable[str], *, timeout_seconds: float) -> dict[str, Channel | None]:
    """Each name's channel, or None when its connection does not exist or holds no target."""
    from airflow.sdk import BaseHook
    from airflow.sdk.exceptions import AirflowNotFoundException

    from crawlops_airflow.hooks import DingTalkHook

    built: dict[str, Channel | None] = {}
    for name in names:
        try:
            conn = BaseHook.get_connection(name)
        except AirflowNotFoundException:
            built[name] = None
            continue
        if conn.conn_type == "apprise":
            built[name] = AppriseChannel.from_connection(name, conn, timeout_seconds=timeout_seconds)
        else:
            built[name] = DingTalkHook(name, timeout_seconds=timeout_seconds).robot_of(conn)
    return built


class AppriseChannel:
    """An Apprise connection as an alert channel (markdown; mentions printed as ``@who``)."""

    def __init__(self, conn_id: str, config: Any, *, timeout_seconds: float) -> None:
        self.conn_id = conn_id
        self.config = config
        self.timeout_seconds = timeout_seconds

    @classmethod
    def from_connection(cls, conn_id: str, conn: Any, *, timeout_seconds: float) -> AppriseChannel | None:
        from airflow.providers.apprise.hooks.apprise import AppriseHook
        from airflow.sdk.log import mask_secret

        try:
            config = AppriseHook(conn_id).get_config_from_conn(conn)
        except (KeyError, ValueError):
            return None  # no "config" in the extra: nothing to send to
        channel = cls(conn_id, config, timeout_seconds=timeout_seconds)
        for value in channel.secrets():
            mask_secret(value)
        return channel

    def _paths(self) -> list[str]:
        entries = self.config if isinstance(self.config, list) else [self.config]
        return [str(entry["path"]) for entry in entries if isinstance(entry, dict) and entry.get("path")]

    def secrets(self) -> list[str]:
        """Each service URL, and its parts that carry credentials (password, path, query)."""
        found: list[str] = []
        for path in self._paths():
            found.append(path)
            parts = urllib.parse.urlsplit(path)
            # feishu://TOKEN, slack://A/B/C: the token is where a host would be
            found += [p for p in (parts.netloc, parts.password, parts.username, parts.query) if p and len(p) >= 6]
            found += [seg for seg in parts.path.split("/") if len(seg) >= 8]
            found += [parts.netloc + parts.path] if parts.path.strip("/") else []
        return sorted(set(found), key=len, reverse=True)

    def send(self, title: str, text: str, mentions: Mentions = NO_MENTIONS) -> None:
        import apprise

        body = text + ("\n\n" + " ".join(mentions.handles()) if mentions else "")
        with redacting(self.secrets(), ("apprise", *URL_LOGGERS)):
            notifier = apprise.Apprise()
            for entry in self.config if isinstance(self.config, list) else [self.config]:
                notifier.add(entry["path"], tag=entry.get("tag"))
            if not len(notifier):
                raise DeliveryError(f"{self.conn_id}: no service Apprise understands in the connection")
            for service in notifier:
                service.socket_connect_timeout = service.socket_read_timeout = self.timeout_seconds
            ok = notifier.notify(body=body, title=title, body_format=apprise.NotifyFormat.MARKDOWN)
        if not ok:
            raise DeliveryError("Apprise: a service did not take the message (its error is in the log above)")
