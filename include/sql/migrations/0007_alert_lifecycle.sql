-- Alerts people own and act on.
--
-- An alert is an incident: a finding that repeats in every run is one open row, counted
-- (occurrences) with its first window (window_start/window_end) and its last
-- (last_window_start/last_window_end, last_seen_at). status: open, acknowledged, expected,
-- closed (the check no longer finds it, or it stayed quiet for [alerts] quiet_close_seconds).
-- crawl_object / marketplace are what routing matches on; owner and channels what it chose;
-- acted_by / acted_at / action_note who acknowledged it or marked it expected.
ALTER TABLE amazon_alert ADD COLUMN crawl_object VARCHAR(64) NULL AFTER subject;
ALTER TABLE amazon_alert ADD COLUMN marketplace VARCHAR(16) NULL AFTER crawl_object;
ALTER TABLE amazon_alert ADD COLUMN status VARCHAR(16) NOT NULL DEFAULT 'open' AFTER level;
ALTER TABLE amazon_alert ADD COLUMN occurrences INT UNSIGNED NOT NULL DEFAULT 1;
ALTER TABLE amazon_alert ADD COLUMN last_window_start DATETIME NULL;
ALTER TABLE amazon_alert ADD COLUMN last_window_end DATETIME NULL;
ALTER TABLE amazon_alert ADD COLUMN last_seen_at DATETIME NULL;
ALTER TABLE amazon_alert ADD COLUMN owner VARCHAR(128) NULL;
ALTER TABLE amazon_alert ADD COLUMN channels VARCHAR(1000) NULL;
ALTER TABLE amazon_alert ADD COLUMN acted_by VARCHAR(128) NULL;
ALTER TABLE amazon_alert ADD COLUMN acted_at DATETIME NULL;
ALTER TABLE amazon_alert ADD COLUMN action_note VARCHAR(1000) NULL;
ALTER TABLE amazon_alert ADD COLUMN closed_at DATETIME NULL;
ALTER TABLE amazon_alert ADD COLUMN escalated_at DATETIME NULL;
ALTER TABLE amazon_alert ADD KEY idx_alert_open (fingerprint, status);
ALTER TABLE amazon_alert ADD KEY idx_alert_status (status, level);
ALTER TABLE amazon_alert ADD KEY idx_alert_seen (last_seen_at);
-- Rows from before: each its own incident, seen once; those of windows over a day old closed.
UPDATE amazon_alert SET last_window_start = window_start, last_window_end = window_end, last_seen_at = created_at
    WHERE last_window_start IS NULL;
UPDATE amazon_alert SET status = 'closed', closed_at = UTC_TIMESTAMP()
    WHERE status = 'open' AND window_end < UTC_TIMESTAMP() - INTERVAL 1 DAY;
-- They were sent (or not) under the old rules: none escalates on the deploy, and the ones
-- whose delivery was failing are routed again, through the outbox.
UPDATE amazon_alert SET escalated_at = created_at WHERE escalated_at IS NULL;
UPDATE amazon_alert SET delivery_status = 'stored', next_attempt_at = NULL WHERE delivery_status = 'failed';

-- Each window an alert was found in, with what that run said: the history behind the count
-- (the page's hourly cells list the findings of their own hour from here).
CREATE TABLE IF NOT EXISTS amazon_alert_occurrence (
    alert_id      BIGINT UNSIGNED NOT NULL,
    window_start  DATETIME        NOT NULL,
    window_end    DATETIME        NOT NULL,
    level         VARCHAR(16)     NOT NULL,
    title         VARCHAR(255)    NOT NULL,
    dag_run_id    VARCHAR(250)    NULL,
    seen_at       DATETIME        NOT NULL,
    PRIMARY KEY (alert_id, window_start),
    KEY idx_occurrence_window (window_start)
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_unicode_ci;
INSERT IGNORE INTO amazon_alert_occurrence (alert_id, window_start, window_end, level, title, dag_run_id, seen_at)
    SELECT id, window_start, window_end, level, title, dag_run_id, created_at FROM amazon_alert;

-- Channels are connection ids now.
ALTER TABLE amazon_alert_delivery MODIFY channel VARCHAR(250) NOT NULL;

-- The outbox per channel: one row per (alert, channel, kind) to send; kind is alert (the
-- first message), reminder (still open and repeating, nobody acknowledged it) or escalation.
-- A channel that fails retries its own rows (backoff, abandoned after the last attempt)
-- and never holds up another channel's.
CREATE TABLE IF NOT EXISTS amazon_alert_send (
    id               BIGINT UNSIGNED NOT NULL AUTO_INCREMENT,
    alert_id         BIGINT UNSIGNED NOT NULL,
    channel          VARCHAR(250)    NOT NULL,
    kind             VARCHAR(16)     NOT NULL,
    mentions         TEXT            NULL,
    status           VARCHAR(16)     NOT NULL DEFAULT 'pending',
    attempts         INT UNSIGNED    NOT NULL DEFAULT 0,
    next_attempt_at  DATETIME(3)     NULL,
    delivered_at     DATETIME(3)     NULL,
    error            TEXT            NULL,
    created_at       DATETIME(3)     NOT NULL,
    PRIMARY KEY (id),
    KEY idx_send_due (status, channel, next_attempt_at),
    KEY idx_send_alert (alert_id),
    KEY idx_send_created (created_at)
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_unicode_ci;

-- Mutes: while one is active (muted_from <= now < muted_until and not ended), alerts of its
-- check (and subject; '' is every subject) are stored but not sent.
CREATE TABLE IF NOT EXISTS amazon_alert_mute (
    id           BIGINT UNSIGNED NOT NULL AUTO_INCREMENT,
    check_name   VARCHAR(128)    NOT NULL,
    subject      VARCHAR(255)    NOT NULL DEFAULT '',
    muted_from   DATETIME        NOT NULL,
    muted_until  DATETIME        NOT NULL,
    actor        VARCHAR(128)    NOT NULL,
    reason       VARCHAR(1000)   NOT NULL,
    ended_at     DATETIME        NULL,
    ended_by     VARCHAR(128)    NULL,
    PRIMARY KEY (id),
    KEY idx_mute_check (check_name, muted_until)
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_unicode_ci;
