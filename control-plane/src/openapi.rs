//! The OpenAPI 3.1 document served at `/openapi.json`, written out by hand from the
//! routes in `api.rs` (a test checks that every route is in it).

use serde_json::{Value, json};

fn op(summary: &str, role: &str, body: Option<&str>, ok: &str) -> Value {
    let mut o = json!({
        "summary": summary,
        "description": format!("Role: {role}."),
        "security": [{"bearer": []}],
        "responses": {
            "200": {"description": ok},
            "400": {"description": "Validation failed", "content": {"application/json": {"schema": {"$ref": "#/components/schemas/Error"}}}},
            "401": {"description": "Missing or unknown token"},
            "403": {"description": "The token's role may not do this"}
        }
    });
    if let Some(schema) = body {
        o["requestBody"] = json!({"required": true, "content": {"application/json": {"schema": {"$ref": format!("#/components/schemas/{schema}")}}}});
    }
    o
}

fn put_section(name: &str, schema: &str) -> Value {
    let mut o = op(
        &format!("Replace the {name} section; pushed to the gateway before it is stored"),
        "customer-admin or desk-operator",
        Some(schema),
        "Stored and running on the gateway",
    );
    o["responses"]["202"] = json!({"description": "Stored; the gateway was unreachable and gets it when it asks at start"});
    o["responses"]["422"] = json!({"description": "The gateway refused it (reason given); nothing stored, the running policy stays"});
    o
}

