"""The running stack seen in a browser: log in, find both DAGs, trigger dispatch from the form.

Run by `make e2e`, which starts the stack (`make demo`), runs this file and stops the stack.
Headless Chromium is Debian's (/usr/bin/chromium) driven by Playwright. Screenshots go to
$AIRFLOW_HOME/e2e/.
"""

from __future__ import annotations

import json
import os
import time
from pathlib import Path

import pytest

pytestmark = pytest.mark.e2e

URL = os.environ.get("CRAWLOPS_E2E_URL", f"http://localhost:{os.environ.get('CRAWLOPS_UI_PORT', '8080')}")
SHOTS = Path(os.environ.get("CRAWLOPS_E2E_SHOTS", Path(__file__).resolve().parents[2] / ".airflow" / "e2e"))
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]


@pytest.fixture(scope="module")
def browser():
    from playwright.sync_api import sync_playwright

    SHOTS.mkdir(parents=True, exist_ok=True)
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path="/usr/bin/chromium", args=CHROMIUM_ARGS)
        yield browser
        browser.close()


def logged_in(browser, user: str, password: str):
    """A page of a browser context of its own, logged in to Airflow as ``user``."""
    page = browser.new_context().new_page()
    page.set_viewport_size({"width": 1400, "height": 900})
    page.goto(URL + "/", wait_until="networkidle")
    page.fill("input[name=username]", user)
    page.fill("input[name=password]", password)
    page.locator("button[type=submit]").click()
    page.wait_for_url(URL + "/", timeout=30_000)
    return page


@pytest.fixture(scope="module")
def page(browser):
    return logged_in(browser, "admin", os.environ.get("CRAWLOPS_UI_PASSWORD", "admin"))


def api():
    from crawlops_dev.stack import Api

    return Api()


def test_both_dags_are_listed_with_successful_runs(page):
    page.goto(URL + "/dags")
    for dag_id in ("amazon_task_dispatch", "amazon_data_supervision"):
        page.get_by_text(dag_id, exact=True).first.wait_for(timeout=30_000)
    page.screenshot(path=str(SHOTS / "dags.png"))

    client = api()
    for dag_id in ("amazon_task_dispatch", "amazon_data_supervision"):
        assert client.get(f"/dags/{dag_id}/dagRuns", state="success", limit=1)["total_entries"] >= 1


def test_dispatch_triggered_from_the_form_succeeds(page):
    client = api()
    before = {r["dag_run_id"] for r in client.get("/dags/amazon_task_dispatch/dagRuns", limit=100)["dag_runs"]}
    page.goto(URL + "/dags/amazon_task_dispatch")
    page.get_by_role("button", name="Trigger").first.click()
    dialog = page.get_by_role("dialog")
    dialog.locator("textarea").nth(0).fill("search_result")  # crawl objects
    dialog.locator("textarea").nth(1).fill("hourly")  # frequencies
    page.screenshot(path=str(SHOTS / "trigger-form.png"))
    dialog.get_by_role("button", name="Trigger").click()

    deadline, run = time.monotonic() + 240, None
    while time.monotonic() < deadline:
        runs = client.get("/dags/amazon_task_dispatch/dagRuns", limit=100)["dag_runs"]
        # only the run this form made: a scheduled run may start meanwhile (at the top of the hour)
        new = [r for r in runs if r["dag_run_id"] not in before and r["run_type"] == "manual"]
        if new and new[0]["state"] in ("success", "failed"):
            run = new[0]
            break
        time.sleep(3)

    assert run is not None, "the triggered run did not finish in time"
    assert run["state"] == "success"
    assert (run["conf"]["crawl_objects"], run["conf"]["frequencies"]) == (["search_result"], ["hourly"])
    page.goto(URL + "/dags/amazon_task_dispatch")
    page.get_by_text("Latest Run").wait_for(timeout=30_000)
    page.wait_for_timeout(2000)
    page.screenshot(path=str(SHOTS / "dispatch-dag.png"))


