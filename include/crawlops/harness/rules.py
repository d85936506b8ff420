"""The worker contract's rules, judged from what a worker left in the ledger (MySQL and
Redis) after ``crawlops.harness.check`` ran it: one ``Rule`` per line of the report."""

from __future__ import annotations

import dataclasses
import datetime as dt
import json
from collections import Counter
from collections.abc import Sequence
from typing import Any, NamedTuple

from crawlops import objects, telemetry
from crawlops.db import Connection
from crawlops.harness.fakesite import PAGES, Key, PageKind, key_of
from crawlops.model import crawl_object_of, empty_key, fail_key
from crawlops.queue import RedisClient


@dataclasses.dataclass
class Rule:
    name: str
    held: bool
    detail: str

    def line(self) -> str:
        return f"{'PASS' if self.held else 'FAIL'} {self.name}: {self.detail}"


def examples(items: Sequence[Any], n: int = 2) -> str:
    shown = ", ".join(str(i) for i in items[:n])
    return shown + (f" and {len(items) - n} more" if len(items) > n else "")


class Row(NamedTuple):
    """A result row as the rules read it."""

    task_id: str
    key: Key  # its element's fields, as the row names them
    position: int | None  # None for an object of one row an element
    match: Any  # the column telling the page's results apart (fakesite.PAGES[...].match)
    create_time: dt.datetime


@dataclasses.dataclass
class Ledger:
    """What the scratch space says about the tasks' elements, read after the worker ran."""

    elements: dict[str, dict[bytes, Key]]  # task id -> member bytes -> its key (fields in canonical order)
    queued: dict[str, set[bytes]]
    failed: dict[str, set[bytes]]
    empty: dict[str, set[bytes]]
    rows: list[Row]
    reasons: dict[str, dict[bytes, str]] = dataclasses.field(default_factory=dict)  # task -> member -> reason

    @classmethod
    def read(cls, conn: Connection, r: RedisClient, task_ids: Sequence[str]) -> Ledger:
        from crawlops import store

        elements: dict[str, dict[bytes, Key]] = {}
        for task in store.select_tasks(conn, "task_id IN (" + ", ".join(["%s"] * len(task_ids)) + ")", task_ids):
            mine = elements[task.task_id] = {}
            for batch in store.stream_elements(conn, task, batch_size=1000, exclude_done=False):
                for text in batch:
                    mine[text.encode("utf-8")] = key_of(crawl_object_of(task.task_id), json.loads(text))
        reasons = {
            t: {m.encode("utf-8", "surrogateescape"): why for m, (why, _) in telemetry.fail_reasons(r, t).items()}
            for t in task_ids
        }
        return cls(
            elements,
            {t: set(r.smembers(t)) for t in task_ids},
            {t: set(r.smembers(fail_key(t))) for t in task_ids},
            {t: set(r.smembers(empty_key(t))) for t in task_ids},
            read_rows(conn, task_ids),
            reasons,
        )

    def answers(self, task_id: str) -> dict[bytes, list[str]]:
        """Each element's answers: ``rows``, ``empty``, ``failed`` (none: unanswered)."""
        by_key = {key: member for member, key in self.elements[task_id].items()}
        out: dict[bytes, list[str]] = {m: [] for m in self.elements[task_id]}
        for member in self.failed[task_id] & out.keys():
            out[member].append("failed")
        for member in self.empty[task_id] & out.keys():
            out[member].append("empty")
        for member in {by_key[row.key] for row in self.rows if row.task_id == task_id and row.key in by_key}:
            out[member].append("rows")
        return out


def read_rows(conn: Connection, task_ids: Sequence[str]) -> list[Row]:
    """The tasks' rows, each from its crawl object's results table."""
    from crawlops.store import results as store_results

    by_object: dict[str, list[str]] = {}
    for task_id in task_ids:
        by_object.setdefault(crawl_object_of(task_id), []).append(task_id)
    rows = []
    for name, tasks in by_object.items():
        spec = objects.get(name)
        keys = list(spec.result_keys.values())
        for task_id, *values, match, stamp in store_results.rows_of_tasks(
            conn, spec.results_table, tasks, extra=(PAGES[name].match,)
        ):
            named = dict(zip(spec.unique_key[1:], values, strict=True))
            fields = {column: named[column] for column in keys}
            rows.append(Row(task_id, key_of(name, fields), named.get(spec.position_column or ""), match, stamp))
    return rows


