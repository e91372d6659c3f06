-- Deployments reported by pipelines (POST /api/v1/deployments), beside the analyses in
-- the history. Timestamps are RFC 3339 text, fixed width, so they sort as time does.
CREATE TABLE recorded_deployments (
    id            TEXT PRIMARY KEY,
    team          TEXT NOT NULL,
    service       TEXT NOT NULL,
    environment   TEXT NOT NULL,
    image_tag     TEXT NOT NULL,
    git_commit    TEXT,
    git_branch    TEXT,
    status        TEXT NOT NULL,
    deployed_at   TEXT NOT NULL,
    completed_at  TEXT,
    actor         TEXT NOT NULL,
    recorded_at   TEXT NOT NULL
);
CREATE INDEX recorded_by_environment ON recorded_deployments (environment, deployed_at);
CREATE INDEX recorded_by_team ON recorded_deployments (team, deployed_at);
CREATE INDEX recorded_by_service ON recorded_deployments (service, status, environment);
CREATE INDEX analyses_by_service ON analyses (service, status, environment);
