//! The OpenAPI description of both faces, built from one table so it cannot drift from
//! the routes without a test noticing (`tests/desk.rs` walks it).

use serde_json::{Value, json};

/// (method, path, who may call it, what it does)
pub const ROUTES: &[(&str, &str, &str, &str)] = &[
    (
        "post",
        "/v1/enrol",
        "box (no certificate yet)",
        "Trade a one-time code and a CSR for the box's client certificate",
    ),
    (
        "post",
        "/v1/events",
        "box (mTLS)",
        "Store a numbered batch of the box's events; answers the acknowledged number",
    ),
    (
        "post",
        "/v1/heartbeat",
        "box (mTLS)",
        "The box's minute heartbeat; answers what its contract says it runs",
    ),
    (
        "get",
        "/v1/whoami",
        "box (mTLS)",
        "The box this certificate speaks for",
    ),
    (
        "post",
        "/v1/reports/{month}/{lang}/{format}",
        "box (mTLS)",
        "Upload one rendering (html, pdf) of the box's monthly report",
    ),
    (
        "post",
        "/v1/reports/{month}/{lang}/done",
        "box (mTLS)",
        "Every rendering uploaded: the desk mails it to the contacts reading that language, once",
    ),
    (
        "get",
        "/v1/patterns",
        "box (mTLS)",
        "The newest pattern bundle of each kind",
    ),
    (
        "get",
        "/v1/patterns/{kind}/{version}",
        "box (mTLS)",
        "A published bundle's bytes (the box verifies its signature)",
    ),
    (
        "get",
        "/api/v1/customers",
        "any token",
        "Customers (a customer token sees itself)",
    ),
    ("post", "/api/v1/customers", "desk", "Add a customer"),
    (
        "post",
        "/api/v1/customers/{id}/contacts",
        "desk",
        "Add a contact who gets notifications",
    ),
    (
        "post",
        "/api/v1/sites",
        "desk",
        "Add a site (area east/west, island, VPN-connected)",
    ),
    (
        "get",
        "/api/v1/boxes",
        "any token",
        "Boxes with status: Connected / Last seen … / Fault",
    ),
    (
        "post",
        "/api/v1/boxes",
        "desk",
        "Add a box under a contract (plan, rental/purchase, 24 h repair)",
    ),
    ("get", "/api/v1/boxes/{id}", "any token", "One box"),
    (
        "post",
        "/api/v1/boxes/{id}/enrol-code",
        "desk",
        "A one-time enrolment code",
    ),
    (
        "post",
        "/api/v1/boxes/{id}/revoke",
        "desk admin",
        "Revoke the box's certificate",
    ),
    (
        "post",
        "/api/v1/boxes/{id}/plan",
        "desk",
        "Change the plan the box runs",
    ),
    (
        "get",
        "/api/v1/boxes/{id}/events",
        "any token",
        "The box's latest events",
    ),
    (
        "get",
        "/api/v1/boxes/{id}/contract",
        "any token",
        "The box's contract, its licence end and every charge answered",
    ),
    (
        "post",
        "/api/v1/boxes/{id}/contract",
        "desk",
        "Open a contract (rental/purchase, plan, 24 h option, start, installation work): answers the start's charges",
    ),
    (
        "post",
        "/api/v1/boxes/{id}/contract/changes",
        "desk",
        "A dated plan change, option change, cancellation or licence end: answers what it charges and why, or the clause refusing it",
    ),
    (
        "post",
        "/api/v1/boxes/{id}/contract/switch",
        "desk",
        "Rental ↔ purchase: cancels the contract and opens a new one",
    ),
    (
        "get",
        "/api/v1/customers/{id}/statement",
        "any token",
        "A customer's monthly statement (?month=YYYY-MM), each line with its clause",
    ),
    (
        "get",
        "/api/v1/boxes/{id}/reports",
        "any token",
        "Monthly reports kept (13 months)",
    ),
    (
        "get",
        "/api/v1/boxes/{id}/reports/{month}/{lang}/{format}",
        "any token",
        "A kept report (HTML or PDF)",
    ),
    (
        "get",
        "/api/v1/boxes/{id}/visits",
        "any token",
        "On-site visits booked",
    ),
    (
        "post",
        "/api/v1/boxes/{id}/visits",
        "desk",
        "Book an on-site OS-recovery visit (quota and hours checked)",
    ),
    (
        "get",
        "/api/v1/incidents",
        "any token",
        "Incidents (filters: state, box_id, open)",
    ),
    (
        "get",
        "/api/v1/incidents/{id}",
        "any token",
        "An incident with its audit trail and notifications",
    ),
    (
        "post",
        "/api/v1/incidents/{id}/actions",
        "desk",
        "Move an incident on (triage, notify-customer, start-remote-removal, escalate-on-site, close:…, reopen)",
    ),
    (
        "get",
        "/api/v1/calls",
        "desk",
        "Phone follow-ups (offered 9:00–21:00 JST)",
    ),
    ("post", "/api/v1/calls/{id}/done", "desk", "A call made"),
    (
        "get",
        "/api/v1/tickets",
        "any token",
        "Questions and fault tickets",
    ),
    (
        "post",
        "/api/v1/tickets",
        "customer or desk",
        "Open a question ticket",
    ),
    (
        "get",
        "/api/v1/tickets/{id}",
        "any token",
        "A ticket with its messages and the box's recent events",
    ),
    (
        "post",
        "/api/v1/tickets/{id}/messages",
        "customer or desk",
        "Answer in a ticket",
    ),
    (
        "post",
        "/api/v1/tickets/{id}/close",
        "customer or desk",
        "Close a ticket",
    ),
    (
        "get",
        "/api/v1/notifications",
        "any token",
        "Mail queued and sent",
    ),
    (
        "post",
        "/api/v1/tokens",
        "desk admin",
        "A new API token (desk-admin, desk-operator, customer)",
    ),
    (
        "get",
        "/api/v1/patterns",
        "any token",
        "Published pattern bundles, newest per kind",
    ),
    (
        "post",
        "/api/v1/patterns/{kind}",
        "desk admin",
        "Publish a signed bundle (?version=N, body: the .mmb file) for every box",
    ),
    ("get", "/api/v1/status", "any token", "Boxes by status"),
    ("get", "/api/v1/openapi.json", "anyone", "This document"),
    ("get", "/metrics", "anyone", "Prometheus metrics"),
];