@dataclasses.dataclass
class Round:
    """One round's tasks as the rules read them: each element's answers and its page."""

    ledger: Ledger
    tasks: Sequence[str]
    plan: dict[Key, PageKind]
    answers: dict[tuple[str, bytes], list[str]]  # (task, member) -> rows / empty / failed
    key_of: dict[tuple[str, bytes], Key]

    @classmethod
    def of(cls, ledger: Ledger, tasks: Sequence[str], plan: dict[Key, PageKind]) -> Round:
        answers = {(t, m): a for t in tasks for m, a in ledger.answers(t).items()}
        key_of = {(t, m): ledger.elements[t][m] for t in tasks for m in ledger.elements[t]}
        return cls(ledger, tasks, plan, answers, key_of)


def judge(
    ledger: Ledger,
    first: Sequence[str],
    plan: dict[Key, PageKind],
    *,
    started: dt.datetime,
    finished: dt.datetime,
) -> list[Rule]:
    """The rules of the contract over the first round's tasks, one line each."""
    seen = Round.of(ledger, first, plan)
    rules = [finds_every_open_task(seen), every_element_taken_is_answered(seen), answered_once(seen),
             members_byte_identical(seen)]  # fmt: skip
    rules += [page_kind_rule(seen, *spec) for spec in PAGE_KIND_RULES]
    rules.append(reasons_reported(seen))
    if not ledger.rows:
        return rules + [
            Rule(name, False, "no result rows were written: nothing to judge")
            for name in ("fields equal", "results match the page", "UTC timestamps")
        ]
    return [*rules, fields_equal(seen), results_match_the_page(seen), utc_timestamps(seen, started, finished)]


def finds_every_open_task(seen: Round) -> Rule:
    undrained = [t for t in seen.tasks if seen.ledger.queued[t]]
    return Rule(
        "finds every open task",
        not undrained,
        f"took every element of {len(seen.tasks)} tasks listed in crawlops:open_tasks"
        if not undrained
        else f"{examples(undrained)} still hold elements: read the open-task index every poll",
    )


def _taken(seen: Round) -> list[tuple[str, bytes]]:
    return [e for e in seen.answers if e[1] not in seen.ledger.queued[e[0]]]


def every_element_taken_is_answered(seen: Round) -> Rule:
    taken = _taken(seen)
    unanswered = [seen.key_of[e] for e in taken if not seen.answers[e]]
    return Rule(
        "every element taken is answered",
        bool(taken) and not unanswered,
        "nothing was taken: nothing to judge"
        if not taken
        else f"{len(taken)} elements taken, each answered"
        if not unanswered
        else f"{len(unanswered)} taken and never answered (rows, _empty or _fail), e.g. {examples(unanswered)}",
    )


def answered_once(seen: Round) -> Rule:
    twice = [(seen.key_of[e], "+".join(a)) for e, a in seen.answers.items() if len(a) > 1]
    positions = Counter((row.task_id, row.key, row.position) for row in seen.ledger.rows)
    repeated = [k for k, n in positions.items() if n > 1]
    parts = [
        f"{len(twice)} elements answered more than one way, e.g. {examples(twice)}" if twice else "",
        f"{len(repeated)} result rows written twice, e.g. {examples(repeated)}" if repeated else "",
    ]
    held = not twice and not repeated
    return Rule(
        "answered once",
        held,
        "no element has two answers and no result row is written twice" if held else "; ".join(p for p in parts if p),
    )


def members_byte_identical(seen: Round) -> Rule:
    ledger = seen.ledger
    known = {m for t in seen.tasks for m in ledger.elements[t]}
    stray = sorted(
        m.decode("utf-8", "replace")
        for t in seen.tasks
        for m in (ledger.failed[t] | ledger.empty[t]) - ledger.elements[t].keys()
    )
    return Rule(
        "members byte-identical",
        not stray,
        f"every _fail and _empty member is one of the {len(known)} elements as popped"
        if not stray
        else f"{len(stray)} _fail/_empty members are no element (re-encoded?), e.g. {examples(stray)}",
    )


# (rule, the page kinds it judges, the one answer they must end in, how to name those pages)
PAGE_KIND_RULES = (
    ("failures reported", {PageKind.FAIL}, "failed", "pages answered 503"),
    ("exceptions reported", {PageKind.BROKEN}, "failed", "pages whose parsing raises"),
    ("empties reported", {PageKind.EMPTY}, "empty", "pages with no results"),
    ("blocked pages reported", {PageKind.BLOCKED}, "failed", "robot-check pages (HTTP 200)"),
    ("nothing parsed is no empty", {PageKind.BARE}, "failed", "pages with neither results nor a notice"),
)