def test_crawl_ops_page_from_the_navigation(page):
    import requests

    page.set_viewport_size({"width": 1400, "height": 2300})  # the whole page in one screenshot
    page.goto(URL + "/")
    page.get_by_role("link", name="Crawl Ops").click()  # the plugin's entry in the Airflow navigation
    page.wait_for_url("**/plugin/crawl-ops**", timeout=30_000)
    frame = page.frame_locator("iframe")
    frame.locator("body[data-loaded='1']").wait_for(timeout=60_000)
    for chart in ("queues", "statuses", "tasks", "quality", "volume"):
        frame.locator(f"#{chart}[data-drawn='1']").wait_for(timeout=10_000)

    # the charts are drawn from the live numbers the page's own session reads from the API
    overview = page.request.get(URL + "/crawl-ops/api/overview").json()
    tasks = page.request.get(URL + "/crawl-ops/api/tasks/hourly").json()
    assert overview["tasks_total"] >= 1  # make demo's dispatch run
    assert frame.locator("#cards .value").nth(2).inner_text() == f"{overview['tasks_total']:,}"
    drawn_bars = frame.locator("#tasks svg rect").count()
    assert drawn_bars == sum(1 for o in tasks["outcomes"] for v in tasks["series"][o] if v)
    assert frame.locator("#quality rect.cell").count() >= 5 * 24  # the suite and four hourly checks
    assert frame.locator("#volume svg rect").count() >= 1
    judged_cells = frame.locator("#quality rect.cell[data-status=fail], #quality rect.cell[data-status=pass]")
    assert judged_cells.count() >= 5  # make demo's supervision run checked the last hour with all five
    judged = judged_cells.last
    status = judged.get_attribute("data-status")
    assert status in judged.locator("title").text_content()  # what the hover shows
    judged.click()
    assert f"· {status}" in frame.locator("#quality-detail").inner_text()  # and a click keeps it on the page
    # make demo's seeded history: each injected fault told in the "Demo story" panel
    story = page.request.get(URL + "/crawl-ops/api/story").json()
    assert frame.locator("#story li").count() == len(story["faults"])
    assert frame.locator("#story-panel").is_visible() == bool(story["faults"])
    # the simulated fleet is built on the kit: its workers beat, and the page lists them
    frame.locator("#fleet[data-drawn='1']").wait_for(timeout=10_000)
    frame.locator("#outcomes[data-drawn='1']").wait_for(timeout=10_000)
    fleet = page.request.get(URL + "/crawl-ops/api/fleet").json()
    assert fleet["alive"] >= 1
    assert frame.locator("#fleet-table tbody tr").count() == len(fleet["workers"])
    page.wait_for_timeout(500)
    page.screenshot(path=str(SHOTS / "crawl-ops.png"))

    # the same endpoints refuse a request without the Airflow session
    assert requests.get(URL + "/crawl-ops/api/overview", timeout=10).status_code == 401

    # make demo's dispatch always skips the demo config's malformed rows: a WARNING linked to its run,
    # which opens in the Airflow UI around the page
    link = frame.locator("#alerts a[data-airflow]").first
    href = link.get_attribute("href")
    link.click()
    page.wait_for_url(URL + "/" + href.removeprefix("../"), timeout=30_000)
    page.get_by_text(href.rsplit("/", 1)[-1].replace("%3A", ":").replace("%2B", "+")).first.wait_for(timeout=30_000)
    page.set_viewport_size({"width": 1400, "height": 900})


def dead_task(conn) -> str:
    """A Dead search task of two unanswered pages, written into the demo's ledger as settling
    leaves one (its id from the clock, so each run of the test has its own)."""
    import time

    from crawlops.model import element_digest

    epoch = int(time.time())
    task_id = f"search_result_{epoch}_hourly"
    elements = [json.dumps({"keyword": "e2e redrive", "marketplace": "US", "page": p}, separators=(",", ":"))
                for p in (1, 2)]  # fmt: skip
    with conn.cursor() as cur:
        cur.execute(
            "INSERT INTO amazon_task_information (task_id, task_type, root_task_id, frequency, task_status, "
            "element_count, remaining_count, failed_count, retry_count, interval_start, interval_end, push_count, "
            "finished_at, settled_at, last_error) VALUES (%s, 'search_result', %s, 'hourly', 'Dead', 2, 0, 2, 3, "
            "FROM_UNIXTIME(%s), FROM_UNIXTIME(%s) + INTERVAL 1 HOUR, 1, UTC_TIMESTAMP(), UTC_TIMESTAMP(), "
            "'retry budget spent: 2 elements unanswered after 3 retries')",
            (task_id, task_id, epoch, epoch),
        )
        cur.executemany(
            "INSERT INTO amazon_task_element (task_id, seq, element_hash, element, target, marketplace, page) "
            "VALUES (%s, %s, %s, %s, 'e2e redrive', 'US', %s)",
            [(task_id, i, element_digest(e), e, i) for i, e in enumerate(elements, 1)],
        )
    conn.commit()
    return task_id


def task_rows(conn, root: str) -> list[tuple]:
    conn.commit()
    with conn.cursor() as cur:
        cur.execute("SELECT task_id, task_source, element_count FROM amazon_task_information WHERE root_task_id = %s "
                    "ORDER BY retry_count", (root,))  # fmt: skip
        return list(cur.fetchall())