pub fn document() -> Value {
    let mut paths = serde_json::Map::new();
    for (method, path, who, what) in ROUTES {
        let entry = paths.entry(path.to_string()).or_insert_with(|| json!({}));
        let params: Vec<Value> = path
            .split('/')
            .filter_map(|s| s.strip_prefix('{').and_then(|s| s.strip_suffix('}')))
            .map(|p| json!({"name": p, "in": "path", "required": true, "schema": {"type": "string"}}))
            .collect();
        entry[*method] = json!({
            "summary": what,
            "description": format!("Who: {who}."),
            "parameters": params,
            "responses": {
                "200": {"description": "Done"},
                "403": {"description": "Not allowed (token, role, certificate)"},
                "404": {"description": "No such thing (or not yours)"},
                "409": {"description": "Refused by the rules (state, quota, hours)"},
                "422": {"description": "The body is wrong: the error names the field"},
                "503": {"description": "The store is unavailable"},
                "507": {"description": "The store is full: nothing was stored"},
            },
        });
    }
    json!({
        "openapi": "3.0.3",
        "info": {"title": "mimamori Security Support Desk", "version": env!("CARGO_PKG_VERSION")},
        "components": {"securitySchemes": {"token": {"type": "http", "scheme": "bearer"}}},
        "security": [{"token": []}],
        "paths": paths,
    })
}