def page_kind_rule(seen: Round, name: str, kinds: set[PageKind], want: str, why: str) -> Rule:
    """Pages of ``kinds`` end in exactly one answer, ``want``."""
    mine = [e for e in seen.answers if seen.plan.get(seen.key_of[e]) in kinds]
    wrong = [(seen.key_of[e], "+".join(seen.answers[e]) or "nothing") for e in mine if seen.answers[e] != [want]]
    where = f"_{'fail' if want == 'failed' else 'empty'}"
    return Rule(
        name,
        not wrong,
        f"{len(mine)} {why} ended in {where} only"
        if not wrong
        else f"{len(wrong)} of {len(mine)} {why} did not end in {where} only, "
        f"e.g. {examples([f'{k} -> {a}' for k, a in wrong])}",
    )


def fields_equal(seen: Round) -> Rule:
    elements = {(t, k) for t in seen.tasks for k in seen.ledger.elements[t].values()}
    strays = [(row.task_id, *row.key) for row in seen.ledger.rows if (row.task_id, row.key) not in elements]
    names = sorted({", ".join(("task_id", *objects.get(crawl_object_of(t)).result_keys.values())) for t in seen.tasks})
    return Rule(
        "fields equal",
        not strays,
        f"{len(seen.ledger.rows)} rows name their element exactly ({'; '.join(names)})"
        if not strays
        else f"{len(strays)} rows match no element byte for byte, e.g. {examples(strays)}",
    )


def results_match_the_page(seen: Round) -> Rule:
    elements = {(t, k) for t in seen.tasks for k in seen.ledger.elements[t].values()}
    by_element: dict[tuple[str, Key], list[tuple[int, str]]] = {}
    for row in seen.ledger.rows:
        if (row.task_id, row.key) in elements:  # a row of no element is "fields equal"'s
            by_element.setdefault((row.task_id, row.key), []).append((row.position or 0, row.match))
    mismatched = [
        key
        for (task_id, key), got in by_element.items()
        if seen.plan.get(key) in {PageKind.RESULTS, PageKind.SLOW}
        and sorted(got) != sorted(_expected(crawl_object_of(task_id), key))
    ]
    what = sorted({_match_name(crawl_object_of(t)) for t in seen.tasks})
    return Rule(
        "results match the page",
        not mismatched,
        f"every answered page's rows are its results ({', '.join(what)})"
        if not mismatched
        else f"{len(mismatched)} pages' rows differ from the page's results, e.g. {examples(mismatched)}",
    )


def _match_name(crawl_object: str) -> str:
    by_position = objects.get(crawl_object).position_column is not None
    return PAGES[crawl_object].match + (" by position" if by_position else "")


def _expected(crawl_object: str, key: Key) -> list[tuple[int, Any]]:
    match = PAGES[crawl_object].match
    return [(r.position or 0, r.values[match]) for r in PAGES[crawl_object].expected(key)]


def utc_timestamps(seen: Round, started: dt.datetime, finished: dt.datetime) -> Rule:
    slack = dt.timedelta(minutes=2)
    stamps = [row.create_time for row in seen.ledger.rows]
    off = [s for s in stamps if not started - slack <= s <= finished + slack]
    worst = max((abs((s - finished).total_seconds()) for s in off), default=0.0)
    return Rule(
        "UTC timestamps",
        not off,
        f"{len(stamps)} create_time values within the run, in UTC"
        if not off
        else f"{len(off)} of {len(stamps)} create_time values are up to {worst / 3600:.1f} h off UTC "
        f"(run {started:%H:%M:%S}-{finished:%H:%M:%S} UTC), e.g. {examples(off)}",
    )


# The reason class a failed page of each kind must carry.
REASON_OF = {
    PageKind.FAIL: ("http_503",),
    PageKind.BROKEN: ("parse_error",),
    PageKind.BLOCKED: ("blocked",),
    PageKind.BARE: ("nothing_parsed", "parse_error"),
}


def reasons_reported(seen: Round) -> Rule:
    """Each failure carries the reason class of what happened (``crawlops:fail_reason:<task>``)."""
    key_of, plan = seen.key_of, seen.plan
    failed = [e for e, a in seen.answers.items() if a == ["failed"] and plan.get(key_of[e]) in REASON_OF]
    wrong = []
    for task_id, member in failed:
        got = seen.ledger.reasons.get(task_id, {}).get(member, "unknown")
        if got not in REASON_OF[plan[key_of[(task_id, member)]]]:
            wrong.append(f"{key_of[(task_id, member)]} -> {got}")
    return Rule(
        "reasons reported",
        bool(failed) and not wrong,
        "nothing failed: nothing to judge"
        if not failed
        else f"{len(failed)} failures carry their reason (http_503, parse_error, blocked, nothing_parsed)"
        if not wrong
        else f"{len(wrong)} of {len(failed)} failures carry no or the wrong reason, e.g. {examples(wrong)}",
    )
