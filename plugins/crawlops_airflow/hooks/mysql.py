"""CrawlMySqlHook: the ``crawl_mysql`` connection as this package uses it.

``MySqlHook`` with the package's session (``crawlops.db.prepare``: UTC, utf8mb4, READ
COMMITTED) on every connection it opens, and the ``mysql+pymysql://`` URL Great Expectations
connects with, carrying the connection's TLS and charset extras (``mysql_sqlalchemy_url``).

    with CrawlMySqlHook("crawl_mysql").session() as conn: ...
    CrawlMySqlHook().pymysql_url()
"""

from __future__ import annotations

import contextlib
import json
import logging
from collections.abc import Iterator, Mapping
from typing import Any

from airflow.providers.mysql.hooks.mysql import MySqlHook

from crawlops.db import Connection, prepare
from crawlops.names import MYSQL_CONN_ID

log = logging.getLogger(__name__)


class CrawlMySqlHook(MySqlHook):
    default_conn_name = MYSQL_CONN_ID
    hook_name = "Crawl MySQL"

    def __init__(self, mysql_conn_id: str = MYSQL_CONN_ID, **kwargs: Any) -> None:
        super().__init__(mysql_conn_id=mysql_conn_id, **kwargs)

    def connect(self) -> Connection:
        """A new connection with the package's session; the caller closes it (for callers that
        must tell a failed connect apart from what follows)."""
        return prepare(self.get_conn())

    @contextlib.contextmanager
    def session(self) -> Iterator[Connection]:
        """``connect`` as a context manager that closes the connection."""
        conn = self.connect()
        try:
            yield conn
        finally:
            conn.close()

    def pymysql_url(self) -> str:
        """``mysql+pymysql://`` URL of the connection, for Great Expectations, with its extras
        (TLS above all) carried as URL query parameters: see :func:`mysql_sqlalchemy_url`."""
        conn = self.get_connection(getattr(self, self.conn_name_attr))
        return mysql_sqlalchemy_url(
            host=conn.host, port=conn.port, login=conn.login, password=conn.password, schema=conn.schema,
            extra=conn.extra_dejson,
        )  # fmt: skip


#: TLS settings SQLAlchemy's MySQL dialects read from the URL query into pymysql's ``ssl`` dict.
_SSL_KEYS = ("ca", "cert", "key", "capath", "cipher", "check_hostname")
#: Extras handed to pymysql unchanged (SQLAlchemy converts the numbers and flags).
_PASSED_EXTRAS = ("charset", "unix_socket", "init_command", "local_infile", "connect_timeout", "read_timeout",
                  "write_timeout")  # fmt: skip
#: Extras of a MySQL connection that choose MySqlHook's own client and cursor: nothing to GE's engine.
_HOOK_ONLY_EXTRAS = ("client", "cursor")
_SSL_MODES = ("DISABLED", "PREFERRED", "REQUIRED", "VERIFY_CA", "VERIFY_IDENTITY")


def mysql_sqlalchemy_url(
    *,
    host: str | None,
    port: int | None,
    login: str | None,
    password: str | None,
    schema: str | None,
    extra: Mapping[str, Any] | None = None,
) -> str:
    """A ``mysql+pymysql://`` URL for a MySQL connection's fields and extras (``extra_dejson``).

    Carried as query parameters, which SQLAlchemy's pymysql dialect turns into connect
    arguments: ``charset`` (default utf8mb4), ``unix_socket``, ``init_command``,
    ``local_infile`` and the timeouts as they are; TLS from ``ssl`` (a dict, or its JSON, as
    MySqlHook takes it: ``ca``, ``cert``, ``key``, ``capath``, ``cipher``, ``check_hostname``),
    or the same as top-level ``ssl_*`` extras, as ``ssl_ca=...`` and so on; and ``ssl_mode``:
    ``DISABLED`` drops the TLS settings, ``REQUIRED`` asks for TLS even without a CA (then
    unverified), ``VERIFY_CA`` and ``VERIFY_IDENTITY`` need a CA and verify the certificate
    (``VERIFY_IDENTITY`` the host name too), ``PREFERRED`` (the default) keeps ``ssl`` as
    given. TLS settings that cannot be carried, and ``iam``, are refused with ValueError
    rather than silently connecting without them; any other unknown extra is left out with
    a warning.

    pymysql, unlike libmysqlclient, falls back to plain text when the server offers no TLS,
    whatever the mode: requiring TLS is the server's job (``REQUIRE SSL`` on the user).
    """
    import sqlalchemy as sa

    extra = dict(extra or {})
    if extra.pop("iam", False):
        raise ValueError("IAM authentication (extra 'iam') is not supported for the SQLAlchemy URL")
    ssl = _tls_settings(extra)
    query = {f"ssl_{k}": str(v).lower() if isinstance(v, bool) else str(v) for k, v in ssl.items() if v is not None}
    query["charset"] = str(extra.pop("charset", None) or "utf8mb4")
    for key in _PASSED_EXTRAS:
        value = extra.pop(key, None)
        if value is not None and value != "":
            query[key] = str(int(value) if isinstance(value, bool) else value)
    for key in _HOOK_ONLY_EXTRAS:
        extra.pop(key, None)
    if extra:
        log.warning("extras %s of the MySQL connection are not used for the SQLAlchemy URL", sorted(extra))
    url = sa.engine.URL.create(
        "mysql+pymysql", username=login or None, password=password or None, host=host or "127.0.0.1",
        port=int(port or 3306), database=schema or None, query=query,
    )  # fmt: skip
    return url.render_as_string(hide_password=False)


def _tls_settings(extra: dict[str, Any]) -> dict[str, Any]:
    """The TLS settings of the extras (taken out of ``extra``) as pymysql's ``ssl`` dict, with
    ``ssl_mode`` applied (see :func:`mysql_sqlalchemy_url`)."""
    ssl = extra.pop("ssl", None) or {}
    if isinstance(ssl, str):
        ssl = json.loads(ssl)
    if not isinstance(ssl, dict):
        raise ValueError(f"extra 'ssl' must be a JSON object, not {type(ssl).__name__}")
    ssl = dict(ssl)
    for key in [k for k in extra if k.startswith("ssl_") and k != "ssl_mode"]:
        ssl[key.removeprefix("ssl_")] = extra.pop(key)
    unknown = sorted(set(ssl) - set(_SSL_KEYS))
    if unknown:
        raise ValueError(f"TLS settings {unknown} cannot be carried to the SQLAlchemy URL (known: {_SSL_KEYS})")
    mode = str(extra.pop("ssl_mode", "") or "PREFERRED").upper()
    if mode not in _SSL_MODES:
        raise ValueError(f"extra ssl_mode={mode!r}: one of {', '.join(_SSL_MODES)}")
    has_ca = bool(ssl.get("ca") or ssl.get("capath"))
    if mode == "DISABLED":
        ssl = {}
    elif mode in ("VERIFY_CA", "VERIFY_IDENTITY") and not has_ca:
        raise ValueError(f"ssl_mode {mode} needs a CA (extra ssl.ca or ssl.capath)")
    elif mode in ("REQUIRED", "VERIFY_CA"):
        # A non-empty ssl dict turns TLS on; pymysql verifies the certificate iff it has a CA
        # (REQUIRED with a CA is VERIFY_CA, as in MySQL's own client), never the host name.
        ssl["check_hostname"] = False
    elif mode == "VERIFY_IDENTITY":
        ssl["check_hostname"] = True
    return ssl
