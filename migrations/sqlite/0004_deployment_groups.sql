-- Deployment groups (POST /api/v1/groups): analyses started together, one per scope.
-- Each member stays an analysis of its own; the group only remembers which they are.
CREATE TABLE deployment_groups (
    id          TEXT PRIMARY KEY,
    name        TEXT,
    image_tag   TEXT NOT NULL,
    git_commit  TEXT,
    actor       TEXT NOT NULL,
    created_at  TEXT NOT NULL
);
CREATE TABLE group_members (
    group_id     TEXT NOT NULL REFERENCES deployment_groups (id),
    position     INTEGER NOT NULL,
    analysis_id  TEXT NOT NULL,
    team         TEXT NOT NULL,
    PRIMARY KEY (group_id, position)
);
CREATE INDEX group_members_by_analysis ON group_members (analysis_id);
