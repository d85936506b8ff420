"""A webhook receiver for the local Alertmanager (`make cluster PROMETHEUS=1`), standing in for
an on-call tool: every notification Alertmanager POSTs is kept, with the path it came to (the
receiver's name), in ``<home>/alerts-received.jsonl``; ``GET /received`` lists them.

    python -m crawlops_dev.alert_receiver --port 9099 --home .airflow-cluster
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

LOCK = threading.Lock()


def handler(store: Path) -> type[BaseHTTPRequestHandler]:
    class Receiver(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
            try:
                payload = json.loads(body)
            except ValueError:
                self.send_error(400, "not JSON")
                return
            entry = {"path": self.path, "received_at": dt.datetime.now(dt.UTC).isoformat(), "payload": payload}
            with LOCK, store.open("a") as out:
                out.write(json.dumps(entry) + "\n")
            self.send_response(200)
            self.end_headers()

        def do_GET(self) -> None:
            if self.path != "/received":
                self.send_error(404)
                return
            with LOCK:
                lines = store.read_text().splitlines() if store.exists() else []
            body = json.dumps([json.loads(line) for line in lines]).encode()
            self.send_response(200)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, format: str, *args: object) -> None:
            pass

    return Receiver


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--port", type=int, default=9099)
    parser.add_argument("--home", type=Path, required=True)
    args = parser.parse_args()
    server = ThreadingHTTPServer(("127.0.0.1", args.port), handler(args.home / "alerts-received.jsonl"))
    print(f"alert receiver on http://127.0.0.1:{args.port}", flush=True)
    server.serve_forever()


if __name__ == "__main__":
    main()
