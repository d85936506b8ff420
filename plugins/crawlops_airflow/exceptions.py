"""Exceptions the package's operators raise."""

from __future__ import annotations

from typing import Any

from airflow.sdk.exceptions import AirflowFailException


class SuiteValidationFailed(AirflowFailException):
    """The window failed its suite; the message names each failed expectation and its counts."""

    def __init__(self, message: str, report: dict[str, Any]):
        super().__init__(message)
        self.report = report
