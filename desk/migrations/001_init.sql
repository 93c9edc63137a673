-- The desk's first schema. Written once for both stores: ID_PK becomes the dialect's
-- auto-numbered key, every other integer is BIGINT (SQLite reads it as INTEGER).
CREATE TABLE customer (
    id TEXT PRIMARY KEY,
    name TEXT NOT NULL,
    created BIGINT NOT NULL
);
CREATE TABLE site (
    id TEXT PRIMARY KEY,
    customer_id TEXT NOT NULL REFERENCES customer(id),
    name TEXT NOT NULL,
    area TEXT NOT NULL,
    island BIGINT NOT NULL,
    vpn BIGINT NOT NULL
);
CREATE TABLE contact (
    id ID_PK,
    customer_id TEXT NOT NULL REFERENCES customer(id),
    name TEXT NOT NULL,
    email TEXT NOT NULL,
    lang TEXT NOT NULL
);
CREATE TABLE box (
    id TEXT PRIMARY KEY,
    customer_id TEXT NOT NULL REFERENCES customer(id),
    site_id TEXT NOT NULL REFERENCES site(id),
    name TEXT NOT NULL,
    plan TEXT NOT NULL,
    kind TEXT NOT NULL,
    repair_24h BIGINT NOT NULL,
    licence_end TEXT,
    created BIGINT NOT NULL,
    cert_serial TEXT,
    enrolled BIGINT,
    revoked BIGINT,
    last_seen BIGINT,
    heartbeat TEXT,
    stream TEXT,
    acked_seq BIGINT NOT NULL,
    gaps BIGINT NOT NULL,
    status TEXT NOT NULL
);
CREATE TABLE enrol_code (
    code_hash TEXT PRIMARY KEY,
    box_id TEXT NOT NULL REFERENCES box(id),
    expires BIGINT NOT NULL,
    used BIGINT
);
CREATE TABLE event (
    id ID_PK,
    box_id TEXT NOT NULL REFERENCES box(id),
    seq BIGINT NOT NULL,
    ts BIGINT NOT NULL,
    received BIGINT NOT NULL,
    event_type TEXT NOT NULL,
    host TEXT,
    raw TEXT NOT NULL
);
CREATE INDEX event_box_ts ON event(box_id, ts);
CREATE INDEX event_box_seq ON event(box_id, seq);
CREATE TABLE rejected_event (
    id ID_PK,
    box_id TEXT NOT NULL REFERENCES box(id),
    seq BIGINT NOT NULL,
    received BIGINT NOT NULL,
    reason TEXT NOT NULL,
    raw TEXT NOT NULL
);
CREATE TABLE incident (
    id ID_PK,
    box_id TEXT NOT NULL REFERENCES box(id),
    host_key TEXT NOT NULL,
    threat TEXT NOT NULL,
    rule TEXT NOT NULL,
    severity TEXT NOT NULL,
    state TEXT NOT NULL,
    first_seen BIGINT NOT NULL,
    last_seen BIGINT NOT NULL,
    count BIGINT NOT NULL,
    summary TEXT NOT NULL,
    host TEXT NOT NULL
);
CREATE INDEX incident_open ON incident(box_id, host_key, threat, state);
CREATE TABLE detection (
    id ID_PK,
    incident_id BIGINT NOT NULL REFERENCES incident(id),
    box_id TEXT NOT NULL,
    threat TEXT NOT NULL,
    ts BIGINT NOT NULL
);
CREATE INDEX detection_box_threat_ts ON detection(box_id, threat, ts);
CREATE TABLE incident_audit (
    id ID_PK,
    incident_id BIGINT NOT NULL REFERENCES incident(id),
    at BIGINT NOT NULL,
    actor TEXT NOT NULL,
    from_state TEXT NOT NULL,
    to_state TEXT NOT NULL,
    note TEXT NOT NULL
);
CREATE TABLE notification (
    id ID_PK,
    box_id TEXT NOT NULL REFERENCES box(id),
    incident_id BIGINT,
    kind TEXT NOT NULL,
    to_addr TEXT NOT NULL,
    subject TEXT NOT NULL,
    body TEXT NOT NULL,
    created BIGINT NOT NULL,
    sent BIGINT,
    attempts BIGINT NOT NULL,
    next_try BIGINT NOT NULL,
    error TEXT
);
CREATE INDEX notification_due ON notification(sent, next_try);
CREATE TABLE phone_call (
    id ID_PK,
    box_id TEXT NOT NULL REFERENCES box(id),
    incident_id BIGINT,
    reason TEXT NOT NULL,
    created BIGINT NOT NULL,
    done BIGINT,
    operator TEXT,
    note TEXT
);
CREATE TABLE ticket (
    id ID_PK,
    customer_id TEXT NOT NULL REFERENCES customer(id),
    box_id TEXT REFERENCES box(id),
    kind TEXT NOT NULL,
    state TEXT NOT NULL,
    subject TEXT NOT NULL,
    opened BIGINT NOT NULL,
    opened_by TEXT NOT NULL,
    dispatch_at BIGINT,
    closed BIGINT
);
CREATE TABLE ticket_message (
    id ID_PK,
    ticket_id BIGINT NOT NULL REFERENCES ticket(id),
    at BIGINT NOT NULL,
    author TEXT NOT NULL,
    body TEXT NOT NULL
);
CREATE TABLE visit (
    id ID_PK,
    box_id TEXT NOT NULL REFERENCES box(id),
    start_at BIGINT NOT NULL,
    pcs BIGINT NOT NULL,
    free BIGINT NOT NULL,
    charges TEXT NOT NULL,
    booked_by TEXT NOT NULL,
    created BIGINT NOT NULL
);
CREATE TABLE token (
    hash TEXT PRIMARY KEY,
    name TEXT NOT NULL,
    role TEXT NOT NULL,
    customer_id TEXT REFERENCES customer(id),
    created BIGINT NOT NULL
);
CREATE TABLE audit (
    id ID_PK,
    at BIGINT NOT NULL,
    actor TEXT NOT NULL,
    action TEXT NOT NULL,
    target TEXT NOT NULL,
    detail TEXT NOT NULL
);