def test_an_operator_redrives_a_dead_task_from_the_page_and_a_viewer_is_refused(browser, page):
    from crawlops.db import connect

    conn = connect(os.environ["CRAWLOPS_STACK_MYSQL_URL"])  # the demo's database (tests/conftest.py)
    dead = dead_task(conn)
    try:
        viewer = logged_in(browser, "viewer", os.environ.get("CRAWLOPS_VIEWER_PASSWORD", "viewer"))
        viewer.on("dialog", lambda dialog: dialog.accept())
        viewer.goto(URL + "/crawl-ops/")
        viewer.locator("body[data-loaded='1']").wait_for(timeout=60_000)
        viewer.fill("#redrive-task", dead)
        viewer.fill("#redrive-reason", "should not be allowed")
        viewer.click("#redrive-button")
        refused = viewer.locator("#action-result.bad")
        refused.wait_for(timeout=15_000)
        assert "Refused (403)" in refused.inner_text() and "not allowed to act" in refused.inner_text()
        assert task_rows(conn, dead) == [(dead, None, 2)]  # nothing changed

        page.on("dialog", lambda dialog: dialog.accept())  # the confirmation
        page.goto(URL + "/crawl-ops/")
        page.locator("body[data-loaded='1']").wait_for(timeout=60_000)
        page.fill("#redrive-task", dead)
        page.fill("#redrive-budget", "2")
        page.fill("#redrive-reason", "e2e: proxies back")
        page.click("#redrive-button")
        done = page.locator("#action-result.ok")
        done.wait_for(timeout=15_000)
        assert f"Re-driven: 2 elements in {dead}_fail" in done.inner_text()
        assert task_rows(conn, dead) == [(dead, None, 2), (dead + "_fail", dead, 2)]  # one chain, one line
        row = page.locator("#action-table tbody tr", has_text=dead).first
        row.wait_for(timeout=15_000)  # the audit trail, reloaded after the action
        assert "admin" in row.inner_text() and "e2e: proxies back" in row.inner_text()
        page.locator("#actions-panel").screenshot(path=str(SHOTS / "operator-actions.png"))

        page.click("#redrive-button")  # again: the task was re-driven already
        page.locator("#action-result.bad").wait_for(timeout=15_000)
        assert "Refused (409)" in page.locator("#action-result").inner_text()

        # a Dead task's alert (make demo's story has one) fills the form in with its task
        page.select_option("#preset", "168")
        button = page.locator("#alerts button.redrive-alert").first
        button.wait_for(timeout=30_000)
        subject = button.get_attribute("data-task")
        button.click()
        assert subject and page.input_value("#redrive-task") == subject
    finally:
        conn.close()


def live_alert(conn) -> int:
    """An ERROR alert of the current 5 minutes in the demo's database (its subject from the clock)."""
    import datetime as dt

    from crawlops.alerts import record_findings
    from crawlops.findings import Finding, Level
    from crawlops.model import UTC, Window

    now = dt.datetime.now(UTC).replace(second=0, microsecond=0)
    end = now - dt.timedelta(minutes=now.minute % 5)
    finding = Finding(Level.ERROR, "amazon_data_supervision", "e2e_check", "e2e: something to own",
                      subject=f"e2e-{int(time.time())}")  # fmt: skip
    (alert_id,) = record_findings(conn, [finding], window=Window(end - dt.timedelta(minutes=5), end))
    return alert_id


def crawl_ops_as(browser, user: str, password: str, *, answer: str, showing: str):
    """The Crawl Ops page as ``user``, once it shows ``showing``; confirmations are accepted and
    prompts answered with ``answer``."""
    page = logged_in(browser, user, password)
    page.on("dialog", lambda dialog: dialog.accept(answer) if dialog.type == "prompt" else dialog.accept())
    page.goto(URL + "/crawl-ops/")
    page.locator(showing).wait_for(timeout=60_000)
    return page


