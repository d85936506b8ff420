"""Thresholds and defaults, read from one TOML file and overridable per deployment.

Precedence, later wins: ``include/config/crawlops.toml`` < environment variables
``CRAWLOPS__<SECTION>__<KEY>`` < an override mapping (the DAGs pass the Airflow Variable
``crawlops_settings`` here). Unknown sections and keys raise, so typos cannot hide.
"""

from __future__ import annotations

import dataclasses
import json
import os
import tomllib
from collections.abc import Mapping
from pathlib import Path
from typing import Any

ENV_PREFIX = "CRAWLOPS__"
VARIABLE_NAME = "crawlops_settings"


def include_dir() -> Path:
    """Folder holding sql/, config/ and expectations/ (``CRAWLOPS_INCLUDE_DIR`` overrides)."""
    override = os.environ.get("CRAWLOPS_INCLUDE_DIR")
    return Path(override) if override else Path(__file__).resolve().parents[1]


def dag_timezone() -> str:
    """Timezone of the DAG schedules; read from the environment because DAG files need it at parse time."""
    return os.environ.get("CRAWLOPS_TIMEZONE", "UTC")


@dataclasses.dataclass(frozen=True)
class DispatchSettings:
    retry_limit: int
    crawl_objects: tuple[str, ...]
    frequencies: tuple[str, ...]
    marketplaces: tuple[str, ...]
    max_target_length: int
    max_pages_limit: int
    redis_batch_size: int
    mysql_batch_size: int
    dead_fail_set_ttl_seconds: int
    late_failure_window_seconds: int
    lock_timeout_seconds: int


@dataclasses.dataclass(frozen=True)
class HealthSettings:
    success_rate_min: float
    success_rate_lookback_seconds: int
    task_timeout_seconds: int
    stall_seconds: int
    completeness_grace_seconds: int
    completeness_lookback_seconds: int
    redis_memory_max_ratio: float


@dataclasses.dataclass(frozen=True)
class CrawlerSettings:
    """What the crawlers saw and whether they are alive: outcome surges per crawl object and
    marketplace, the throttle of a blocked marketplace, fleet liveness (``[crawlers]``)."""

    surge_window_seconds: int
    surge_min_elements: int
    blocked_share_max: float
    failure_share_max: float
    empty_share_max: float
    surge_history_days: int
    surge_factor: float
    surge_min_history_elements: int
    throttle_interval_seconds: float
    throttle_ttl_seconds: int
    worker_silence_seconds: int
    fleet_lookback_seconds: int
    fleet_shrink_share: float


@dataclasses.dataclass(frozen=True)
class QualitySettings:
    min_records_per_hour: int
    required_mostly: float
    error_rate_max: float
    data_quality_threshold: float
    freshness_seconds: int
    anomaly_seasonality: str
    anomaly_history_days: int
    anomaly_z: float
    anomaly_min_points: int
    anomaly_direction: str


@dataclasses.dataclass(frozen=True)
class Route:
    """Where alerts go and whom they name (``[[alerts.routes]]``; ``[alerts.escalation]``).

    A route matches an alert when each of its non-empty lists holds the alert's value (an
    empty list matches anything; a route naming crawl objects never matches an alert about
    none). ``channels`` are Airflow connection ids (a DingTalk robot, or an Apprise connection
    for Feishu, WeCom, Slack, email...); empty: ``[alerts] default_channels``. ``owner`` is
    shown on the page; ``at_mobiles`` / ``at_user_ids`` are @mentioned in the message. The
    first matching route wins, unless it says ``continue = true``.
    """

    name: str = ""
    crawl_objects: tuple[str, ...] = ()
    marketplaces: tuple[str, ...] = ()
    checks: tuple[str, ...] = ()
    levels: tuple[str, ...] = ()
    channels: tuple[str, ...] = ()
    owner: str = ""
    at_mobiles: tuple[str, ...] = ()
    at_user_ids: tuple[str, ...] = ()
    continue_matching: bool = False

    def matches(self, *, crawl_object: str | None, marketplace: str | None, check: str, level: str) -> bool:
        wanted = ((self.crawl_objects, crawl_object), (self.marketplaces, marketplace), (self.checks, check),
                  (self.levels, level))  # fmt: skip
        return all(not allowed or value in allowed for allowed, value in wanted)


