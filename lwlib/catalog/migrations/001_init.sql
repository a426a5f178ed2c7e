-- 001: the market catalog. A rebuildable, query-optimised index of what the MLflow registry holds.
-- One row per learnware (id = sha256 of the zip bytes), its check history, and its statistical specs.

CREATE TABLE learnwares (
    id               VARCHAR PRIMARY KEY CHECK (regexp_full_match(id, '[0-9a-f]{64}')),
    name             VARCHAR NOT NULL,
    version          INTEGER NOT NULL DEFAULT 1 CHECK (version >= 1),
    status           VARCHAR NOT NULL CHECK (status IN ('USABLE', 'NONUSABLE', 'INVALID')),
    reason           VARCHAR,
    data_type        VARCHAR,
    task_type        VARCHAR,
    library_type     VARCHAR,
    scenarios        VARCHAR[] NOT NULL DEFAULT [],
    license          VARCHAR,
    description      VARCHAR,
    input_dim        INTEGER,
    output_dim       INTEGER,
    spec_type        VARCHAR,
    spec_dim         INTEGER,
    spec_k           INTEGER,
    runtime_key      VARCHAR,
    registry_name    VARCHAR,
    registry_version VARCHAR,
    registry_uri     VARCHAR,
    zip_path         VARCHAR,
    semantic         JSON,
    created_at       TIMESTAMP NOT NULL,
    updated_at       TIMESTAMP NOT NULL
);

CREATE SEQUENCE checks_id_seq START 1;

CREATE TABLE checks (
    id           BIGINT PRIMARY KEY DEFAULT nextval('checks_id_seq'),
    learnware_id VARCHAR NOT NULL,
    kind         VARCHAR NOT NULL CHECK (kind IN ('submit', 'recheck')),
    status       VARCHAR NOT NULL CHECK (status IN ('USABLE', 'NONUSABLE', 'INVALID')),
    reason       VARCHAR,
    report       JSON,
    duration_s   DOUBLE CHECK (duration_s IS NULL OR duration_s >= 0),
    created_at   TIMESTAMP NOT NULL
);

-- z is the (k, d) reduced set flattened row-major, beta its k weights: search loads every spec in one query.
CREATE TABLE spec_payloads (
    learnware_id VARCHAR NOT NULL,
    spec_type    VARCHAR NOT NULL,
    payload      JSON NOT NULL,
    k            INTEGER CHECK (k IS NULL OR k >= 1),
    d            INTEGER CHECK (d IS NULL OR d >= 1),
    gamma        DOUBLE,
    num_points   BIGINT,
    z            DOUBLE[],
    beta         DOUBLE[],
    PRIMARY KEY (learnware_id, spec_type),
    CHECK (z IS NULL OR len(z) = k * d),
    CHECK (beta IS NULL OR len(beta) = k)
);

CREATE INDEX checks_learnware_idx ON checks (learnware_id);
