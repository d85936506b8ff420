"""What alert messages go through: the ``Channel`` protocol, ``DeliveryError``, and the DingTalk
custom robot (signing, @mentions). Other channels (Apprise) are built in the Airflow layer
from their connections; ``crawlops.delivery`` sends through any of them.
"""

from __future__ import annotations

import base64
import contextlib
import dataclasses
import hashlib
import hmac
import logging
import re
import time
import urllib.parse
from collections.abc import Iterator, Sequence
from typing import Any, Protocol

from crawlops.routing import NO_MENTIONS, Mentions

DEFAULT_BASE_URL = "https://oapi.dingtalk.com"
# Loggers that print request URLs (at DEBUG): redacted while a channel sends.
URL_LOGGERS = ("urllib3.connectionpool",)


class _Redact(logging.Filter):
    def __init__(self, secrets: Sequence[str]) -> None:
        super().__init__()
        ordered = sorted({s for s in secrets if s}, key=len, reverse=True)
        self.pattern = re.compile("|".join(re.escape(s) for s in ordered)) if ordered else None

    def filter(self, record: logging.LogRecord) -> bool:
        if self.pattern is not None:
            message = record.getMessage()
            if self.pattern.search(message):
                record.msg, record.args = self.pattern.sub("***", message), None
        return True


@contextlib.contextmanager
def redacting(secrets: Sequence[str], loggers: Sequence[str] = URL_LOGGERS) -> Iterator[None]:
    """While in the block, what ``loggers`` log has ``secrets`` replaced by ``***`` (the HTTP
    client logs request lines with their query at DEBUG, tokens included)."""
    redact = _Redact(secrets)
    targets = [logging.getLogger(name) for name in loggers]
    for logger in targets:
        logger.addFilter(redact)
    try:
        yield
    finally:
        for logger in targets:
            logger.removeFilter(redact)


class DeliveryError(RuntimeError):
    """A message did not go out; the text is safe to store and log."""


class Channel(Protocol):
    """Where messages go: a DingTalk robot here, an Apprise connection in the Airflow layer."""

    def send(self, title: str, text: str, mentions: Mentions) -> None:
        """Send one markdown message naming ``mentions``; raises ``DeliveryError`` if it did not go out."""

    def secrets(self) -> list[str]:
        """Values that must never reach a log."""


@dataclasses.dataclass(frozen=True)
class DingTalkRobot:
    """A DingTalk custom robot: ``token`` is the access token, ``secret`` signs (optional)."""

    token: str
    secret: str | None = None
    base_url: str = DEFAULT_BASE_URL
    timeout_seconds: float = 10.0

    def sign(self, timestamp_ms: int) -> str:
        """base64(HMAC-SHA256(secret, f"{timestamp}\\n{secret}")), as DingTalk checks it."""
        if not self.secret:
            raise ValueError("this robot has no secret to sign with")
        digest = hmac.new(
            self.secret.encode("utf-8"), f"{timestamp_ms}\n{self.secret}".encode(), hashlib.sha256
        ).digest()
        return base64.b64encode(digest).decode("ascii")

    def url(self, timestamp_ms: int | None = None) -> str:
        """The send URL: access_token, plus timestamp and URL-encoded sign for a signed robot."""
        query = {"access_token": self.token}
        if self.secret:
            timestamp_ms = timestamp_ms or int(time.time() * 1000)
            query |= {"timestamp": str(timestamp_ms), "sign": self.sign(timestamp_ms)}
        return f"{self.base_url.rstrip('/')}/robot/send?{urllib.parse.urlencode(query)}"

    def secrets(self) -> list[str]:
        """Values to register with a secret masker."""
        return [s for s in (self.token, self.secret) if s]

    def send(self, title: str, text: str, mentions: Mentions = NO_MENTIONS) -> None:
        """One markdown message; ``mentions`` are named in its text and in DingTalk's ``at``."""
        at = {"atMobiles": list(mentions.mobiles), "atUserIds": list(mentions.user_ids), "isAtAll": False}
        self.send_markdown(title, text + ("\n\n" + " ".join(mentions.handles()) if mentions else ""), at=at)

    def send_markdown(self, title: str, text: str, *, at: dict[str, Any] | None = None) -> None:
        """POST one markdown message; raises ``DeliveryError`` unless DingTalk answers errcode 0."""
        import requests

        timestamp_ms = int(time.time() * 1000)
        body: dict[str, Any] = {"msgtype": "markdown", "markdown": {"title": title, "text": text}}
        if at:
            body["at"] = at
        url = self.url(timestamp_ms)
        try:
            with redacting(
                [*self.secrets(), url, *urllib.parse.parse_qs(urllib.parse.urlsplit(url).query).get("sign", [])]
            ):
                response = requests.post(url, json=body, timeout=self.timeout_seconds)
        except requests.Timeout:
            raise DeliveryError(f"no answer within {self.timeout_seconds:g} s") from None
        except requests.RequestException as exc:
            raise DeliveryError(f"request failed: {type(exc).__name__}") from None
        if response.status_code != 200:
            raise DeliveryError(f"HTTP {response.status_code}")
        try:
            answer = response.json()
        except ValueError:
            raise DeliveryError("answer is not JSON") from None
        if answer.get("errcode") != 0:
            raise DeliveryError(f"errcode {answer.get('errcode')}: {str(answer.get('errmsg', ''))[:200]}")
