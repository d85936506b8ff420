"""The contract kit (``python -m crawlops.harness.check``) against workers that keep the
contract (the simulator, the example Scrapy spider) and a hand-written one that breaks it."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
CHECK_MYSQL_URL = os.environ.get(
    "CRAWLOPS_TEST_CHECK_MYSQL_URL", "mysql://crawlops:crawlops@127.0.0.1:3306/crawlops_check"
)
CHECK_REDIS_URL = f"redis://127.0.0.1:6379/{os.environ.get('CRAWLOPS_TEST_CHECK_REDIS_DB', '11')}"
RULES = {
    "finds every open task", "every element taken is answered", "answered once", "members byte-identical",
    "failures reported", "exceptions reported", "empties reported", "fields equal", "results match the page",
    "UTC timestamps", "nothing left after SIGTERM", "blocked pages reported", "nothing parsed is no empty",
    "reasons reported",
}  # fmt: skip


def check(*worker: str, crawl_object: str = "search_result", timeout: int = 60) -> tuple[int, dict[str, str], str]:
    """Run the kit; returns its exit status, each rule's PASS/FAIL, and its output."""
    done = subprocess.run(
        [sys.executable, "-m", "crawlops.harness.check", "--mysql-url", CHECK_MYSQL_URL, "--redis-url",
         CHECK_REDIS_URL, "--timeout", str(timeout), "--object", crawl_object, "--", *worker],
        capture_output=True, text=True, timeout=240, cwd=ROOT, check=False,
    )  # fmt: skip
    verdicts = {}
    for line in done.stdout.splitlines():
        word, _, rest = line.partition(" ")
        if word in {"PASS", "FAIL"}:
            verdicts[rest.split(":", 1)[0]] = word
    return done.returncode, verdicts, done.stdout + done.stderr


PRODUCT_SPIDER = [sys.executable, "examples/scrapy_product/spider.py"]


@pytest.mark.parametrize(
    ("worker", "crawl_object"),
    [
        pytest.param([sys.executable, "-m", "crawlops.harness.simulator", "--workers", "2"], "search_result",
                     id="simulator"),
        pytest.param([sys.executable, "examples/scrapy_search/spider.py"], "search_result", id="scrapy-example"),
        pytest.param([sys.executable, "examples/scrapy_search/spider.py", "--processes", "2"], "search_result",
                     id="scrapy-2-processes"),
        pytest.param(PRODUCT_SPIDER, "product_detail", id="scrapy-product-detail"),
        pytest.param([*PRODUCT_SPIDER, "--objects", "product_review"], "product_review", id="scrapy-product-review"),
        pytest.param([sys.executable, "-m", "crawlops.harness.simulator", "--workers", "2"], "all",
                     id="simulator-every-object"),
    ],
)  # fmt: skip
def test_workers_built_on_the_kit_keep_the_contract(worker, crawl_object):
    status, verdicts, output = check(*worker, crawl_object=crawl_object)

    assert verdicts == dict.fromkeys(RULES, "PASS"), output
    assert status == 0
    objects = ["search_result", "product_detail", "product_review"] if crawl_object == "all" else [crawl_object]
    assert f"elements of {', '.join(objects)} dispatched" in output


def test_a_spider_of_other_objects_takes_none_of_them():
    """The search example (``crawl_objects`` left at its default, search_result) given product
    pages to crawl: it takes none, and the check says so."""
    status, verdicts, output = check(sys.executable, "examples/scrapy_search/spider.py", crawl_object="product_detail",
                                     timeout=5)  # fmt: skip

    assert status == 1
    assert verdicts["finds every open task"] == verdicts["every element taken is answered"] == "FAIL", output
    assert verdicts["nothing left after SIGTERM"] == "FAIL"
    assert "nothing was taken" in output and "the worker took nothing of a new task within 5 s" in output


@pytest.mark.parametrize(
    ("flags", "broken"),
    [
        (
            ["--local-time", "--swallow", "--die-on-sigterm"],
            {
                "UTC timestamps",
                "every element taken is answered",
                "exceptions reported",
                "nothing left after SIGTERM",
                "nothing parsed is no empty",
                "reasons reported",
            },
        ),
        (
            ["--reencode"],
            {
                "members byte-identical",
                "failures reported",
                "empties reported",
                "exceptions reported",
                "every element taken is answered",
                "nothing left after SIGTERM",
                "blocked pages reported",
                "nothing parsed is no empty",
                "reasons reported",
            },
        ),
    ],
    ids=["local-time-swallow-die", "reencode"],
)
def test_a_broken_worker_fails_one_line_per_broken_rule(flags, broken):
    status, verdicts, output = check(sys.executable, "tests/support/broken_worker.py", *flags)

    assert {rule for rule, word in verdicts.items() if word == "FAIL"} == broken, output
    assert {rule for rule, word in verdicts.items() if word == "PASS"} == RULES - broken, output
    assert status == 1
    assert "8.0 h off UTC" in output if "--local-time" in flags else "re-encoded?" in output


def test_the_kit_refuses_a_redis_db_that_is_not_scratch_space():
    import redis

    r = redis.Redis.from_url(CHECK_REDIS_URL)
    r.flushdb()
    r.set("somebody:else", "1")  # a Redis db in use, never a check's
    try:
        status, verdicts, output = check(sys.executable, "-c", "pass")
    finally:
        r.flushdb()

    assert status == 2 and verdicts == {}
    assert "refusing to use" in output and r.exists("somebody:else") == 0
