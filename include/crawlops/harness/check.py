"""The worker contract test: run a crawl team's worker against known work and say, per rule,
what held.

    python -m crawlops.harness.check [--object NAME|all] [--mysql-url URL] [--redis-url URL] -- <worker command>

It dispatches a known set of elements of one crawl object (``--object``, default
``search_result``; ``product_detail``, ``product_review``, or ``all`` of them at once) with
this package's own dispatch into a SCRATCH MySQL database and Redis db (both are emptied:
the defaults are ``crawlops_check`` and db 11), serves fake pages of that object on
127.0.0.1 (some fail with 503, some are empty, some are broken so a parser raises, some are
slow, some are Amazon's robot check with HTTP 200, some have neither results nor an empty
notice; ``crawlops.harness.fakesite``), and starts the worker command with
``CRAWLOPS_MYSQL_URL``, ``CRAWLOPS_REDIS_URL`` and ``CRAWLOPS_SITE_URL`` (the fake site's
base URL; also as ``CRAWLOPS_SEARCH_URL``) in its environment. Once the worker has answered
the first round it dispatches slow pages, sends SIGTERM to the worker's process group while
it holds some, and checks that nothing it took was left unanswered.

Output: one line per rule, ``PASS`` or ``FAIL`` with what was seen; exit status 0 when
every rule held, 1 otherwise, 2 when the check itself could not run.
"""

from __future__ import annotations

import argparse
import contextlib
import dataclasses
import datetime as dt
import os
import shlex
import signal
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit, urlunsplit

from crawlops import objects
from crawlops.db import Connection
from crawlops.harness.fakesite import Key, PageKind, SearchSite, key_of
from crawlops.harness.rules import Ledger, Rule, examples, judge
from crawlops.model import Window
from crawlops.queue import RedisClient

DEFAULT_MYSQL_URL = "mysql://root@127.0.0.1:3306/crawlops_check"
DEFAULT_REDIS_URL = "redis://127.0.0.1:6379/11"
MARKER = "crawlops:check:scratch"  # set in Redis and as a table in MySQL: "this is a check's scratch space"
MARKER_TABLE = "crawlops_check_scratch"
TABLES = (
    "amazon_crawl_config",
    "amazon_task_information",
    "amazon_task_element",
    "amazon_alert",
    "amazon_check_run",
)  # fmt: skip  (and every crawl object's results table and its quarantine)

# The first round of search: keywords chosen to catch re-encoding (spaces, quotes, backslash,
# accents, CJK, emoji), three marketplaces, three pages each.
KEYWORDS = (
    ("usb c cable", "US"), ('cable 12" \\ braided', "US"), ("café crème", "DE"), ("Ärger über Öl", "DE"),
    ("充電ケーブル", "JP"), ("ケース 🎧", "JP"), ("  spaced  out ", "US"), ("o'reilly book", "US"),
)  # fmt: skip
PAGES = 3
# The second round: slow pages, dispatched as another task, during which the worker is stopped.
SLOW_KEYWORDS = tuple((f"slow keyword {n}", "US") for n in range(12))
SLOW_PAGES = 2
QUIET_SECONDS = 5.0  # drained, and no new answer for this long: the first round is over
_MARKETS = ("US", "DE", "JP", "UK")


@dataclasses.dataclass(frozen=True)
class Work:
    """What the check dispatches of one crawl object: the first round's targets and their pages,
    the second (slow) round's."""

    first: tuple[tuple[str, str], ...]  # (target, marketplace)
    pages: int
    slow: tuple[tuple[str, str], ...]
    slow_pages: int


def _asins(prefix: str, count: int) -> tuple[tuple[str, str], ...]:
    return tuple((f"B0{prefix}{n:05d}", _MARKETS[n % len(_MARKETS)]) for n in range(count))


#: Per crawl object (each one the fake site has pages for): 24 elements, then 24 slow ones.
WORK = {
    "search_result": Work(KEYWORDS, PAGES, SLOW_KEYWORDS, SLOW_PAGES),
    "product_detail": Work(_asins("DTL", 24), 1, _asins("SLD", 24), 1),
    "product_review": Work(_asins("REV", 8), 3, _asins("SLR", 12), 2),
}


def _key(crawl_object: str, target: str, marketplace: str, page: int) -> Key:
    spec = objects.get(crawl_object)
    fields = {spec.target_field: target, "marketplace": marketplace, **({"page": page} if spec.paged else {})}
    return key_of(crawl_object, fields)