def test_an_operator_acknowledges_and_mutes_from_the_page_and_a_viewer_is_refused(browser):
    from crawlops.db import connect

    conn = connect(os.environ["CRAWLOPS_STACK_MYSQL_URL"])
    alert_id = live_alert(conn)
    row = f"#alert-table tr[data-alert='{alert_id}']"
    try:
        viewer = crawl_ops_as(browser, "viewer", os.environ.get("CRAWLOPS_VIEWER_PASSWORD", "viewer"),
                              answer="a viewer tries", showing=row)  # fmt: skip
        viewer.locator(f"{row} button[data-verb='acknowledge']").click()
        viewer.locator("#action-result.bad").wait_for(timeout=15_000)
        assert "Refused (403)" in viewer.locator("#action-result").inner_text()
        assert "open" in viewer.locator(f"{row} td.alert-status").inner_text()

        admin = crawl_ops_as(browser, "admin", os.environ.get("CRAWLOPS_UI_PASSWORD", "admin"),
                             answer="e2e: alice is on it", showing=row)  # fmt: skip
        admin.locator(f"{row} button[data-verb='acknowledge']").click()
        admin.locator("#action-result.ok").wait_for(timeout=15_000)
        status = admin.locator(f"{row} td.alert-status")
        status.filter(has_text="acknowledged").wait_for(timeout=15_000)  # the table, reloaded
        assert "admin: e2e: alice is on it" in status.inner_text()
        admin.locator(row).screenshot(path=str(SHOTS / "alert-acknowledged.png"))

        admin.locator(f"{row} button.mute-alert").click()  # fills the mute form in with its check and subject
        assert admin.input_value("#mute-check") == "e2e_check"
        admin.fill("#mute-minutes", "30")
        admin.fill("#mute-reason", "e2e: maintenance")
        admin.click("#mute-button")
        admin.locator("#action-result.ok").filter(has_text="Muted e2e_check").wait_for(timeout=15_000)
        mute = admin.locator("#mute-table tbody tr", has_text="e2e_check").first
        mute.wait_for(timeout=15_000)
        assert "admin: e2e: maintenance" in mute.inner_text()
        mute.locator("button.end-mute").click()  # and ends it, so the demo is not left muted
        admin.locator("#mute-table tbody tr", has_text="e2e_check").wait_for(state="detached", timeout=15_000)
        trail = [admin.locator("#action-table tbody tr", has_text=f"alert {alert_id}:").first.inner_text()]
        assert "acknowledged" in trail[0] and "e2e: alice is on it" in trail[0]
    finally:
        conn.close()


def test_a_runs_alerts_reach_the_demo_channels_by_their_routes():
    """make demo's channels (two DingTalk robots and a Feishu webhook, one local receiver): three
    new alerts, then a supervision run delivers them by the demo's routes: the product object's
    error to the product team's robot and Feishu naming its lead, the DE one to the crawl team
    and Feishu, the other to the crawl team alone."""
    import datetime as dt

    from crawlops.alerts import record_findings
    from crawlops.db import connect
    from crawlops.findings import Finding, Level
    from crawlops.model import UTC, Window

    tag = f"e2e-{int(time.time())}"
    findings = [
        Finding(Level.ERROR, "amazon_data_supervision", "e2e_route", "product pages broken", subject=f"{tag}-product",
                details={"crawl_object": "product_detail"}),
        Finding(Level.WARNING, "amazon_data_supervision", "e2e_route", "DE blocked", subject=f"{tag}-de",
                details={"crawl_object": "search_result", "marketplace": "DE"}),
        Finding(Level.ERROR, "amazon_data_supervision", "e2e_route", "US slow", subject=f"{tag}-us",
                details={"crawl_object": "search_result", "marketplace": "US"}),
    ]  # fmt: skip
    end = dt.datetime.now(UTC).replace(second=0, microsecond=0)
    conn = connect(os.environ["CRAWLOPS_STACK_MYSQL_URL"])
    try:
        record_findings(conn, findings, window=Window(end - dt.timedelta(minutes=5), end))
    finally:
        conn.close()
    client = api()
    run_id = client.trigger("amazon_data_supervision", {})
    deadline = time.monotonic() + 300
    while client.run_state("amazon_data_supervision", run_id) not in ("success", "failed"):
        assert time.monotonic() < deadline, "the supervision run did not finish"
        time.sleep(3)

    home = Path(os.environ.get("CRAWLOPS_STACK_HOME", Path(__file__).resolve().parents[2] / ".airflow"))
    entries = [json.loads(line) for line in (home / "channel-messages.jsonl").read_text().splitlines()]

    def texts(where: str) -> str:
        return " ".join(e["payload"]["markdown"]["text"] if e.get("robot") else e["payload"]["message"]
                        for e in entries if where in (e.get("robot"), e["path"]))  # fmt: skip

    product, crawl, feishu = texts("demo-product-team"), texts("demo-crawl-team"), texts("/feishu")
    assert f"{tag}-product" in product and f"{tag}-de" not in product and f"{tag}-us" not in product
    assert f"{tag}-de" in crawl and f"{tag}-us" in crawl and f"{tag}-product" not in crawl
    assert f"{tag}-product" in feishu and f"{tag}-de" in feishu and f"{tag}-us" not in feishu
    mentioned = [e["payload"]["at"]["atMobiles"] for e in entries if e.get("robot") == "demo-product-team"
                 and f"{tag}-product" in e["payload"]["markdown"]["text"]]  # fmt: skip
    assert mentioned == [["13800000000"]] and "@13800000000" in feishu
