"""Stand-ins for the outside world in tests: the crawlers' side of the protocol, and DingTalk
(a local HTTP server that checks the signature like DingTalk does); plus config seeding."""

from __future__ import annotations

import json


class FakeCrawler:
    """Plays the crawlers' side of the protocol in tests: SPOP elements, write results or fail them."""

    def __init__(self, mysql, redis):
        self.mysql, self.redis = mysql, redis

    def take(self, task_id: str, count: int) -> list[str]:
        return [m.decode() for m in self.redis.spop(task_id, count) or []]

    def succeed(self, task_id: str, elements: list[str], rows_per_element: int = 1) -> None:
        rows = []
        for text in elements:
            e = json.loads(text)
            for position in range(1, rows_per_element + 1):
                rows.append((task_id, e["keyword"], e["marketplace"], f"B0{position:08d}", e["page"], position))
        with self.mysql.cursor() as cur:
            cur.executemany(
                "INSERT INTO amazon_search_result (task_id, keyword, marketplace, asin, title, price, currency, "
                "rating, review_count, page, position) VALUES (%s, %s, %s, %s, 'item', 9.99, 'USD', 4.5, 10, %s, %s)",
                rows,
            )
        self.mysql.commit()

    def fail(self, task_id: str, elements: list[str]) -> None:
        if elements:
            self.redis.sadd(task_id + "_fail", *elements)

    def drain(self, task_id: str, *, fail_every: int = 0) -> tuple[list[str], list[str]]:
        """Take every element; fail each ``fail_every``-th one, answer the rest."""
        taken = self.take(task_id, 1_000_000)
        failed = [t for i, t in enumerate(sorted(taken)) if fail_every and i % fail_every == 0]
        done = [t for t in taken if t not in failed]
        self.succeed(task_id, done)
        self.fail(task_id, failed)
        return done, failed


def add_config(conn, rows):
    """Insert config rows: (crawl_object, target, marketplace, frequency, max_pages)."""
    with conn.cursor() as cur:
        cur.executemany(
            "INSERT INTO amazon_crawl_config (crawl_object, target, marketplace, frequency, max_pages) "
            "VALUES (%s, %s, %s, %s, %s)",
            rows,
        )
    conn.commit()


class FakeDingTalk:
    """A local stand-in for DingTalk's robot API that checks requests the way DingTalk does.

    errcode 300001 for an unknown token, 310000 for a missing, stale or wrong signature,
    130101 beyond 20 messages a minute per robot. ``mode`` makes it misbehave: "http500"
    answers 500, "hang" answers only after ``hang_seconds``.
    """

    def __init__(self, token: str, secret: str | None):
        import threading
        from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

        self.token, self.secret = token, secret
        self.messages: list[dict] = []
        self.urls: list[str] = []
        self.sent_at: list[float] = []
        self.mode = "ok"
        self.hang_seconds = 3.0
        fake = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self):
                body = self.rfile.read(int(self.headers.get("Content-Length", 0)))
                status, answer = fake.answer(self.path, body)
                payload = json.dumps(answer).encode()
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(payload)))
                self.end_headers()
                self.wfile.write(payload)

            def log_message(self, *args):
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.base_url = f"http://127.0.0.1:{self.server.server_address[1]}"
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    def answer(self, path: str, body: bytes) -> tuple[int, dict]:
        import base64
        import hashlib
        import hmac
        import time
        from urllib.parse import parse_qs, urlsplit

        self.urls.append(path)
        if self.mode == "hang":
            time.sleep(self.hang_seconds)
        if self.mode == "http500":
            return 500, {"errcode": -1, "errmsg": "system busy"}
        parts = urlsplit(path)
        query = {k: v[0] for k, v in parse_qs(parts.query).items()}
        if parts.path != "/robot/send" or query.get("access_token") != self.token:
            return 200, {"errcode": 300001, "errmsg": "token is not exist"}
        if self.secret is not None:
            timestamp = query.get("timestamp", "")
            expected = base64.b64encode(
                hmac.new(self.secret.encode(), f"{timestamp}\n{self.secret}".encode(), hashlib.sha256).digest()
            ).decode()
            fresh = timestamp.isdigit() and abs(time.time() * 1000 - int(timestamp)) < 3_600_000
            if not fresh or query.get("sign") != expected:
                return 200, {"errcode": 310000, "errmsg": "sign not match"}
        now = time.time()
        if len([t for t in self.sent_at if t > now - 60]) >= 20:
            return 200, {"errcode": 130101, "errmsg": "send too fast, exceed 20 times per minute"}
        self.sent_at.append(now)
        self.messages.append(json.loads(body))
        return 200, {"errcode": 0, "errmsg": "ok"}

    def close(self):
        self.server.shutdown()
        self.server.server_close()
