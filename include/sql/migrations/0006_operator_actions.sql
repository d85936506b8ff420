-- Operator actions, audited. A re-drive gives a Dead task's chain a budget of its own:
-- retry_limit is the retry count the chain may reach (NULL: [dispatch] retry_limit); the
-- re-drive's retry task carries it and its own retries inherit it.
ALTER TABLE amazon_task_information ADD COLUMN retry_limit INT NULL AFTER retry_count;

-- Who did what, when and why: one row per action (re-drive, release), kept forever.
CREATE TABLE IF NOT EXISTS amazon_operator_action (
    id          BIGINT UNSIGNED NOT NULL AUTO_INCREMENT,
    action      VARCHAR(32)     NOT NULL,
    subject     VARCHAR(255)    NOT NULL,
    actor       VARCHAR(128)    NOT NULL,
    reason      VARCHAR(1000)   NOT NULL,
    params      LONGTEXT        NULL,
    outcome     LONGTEXT        NULL,
    acted_at    DATETIME        NOT NULL,
    PRIMARY KEY (id),
    KEY idx_action_time (acted_at),
    KEY idx_action_subject (subject)
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_unicode_ci;
