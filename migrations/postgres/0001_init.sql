-- canaryd's state on Postgres: the SQLite schema (migrations/sqlite) in one step, with
-- Postgres types. Timestamps are RFC 3339 text, fixed width, so they sort as time does.
CREATE TABLE analyses (
    id           TEXT PRIMARY KEY,
    team         TEXT NOT NULL,
    strategy     TEXT NOT NULL,
    service      TEXT NOT NULL,
    environment  TEXT NOT NULL,
    status       TEXT NOT NULL,
    created_at   TEXT NOT NULL,
    updated_at   TEXT NOT NULL,
    document     TEXT NOT NULL,
    replica      TEXT,
    lease_token  BIGINT NOT NULL DEFAULT 0,
    active       BIGINT NOT NULL DEFAULT 1
);
CREATE INDEX analyses_by_status ON analyses (status);
CREATE INDEX analyses_by_environment ON analyses (environment, created_at);
CREATE INDEX analyses_by_team ON analyses (team, created_at);
CREATE INDEX analyses_active_by_replica ON analyses (replica) WHERE active = 1;

CREATE TABLE events (
    seq          BIGSERIAL PRIMARY KEY,
    analysis_id  TEXT NOT NULL REFERENCES analyses (id),
    at           TEXT NOT NULL,
    kind         TEXT NOT NULL,
    actor        TEXT NOT NULL,
    message      TEXT NOT NULL
);
CREATE INDEX events_by_analysis ON events (analysis_id, seq);

CREATE TABLE checks (
    seq           BIGSERIAL PRIMARY KEY,
    analysis_id   TEXT NOT NULL REFERENCES analyses (id),
    check_number  BIGINT NOT NULL,
    step          BIGINT NOT NULL,
    metric        TEXT NOT NULL,
    at            TEXT NOT NULL,
    outcome       TEXT NOT NULL,
    value         DOUBLE PRECISION,
    queries       TEXT NOT NULL,
    document      TEXT NOT NULL
);
CREATE INDEX checks_by_analysis ON checks (analysis_id, seq);

CREATE TABLE freezes (
    id           TEXT PRIMARY KEY,
    environment  TEXT NOT NULL,
    reason       TEXT NOT NULL,
    actor        TEXT NOT NULL,
    created_at   TEXT NOT NULL
);

CREATE TABLE idempotency_keys (
    team            TEXT NOT NULL,
    key             TEXT NOT NULL,
    analysis_id     TEXT NOT NULL REFERENCES analyses (id),
    request_digest  TEXT NOT NULL,
    created_at      TEXT NOT NULL,
    PRIMARY KEY (team, key)
);

CREATE TABLE routes (
    route_key  TEXT PRIMARY KEY,
    owner      TEXT REFERENCES analyses (id),
    successor  TEXT REFERENCES analyses (id),
    epoch      BIGINT NOT NULL DEFAULT 0
);

CREATE TABLE replicas (
    id           TEXT PRIMARY KEY,
    description  TEXT NOT NULL,
    started_ms   BIGINT NOT NULL,
    expires_ms   BIGINT NOT NULL
);

CREATE TABLE inbox (
    seq          BIGSERIAL PRIMARY KEY,
    analysis_id  TEXT NOT NULL REFERENCES analyses (id),
    message      TEXT NOT NULL,
    created_ms   BIGINT NOT NULL
);
CREATE INDEX inbox_by_analysis ON inbox (analysis_id);

CREATE TABLE replies (
    id          TEXT PRIMARY KEY,
    reply       TEXT NOT NULL,
    created_ms  BIGINT NOT NULL
);
