-- The package's promise, checked from the ledger: every element of every root task ends
-- answered (result rows in its retry chain, main table or quarantine), answered empty
-- (reported through <task_id>_empty anywhere in the chain), held by an open task of its
-- chain (waiting or in a retry), in a Dead task of its chain, or else it is LOST.
-- Read with crawlops.invariant (python -m crawlops.invariant) or: mysql DB < invariant.sql
-- It reads MySQL only: elements still waiting in a <task_id>_fail set before status sync
-- and settling have turned it into a retry, or taken by a worker inside the grace period,
-- count as LOST until then. Each temporary table is read once per statement (MySQL 8
-- cannot reopen one), and keys keep every step a join on an index.
DROP TEMPORARY TABLE IF EXISTS inv_chain, inv_answered, inv_empty, inv_held;
CREATE TEMPORARY TABLE inv_chain (
    root VARCHAR(191) CHARACTER SET ascii COLLATE ascii_bin NOT NULL,
    task_id VARCHAR(191) CHARACTER SET ascii COLLATE ascii_bin NOT NULL,
    task_status VARCHAR(16) NOT NULL,
    PRIMARY KEY (task_id), KEY (root)
) AS SELECT root_task_id AS root, task_id, task_status FROM amazon_task_information;
CREATE TEMPORARY TABLE inv_answered (
    root VARCHAR(191) CHARACTER SET ascii COLLATE ascii_bin NOT NULL,
    keyword VARCHAR(1024) CHARACTER SET utf8mb4 COLLATE utf8mb4_bin NULL,
    marketplace VARCHAR(16) NULL, page INT NULL,
    KEY (root, page, marketplace, keyword(191))
) AS SELECT DISTINCT c.root, x.keyword, x.marketplace, x.page FROM inv_chain c
    JOIN (SELECT task_id, keyword, marketplace, page FROM amazon_search_result
          UNION ALL SELECT task_id, keyword, marketplace, page FROM amazon_search_result_quarantine) x
      ON x.task_id = c.task_id;
CREATE TEMPORARY TABLE inv_empty (
    root VARCHAR(191) CHARACTER SET ascii COLLATE ascii_bin NOT NULL,
    element_hash BINARY(16) NOT NULL, PRIMARY KEY (root, element_hash)
) AS SELECT DISTINCT c.root, m.element_hash FROM inv_chain c
    JOIN amazon_task_element m ON m.task_id = c.task_id WHERE m.empty_at IS NOT NULL;
CREATE TEMPORARY TABLE inv_held (
    root VARCHAR(191) CHARACTER SET ascii COLLATE ascii_bin NOT NULL,
    element_hash BINARY(16) NOT NULL, held_open TINYINT NOT NULL, PRIMARY KEY (root, element_hash)
) AS SELECT c.root, m.element_hash, MAX(c.task_status IN ('Pending', 'In Progress')) AS held_open
    FROM inv_chain c JOIN amazon_task_element m ON m.task_id = c.task_id
    WHERE c.task_status IN ('Pending', 'In Progress', 'Dead') GROUP BY c.root, m.element_hash;
SELECT fate, COUNT(*) AS elements FROM (
    SELECT CASE WHEN a.root IS NOT NULL THEN 'answered' WHEN em.root IS NOT NULL THEN 'empty'
                WHEN h.held_open = 1 THEN 'open retry' WHEN h.root IS NOT NULL THEN 'dead'
                ELSE 'LOST' END AS fate
    FROM amazon_task_element e
    JOIN amazon_task_information r ON r.task_id = e.task_id AND r.task_source IS NULL
    LEFT JOIN inv_answered a ON a.root = e.task_id AND a.page = e.page AND a.marketplace = e.marketplace
        AND a.keyword = e.target
    LEFT JOIN inv_empty em ON em.root = e.task_id AND em.element_hash = e.element_hash
    LEFT JOIN inv_held h ON h.root = e.task_id AND h.element_hash = e.element_hash
) judged GROUP BY fate;
DROP TEMPORARY TABLE IF EXISTS inv_chain, inv_answered, inv_empty, inv_held;
