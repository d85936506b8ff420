"""The SQLAlchemy URL Great Expectations connects with: the ``crawl_mysql`` connection's fields
and extras (TLS above all) must reach pymysql, read back through SQLAlchemy's own dialect
and used against the real MariaDB."""

from __future__ import annotations

import json
import os
from urllib.parse import urlsplit

import pytest
import sqlalchemy as sa

from crawlops_airflow.hooks.mysql import CrawlMySqlHook, mysql_sqlalchemy_url

TLS = {"ca": "/etc/crawlops/tls/ca.pem", "cert": "/etc/crawlops/tls/client.pem", "key": "/etc/crawlops/tls/client.key"}


def connect_args(url: str) -> dict:
    """What SQLAlchemy's pymysql dialect hands ``pymysql.connect`` for the URL."""
    parsed = sa.engine.make_url(url)
    _, kwargs = parsed.get_dialect()().create_connect_args(parsed)
    return kwargs


def url_for(extra: dict | None = None, **fields) -> str:
    base = {"host": "db.internal", "port": 3307, "login": "crawl ops", "password": "p@ss:w/rd%", "schema": "crawl"}
    return mysql_sqlalchemy_url(**{**base, **fields}, extra=extra)


def test_fields_survive_quoting_and_charset_defaults_to_utf8mb4():
    args = connect_args(url_for({}))

    assert (args["host"], args["port"], args["user"], args["password"], args["database"]) == (
        "db.internal", 3307, "crawl ops", "p@ss:w/rd%", "crawl",
    )  # fmt: skip
    assert args["charset"] == "utf8mb4"
    assert "ssl" not in args


def test_tls_extras_reach_pymysql_as_its_ssl_settings():
    as_dict = connect_args(url_for({"ssl": {**TLS, "check_hostname": False}, "charset": "utf8mb4"}))
    as_json = connect_args(url_for({"ssl": json.dumps(TLS)}))  # extras given in a connection URI arrive as text
    top_level = connect_args(url_for({"ssl_ca": TLS["ca"], "ssl_cert": TLS["cert"], "ssl_key": TLS["key"]}))

    assert as_dict["ssl"] == {**TLS, "check_hostname": False}
    assert as_json["ssl"] == top_level["ssl"] == TLS


@pytest.mark.parametrize(
    ("mode", "ssl", "expected"),
    [
        ("REQUIRED", {}, {"check_hostname": False}),  # TLS on, nothing to verify against
        ("VERIFY_CA", {"ca": TLS["ca"]}, {"ca": TLS["ca"], "check_hostname": False}),
        ("VERIFY_IDENTITY", {"ca": TLS["ca"]}, {"ca": TLS["ca"], "check_hostname": True}),
        ("DISABLED", TLS, None),
        ("PREFERRED", {"ca": TLS["ca"]}, {"ca": TLS["ca"]}),
    ],
)
def test_ssl_mode_decides_what_pymysql_is_asked_for(mode, ssl, expected):
    assert connect_args(url_for({"ssl": ssl, "ssl_mode": mode.lower()})).get("ssl") == expected


def test_what_cannot_be_carried_is_refused_not_dropped():
    with pytest.raises(ValueError, match="needs a CA"):
        url_for({"ssl_mode": "VERIFY_IDENTITY"})
    with pytest.raises(ValueError, match="crl"):
        url_for({"ssl": {**TLS, "crl": "/etc/crawlops/tls/crl.pem"}})
    with pytest.raises(ValueError, match="ssl_mode"):
        url_for({"ssl_mode": "SOMETIMES"})
    with pytest.raises(ValueError, match="IAM"):
        url_for({"iam": True})


def test_other_extras_reach_pymysql_and_hook_only_ones_are_left_out(caplog):
    args = connect_args(
        url_for({"unix_socket": "/run/mysqld/mysqld.sock", "connect_timeout": 7, "local_infile": True,
                 "client": "mysqlclient", "cursor": "sscursor", "colour": "blue"})
    )  # fmt: skip

    assert (args["unix_socket"], args["connect_timeout"], args["local_infile"]) == ("/run/mysqld/mysqld.sock", 7, True)
    assert not {"client", "cursor", "colour"} & set(args)
    assert "['colour']" in caplog.text  # an unknown extra is named, not silently lost


def test_the_airflow_connection_with_tls_extras_connects_to_mariadb(airflow_db, monkeypatch):
    """The URL from ``crawl_mysql`` itself: TLS asked of the driver (this MariaDB offers none, so
    pymysql goes on in plain text), the session set up by the extras, the right database."""
    conn = json.loads(os.environ["AIRFLOW_CONN_CRAWL_MYSQL"])
    conn["extra"] = {**conn["extra"], "ssl_mode": "REQUIRED", "init_command": "SET SESSION sql_mode = 'ANSI_QUOTES'"}
    monkeypatch.setenv("AIRFLOW_CONN_CRAWL_MYSQL", json.dumps(conn))

    url = CrawlMySqlHook().pymysql_url()
    engine = sa.create_engine(url, poolclass=sa.pool.NullPool)
    try:
        with engine.connect() as connection:
            database, charset, sql_mode = connection.execute(
                sa.text("SELECT DATABASE(), @@character_set_connection, @@sql_mode")
            ).one()
            tls_requested = connection.connection.driver_connection.ssl
    finally:
        engine.dispose()

    assert database == conn["schema"] == urlsplit(url).path.lstrip("/")
    assert (charset, sql_mode) == ("utf8mb4", "ANSI_QUOTES")
    assert tls_requested is True
