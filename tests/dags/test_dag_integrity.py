"""Every DAG file parses, and every DAG carries what operators rely on in the UI."""

from __future__ import annotations

from pathlib import Path

import pytest

DAGS_DIR = Path(__file__).resolve().parents[2] / "dags"


@pytest.fixture(scope="module")
def dagbag():
    from airflow.dag_processing.dagbag import DagBag

    return DagBag(dag_folder=str(DAGS_DIR))


def test_no_import_errors(dagbag):
    assert dagbag.import_errors == {}


def test_expected_dags_are_present(dagbag):
    assert "amazon_task_dispatch" in dagbag.dag_ids


def test_every_dag_has_docs_tags_owner_and_retries(dagbag):
    for dag_id, dag in dagbag.dags.items():
        assert dag.doc_md and len(dag.doc_md) > 200, dag_id
        assert dag.tags, dag_id
        for task in dag.tasks:
            assert task.retries >= 1, f"{dag_id}.{task.task_id}"
            assert task.owner == "crawl-ops", f"{dag_id}.{task.task_id}"


def test_every_task_and_run_has_a_time_limit(dagbag):
    """A hung socket cannot hold a worker slot forever."""
    for dag_id, dag in dagbag.dags.items():
        assert dag.dagrun_timeout is not None and dag.dagrun_timeout.total_seconds() > 0, dag_id
        for task in dag.tasks:
            limit = task.execution_timeout
            assert limit is not None and 0 < limit.total_seconds() <= dag.dagrun_timeout.total_seconds(), task


def test_dispatch_window_is_a_real_hourly_interval(dagbag):
    from airflow.sdk import CronDataIntervalTimetable

    dag = dagbag.dags["amazon_task_dispatch"]

    assert isinstance(dag.timetable, CronDataIntervalTimetable)
    assert dag.catchup is False


def test_dag_files_import_nothing_heavy_at_module_level():
    import subprocess
    import sys

    for path in DAGS_DIR.glob("*.py"):
        code = (
            "import runpy, sys; runpy.run_path(sys.argv[1]); "
            "heavy = [m for m in ('great_expectations', 'pandas', 'MySQLdb', 'redis', "
            "'airflow.providers.mysql.hooks.mysql', 'airflow.providers.redis.hooks.redis') "
            "if m in sys.modules]; print(','.join(heavy))"
        )
        out = subprocess.run([sys.executable, "-c", code, str(path)], capture_output=True, text=True, check=True)
        assert out.stdout.strip() == "", f"{path.name} imports {out.stdout.strip()} at parse time"


def test_supervision_tasks_and_the_daily_ones_after_the_closing_hours_checks(dagbag):
    dag = dagbag.dags["amazon_data_supervision"]

    assert set(dag.task_ids) == {
        "system_check", "task_health", "freshness", "hour_closes", "day_closes", "validate_results",
        "volume_anomaly", "schema_drift", "completeness", "recrawl_incomplete", "quarantine_invalid",
        "daily_report", "retention", "summarize", "crawl_outcomes", "fleet", "crawl_objects",
    }  # fmt: skip
    # the per-object checks are mapped over the crawl objects the hour judges
    for mapped in ("validate_results", "volume_anomaly", "schema_drift", "recrawl_incomplete", "quarantine_invalid"):
        assert "crawl_objects" in dag.get_task(mapped).upstream_task_ids, mapped
    assert dag.get_task("crawl_objects").upstream_task_ids == {"hour_closes"}
    for every_run in ("crawl_outcomes", "fleet"):  # after the system check, into the run's summary
        assert dag.get_task(every_run).upstream_task_ids == {"system_check"}
        assert every_run in dag.get_task("summarize").upstream_task_ids
    report, retention = dag.get_task("daily_report"), dag.get_task("retention")
    # retention runs after the day's report, whatever its outcome, and before the run's summary
    assert retention.upstream_task_ids == {"daily_report"} and retention.trigger_rule == "all_done"
    assert "day_closes" in report.upstream_task_ids
    assert "retention" in dag.get_task("summarize").upstream_task_ids
