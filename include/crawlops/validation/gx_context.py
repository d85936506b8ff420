"""Great Expectations, imported lazily, and the GE objects a process builds once and reuses.

``great_expectations`` takes several seconds to import, so it is imported inside functions,
once per process, with its logging and progress bars silenced. The ephemeral context, the
SQL data sources (one engine and pool each), the assets and batch definitions, the suites
added to the context and the ValidationDefinitions running them are cached here, so
repeated validations pay only for their SQL. Every cache is guarded by ``STATE.lock``.
"""

from __future__ import annotations

import copy
import hashlib
import logging
import os
import threading
import time
import warnings
from pathlib import Path
from typing import Any

from crawlops.validation.suite import load_suite

# Set (unless already set) before GE is imported. GE 1.24.1 ships no analytics client at
# all (GX_ANALYTICS_ENABLED survives only in a docstring; the context is also built with
# analytics_enabled=False), so these two only matter for other GE releases. TQDM_DISABLE is
# honoured by the installed tqdm and backs up the context's progress_bars=False.
_GX_ENV = {
    "GX_ANALYTICS_ENABLED": "False",
    "GE_USAGE_STATS": "False",
    "TQDM_DISABLE": "1",
}
_GX_LOGGERS = ("great_expectations",)


class _GX:
    """The process's GE module, context and the objects built on it (each built once)."""

    def __init__(self) -> None:
        self.lock = threading.RLock()
        self.module: Any = None
        self.import_seconds: float | None = None
        self.context: Any = None
        self.datasources: dict[str, Any] = {}
        self.batch_definitions: dict[tuple[str, str, str], Any] = {}
        self.suites: dict[tuple[str, float], tuple[dict[str, Any], Any]] = {}
        #: (GE suite name, data source/asset/batch definition) -> the ValidationDefinition of the one on the other
        self.validations: dict[tuple[str, str], Any] = {}


STATE = _GX()


def _quiet_gx_logging() -> None:
    """GE logs hundreds of DEBUG/INFO lines at import and per validation; keep only its errors.

    A deployment that set a level on these loggers itself keeps it.
    """
    for name in _GX_LOGGERS:
        logger = logging.getLogger(name)
        if logger.level == logging.NOTSET:
            logger.setLevel(logging.ERROR)


def import_gx() -> Any:
    """Import great_expectations once, quietly; returns the module."""
    with STATE.lock:
        if STATE.module is None:
            for key, value in _GX_ENV.items():
                os.environ.setdefault(key, value)
            _quiet_gx_logging()
            started = time.perf_counter()
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                import great_expectations as gx
            STATE.import_seconds = time.perf_counter() - started
            # Run-time warnings raised inside GE (deprecations, "a more specific data source
            # type may be more appropriate") are GE's business, not the task log's.
            warnings.filterwarnings("ignore", module=r"great_expectations(\.|$)")
            STATE.module = gx
        return STATE.module


def gx_import_seconds() -> float | None:
    """How long the first import of great_expectations took in this process (None before it)."""
    return STATE.import_seconds


def data_context() -> Any:
    """The process's ephemeral GE context: in-memory stores, no data docs, no analytics, no progress bars."""
    with STATE.lock:
        if STATE.context is None:
            gx = import_gx()
            from great_expectations.data_context.types.base import (
                DataContextConfig,
                InMemoryStoreBackendDefaults,
                ProgressBarsConfig,
            )

            config = DataContextConfig(
                store_backend_defaults=InMemoryStoreBackendDefaults(init_temp_docs_sites=False),
                analytics_enabled=False,
                progress_bars=ProgressBarsConfig(globally=False, metric_calculations=False),
            )
            STATE.context = gx.get_context(mode="ephemeral", project_config=config)
        return STATE.context


def _sqlalchemy_url(url: str) -> str:
    """A ``mysql://`` URL made explicit for SQLAlchemy: pymysql driver, utf8mb4; its query is kept."""
    scheme, sep, rest = url.partition("://")
    if not sep:
        raise ValueError(f"not a database URL: {url!r}")
    if scheme == "mysql":
        scheme = "mysql+pymysql"
    if scheme.startswith("mysql") and "charset=" not in rest:
        rest += ("&" if "?" in rest else "?") + "charset=utf8mb4"
    return f"{scheme}://{rest}"


def datasource(url: str, *, temp_tables: bool = False) -> Any:
    """One SQL data source per (database URL, temp-table mode), its engine shared by every validation.

    ``temp_tables`` is the GE data source's ``create_temp_table``: the QUERY asset path
    materialises its window once in a temporary table; the partitioned TABLE asset path
    reads the base table through the ``create_hour`` index and needs none.
    """
    key = f"{url}#temp={temp_tables}"
    with STATE.lock:
        source = STATE.datasources.get(key)
        if source is None:
            context = data_context()
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")  # "a more specific datasource may be more appropriate"
                source = context.data_sources.add_sql(
                    name=f"crawlops_{len(STATE.datasources)}",
                    connection_string=_sqlalchemy_url(url),
                    create_temp_table=temp_tables,
                    kwargs=_engine_kwargs(temp_tables),
                )
            STATE.datasources[key] = source
        return source


