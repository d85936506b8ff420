"""Why an element failed, in a small vocabulary shared by the worker kit and supervision.

A worker reports one reason class with each failure; supervision counts them per crawl
object and marketplace, names them in alerts, and throttles a marketplace whose pages come
back blocked. The classes:

- ``http_<code>``: the site answered with that HTTP status (``http_503``, ``http_429``...);
- ``blocked``: the site answered, but with a robot check or captcha instead of the page
  (Amazon does so with HTTP 200), recognised by a block detector;
- ``timeout``, ``connection``: the fetch timed out, or never reached the site (DNS,
  refused, reset);
- ``parse_error``: the crawler's parser raised on the page;
- ``nothing_parsed``: the page parsed to nothing and the crawler did not say "empty" (a
  changed layout, an undetected block): never an empty answer;
- ``other``: anything else the worker reports;
- ``unknown``: a worker that only ``SADD`` s to ``<task_id>_fail`` (the seed workers);
- ``lost``: taken by a worker and never answered (supervision's, never a worker's).

No Airflow, no Redis: plain values and functions.
"""

from __future__ import annotations

import re
import socket
from collections.abc import Callable, Mapping
from enum import StrEnum
from typing import Any

DETAIL_LENGTH = 200


class Reason(StrEnum):
    BLOCKED = "blocked"
    TIMEOUT = "timeout"
    CONNECTION = "connection"
    PARSE_ERROR = "parse_error"
    NOTHING_PARSED = "nothing_parsed"
    OTHER = "other"
    UNKNOWN = "unknown"
    LOST = "lost"


_HTTP = re.compile(r"^http_[1-5][0-9][0-9]$")
_WORDS = {r.value for r in Reason} - {Reason.LOST.value}


def http(status: int) -> str:
    """The reason class of an HTTP status: ``http_503``."""
    return f"http_{int(status)}"


def is_reason(text: str) -> bool:
    """Whether ``text`` is a reason class a worker may report."""
    return text in _WORDS or bool(_HTTP.match(text))


class Failed(Exception):
    """Raise from a fetch function or a Scrapy callback to fail the element with a reason
    class of your choosing (``raise Failed("http_403", "geo-blocked")``)."""

    def __init__(self, reason: str, detail: str = "") -> None:
        super().__init__(f"{reason}: {detail}" if detail else reason)
        self.reason = reason if is_reason(reason) else Reason.OTHER.value
        self.detail = detail if is_reason(reason) else f"{reason}: {detail}".rstrip(": ")


class Blocked(Failed):
    """The page is a block (a robot check, a captcha): failed with reason ``blocked``."""

    def __init__(self, detail: str = "robot check") -> None:
        super().__init__(Reason.BLOCKED.value, detail)


def classify(error: object) -> tuple[str, str]:
    """(reason class, detail) of whatever a worker reports with a failure: a ``Failed``, an
    exception (HTTP errors by their status, timeouts, connection errors; other exceptions are
    the parser's), a reason class as text, or free text (``other``); ``None`` is ``other``."""
    if error is None:
        return Reason.OTHER.value, ""
    if isinstance(error, Failed):
        return error.reason, error.detail[:DETAIL_LENGTH]
    if isinstance(error, BaseException):
        return _exception_reason(error), f"{type(error).__name__}: {error}"[:DETAIL_LENGTH]
    text = str(error)
    head, _, rest = text.partition(":")
    if is_reason(head.strip()):
        return head.strip(), rest.strip()[:DETAIL_LENGTH]
    return Reason.OTHER.value, text[:DETAIL_LENGTH]


def _exception_reason(error: BaseException) -> str:
    status = _http_status(error)
    if status is not None:
        return http(status)
    names = {cls.__name__ for cls in type(error).__mro__}
    if isinstance(error, TimeoutError | socket.timeout) or names & {"TimeoutError", "TCPTimedOutError", "ReadTimeout"}:
        return Reason.TIMEOUT.value
    if isinstance(error, ConnectionError | socket.gaierror) or names & _CONNECTION_ERRORS:
        return Reason.CONNECTION.value
    if isinstance(error, OSError) and "urlopen error" in str(error):  # urllib.error.URLError: never reached it
        return Reason.CONNECTION.value
    return Reason.PARSE_ERROR.value


# Twisted's and urllib3's names for "never reached the site" (matched by name: no import).
_CONNECTION_ERRORS = {
    "ConnectError", "ConnectionRefusedError", "DNSLookupError", "ConnectionLost", "ConnectionDone",
    "ResponseNeverReceived", "ResponseFailed", "NewConnectionError", "MaxRetryError", "URLError",
}  # fmt: skip


def _http_status(error: BaseException) -> int | None:
    """The HTTP status an exception carries (urllib's HTTPError, Scrapy's HttpError, requests')."""
    for candidate in (error, getattr(error, "response", None)):
        for attribute in ("code", "status", "status_code"):
            value = getattr(candidate, attribute, None)
            if isinstance(value, int) and 100 <= value <= 599:
                return value
    return None


# -- block pages -------------------------------------------------------------------------------

# (status, headers, body) -> what marks the page as a block, or None.
BlockDetector = Callable[[int, Mapping[str, Any], bytes], "str | None"]

# What Amazon's robot-check and captcha pages say (in the markup of every marketplace's
# English fallback and in the form they post), as bytes: the body is never decoded to look.
AMAZON_BLOCK_MARKERS = (
    b"Enter the characters you see below",
    b"Type the characters you see in this image",
    b"/errors/validateCaptcha",
    b"Sorry, we just need to make sure you're not a robot",
    b"api-services-support@amazon.com",
    b"captchacharacters",
)


# Amazon's robot-check and automated-access pages are 2-7 KB and say what they are in their
# first few KB; a results, product or review page is hundreds of KB to a few MB. So a page
# above BLOCK_PAGE_BYTES is no block page (checked in no time), and of the others only the head
# is read (about 2 us a marker). A detector of its own can look further.
SCAN_BYTES = 8192
BLOCK_PAGE_BYTES = 131072


def markers_detector(
    markers: tuple[bytes, ...] = AMAZON_BLOCK_MARKERS,
    *,
    scan_bytes: int = SCAN_BYTES,
    max_page_bytes: int = BLOCK_PAGE_BYTES,
) -> BlockDetector:
    """A detector that calls a page of at most ``max_page_bytes`` a block when its first
    ``scan_bytes`` hold one of ``markers``."""

    def detect(status: int, headers: Mapping[str, Any], body: bytes) -> str | None:
        if len(body) > max_page_bytes:
            return None
        head = body[:scan_bytes]
        for marker in markers:
            if marker in head:
                return f"HTTP {status} page with {marker.decode('utf-8', 'replace')!r}"
        return None

    return detect


amazon_block = markers_detector()
"""The default detector: Amazon's robot-check and captcha markers."""


def retry_after_seconds(value: Any) -> float | None:
    """Seconds to wait from a ``Retry-After`` header (delta-seconds or an HTTP date); None when absent or unreadable."""
    if value is None:
        return None
    text = value.decode("latin-1") if isinstance(value, bytes) else str(value)
    text = text.strip()
    if text.isdigit():
        return float(text)
    from email.utils import parsedate_to_datetime

    try:
        when = parsedate_to_datetime(text)
    except (TypeError, ValueError, IndexError):
        return None
    import datetime as dt

    if when.tzinfo is None:
        when = when.replace(tzinfo=dt.UTC)
    return max(0.0, (when - dt.datetime.now(dt.UTC)).total_seconds())
