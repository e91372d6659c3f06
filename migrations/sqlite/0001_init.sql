-- canaryd's state. Each analysis row holds its full document (JSON) plus the columns
-- that are filtered on; events and checks are append-only.
CREATE TABLE analyses (
    id           TEXT PRIMARY KEY,
    team         TEXT NOT NULL,
    strategy     TEXT NOT NULL,
    service      TEXT NOT NULL,
    environment  TEXT NOT NULL,
    status       TEXT NOT NULL,
    created_at   TEXT NOT NULL,  -- RFC 3339, UTC, fixed width: sorts as time does
    updated_at   TEXT NOT NULL,
    document     TEXT NOT NULL
);
CREATE INDEX analyses_by_status ON analyses (status);
CREATE INDEX analyses_by_environment ON analyses (environment, created_at);
CREATE INDEX analyses_by_team ON analyses (team, created_at);

CREATE TABLE events (
    seq          INTEGER PRIMARY KEY AUTOINCREMENT,
    analysis_id  TEXT NOT NULL REFERENCES analyses (id),
    at           TEXT NOT NULL,
    kind         TEXT NOT NULL,
    actor        TEXT NOT NULL,
    message      TEXT NOT NULL
);
CREATE INDEX events_by_analysis ON events (analysis_id, seq);

CREATE TABLE checks (
    seq           INTEGER PRIMARY KEY AUTOINCREMENT,
    analysis_id   TEXT NOT NULL REFERENCES analyses (id),
    check_number  INTEGER NOT NULL,
    step          INTEGER NOT NULL,
    metric        TEXT NOT NULL,
    at            TEXT NOT NULL,
    outcome       TEXT NOT NULL,
    value         REAL,
    queries       TEXT NOT NULL,  -- the rendered queries, as sent
    document      TEXT NOT NULL   -- the full check record: threshold, reason, statistics
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
