"""Versioned migrations against the real MariaDB: applied in order once, re-runnable after a
stop halfway, a database older than versioning brought to the baseline, and a database
behind the package refused with the command to run."""

from __future__ import annotations

import pytest

from crawlops import migrations
from crawlops.db import sql_statements
from crawlops.migrations import VERSION_TABLE, SchemaBehind, check, current_version, migrate


def table_columns(conn, table):
    with conn.cursor() as cur:
        cur.execute(
            "SELECT COLUMN_NAME FROM information_schema.COLUMNS WHERE TABLE_SCHEMA = DATABASE() AND TABLE_NAME = %s",
            (table,),
        )
        return {name for (name,) in cur.fetchall()}


def forget_versions(conn, *versions):
    """As if those migrations had never been recorded (all of them: a database older than versioning)."""
    with conn.cursor() as cur:
        if versions:
            cur.execute(f"DELETE FROM {VERSION_TABLE} WHERE version IN ({', '.join(['%s'] * len(versions))})", versions)
        else:
            cur.execute(f"DROP TABLE {VERSION_TABLE}")
    conn.commit()


def test_migration_files_are_numbered_and_the_baseline_is_idempotent():
    found = migrations.migrations()

    assert [m.version for m in found] == list(range(1, len(found) + 1))
    assert found[0].name == "baseline" and migrations.expected_version() == len(found)
    baseline = sql_statements(found[0].path)
    assert len(baseline) == 11
    assert all(s.upper().startswith("CREATE TABLE IF NOT EXISTS") for s in baseline)


def test_migrating_twice_applies_nothing_the_second_time_and_keeps_rows(mysql, config):
    config([("search_result", "kw", "US", "hourly", 1)])

    assert migrate(mysql) == []
    assert current_version(mysql) == migrations.expected_version() == check(mysql)
    with mysql.cursor() as cur:
        cur.execute("SELECT COUNT(*) FROM amazon_crawl_config")
        assert cur.fetchone() == (1,)


def names(first: int = 1) -> list[str]:
    """The migrations from version ``first`` on, as ``migrate`` reports them."""
    return [f"{m.version:04d}_{m.name}" for m in migrations.migrations() if m.version >= first]


def test_a_database_behind_is_refused_with_the_command_to_run(mysql):
    newest = migrations.expected_version()
    forget_versions(mysql, newest)
    behind = rf"version {newest - 1}, this package needs {newest}.*{names(newest)[0]}.*python -m crawlops.migrations"
    try:
        with pytest.raises(SchemaBehind, match=behind):
            check(mysql)
    finally:
        # The change is there already (as after a migration stopped before it was recorded): re-run, skipped.
        assert migrate(mysql) == names(newest)
    assert check(mysql) == newest


@pytest.mark.parametrize(("version", "table", "column"), [(2, "amazon_task_element", "recrawl_at"),
                                                          (3, "amazon_task_information", "priority")])  # fmt: skip
def test_a_migration_adds_its_column_once(mysql, version, table, column):
    with mysql.cursor() as cur:
        cur.execute(f"ALTER TABLE {table} DROP COLUMN {column}")
    forget_versions(mysql, *range(version, migrations.expected_version() + 1))

    assert migrate(mysql) == names(version)  # the later ones find their change made: skipped, recorded

    assert column in table_columns(mysql, table)
    assert migrate(mysql) == []


def test_an_unversioned_database_gets_every_migration(mysql):
    forget_versions(mysql)
    assert current_version(mysql) == 0

    assert migrate(mysql) == names()
    assert current_version(mysql) == migrations.expected_version()


def test_an_older_results_table_gets_the_hour_column(mysql):
    with mysql.cursor() as cur:
        cur.execute("ALTER TABLE amazon_search_result DROP COLUMN create_hour")
    assert "create_hour" not in table_columns(mysql, "amazon_search_result")

    forget_versions(mysql)  # a database older than versioning
    migrate(mysql)

    assert "create_hour" in table_columns(mysql, "amazon_search_result")
    with mysql.cursor() as cur:
        cur.execute("INSERT INTO amazon_search_result (task_id, create_time) VALUES ('t', '2026-11-03 12:34:56')")
        cur.execute("SELECT create_hour FROM amazon_search_result")
        assert str(cur.fetchone()[0]) == "2026-11-03 12:00:00"


def test_older_tables_get_the_indexes_the_crawl_ops_page_reads_through(mysql):
    wanted = {
        "amazon_alert": "idx_alert_check_window",
        "amazon_validation_run": "idx_validation_time",
        "amazon_search_result_quarantine": "idx_quarantine_element",
    }
    with mysql.cursor() as cur:
        for table, index in wanted.items():
            cur.execute(f"ALTER TABLE {table} DROP INDEX {index}")

    forget_versions(mysql)  # a database older than versioning
    migrate(mysql)

    with mysql.cursor() as cur:
        for table, index in wanted.items():
            cur.execute(
                "SELECT COUNT(*) FROM information_schema.STATISTICS "
                "WHERE TABLE_SCHEMA = DATABASE() AND TABLE_NAME = %s AND INDEX_NAME = %s",
                (table, index),
            )
            assert cur.fetchone()[0] > 0, index


def test_older_task_tables_get_settling_columns_and_old_tasks_count_as_settled(mysql):
    with mysql.cursor() as cur:
        cur.execute(
            "ALTER TABLE amazon_task_information DROP INDEX idx_task_settled, DROP COLUMN settled_at, "
            "DROP COLUMN answered_count, DROP COLUMN empty_count, DROP COLUMN lost_count"
        )
        cur.execute("ALTER TABLE amazon_task_element DROP COLUMN empty_at")
        for task_id, status, days_ago in [("old", "Completed", 3), ("recent", "Completed", 0), ("open", "Pending", 0)]:
            cur.execute(
                "INSERT INTO amazon_task_information (task_id, task_type, root_task_id, frequency, task_status, "
                "element_count, interval_start, interval_end, finished_at) VALUES (%s, 'search_result', %s, "
                "'hourly', %s, 1, '2026-11-01', '2026-11-01 01:00', "
                "IF(%s = 'Pending', NULL, UTC_TIMESTAMP() - INTERVAL %s DAY))",
                (task_id, task_id, status, status, days_ago),
            )
    mysql.commit()

    forget_versions(mysql)  # a database older than versioning
    migrate(mysql)

    assert {"settled_at", "answered_count", "empty_count", "lost_count"} <= table_columns(
        mysql, "amazon_task_information"
    )
    assert "empty_at" in table_columns(mysql, "amazon_task_element")
    with mysql.cursor() as cur:
        cur.execute("SELECT task_id, settled_at IS NOT NULL FROM amazon_task_information ORDER BY task_id")
        # a day-old finished task is final; a recent one is left for the settle step to judge
        assert cur.fetchall() == (("old", 1), ("open", 0), ("recent", 0))
