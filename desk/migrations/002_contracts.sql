-- Contracts (issue 16): one active contract per box (a rental ↔ purchase switch leaves the
-- old one inactive), stored as the contracts crate's record; every charge the desk
-- answered, with the lines and the clauses they follow from.
CREATE TABLE contract (
    id ID_PK,
    box_id TEXT NOT NULL REFERENCES box(id),
    customer_id TEXT NOT NULL REFERENCES customer(id),
    record TEXT NOT NULL,
    active BIGINT NOT NULL,
    updated BIGINT NOT NULL
);
CREATE INDEX contract_box ON contract(box_id, active);
CREATE INDEX contract_customer ON contract(customer_id);
CREATE TABLE charge (
    id ID_PK,
    contract_id BIGINT NOT NULL REFERENCES contract(id),
    box_id TEXT NOT NULL,
    customer_id TEXT NOT NULL,
    date TEXT NOT NULL,
    event TEXT NOT NULL,
    lines TEXT NOT NULL,
    actor TEXT NOT NULL,
    created BIGINT NOT NULL
);