def plan_pages(crawl_objects: Sequence[str] = ("search_result",)) -> dict[Key, PageKind]:
    """What each page does: in the first round every kind appears, with a fixed layout; the
    second round's are slow."""
    kinds = [PageKind.RESULTS, PageKind.RESULTS, PageKind.EMPTY, PageKind.FAIL, PageKind.BROKEN, PageKind.SLOW,
             PageKind.BLOCKED, PageKind.BARE]  # fmt: skip
    plan = {}
    for name in crawl_objects:
        work = WORK[name]
        for n, (target, marketplace) in enumerate(work.first):
            for page in range(1, work.pages + 1):
                plan[_key(name, target, marketplace, page)] = kinds[(n + 2 * page) % len(kinds)]
        for target, marketplace in work.slow:
            for page in range(1, work.slow_pages + 1):
                plan[_key(name, target, marketplace, page)] = PageKind.SLOW
    return plan


@dataclasses.dataclass
class Scratch:
    conn: Connection
    r: RedisClient
    mysql_url: str
    redis_url: str


def _url_with_db(url: str, database: str) -> str:
    parts = urlsplit(url)
    return urlunsplit(parts._replace(path="/" + database))


def open_scratch(mysql_url: str, redis_url: str, *, force: bool) -> Scratch:
    """Connect, create the scratch database if needed, migrate it, and empty both; refuse a
    database or Redis db that holds data and was not a check's scratch space (``force``)."""
    import MySQLdb
    import redis

    from crawlops.db import connect
    from crawlops.migrations import migrate

    database = urlsplit(mysql_url).path.lstrip("/")
    if not database:
        raise SystemExit("the MySQL URL names no database")
    try:
        conn = connect(mysql_url)
    except MySQLdb.OperationalError as exc:
        if exc.args[0] != 1049:  # unknown database: make it
            raise
        server = connect(_url_with_db(mysql_url, ""))
        with server.cursor() as cur:
            cur.execute(f"CREATE DATABASE `{database}` CHARACTER SET utf8mb4 COLLATE utf8mb4_unicode_ci")
        server.close()
        conn = connect(mysql_url)
    r = redis.Redis.from_url(redis_url)
    with conn.cursor() as cur:
        cur.execute("SELECT COUNT(*) FROM information_schema.tables WHERE table_schema = DATABASE()")
        (tables,) = cur.fetchone()
        cur.execute(
            "SELECT COUNT(*) FROM information_schema.tables WHERE table_schema = DATABASE() AND table_name = %s",
            (MARKER_TABLE,),
        )
        (marked,) = cur.fetchone()
    if not force and tables and not marked:
        raise SystemExit(f"refusing to use {database!r}: it has tables and is not a check's scratch database")
    if not force and r.dbsize() and not r.exists(MARKER):
        raise SystemExit(f"refusing to use {redis_url}: it has keys and is not a check's scratch db")
    migrate(conn)
    with conn.cursor() as cur:
        cur.execute(f"CREATE TABLE IF NOT EXISTS {MARKER_TABLE} (made_at DATETIME NOT NULL)")
        results = [t for o in objects.REGISTRY.values() for t in (o.results_table, o.quarantine_table)]
        for table in (*TABLES, *results):
            cur.execute(f"TRUNCATE TABLE {table}")
    conn.commit()
    r.flushdb()
    r.set(MARKER, "1")
    return Scratch(conn, r, mysql_url, redis_url)


def dispatch(scratch: Scratch, rows: Sequence[tuple[str, str, str, int]], window: Window) -> list[str]:
    """Config rows (crawl object, target, marketplace, pages), planned, recorded and pushed by
    this package's dispatch for ``window``; the ids of the tasks made."""
    from crawlops import dispatch as dispatch_
    from crawlops.settings import Settings
    from crawlops.store import config as store_config

    settings = Settings.load()
    store_config.add_config_rows(scratch.conn, [(o, t, m, "hourly", 0, p) for o, t, m, p in rows], only=True)
    plan = dispatch_.plan_window(scratch.conn, settings, window, "UTC")
    dispatch_.record_plan(scratch.conn, settings, plan)
    return list(dispatch_.push_window(scratch.conn, scratch.r, settings, window))