@dataclasses.dataclass(frozen=True)
class AlertSettings:
    min_level: str
    suppression_window_seconds: int
    max_messages_per_minute: int
    max_message_bytes: int
    delivery_timeout_seconds: float
    retry_backoff_seconds: int
    max_delivery_attempts: int
    airflow_base_url: str
    default_channels: tuple[str, ...]  # connection ids an alert no route matches goes to
    routes: tuple[Route, ...]
    escalate_after_seconds: int  # an open, unacknowledged ERROR/CRITICAL this old goes to escalation
    escalation: Route
    quiet_close_seconds: int  # an open alert not found again for this long (window time) is closed


@dataclasses.dataclass(frozen=True)
class ReportSettings:
    reports_dir: str

    def directory(self) -> Path:
        """The reports folder: the setting, or ``$AIRFLOW_HOME/reports``."""
        if self.reports_dir:
            return Path(self.reports_dir)
        return Path(os.environ.get("AIRFLOW_HOME", "~/airflow")).expanduser() / "reports"


@dataclasses.dataclass(frozen=True)
class RetentionSettings:
    """How long each table family keeps its rows, in days (0: kept forever, where allowed);
    ``crawlops.retention`` deletes what is older, ``batch_size`` rows per transaction, for at
    most about ``max_seconds`` a run."""

    manifest_days: int
    task_days: int
    alert_days: int
    check_run_days: int
    validation_days: int
    volume_days: int
    quarantine_days: int
    outcome_days: int
    report_days: int
    results_days: int
    batch_size: int
    max_seconds: int


@dataclasses.dataclass(frozen=True)
class Settings:
    """All settings; the values live in the TOML file only, so there is one place to read them."""

    dispatch: DispatchSettings
    health: HealthSettings
    crawlers: CrawlerSettings
    quality: QualitySettings
    alerts: AlertSettings
    report: ReportSettings
    retention: RetentionSettings
    # Per crawl object, [quality] keys that differ for it (``[objects.<name>]`` in the file,
    # ``CRAWLOPS__OBJECTS__<NAME>='{"min_records_per_hour": 50}'``, or the Variable's "objects").
    objects: Mapping[str, Mapping[str, Any]] = dataclasses.field(default_factory=dict)

    def for_object(self, crawl_object: str, defaults: Mapping[str, Any] | None = None) -> Settings:
        """These settings as one crawl object's checks read them: ``[quality]`` with the object's
        own defaults (its registry entry's) and then its ``[objects.<name>]`` overrides applied."""
        changes = {**(defaults or {}), **self.objects.get(crawl_object, {})}
        if not changes:
            return self
        quality = _build(QualitySettings, {**dataclasses.asdict(self.quality), **changes}, f"objects.{crawl_object}")
        return dataclasses.replace(self, quality=quality)

    @classmethod
    def load(
        cls,
        path: Path | None = None,
        *,
        environ: Mapping[str, str] | None = None,
        overrides: Mapping[str, Any] | None = None,
    ) -> Settings:
        """Read the config file, then apply environment and explicit overrides."""
        raw = tomllib.loads((path or include_dir() / "config" / "crawlops.toml").read_text("utf-8"))
        _merge(raw, _from_environ(os.environ if environ is None else environ))
        _merge(raw, overrides or {})
        return _build(cls, raw, "settings")


def _from_environ(environ: Mapping[str, str]) -> dict[str, dict[str, Any]]:
    found: dict[str, dict[str, Any]] = {}
    for name, text in environ.items():
        if not name.startswith(ENV_PREFIX):
            continue
        section, _, key = name[len(ENV_PREFIX) :].lower().partition("__")
        if not key:
            raise ValueError(f"{name}: expected {ENV_PREFIX}<SECTION>__<KEY>")
        try:
            value = json.loads(text)
        except json.JSONDecodeError:
            value = text
        found.setdefault(section, {})[key] = value
    return found


