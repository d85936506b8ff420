"""The starter config loader (python -m crawlops.crawl_config load): make demo and the compose init step."""

from __future__ import annotations

import pytest

from crawlops.crawl_config import STARTER_CONFIG, load_if_empty, main, read_rows


def test_the_starter_file_has_good_and_deliberately_malformed_rows():
    rows = read_rows(STARTER_CONFIG)
    good = [row for row in rows if row[0] == "search_result" and row[1].strip() and row[2] != "XX"]
    assert len(good) >= 5
    assert any(row[1] == "ワイヤレスイヤホン" for row in rows)  # UTF-8 survives the file
    assert any(row[3] == "monthly" for row in rows)  # a bad frequency, skipped by dispatch


def test_loads_into_an_empty_table_once(mysql, monkeypatch, capsys):
    from conftest import MYSQL_URL

    monkeypatch.setenv("CRAWLOPS_MYSQL_URL", MYSQL_URL)
    assert main(["load"]) == 0
    assert "rows loaded" in capsys.readouterr().out
    assert main(["load", str(STARTER_CONFIG)]) == 0
    assert "already has rows" in capsys.readouterr().out
    with mysql.cursor() as cur:
        cur.execute("SELECT target, marketplace, frequency, priority, max_pages, enabled FROM amazon_crawl_config")
        stored = cur.fetchall()
    rows = read_rows(STARTER_CONFIG)
    assert len(stored) == len(rows)
    assert ("ワイヤレスイヤホン", "JP", "hourly", 5, 3, 1) in stored
    assert load_if_empty(mysql, rows) == 0


@pytest.mark.parametrize(
    "text",
    [
        'columns = ["crawl_object", "target", "marketplace"]\nrows = []',  # frequency missing
        'columns = ["target", "crawl_object", "marketplace", "frequency", "priority", "max_pages"]\nrows = []',
        'columns = ["crawl_object", "target", "marketplace", "frequency", "priority", "max_pages"]\n'
        'rows = [["search_result", "x", "US", "hourly", 1]]',
    ],
)
def test_a_bad_file_is_refused_with_its_reason(tmp_path, text, capsys):
    path = tmp_path / "config.toml"
    path.write_text(text)
    with pytest.raises(ValueError):
        read_rows(path)
    assert main(["load", str(path)]) == 2
    assert str(path) in capsys.readouterr().err
