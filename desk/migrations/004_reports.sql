-- Hourly aggregates of every event type the box saw (issue 15), replaced when resent.
CREATE TABLE hourly (
    box_id TEXT NOT NULL REFERENCES box(id),
    hour BIGINT NOT NULL,
    event_type TEXT NOT NULL,
    action TEXT NOT NULL,
    count BIGINT NOT NULL,
    PRIMARY KEY (box_id, hour, event_type, action)
);
-- Monthly reports (issue 17's delivery): each box renders its month's report and uploads
-- it; the desk keeps the files (13 months per box) and mails them to the contacts once.
CREATE TABLE report (
    box_id TEXT NOT NULL REFERENCES box(id),
    month TEXT NOT NULL,
    lang TEXT NOT NULL,
    format TEXT NOT NULL,
    file TEXT NOT NULL,
    size BIGINT NOT NULL,
    received BIGINT NOT NULL,
    PRIMARY KEY (box_id, month, lang, format)
);
CREATE TABLE report_mailed (
    box_id TEXT NOT NULL REFERENCES box(id),
    month TEXT NOT NULL,
    lang TEXT NOT NULL,
    mailed BIGINT NOT NULL,
    PRIMARY KEY (box_id, month, lang)
);
ALTER TABLE notification ADD COLUMN attachment TEXT
