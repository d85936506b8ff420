-- priority: the highest priority of the config rows a task covers (retry tasks keep their
-- source's). Dispatch publishes it in the Redis hash crawlops:task_priority, and the worker
-- kit takes from the most urgent open task first. A task holds the elements of many config
-- rows, so this orders tasks, never elements within a task.
ALTER TABLE amazon_task_information ADD COLUMN priority INT NOT NULL DEFAULT 0 AFTER frequency;
