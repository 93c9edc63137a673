-- Pattern bundles the desk serves to its boxes (issue 14's update path): the file is kept in
-- the patterns folder as received; boxes verify its signature themselves.
CREATE TABLE pattern (
    kind TEXT NOT NULL,
    version BIGINT NOT NULL,
    sha256 TEXT NOT NULL,
    size BIGINT NOT NULL,
    file TEXT NOT NULL,
    published_by TEXT NOT NULL,
    created BIGINT NOT NULL,
    PRIMARY KEY (kind, version)
);
