"""A webhook receiver standing in for on-call tools: every JSON message POSTed is kept, with
the path it came to, in ``<home>/<file>``; ``GET /received`` lists them.

Two uses: the local Alertmanager's receivers (`make cluster PROMETHEUS=1`, the path is the
receiver's name), and the demo's alert channels (`make demo`): DingTalk robots post to
``/robot/send?access_token=...`` and get DingTalk's ``{"errcode": 0}`` (the token is kept as
``robot``, the query never), an Apprise ``json://`` channel to a path of its own.

    python -m crawlops_dev.alert_receiver --port 9099 --home .airflow-cluster
    python -m crawlops_dev.alert_receiver --port 9098 --home .airflow --file channel-messages.jsonl
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import threading
import urllib.parse
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
            parts = urllib.parse.urlsplit(self.path)
            entry = {"path": parts.path, "received_at": dt.datetime.now(dt.UTC).isoformat(), "payload": payload}
            robot = parts.path == "/robot/send"
            if robot:
                entry["robot"] = urllib.parse.parse_qs(parts.query).get("access_token", [""])[0]
            with LOCK, store.open("a") as out:
                out.write(json.dumps(entry) + "\n")
            answer = json.dumps({"errcode": 0, "errmsg": "ok"}).encode() if robot else b""
            self.send_response(200)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(answer)))
            self.end_headers()
            self.wfile.write(answer)

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
    parser.add_argument("--file", default="alerts-received.jsonl", help="where the messages are kept, in --home")
    args = parser.parse_args()
    server = ThreadingHTTPServer(("127.0.0.1", args.port), handler(args.home / args.file))
    print(f"alert receiver on http://127.0.0.1:{args.port}", flush=True)
    server.serve_forever()


if __name__ == "__main__":
    main()