def _engine_kwargs(temp_tables: bool) -> dict[str, Any]:
    """SQLAlchemy engine options: pre-ping, so an hourly task survives a server restart between runs.

    A MySQL temporary table lives only in the connection that created it, and GE does not
    pin one connection for MySQL: the temp-table source gets exactly one pooled connection
    (no overflow, no recycling), so every query of a batch, and the final DROP, run where
    the table is.
    """
    if temp_tables:
        return {"pool_size": 1, "max_overflow": 0, "pool_pre_ping": True}
    return {"pool_size": 1, "max_overflow": 4, "pool_pre_ping": True, "pool_recycle": 3600}


def partition_batch_definition(url: str, table: str, partition_column: str) -> Any:
    """The batch definition of ``table`` partitioned on ``partition_column``: one batch per value."""
    key = (url, table, f"partition:{partition_column}")
    with STATE.lock:
        definition = STATE.batch_definitions.get(key)
        if definition is None:
            from great_expectations.core.partitioners import PartitionerColumnValue

            source = datasource(url)
            asset = source.add_table_asset(name=f"{table}__by_{partition_column}", table_name=table)
            # validate_partitioner=False: GE's check only knows yearly/monthly/daily partitioners.
            definition = asset.add_batch_definition(
                name=f"{table}__{partition_column}",
                partitioner=PartitionerColumnValue(column_name=partition_column),
                validate_partitioner=False,
            )
            STATE.batch_definitions[key] = definition
        return definition


def gx_suite(path: Path) -> tuple[dict[str, Any], Any]:
    """The parsed suite file and its GE ExpectationSuite, added to the context; rebuilt when the file changes.

    In the context the suite is named after the file's suite name and its path, so two
    files that share a suite name never replace each other.
    """
    path = Path(path).resolve()
    key = (str(path), path.stat().st_mtime)
    with STATE.lock:
        cached = STATE.suites.get(key)
        if cached is None:
            gx = import_gx()
            raw = load_suite(path)
            digest = hashlib.sha256(str(path).encode()).hexdigest()[:12]
            suite = gx.ExpectationSuite(
                name=f"{raw['name']}@{digest}",
                expectations=copy.deepcopy(raw["expectations"]),
                meta=copy.deepcopy(raw.get("meta") or {}),
            )
            if len(suite.expectations) != len(raw["expectations"]):
                # GE logs and drops an expectation it cannot parse; a suite must never shrink silently.
                built = {(e.meta or {}).get("name") for e in suite.expectations}
                lost = [e["meta"]["name"] for e in raw["expectations"] if e["meta"]["name"] not in built]
                raise ValueError(f"{path}: GE rejected expectations {lost}")
            for old in [k for k in STATE.suites if k[0] == key[0]]:
                _forget_suite(STATE.suites.pop(old)[1].name)
            cached = STATE.suites[key] = (raw, data_context().suites.add(suite))
        return cached


def forget_suite(path: Path) -> None:
    """Remove the suite file's suite, and every validation definition running it, from the
    process's context, if there; the next validation with the file builds it again."""
    path = Path(path).resolve()
    with STATE.lock:
        for key in [k for k in STATE.suites if k[0] == str(path)]:
            _forget_suite(STATE.suites.pop(key)[1].name)


def _forget_suite(name: str) -> None:
    """Remove a suite that changed on disk, and every validation definition using it, from the context."""
    context = data_context()
    for key in [k for k in STATE.validations if k[0] == name]:
        context.validation_definitions.delete(STATE.validations.pop(key).name)
    context.suites.delete(name)


def _validation_key(definition: Any, suite: Any) -> tuple[str, str]:
    asset = definition.data_asset
    return suite.name, f"{asset.datasource.name}/{asset.name}/{definition.name}"


def validation_definition(definition: Any, suite: Any) -> Any:
    """The context's ValidationDefinition of ``suite`` on the batch definition, made on first use."""
    key = _validation_key(definition, suite)
    with STATE.lock:
        validation = STATE.validations.get(key)
        if validation is None:
            validation = import_gx().ValidationDefinition(name=f"{key[0]} on {key[1]}", data=definition, suite=suite)
            validation = STATE.validations[key] = data_context().validation_definitions.add(validation)
        return validation


def forget_validation_definition(definition: Any, suite: Any) -> None:
    """Remove the ValidationDefinition of ``suite`` on the batch definition from the context, if made."""
    with STATE.lock:
        validation = STATE.validations.pop(_validation_key(definition, suite), None)
        if validation is not None:
            data_context().validation_definitions.delete(validation.name)


def forget_results() -> None:
    """Remove every validation result GE stored in the context (nothing reads them there)."""
    store = data_context().validation_results_store
    with STATE.lock:
        for key in store.list_keys():
            store.remove_key(key)
