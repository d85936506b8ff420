-- Until this migration the uniqueness rule (suite unique_result, quarantine) was keyed on
-- (task_id, keyword, page, position), without the marketplace: the rows of one keyword
-- crawled in several marketplaces were quarantined as duplicates of each other. The rule is
-- now the element's full key plus position (crawlops.planning.CrawlObject.unique_key). Rows
-- the old rule quarantined that are no duplicate under the full key go back to
-- amazon_search_result with their own id (the first copy of each key; a key that has a row
-- in the main table stays quarantined), then leave the quarantine: main + quarantine is
-- unchanged. Safe to run again: a restored id is in the main table, so it is not inserted
-- twice, and the DELETE finishes a run that stopped between the two statements.
INSERT INTO amazon_search_result
    (id, task_id, keyword, marketplace, asin, title, price, currency, rating, review_count, page, position, create_time)
SELECT q.id, q.task_id, q.keyword, q.marketplace, q.asin, q.title, q.price, q.currency, q.rating, q.review_count,
       q.page, q.position, q.create_time
FROM amazon_search_result_quarantine q
WHERE q.failed_rule = 'unique_result'
  AND NOT EXISTS (SELECT 1 FROM amazon_search_result m WHERE m.id = q.id)
  AND NOT EXISTS (SELECT 1 FROM amazon_search_result m
                  WHERE m.task_id <=> q.task_id AND m.page <=> q.page AND m.keyword <=> q.keyword
                    AND m.marketplace <=> q.marketplace AND m.position <=> q.position)
  AND NOT EXISTS (SELECT 1 FROM amazon_search_result_quarantine e
                  WHERE e.failed_rule = 'unique_result' AND e.id < q.id
                    AND e.task_id <=> q.task_id AND e.page <=> q.page AND e.keyword <=> q.keyword
                    AND e.marketplace <=> q.marketplace AND e.position <=> q.position);
DELETE q FROM amazon_search_result_quarantine q JOIN amazon_search_result m ON m.id = q.id
WHERE q.failed_rule = 'unique_result';

-- Why an element failed: the reason class the worker reported with it (http_503, blocked,
-- timeout, connection, parse_error, nothing_parsed, other; unknown for a worker that only
-- SADDs to <task_id>_fail; lost for one taken and never answered), recorded on the failing
-- task's manifest row when the task settles. (The worker's own words go into the task's
-- findings, with a few example elements.)
ALTER TABLE amazon_task_element ADD COLUMN fail_reason VARCHAR(32) NULL AFTER recrawl_at;

-- What the crawlers saw, per minute: the kit counts each answer (answered with rows, empty,
-- failed with its reason) per crawl object and marketplace in Redis; every supervision run
-- folds the counts of the last minutes in here (re-folding a minute overwrites it), and
-- judges the recent shares against the settings and against this history.
CREATE TABLE IF NOT EXISTS amazon_crawl_outcome (
    minute        DATETIME      NOT NULL,
    crawl_object  VARCHAR(64)   NOT NULL,
    marketplace   VARCHAR(16)   NOT NULL,
    outcome       VARCHAR(16)   NOT NULL,
    reason        VARCHAR(32)   NOT NULL DEFAULT '',
    elements      INT UNSIGNED  NOT NULL,
    PRIMARY KEY (minute, crawl_object, marketplace, outcome, reason),
    KEY idx_outcome_market (crawl_object, marketplace, minute)
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_unicode_ci;
