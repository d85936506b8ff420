-- recrawl_at: when the element was sent for one more crawl because its rows lacked a
-- required field (set on the manifest row of the task that re-crawls it; an element is
-- re-crawled once).
ALTER TABLE amazon_task_element ADD COLUMN recrawl_at DATETIME NULL AFTER empty_at;
