"""The settings as a task reads them: the settings file and environment, overridden by the
Airflow Variable ``crawlops_settings``."""

from __future__ import annotations

import json
import logging

from crawlops.settings import VARIABLE_NAME, Settings

log = logging.getLogger(__name__)


def load_settings() -> Settings:
    """Settings file + environment, overridden by the Airflow Variable ``crawlops_settings``.

    A malformed Variable (not JSON, an unknown key, a wrong type) fails the task at once,
    without retries, naming the Variable: retrying cannot fix it.
    """
    from airflow.sdk import Variable
    from airflow.sdk.exceptions import AirflowFailException

    raw = Variable.get(VARIABLE_NAME, default=None)
    try:
        overrides = json.loads(raw) if isinstance(raw, str) else raw
        if overrides is not None and not isinstance(overrides, dict):
            raise ValueError("it must be a JSON object shaped like include/config/crawlops.toml")
        settings = Settings.load(overrides=overrides)
    except (ValueError, TypeError, KeyError) as exc:
        raise AirflowFailException(
            f"settings are malformed (Airflow Variable {VARIABLE_NAME}, or a CRAWLOPS__ environment variable): {exc}"
        ) from None
    if overrides:
        log.info("settings overridden by Variable %s: %s", VARIABLE_NAME, sorted(overrides))
    return settings


def settings_or_defaults() -> Settings:
    """``load_settings``, or the settings file and environment alone when the Variable cannot
    be read or is malformed (for the alert path, which must work whatever else is broken)."""
    try:
        return load_settings()
    except Exception as exc:
        log.warning("settings Variable %s unusable (%s); using the settings file and environment", VARIABLE_NAME, exc)
        return Settings.load()
