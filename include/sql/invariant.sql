-- The package's promise, checked from the ledger: every element of every root task ends
-- answered (result rows in its retry chain, main table or quarantine), answered empty
-- (reported through <task_id>_empty anywhere in the chain), held by an open task of its
-- chain (waiting or in a retry), in a Dead task of its chain, or else it is LOST.
-- Read with crawlops.invariant (python -m crawlops.invariant) or: mysql DB < invariant.sql
-- It reads MySQL only: elements still waiting in a <task_id>_fail set before status sync
-- and settling have turned it into a retry, or taken by a worker inside the grace period,
-- count as LOST until then. The chain of a root is every task with that root_task_id; each
-- test is an index lookup per element (idx_task_root, idx_result_element,
-- idx_quarantine_element, uq_task_element), so the cost grows with the manifest, not with
-- the results table.
SELECT fate, COUNT(*) AS elements FROM (
    SELECT CASE
        WHEN EXISTS (SELECT 1 FROM amazon_task_information c JOIN amazon_search_result s
                     ON s.task_id = c.task_id AND s.page = e.page AND s.keyword = e.target
                     AND s.marketplace = e.marketplace WHERE c.root_task_id = e.task_id) THEN 'answered'
        WHEN EXISTS (SELECT 1 FROM amazon_task_information c JOIN amazon_search_result_quarantine q
                     ON q.task_id = c.task_id AND q.page = e.page AND q.keyword = e.target
                     AND q.marketplace = e.marketplace WHERE c.root_task_id = e.task_id) THEN 'answered'
        WHEN EXISTS (SELECT 1 FROM amazon_task_information c JOIN amazon_task_element m
                     ON m.task_id = c.task_id AND m.element_hash = e.element_hash
                     WHERE c.root_task_id = e.task_id AND m.empty_at IS NOT NULL) THEN 'empty'
        WHEN EXISTS (SELECT 1 FROM amazon_task_information c JOIN amazon_task_element m
                     ON m.task_id = c.task_id AND m.element_hash = e.element_hash
                     WHERE c.root_task_id = e.task_id AND c.task_status IN ('Pending', 'In Progress'))
             THEN 'open retry'
        WHEN EXISTS (SELECT 1 FROM amazon_task_information c JOIN amazon_task_element m
                     ON m.task_id = c.task_id AND m.element_hash = e.element_hash
                     WHERE c.root_task_id = e.task_id AND c.task_status = 'Dead') THEN 'dead'
        ELSE 'LOST' END AS fate
    FROM amazon_task_element e
    JOIN amazon_task_information r ON r.task_id = e.task_id AND r.task_source IS NULL
) judged GROUP BY fate;