def _merge(base: dict[str, Any], extra: Mapping[str, Any]) -> None:
    for key, value in extra.items():
        if isinstance(value, Mapping) and isinstance(base.get(key), dict):
            _merge(base[key], value)
        else:
            base[key] = value


_SECTIONS = {
    "dispatch": DispatchSettings,
    "health": HealthSettings,
    "crawlers": CrawlerSettings,
    "quality": QualitySettings,
    "alerts": AlertSettings,
    "report": ReportSettings,
    "retention": RetentionSettings,
}


def _build(cls: type, raw: Mapping[str, Any], where: str) -> Any:
    if not isinstance(raw, Mapping):
        raise ValueError(f"{where}: expected a table, got {raw!r}")
    names = [f.name for f in dataclasses.fields(cls)]
    optional = {"objects"} if cls is Settings else set()
    unknown = sorted(set(raw) - set(names))
    missing = sorted(set(names) - set(raw) - optional)
    if unknown or missing:
        raise ValueError(f"{where}: unknown keys {unknown}, missing keys {missing}")
    values: dict[str, Any] = {}
    for field in dataclasses.fields(cls):
        label = f"{where}.{field.name}"
        if cls is Settings and field.name == "objects":
            values[field.name] = _objects(raw.get("objects", {}))
        elif cls is Settings:
            values[field.name] = _build(_SECTIONS[field.name], raw[field.name], label)
        else:
            values[field.name] = _coerce(raw[field.name], str(field.type), label)
    built = cls(**values)
    if cls is Settings:
        _check_retention(built)
    else:
        _check_ranges(built, where)
    return built


def _objects(raw: Any) -> dict[str, dict[str, Any]]:
    """``[objects.<name>]`` tables: each a subset of ``[quality]``, checked as ``[quality]`` is."""
    if not isinstance(raw, Mapping):
        raise ValueError(f"settings.objects: expected a table of crawl objects, got {raw!r}")
    kinds = {f.name: str(f.type) for f in dataclasses.fields(QualitySettings)}
    found: dict[str, dict[str, Any]] = {}
    for name, keys in raw.items():
        where = f"settings.objects.{name}"
        if not isinstance(keys, Mapping):
            raise ValueError(f"{where}: expected a table of [quality] keys, got {keys!r}")
        unknown = sorted(set(keys) - set(kinds))
        if unknown:
            raise ValueError(f"{where}: unknown keys {unknown} (an object overrides [quality] keys only)")
        found[name] = {key: _coerce(value, kinds[key], f"{where}.{key}") for key, value in keys.items()}
    return found


_CHOICES = {
    "anomaly_seasonality": ("hour_of_day", "hour_of_week"),
    "anomaly_direction": ("drop", "spike", "both"),
    "min_level": ("INFO", "WARNING", "ERROR", "CRITICAL"),
}


def _coerce(value: Any, kind: str, label: str) -> Any:
    if kind == "str":
        choices = _CHOICES.get(label.rpartition(".")[2])
        if not isinstance(value, str) or (choices and value not in choices):
            raise ValueError(f"{label}: expected {'one of ' + str(choices) if choices else 'text'}, got {value!r}")
        return value
    if kind in ("Route", "bool") or kind.startswith("tuple[Route"):
        return _coerce_table(value, kind, label)
    if kind.startswith("tuple"):
        if not isinstance(value, list | tuple) or not all(isinstance(v, str) and v for v in value):
            raise ValueError(f"{label}: expected a list of non-empty strings, got {value!r}")
        return tuple(value)
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise ValueError(f"{label}: expected a number, got {value!r}")
    if kind == "int":
        if float(value) != int(value):
            raise ValueError(f"{label}: expected a whole number, got {value!r}")
        return int(value)
    return float(value)


_LEVELS = ("INFO", "WARNING", "ERROR", "CRITICAL")


def _coerce_table(value: Any, kind: str, label: str) -> Any:
    """A route, a list of routes, or a flag."""
    if kind == "Route":
        return _route(value, label)
    if kind == "bool":
        if not isinstance(value, bool):
            raise ValueError(f"{label}: expected true or false, got {value!r}")
        return value
    if not isinstance(value, list | tuple):
        raise ValueError(f"{label}: expected a list of route tables, got {value!r}")
    return tuple(_route(v, f"{label}[{i}]") for i, v in enumerate(value))


