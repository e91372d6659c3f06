-- Route ownership and replica leases (see migrations/postgres for the same schema).
-- `active` is 1 for a non-terminal analysis; `replica` and `lease_token` say who runs
-- it and fence its writes. Rows from before are active by status; their route rows are
-- made when they resume. The route key is derived from the document, never stored twice.
ALTER TABLE analyses ADD COLUMN replica TEXT;
ALTER TABLE analyses ADD COLUMN lease_token INTEGER NOT NULL DEFAULT 0;
ALTER TABLE analyses ADD COLUMN active INTEGER NOT NULL DEFAULT 1;
UPDATE analyses SET active = 0
 WHERE status IN ('DEPLOYED', 'ROLLED_BACK', 'FAILED', 'CANCELLED');
CREATE INDEX analyses_active_by_replica ON analyses (replica) WHERE active = 1;

-- One row per route: the analysis that owns it, the one waiting for it, and an epoch
-- that grows with every change of owner.
CREATE TABLE routes (
    route_key  TEXT PRIMARY KEY,
    owner      TEXT REFERENCES analyses (id),
    successor  TEXT REFERENCES analyses (id),
    epoch      INTEGER NOT NULL DEFAULT 0
);

CREATE TABLE replicas (
    id           TEXT PRIMARY KEY,
    description  TEXT NOT NULL,
    started_ms   INTEGER NOT NULL,
    expires_ms   INTEGER NOT NULL   -- by the database's clock
);

CREATE TABLE inbox (
    seq          INTEGER PRIMARY KEY AUTOINCREMENT,
    analysis_id  TEXT NOT NULL REFERENCES analyses (id),
    message      TEXT NOT NULL,
    created_ms   INTEGER NOT NULL
);
CREATE INDEX inbox_by_analysis ON inbox (analysis_id);

CREATE TABLE replies (
    id          TEXT PRIMARY KEY,
    reply       TEXT NOT NULL,
    created_ms  INTEGER NOT NULL
);