def _rows(crawl_objects: Sequence[str], *, slow: bool, half: int | None = None) -> list[tuple[str, str, str, int]]:
    """Config rows of the first round (its first or second ``half``) or of the slow round."""
    rows = []
    for name in crawl_objects:
        work = WORK[name]
        targets = work.slow if slow else work.first
        if half is not None:
            targets = targets[: len(targets) // 2] if half == 0 else targets[len(targets) // 2 :]
        rows += [(name, t, m, work.slow_pages if slow else work.pages) for t, m in targets]
    return rows


@contextlib.contextmanager
def worker_process(command: Sequence[str], env: dict[str, str], log_path: Path) -> Iterator[subprocess.Popen[bytes]]:
    with log_path.open("wb") as log:
        process = subprocess.Popen(  # noqa: S603 - the caller's own worker command
            list(command), env=env, stdout=log, stderr=subprocess.STDOUT, start_new_session=True
        )
        try:
            yield process
        finally:
            if process.poll() is None:
                with contextlib.suppress(ProcessLookupError):
                    os.killpg(process.pid, signal.SIGKILL)
                process.wait()


def _wait(condition: Any, timeout: float, process: subprocess.Popen[bytes]) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if condition():
            return True
        if process.poll() is not None:
            return bool(condition())
        time.sleep(0.2)
    return bool(condition())


def check(
    command: Sequence[str],
    *,
    crawl_objects: Sequence[str] = ("search_result",),
    mysql_url: str = DEFAULT_MYSQL_URL,
    redis_url: str = DEFAULT_REDIS_URL,
    timeout: float = 120.0,
    stop_timeout: float = 30.0,
    force: bool = False,
    out: Any = sys.stdout,
) -> list[Rule]:
    """Run the contract test against ``command`` with elements of ``crawl_objects``; returns the
    rules (and prints them)."""
    scratch = open_scratch(mysql_url, redis_url, force=force)
    plan = plan_pages(crawl_objects)
    now = dt.datetime.now(dt.UTC).replace(minute=0, second=0, microsecond=0)
    hours = [Window(now - dt.timedelta(hours=n + 1), now - dt.timedelta(hours=n)) for n in range(3)]
    # two open tasks of each object: the worker must read the index
    first = dispatch(scratch, _rows(crawl_objects, slow=False, half=0), hours[2])
    first += dispatch(scratch, _rows(crawl_objects, slow=False, half=1), hours[1])
    total = sum(len(WORK[o].first) * WORK[o].pages for o in crawl_objects)
    print(f"check: {len(first)} tasks, {total} elements of {', '.join(crawl_objects)} dispatched into {mysql_url} "
          f"and {redis_url}", file=out)  # fmt: skip
    log_path = Path(tempfile.mkstemp(prefix="crawlops-worker-check-", suffix=".log")[1])
    rules: list[Rule] = []
    with SearchSite(plan=plan, slow_seconds=1.0) as site:
        env = {
            **os.environ,
            "CRAWLOPS_MYSQL_URL": mysql_url,
            "CRAWLOPS_REDIS_URL": redis_url,
            "CRAWLOPS_SITE_URL": site.url,
            "CRAWLOPS_SEARCH_URL": site.url,
            "PYTHONUNBUFFERED": "1",
        }
        print(f"check: fake site at {site.url}; worker: {shlex.join(command)} (log {log_path})", file=out)
        started = dt.datetime.now(dt.UTC).replace(tzinfo=None, microsecond=0)
        with worker_process(command, env, log_path) as process:
            rules += first_round(scratch, process, first, plan, started=started, timeout=timeout)
            slow = _rows(crawl_objects, slow=True)
            rules.append(stop_rule(scratch, process, slow, hours[0], stop_timeout=stop_timeout, timeout=timeout))
    print(*(rule.line() for rule in rules), sep="\n", file=out)
    if not all(rule.held for rule in rules):
        tail = log_path.read_text("utf-8", "replace").splitlines()[-15:]
        print("check: last lines of the worker's output:", *(f"  | {line}" for line in tail), sep="\n", file=out)
    scratch.conn.close()
    return rules


def first_round(
    scratch: Scratch,
    process: subprocess.Popen[bytes],
    first: list[str],
    plan: dict[Key, PageKind],
    *,
    started: dt.datetime,
    timeout: float,
) -> list[Rule]:
    """Wait for the worker to answer the first round (or go quiet), then judge it."""
    progress: dict[str, Any] = {"seen": None, "since": time.monotonic()}

    def first_round_done() -> bool:
        """Every element answered; or the sets drained and nothing changed (no element taken,
        none answered) for QUIET_SECONDS: an element taken and never answered stays so, and
        the rules say which."""
        ledger = Ledger.read(scratch.conn, scratch.r, first)
        answered = sum(1 for t in first for a in ledger.answers(t).values() if a)
        queued = sum(len(ledger.queued[t]) for t in first)
        if (answered, queued) != progress["seen"]:
            progress.update(seen=(answered, queued), since=time.monotonic())
        everything = sum(len(ledger.elements[t]) for t in first)
        quiet = time.monotonic() - progress["since"] > QUIET_SECONDS
        return queued == 0 and (answered == everything or quiet)

    settled = _wait(first_round_done, timeout, process)
    time.sleep(1.0)  # let a late double answer show
    finished = dt.datetime.now(dt.UTC).replace(tzinfo=None, microsecond=0)
    ledger = Ledger.read(scratch.conn, scratch.r, first)
    rules = []
    if process.poll() is not None:
        rules.append(Rule("keeps running", False, f"the worker exited with {process.returncode} before it was stopped"))
    elif not settled:
        rules.append(Rule("keeps up", False, f"the first round's tasks were not drained within {timeout:.0f} s"))
    return rules + judge(ledger, first, plan, started=started, finished=finished)


def stop_rule(
    scratch: Scratch,
    process: subprocess.Popen[bytes],
    slow: Sequence[tuple[str, str, str, int]],
    window: Window,
    *,
    stop_timeout: float,
    timeout: float,
) -> Rule:
    """Dispatch slow pages, SIGTERM the worker while it holds some, and look for lost elements."""
    name = "nothing left after SIGTERM"
    if process.poll() is not None:
        return Rule(name, False, "the worker was not running to be stopped")
    task_ids = dispatch(scratch, slow, window)
    size = sum(pages for *_, pages in slow)
    if not _wait(lambda: sum(scratch.r.scard(t) for t in task_ids) < size, timeout, process):
        return Rule(name, False, f"the worker took nothing of a new task within {timeout:.0f} s")
    time.sleep(0.3)  # mid-fetch: the slow pages take a second each
    os.killpg(process.pid, signal.SIGTERM)
    stopped_at = time.monotonic()
    try:
        process.wait(stop_timeout)
    except subprocess.TimeoutExpired:
        return Rule(name, False, f"the worker did not exit within {stop_timeout:.0f} s of SIGTERM")
    took = time.monotonic() - stopped_at
    ledger = Ledger.read(scratch.conn, scratch.r, task_ids)
    taken, lost, failed = [], [], 0
    for task_id in task_ids:
        answers = ledger.answers(task_id)
        mine = [m for m in answers if m not in ledger.queued[task_id]]
        taken += mine
        lost += [ledger.elements[task_id][m] for m in mine if not answers[m]]
        failed += sum(1 for m in mine if answers[m] == ["failed"])
    if lost:
        return Rule(name, False, f"{len(lost)} of {len(taken)} elements taken were neither answered nor reported "
                    f"failed when it exited, e.g. {examples(lost)}")  # fmt: skip
    return Rule(
        name,
        True,
        f"exited {took:.1f} s after SIGTERM; the {len(taken)} elements it took were answered "
        f"({failed} of them reported failed), none lost",
    )


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m crawlops.harness.check",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--mysql-url", default=os.environ.get("CRAWLOPS_CHECK_MYSQL_URL", DEFAULT_MYSQL_URL))
    parser.add_argument("--redis-url", default=os.environ.get("CRAWLOPS_CHECK_REDIS_URL", DEFAULT_REDIS_URL))
    parser.add_argument("--timeout", type=float, default=120.0, help="seconds for the first round (default 120)")
    parser.add_argument("--stop-timeout", type=float, default=30.0, help="seconds to exit after SIGTERM (default 30)")
    parser.add_argument("--force", action="store_true", help="use a database / Redis db that holds other data")
    parser.add_argument(
        "--object", default="search_result", choices=[*WORK, "all"],
        help="the crawl object whose elements the worker gets (default search_result; all: every one at once)",
    )  # fmt: skip
    parser.add_argument("command", nargs=argparse.REMAINDER, help="-- then the worker command")
    args = parser.parse_args(argv)
    command = args.command[1:] if args.command[:1] == ["--"] else args.command
    if not command:
        parser.error("give the worker command after --")
    try:
        rules = check(
            command, crawl_objects=list(WORK) if args.object == "all" else [args.object], mysql_url=args.mysql_url,
            redis_url=args.redis_url, timeout=args.timeout, stop_timeout=args.stop_timeout, force=args.force,
        )  # fmt: skip
    except SystemExit as exc:
        print(f"check: {exc}", file=sys.stderr)
        return 2
    return 0 if all(rule.held for rule in rules) else 1


if __name__ == "__main__":
    sys.exit(main())
