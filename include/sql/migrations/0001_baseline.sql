-- Migration 1, the baseline: the schema of the crawl control plane as of the first versioned
-- release. Applied at deploy by `python -m crawlops.migrations` (make schema, the compose
-- init container, the test setup), never by a DAG run. Every statement is idempotent, and
-- for a database older than versioning crawlops.migrations then adds what its tables lack.
-- MariaDB 10.6+ and MySQL 8. Timestamps are UTC (connections set time_zone = '+00:00').
-- Statements are separated by a semicolon at the end of a line.

-- One row per crawl target. Columns are nullable on purpose: a malformed row must be
-- storable so that dispatch can skip it with a reason instead of failing.
CREATE TABLE IF NOT EXISTS amazon_crawl_config (
    id            BIGINT UNSIGNED NOT NULL AUTO_INCREMENT,
    crawl_object  VARCHAR(64)     NULL,
    target        MEDIUMTEXT      NULL,
    marketplace   VARCHAR(16)     NULL,
    frequency     VARCHAR(16)     NULL,
    priority      INT             NOT NULL DEFAULT 0,
    max_pages     INT             NULL,
    enabled       TINYINT(1)      NOT NULL DEFAULT 1,
    created_at    DATETIME        NOT NULL DEFAULT CURRENT_TIMESTAMP,
    updated_at    DATETIME        NOT NULL DEFAULT CURRENT_TIMESTAMP ON UPDATE CURRENT_TIMESTAMP,
    PRIMARY KEY (id),
    KEY idx_config_enabled (enabled, crawl_object)
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_unicode_ci;

-- One row per task. task_source is NULL for tasks born from the config and the source
-- task id for retry tasks; root_task_id names the first task of a retry chain.
CREATE TABLE IF NOT EXISTS amazon_task_information (
    task_id          VARCHAR(191) CHARACTER SET ascii COLLATE ascii_bin NOT NULL,
    task_type        VARCHAR(64)  NOT NULL,
    task_source      VARCHAR(191) CHARACTER SET ascii COLLATE ascii_bin NULL,
    root_task_id     VARCHAR(191) CHARACTER SET ascii COLLATE ascii_bin NOT NULL,
    frequency        VARCHAR(16)  NOT NULL,
    task_status      VARCHAR(16)  NOT NULL DEFAULT 'Pending',
    element_count    INT UNSIGNED NOT NULL,
    remaining_count  INT UNSIGNED NULL,
    failed_count     INT UNSIGNED NOT NULL DEFAULT 0,
    retry_count      INT UNSIGNED NOT NULL DEFAULT 0,
    interval_start   DATETIME     NOT NULL,
    interval_end     DATETIME     NOT NULL,
    redis_epoch      VARCHAR(64)  CHARACTER SET ascii COLLATE ascii_bin NULL,
    push_count       INT UNSIGNED NOT NULL DEFAULT 0,
    pushed_at        DATETIME     NULL,
    started_at       DATETIME     NULL,
    progress_at      DATETIME     NULL,
    finished_at      DATETIME     NULL,
    -- Settled: the task's outcome is final (every element answered, retried or Dead); the
    -- counts say how its elements ended: answered (results or empty), empty, and lost
    -- (taken by a worker and never answered nor reported failed).
    settled_at       DATETIME     NULL,
    answered_count   INT UNSIGNED NULL,
    empty_count      INT UNSIGNED NULL,
    lost_count       INT UNSIGNED NULL,
    last_error       TEXT         NULL,
    dag_run_id       VARCHAR(250) NULL,
    created_at       DATETIME     NOT NULL DEFAULT CURRENT_TIMESTAMP,
    updated_at       DATETIME     NOT NULL DEFAULT CURRENT_TIMESTAMP ON UPDATE CURRENT_TIMESTAMP,
    PRIMARY KEY (task_id),
    KEY idx_task_status (task_status, finished_at),
    KEY idx_task_interval (interval_start, task_type),
    KEY idx_task_root (root_task_id),
    KEY idx_task_source (task_source),
    KEY idx_task_settled (settled_at, task_status)
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_unicode_ci;

-- The element manifest: every element of every task, so Redis never holds the only copy.
-- element is the exact Redis set member; target/marketplace/page locate its result rows.
-- seq (planning order) is the clustered key, so a big task's rows are appended in order;
-- element_hash (md5 of the member) keeps each element once per task. empty_at: when a
-- worker answered the element "crawled, nothing found" through <task_id>_empty.
CREATE TABLE IF NOT EXISTS amazon_task_element (
    task_id       VARCHAR(191) CHARACTER SET ascii COLLATE ascii_bin NOT NULL,
    seq           INT UNSIGNED NOT NULL,
    element_hash  BINARY(16)   NOT NULL,
    element       TEXT         CHARACTER SET utf8mb4 COLLATE utf8mb4_bin NOT NULL,
    target        VARCHAR(1024) CHARACTER SET utf8mb4 COLLATE utf8mb4_bin NULL,
    marketplace   VARCHAR(16)  NULL,
    page          SMALLINT UNSIGNED NULL,
    config_id     BIGINT UNSIGNED NULL,
    empty_at      DATETIME     NULL,
    PRIMARY KEY (task_id, seq),
    UNIQUE KEY uq_task_element (task_id, element_hash)
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_unicode_ci;

-- Written by the crawlers. keyword is compared byte for byte (utf8mb4_bin): the
-- unicode_ci collation would call two different emoji equal.
CREATE TABLE IF NOT EXISTS amazon_search_result (
    id            BIGINT UNSIGNED NOT NULL AUTO_INCREMENT,
    task_id       VARCHAR(191)  CHARACTER SET ascii COLLATE ascii_bin NULL,
    keyword       VARCHAR(1024) CHARACTER SET utf8mb4 COLLATE utf8mb4_bin NULL,
    marketplace   VARCHAR(16)   NULL,
    asin          VARCHAR(32)   NULL,
    title         TEXT          NULL,
    price         DECIMAL(12,2) NULL,
    currency      VARCHAR(8)    NULL,
    rating        DECIMAL(5,2)  NULL,
    review_count  INT           NULL,
    page          SMALLINT      NULL,
    position      SMALLINT      NULL,
    create_time   DATETIME      NOT NULL DEFAULT CURRENT_TIMESTAMP,
    -- The hour a row belongs to (UTC), stored and indexed so hourly validation reads its
    -- window through an index equality instead of a date function no index can serve.
    create_hour   DATETIME      GENERATED ALWAYS AS (CAST(DATE(create_time) AS DATETIME) + INTERVAL HOUR(create_time) HOUR) STORED,
    PRIMARY KEY (id),
    KEY idx_result_create_time (create_time),
    KEY idx_result_create_hour (create_hour),
    KEY idx_result_element (task_id, page, keyword(100)),
    -- freshness: the newest row per marketplace, one index lookup each
    KEY idx_result_market_time (marketplace, create_time)
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_unicode_ci;

-- Rows moved out of amazon_search_result by repair, with the rule they failed.
-- id keeps the original row id, so main + quarantine = rows before.
CREATE TABLE IF NOT EXISTS amazon_search_result_quarantine (
    id              BIGINT UNSIGNED NOT NULL,
    task_id         VARCHAR(191)  CHARACTER SET ascii COLLATE ascii_bin NULL,
    keyword         VARCHAR(1024) CHARACTER SET utf8mb4 COLLATE utf8mb4_bin NULL,
    marketplace     VARCHAR(16)   NULL,
    asin            VARCHAR(32)   NULL,
    title           TEXT          NULL,
    price           DECIMAL(12,2) NULL,
    currency        VARCHAR(8)    NULL,
    rating          DECIMAL(5,2)  NULL,
    review_count    INT           NULL,
    page            SMALLINT      NULL,
    position        SMALLINT      NULL,
    create_time     DATETIME      NOT NULL,
    failed_rule     VARCHAR(191)  NOT NULL,
    quarantined_at  DATETIME      NOT NULL DEFAULT CURRENT_TIMESTAMP,
    dag_run_id      VARCHAR(250)  NULL,
    PRIMARY KEY (id),
    KEY idx_quarantine_time (quarantined_at),
    KEY idx_quarantine_element (task_id, page, keyword(100))
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_unicode_ci;

-- Every finding of either DAG, whatever its level; delivery columns track DingTalk sends.
-- One row per (fingerprint = source + check + subject, window): re-running a window
-- updates its findings instead of adding copies.
CREATE TABLE IF NOT EXISTS amazon_alert (
    id                 BIGINT UNSIGNED NOT NULL AUTO_INCREMENT,
    level              VARCHAR(16)   NOT NULL,
    source             VARCHAR(128)  NOT NULL,
    check_name         VARCHAR(128)  NOT NULL,
    subject            VARCHAR(255)  NOT NULL DEFAULT '',
    title              VARCHAR(255)  NOT NULL,
    details            TEXT          NULL,
    action_taken       TEXT          NULL,
    fingerprint        CHAR(40)      CHARACTER SET ascii NOT NULL,
    window_start       DATETIME      NOT NULL,
    window_end         DATETIME      NOT NULL,
    dag_run_id         VARCHAR(250)  NULL,
    created_at         DATETIME      NOT NULL DEFAULT CURRENT_TIMESTAMP,
    delivery_status    VARCHAR(16)   NOT NULL DEFAULT 'stored',
    delivery_attempts  INT UNSIGNED  NOT NULL DEFAULT 0,
    next_attempt_at    DATETIME      NULL,
    delivered_at       DATETIME      NULL,
    delivery_error     TEXT          NULL,
    suppressed_count   INT UNSIGNED  NOT NULL DEFAULT 0,
    -- set when a later run of the same window no longer makes this finding
    resolved_at        DATETIME      NULL,
    PRIMARY KEY (id),
    UNIQUE KEY uq_alert_window (fingerprint, window_start),
    KEY idx_alert_fingerprint (fingerprint, created_at),
    KEY idx_alert_created (created_at, level),
    KEY idx_alert_check_window (check_name, window_start, window_end),
    KEY idx_alert_delivery (delivery_status, next_attempt_at)
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_unicode_ci;

-- One row per message sent (or tried) to an alert channel: the per-minute rate limit counts these.
CREATE TABLE IF NOT EXISTS amazon_alert_delivery (
    id           BIGINT UNSIGNED NOT NULL AUTO_INCREMENT,
    channel      VARCHAR(32)   NOT NULL,
    sent_at      DATETIME(3)   NOT NULL,
    alert_count  INT UNSIGNED  NOT NULL,
    success      TINYINT(1)    NOT NULL,
    error        TEXT          NULL,
    dag_run_id   VARCHAR(250)  NULL,
    PRIMARY KEY (id),
    KEY idx_delivery_time (channel, sent_at)
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_unicode_ci;

-- One row per (suite, table, window): re-validating a window overwrites its row.
CREATE TABLE IF NOT EXISTS amazon_validation_run (
    id              BIGINT UNSIGNED NOT NULL AUTO_INCREMENT,
    suite_name      VARCHAR(128)  NOT NULL,
    table_name      VARCHAR(128)  NOT NULL,
    window_start    DATETIME      NOT NULL,
    window_end      DATETIME      NOT NULL,
    success         TINYINT(1)    NOT NULL,
    evaluated       INT UNSIGNED  NOT NULL,
    failed          INT UNSIGNED  NOT NULL,
    row_count       BIGINT UNSIGNED NULL,
    results         LONGTEXT      NULL,
    dag_run_id      VARCHAR(250)  NULL,
    validated_at    DATETIME      NOT NULL DEFAULT CURRENT_TIMESTAMP,
    -- history a re-run cannot erase: the first verdict, and passed / failed / repaired
    first_success   TINYINT(1)    NULL,
    verdict         VARCHAR(16)   NULL,
    -- share of the window's rows passing every validity and required-field rule
    quality_score   DOUBLE        NULL,
    PRIMARY KEY (id),
    UNIQUE KEY uq_validation_window (suite_name, table_name, window_start, window_end),
    KEY idx_validation_time (window_start)
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_unicode_ci;

-- The outcome of each supervision check per window, so the tables tell the same story as
-- the task view: re-running a window overwrites its rows.
CREATE TABLE IF NOT EXISTS amazon_check_run (
    check_name      VARCHAR(64)   NOT NULL,
    window_start    DATETIME      NOT NULL,
    window_end      DATETIME      NOT NULL,
    status          VARCHAR(16)   NOT NULL,
    findings        INT UNSIGNED  NOT NULL DEFAULT 0,
    details         LONGTEXT      NULL,
    dag_run_id      VARCHAR(250)  NULL,
    checked_at      DATETIME      NOT NULL DEFAULT CURRENT_TIMESTAMP ON UPDATE CURRENT_TIMESTAMP,
    PRIMARY KEY (check_name, window_start, window_end),
    KEY idx_check_time (window_end)
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_unicode_ci;

-- One report per day: re-running a day overwrites it.
CREATE TABLE IF NOT EXISTS amazon_daily_report (
    report_date   DATE          NOT NULL,
    markdown      MEDIUMTEXT    NOT NULL,
    html          LONGTEXT      NOT NULL,
    summary       TEXT          NULL,
    dag_run_id    VARCHAR(250)  NULL,
    created_at    DATETIME      NOT NULL DEFAULT CURRENT_TIMESTAMP,
    -- DingTalk delivery: sent_at once it went out; a report not sent is retried by later runs
    sent_at       DATETIME      NULL,
    send_error    TEXT          NULL,
    PRIMARY KEY (report_date)
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_unicode_ci;

-- The hourly volume rollup: one row per (table, hour), written by the volume-anomaly check
-- when the hour closes (re-running the hour rewrites it). It keeps the count the check saw
-- and the band it judged it against, so the Crawl Ops page draws volume against its band
-- without counting millions of result rows per request.
CREATE TABLE IF NOT EXISTS amazon_volume_hourly (
    table_name      VARCHAR(128)  NOT NULL,
    hour            DATETIME      NOT NULL,
    row_count       BIGINT UNSIGNED NOT NULL,
    history_points  INT UNSIGNED  NOT NULL,
    mean            DOUBLE        NULL,
    std             DOUBLE        NULL,
    band_low        DOUBLE        NULL,
    band_high       DOUBLE        NULL,
    anomalous       TINYINT(1)    NULL,
    direction       VARCHAR(8)    NULL,
    dag_run_id      VARCHAR(250)  NULL,
    checked_at      DATETIME      NOT NULL DEFAULT CURRENT_TIMESTAMP ON UPDATE CURRENT_TIMESTAMP,
    PRIMARY KEY (table_name, hour)
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_unicode_ci;