pub fn document() -> Value {
    let q = |name: &str, t: &str, d: &str| json!({"name": name, "in": "query", "required": false, "schema": {"type": t}, "description": d});
    let event_params = json!([
        q("from", "integer", "Unix seconds, inclusive"),
        q("to", "integer", "Unix seconds, exclusive"),
        q("host", "string", "source or destination address"),
        q("type", "string", "event_type: alert, web, host, flow"),
        q("category", "string", "web or alert category"),
        q("sid", "integer", "signature ID"),
        q(
            "action",
            "string",
            "allowed, blocked, sinkholed, monitored, quarantined…"
        ),
        q(
            "limit",
            "integer",
            "at most this many (1-10000, default 100)"
        )
    ]);
    let mut paths = serde_json::Map::new();
    paths.insert("/openapi.json".into(), json!({"get": {"summary": "This document", "responses": {"200": {"description": "OpenAPI 3.1"}}}}));
    paths.insert("/metrics".into(), json!({"get": op("Prometheus text format: control plane and gateway counters", "any", None, "Metrics")}));
    paths.insert("/api/v1/status".into(), json!({"get": op("Box status: gateway reachable, policy versions, event intake", "any", None, "Status")}));
    paths.insert("/api/v1/policy".into(), json!({"get": op("The stored policy: version, every section, and the TOML snapshot sent to the gateway", "any", None, "Policy")}));
    let sections = [
        ("firewall", "Firewall"),
        ("categories", "Categories"),
        ("exceptions", "Exceptions"),
        ("host-groups", "HostGroups"),
        ("ips", "Ips"),
        ("quarantine", "QuarantineSettings"),
        ("contacts", "Contacts"),
        ("lan-subnets", "LanSubnets"),
        ("web-options", "WebOptions"),
    ];
    for (name, schema) in sections {
        paths.insert(
            format!("/api/v1/policy/{name}"),
            json!({
                "get": op(&format!("The {name} section"), "any", None, "The section"),
                "put": put_section(name, schema),
            }),
        );
    }
    paths.insert("/api/v1/quarantine".into(), json!({"get": op("Quarantined LAN hosts (MAC, addresses, DHCP host name, callbacks), from the gateway", "any", None, "Hosts")}));
    let mut rel = op(
        "Release a quarantined host",
        "customer-admin or desk-operator",
        None,
        "Released",
    );
    rel["parameters"] =
        json!([{"name": "mac", "in": "path", "required": true, "schema": {"type": "string"}}]);
    rel["responses"]["409"] = json!({"description": "The host is not quarantined"});
    rel["responses"]["503"] = json!({"description": "The gateway is unreachable"});
    paths.insert(
        "/api/v1/quarantine/{mac}/release".into(),
        json!({"post": rel}),
    );
    let mut ev = op("Stored events, newest first", "any", None, "Events");
    ev["parameters"] = event_params.clone();
    paths.insert("/api/v1/events".into(), json!({"get": ev}));
    let mut hourly = op(
        "Event counts per hour, type and action",
        "any",
        None,
        "Aggregates",
    );
    hourly["parameters"] = event_params;
    paths.insert("/api/v1/events/hourly".into(), json!({"get": hourly}));
    let mut audit = op(
        "The audit log: who changed what, when, before and after",
        "any",
        None,
        "Audit entries",
    );
    audit["parameters"] = json!([q("limit", "integer", "at most this many")]);
    paths.insert("/api/v1/audit".into(), json!({"get": audit}));
    let mut report = op(
        "The month's report as printable HTML (Japan time; kept once the month is over)",
        "any",
        None,
        "text/html",
    );
    report["parameters"] = json!([
        q(
            "month",
            "string",
            "YYYY-MM (default: the month before this one); not one that has not begun"
        ),
        q("lang", "string", "ja (default) or en")
    ]);
    paths.insert("/api/v1/report".into(), json!({"get": report}));
    paths.insert("/api/v1/reports".into(), json!({"get": op("The kept reports: month, language, when made, complete", "any", None, "Kept reports")}));
    paths.insert("/api/v1/tokens".into(), json!({
        "get": op("API tokens (names and roles; secrets are never shown again)", "customer-admin", None, "Tokens"),
        "post": op("Create a token; the answer holds its secret, once", "customer-admin", Some("NewToken"), "Created"),
    }));
    let mut import = op(
        "Import a signed pattern bundle (the file's bytes as the body): verified against the desk keys, refused when not newer unless force_rollback, stored with the last-known-good kept",
        "customer-admin or desk-operator",
        None,
        "Installed (kind, version, previous, signer, file, gateway)",
    );
    import["requestBody"] = json!({"required": true, "content": {"application/octet-stream": {"schema": {"type": "string", "format": "binary"}}}});
    import["parameters"] = json!([
        q("name", "string", "The bundle's file name, for messages"),
        q(
            "force_rollback",
            "boolean",
            "Accept a version not newer than the installed one"
        )
    ]);
    import["responses"]["422"] =
        json!({"description": "The bundle is refused (bundle, reason); nothing stored"});
    import["responses"]["503"] =
        json!({"description": "Pattern bundles are not enabled (serve --trust-key)"});
    paths.insert("/api/v1/patterns".into(), json!({
        "get": op("Per kind: active version, publication time, age, last successful check, last-known-good, patterns_stale and why", "any", None, "Pattern status"),
        "post": import,
    }));
    let mut rollback = op(
        "Make the last-known-good bundle of a kind current again",
        "customer-admin or desk-operator",
        None,
        "Rolled back",
    );
    rollback["parameters"] = json!([{"name": "kind", "in": "path", "required": true, "schema": {"type": "string", "enum": ["rules", "categories", "apps", "malware", "spam"]}}]);
    rollback["responses"]["409"] = json!({"description": "No last-known-good bundle of that kind"});
    paths.insert(
        "/api/v1/patterns/{kind}/rollback".into(),
        json!({"post": rollback}),
    );
    let strings = json!({"type": "array", "items": {"type": "string"}});
    let action = json!({"type": "string", "enum": ["allow", "monitor", "block"]});
    json!({
        "openapi": "3.1.0",
        "info": {"title": "mimamori control plane", "version": env!("CARGO_PKG_VERSION"),
                 "description": "Policy, quarantine, events and status of one mimamori box. Changes are validated by the gateway's policy compiler and applied to the running gateway before they are stored."},
        "paths": paths,
        "components": {
            "securitySchemes": {"bearer": {"type": "http", "scheme": "bearer"}},
            "schemas": {
                "Error": {"type": "object", "properties": {"error": {"type": "string"}, "field": {"type": "string"}, "reason": {"type": "string"}}},
                "FirewallRule": {"type": "object", "additionalProperties": false, "required": ["name", "action"], "properties": {
                    "name": {"type": "string"}, "from": {"type": "string", "enum": ["lan", "wan"]},
                    "src": strings, "dst": strings, "proto": {"type": "string"},
                    "src_ports": {"type": "array", "items": {"type": ["integer", "string"]}},
                    "dst_ports": {"type": "array", "items": {"type": ["integer", "string"]}},
                    "icmp_type": {"type": "integer"}, "action": {"type": "string", "enum": ["allow", "deny", "reject"]}, "log": {"type": "boolean"}}},
                "Firewall": {"type": "object", "additionalProperties": false, "properties": {
                    "default_lan_to_wan": {"type": "string", "enum": ["allow", "deny", "reject"]},
                    "default_wan_to_lan": {"type": "string", "enum": ["allow", "deny", "reject"]},
                    "rules": {"type": "array", "items": {"$ref": "#/components/schemas/FirewallRule"}}}},
                "Categories": {"type": "object", "additionalProperties": action},
                "Exceptions": {"type": "array", "items": {"type": "object", "additionalProperties": false, "required": ["entry", "action"], "properties": {"entry": {"type": "string"}, "action": {"type": "string", "enum": ["allow", "block"]}}}},
                "HostGroups": {"type": "array", "items": {"type": "object", "additionalProperties": false, "required": ["name"], "properties": {"name": {"type": "string"}, "subnets": strings, "macs": strings, "categories": {"type": "object", "additionalProperties": action}}}},
                "Ips": {"type": "object", "additionalProperties": false, "properties": {"mode": {"type": "string", "enum": ["ids", "ips"]}, "disabled_sids": {"type": "array", "items": {"type": "integer"}}, "disabled_classtypes": strings, "thresholds": {"type": "array", "items": {"type": "object", "properties": {"sid": {"type": "integer"}, "count": {"type": "integer"}, "seconds": {"type": "integer"}}}}}},
                "QuarantineSettings": {"type": "object", "additionalProperties": false, "properties": {"callbacks": {"type": "integer"}, "window_secs": {"type": "integer"}, "allow": strings}},
                "Contacts": {"type": "array", "items": {"type": "object", "additionalProperties": false, "required": ["name"], "properties": {"name": {"type": "string"}, "email": {"type": "string"}, "phone": {"type": "string"}, "notify": {"type": "string", "enum": ["threats", "reports", "all"]}}}},
                "LanSubnets": strings,
                "WebOptions": {"type": "object", "additionalProperties": false, "properties": {"ech": action, "unreadable": action}},
                "NewToken": {"type": "object", "additionalProperties": false, "required": ["name", "role"], "properties": {"name": {"type": "string"}, "role": {"type": "string", "enum": ["customer-admin", "desk-operator", "read-only"]}}}
            }
        }
    })
}