def _route(raw: Any, label: str) -> Route:
    """One route table; its ``continue`` key is ``continue_matching``."""
    if not isinstance(raw, Mapping):
        raise ValueError(f"{label}: expected a table, got {raw!r}")
    raw = {("continue_matching" if key == "continue" else key): value for key, value in raw.items()}
    kinds = {f.name: str(f.type) for f in dataclasses.fields(Route)}
    unknown = sorted(set(raw) - set(kinds))
    if unknown:
        known = sorted("continue" if k == "continue_matching" else k for k in kinds)
        raise ValueError(f"{label}: unknown keys {unknown} (a route has {known})")
    values = {key: _coerce(value, kinds[key], f"{label}.{key}") for key, value in raw.items()}
    bad = sorted(set(values.get("levels", ())) - set(_LEVELS))
    if bad:
        raise ValueError(f"{label}.levels: expected levels among {_LEVELS}, got {bad}")
    return Route(**values)


def _check_ranges(section: Any, where: str) -> None:
    for field in dataclasses.fields(section):
        value = getattr(section, field.name)
        label = f"{where}.{field.name}"
        if isinstance(value, int | float) and value < 0:
            raise ValueError(f"{label}: must not be negative, got {value}")
        shares = ("_rate_min", "_rate_max", "_ratio", "_mostly", "_threshold", "_share_max", "_shrink_share")
        if field.name.endswith(shares) and not 0 <= value <= 1:
            raise ValueError(f"{label}: must lie in [0, 1], got {value}")
        if field.name.endswith(("batch_size", "max_target_length", "max_pages_limit", "per_minute")) and value < 1:
            raise ValueError(f"{label}: must be at least 1, got {value}")


def _check_retention(settings: Settings) -> None:
    """Retention periods that would break what reads the rows (0 = kept forever, where allowed).

    - the manifest goes at least a day after its chain closed, and not before late empty
      answers stop being recorded in it (``dispatch.late_failure_window_seconds``);
    - a task row outlives its manifest: the manifest is found through its task's retry chain;
    - quarantined and result rows outlive the manifest: they are its elements' answers;
    - result rows cover the volume check's history (it counts it live from the results
      table), and the volume rollup keeps at least that much;
    - a run has some time: ``max_seconds`` at least 1.
    """
    keep = settings.retention
    manifest = keep.manifest_days
    history = settings.quality.anomaly_history_days
    rules = [
        ("manifest_days", manifest >= 1, "must be at least 1"),
        ("manifest_days", manifest * 86400 >= settings.dispatch.late_failure_window_seconds,
         "must cover dispatch.late_failure_window_seconds (empty answers reported after a task "
         f"settled are still recorded in its manifest: {settings.dispatch.late_failure_window_seconds} s)"),
        ("task_days", keep.task_days == 0 or keep.task_days >= manifest,
         f"must be 0 (kept) or at least manifest_days ({manifest})"),
        ("quarantine_days", keep.quarantine_days == 0 or keep.quarantine_days >= manifest,
         f"must be 0 (kept) or at least manifest_days ({manifest})"),
        ("results_days", keep.results_days == 0 or keep.results_days >= max(manifest, history + 1),
         f"must be 0 (never purged) or at least {max(manifest, history + 1)} (manifest_days, and "
         f"quality.anomaly_history_days + 1: the volume check counts its history there)"),
        ("volume_days", keep.volume_days == 0 or keep.volume_days >= history,
         f"must be 0 (kept) or at least quality.anomaly_history_days ({history})"),
        ("outcome_days", keep.outcome_days == 0 or keep.outcome_days >= settings.crawlers.surge_history_days + 1,
         f"must be 0 (kept) or more than crawlers.surge_history_days ({settings.crawlers.surge_history_days}): "
         "the surge check reads its history there"),
        ("max_seconds", keep.max_seconds >= 1, "must be at least 1"),
    ]  # fmt: skip
    for name, ok, rule in rules:
        if not ok:
            raise ValueError(f"settings.retention.{name}: {rule}, got {getattr(keep, name)}")
