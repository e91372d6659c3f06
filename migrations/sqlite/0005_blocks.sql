-- Blocks set by an emergency rollback or roll forward (POST /api/v1/releases/*): new
-- analyses of the scope wait in PENDING until the block is lifted. A lifted block is
-- kept, with who lifted it and why.
CREATE TABLE blocks (
    id             TEXT PRIMARY KEY,
    team           TEXT NOT NULL,
    strategy       TEXT NOT NULL,
    service        TEXT NOT NULL,
    environment    TEXT NOT NULL,
    cause          TEXT NOT NULL,
    image_tag      TEXT NOT NULL,
    reason         TEXT NOT NULL,
    actor          TEXT NOT NULL,
    created_at     TEXT NOT NULL,
    lifted_by      TEXT,
    lifted_reason  TEXT,
    lifted_at      TEXT
);
CREATE INDEX blocks_by_scope ON blocks (strategy, service, environment);
