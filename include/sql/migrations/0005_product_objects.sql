-- Two more crawl objects (crawlops.objects): product detail pages and product reviews, each
-- with its results table (written by the crawlers, one row per product page / per review)
-- and a quarantine of the same columns plus the failed rule. The indexes mirror
-- amazon_search_result's, under the same names, so the same code serves every object:
-- create_hour (hourly validation and volume), the element (settling: has it an answer?),
-- marketplace + time (freshness). asin is compared byte for byte (utf8mb4_bin).
CREATE TABLE IF NOT EXISTS amazon_product_detail (
    id                BIGINT UNSIGNED NOT NULL AUTO_INCREMENT,
    task_id           VARCHAR(191)  CHARACTER SET ascii COLLATE ascii_bin NOT NULL,
    asin              VARCHAR(32)   CHARACTER SET utf8mb4 COLLATE utf8mb4_bin NOT NULL,
    marketplace       VARCHAR(16)   NOT NULL,
    title             TEXT          NULL,
    brand             VARCHAR(255)  NULL,
    price             DECIMAL(12,2) NULL,
    currency          VARCHAR(8)    NULL,
    list_price        DECIMAL(12,2) NULL,
    rating            DECIMAL(5,2)  NULL,
    review_count      INT           NULL,
    availability      VARCHAR(32)   NULL,
    seller            VARCHAR(255)  NULL,
    best_seller_rank  INT           NULL,
    category          VARCHAR(255)  NULL,
    create_time       DATETIME      NOT NULL DEFAULT CURRENT_TIMESTAMP,
    create_hour       DATETIME      GENERATED ALWAYS AS (CAST(DATE(create_time) AS DATETIME) + INTERVAL HOUR(create_time) HOUR) STORED,
    PRIMARY KEY (id),
    KEY idx_result_create_time (create_time),
    KEY idx_result_create_hour (create_hour),
    KEY idx_result_element (task_id, asin),
    KEY idx_result_market_time (marketplace, create_time)
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_unicode_ci;

CREATE TABLE IF NOT EXISTS amazon_product_detail_quarantine (
    id                BIGINT UNSIGNED NOT NULL,
    task_id           VARCHAR(191)  CHARACTER SET ascii COLLATE ascii_bin NULL,
    asin              VARCHAR(32)   CHARACTER SET utf8mb4 COLLATE utf8mb4_bin NULL,
    marketplace       VARCHAR(16)   NULL,
    title             TEXT          NULL,
    brand             VARCHAR(255)  NULL,
    price             DECIMAL(12,2) NULL,
    currency          VARCHAR(8)    NULL,
    list_price        DECIMAL(12,2) NULL,
    rating            DECIMAL(5,2)  NULL,
    review_count      INT           NULL,
    availability      VARCHAR(32)   NULL,
    seller            VARCHAR(255)  NULL,
    best_seller_rank  INT           NULL,
    category          VARCHAR(255)  NULL,
    create_time       DATETIME      NOT NULL,
    failed_rule       VARCHAR(191)  NOT NULL,
    quarantined_at    DATETIME      NOT NULL DEFAULT CURRENT_TIMESTAMP,
    dag_run_id        VARCHAR(250)  NULL,
    PRIMARY KEY (id),
    KEY idx_quarantine_time (quarantined_at),
    KEY idx_quarantine_element (task_id, asin)
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_unicode_ci;

CREATE TABLE IF NOT EXISTS amazon_product_review (
    id                 BIGINT UNSIGNED NOT NULL AUTO_INCREMENT,
    task_id            VARCHAR(191)  CHARACTER SET ascii COLLATE ascii_bin NOT NULL,
    asin               VARCHAR(32)   CHARACTER SET utf8mb4 COLLATE utf8mb4_bin NOT NULL,
    marketplace        VARCHAR(16)   NOT NULL,
    page               SMALLINT      NOT NULL,
    position           SMALLINT      NOT NULL,
    review_id          VARCHAR(64)   CHARACTER SET ascii COLLATE ascii_bin NULL,
    rating             TINYINT       NULL,
    title              TEXT          NULL,
    body               MEDIUMTEXT    NULL,
    author             VARCHAR(255)  NULL,
    review_date        DATE          NULL,
    verified_purchase  TINYINT(1)    NULL,
    helpful_votes      INT           NULL,
    create_time        DATETIME      NOT NULL DEFAULT CURRENT_TIMESTAMP,
    create_hour        DATETIME      GENERATED ALWAYS AS (CAST(DATE(create_time) AS DATETIME) + INTERVAL HOUR(create_time) HOUR) STORED,
    PRIMARY KEY (id),
    KEY idx_result_create_time (create_time),
    KEY idx_result_create_hour (create_hour),
    KEY idx_result_element (task_id, page, asin),
    KEY idx_result_market_time (marketplace, create_time)
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_unicode_ci;

CREATE TABLE IF NOT EXISTS amazon_product_review_quarantine (
    id                 BIGINT UNSIGNED NOT NULL,
    task_id            VARCHAR(191)  CHARACTER SET ascii COLLATE ascii_bin NULL,
    asin               VARCHAR(32)   CHARACTER SET utf8mb4 COLLATE utf8mb4_bin NULL,
    marketplace        VARCHAR(16)   NULL,
    page               SMALLINT      NULL,
    position           SMALLINT      NULL,
    review_id          VARCHAR(64)   CHARACTER SET ascii COLLATE ascii_bin NULL,
    rating             TINYINT       NULL,
    title              TEXT          NULL,
    body               MEDIUMTEXT    NULL,
    author             VARCHAR(255)  NULL,
    review_date        DATE          NULL,
    verified_purchase  TINYINT(1)    NULL,
    helpful_votes      INT           NULL,
    create_time        DATETIME      NOT NULL,
    failed_rule        VARCHAR(191)  NOT NULL,
    quarantined_at     DATETIME      NOT NULL DEFAULT CURRENT_TIMESTAMP,
    dag_run_id         VARCHAR(250)  NULL,
    PRIMARY KEY (id),
    KEY idx_quarantine_time (quarantined_at),
    KEY idx_quarantine_element (task_id, page, asin)
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_unicode_ci;
