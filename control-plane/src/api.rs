//! The REST API (axum): policy sections, quarantine, events, audit, tokens, status,
//! `/metrics` and `/openapi.json`. Every change is checked by the gateway's own policy
//! compiler, pushed to the gateway, and only then stored with its audit record.

use crate::db::{self, Role};
use crate::events::{self, IntakeCounters};
use crate::gwlink::{Current, GatewayLink, GwError};
use crate::model::{Invalid, PolicyDoc};
use axum::body::Bytes;
use axum::extract::rejection::QueryRejection;
use axum::extract::{FromRequestParts, Path, Query, State};
use axum::http::request::Parts;
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use rusqlite::Connection;
use serde::Deserialize;
use serde_json::{Value, json};
use std::sync::atomic::{AtomicU64, Ordering::Relaxed};
use std::sync::{Arc, Mutex};
use std::time::Instant;

pub struct App {
    pub db: Mutex<Connection>,
    pub gateway: GatewayLink,
    pub current: Current,
    pub intake: Arc<IntakeCounters>,
    /// One policy change at a time (read, push, store).
    pub changes: tokio::sync::Mutex<()>,
    pub counters: ApiCounters,
    /// The gateway's category database, when given: policies are compiled against it.
    pub categories: Option<Arc<mimamori_signatures::category::CategoryDb>>,
    /// The database file: reports aggregate on their own connection, not `db`'s.
    pub db_path: std::path::PathBuf,
    /// One report rendered at a time.
    pub reports: tokio::sync::Mutex<()>,
    /// Pattern bundles (issue 14), when `serve --trust-key` was given.
    pub patterns: Option<Arc<crate::patterns::Patterns>>,
    /// The desk uplink, when `serve --desk` was given.
    pub desk: Option<Arc<crate::desk::Link>>,
}

#[derive(Default)]
pub struct ApiCounters {
    pub requests: AtomicU64,
    pub denied: AtomicU64,
    pub invalid: AtomicU64,
    pub applied: AtomicU64,
    pub refused: AtomicU64,
    pub unreachable: AtomicU64,
    pub last_apply_us: AtomicU64,
}

/// An error answer: status and a JSON body with `error` (and `field`, `reason`).
#[derive(Debug)]
pub struct ApiError(StatusCode, Value);

impl ApiError {
    pub(crate) fn new(status: StatusCode, body: Value) -> ApiError {
        ApiError(status, body)
    }
    pub(crate) fn status(&self) -> StatusCode {
        self.0
    }
    /// The error in one line of plain text: what, and which field and why when known.
    pub(crate) fn message(&self) -> String {
        let s = |k: &str| self.1[k].as_str().map(str::to_string);
        let mut m = s("error").unwrap_or_else(|| self.1.to_string());
        if let Some(f) = s("field") {
            m.push_str(&format!(": {f}"));
        }
        if let Some(r) = s("reason") {
            m.push_str(&format!(": {r}"));
        }
        m
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        (self.0, Json(self.1)).into_response()
    }
}

pub(crate) fn err(status: StatusCode, msg: impl Into<String>) -> ApiError {
    ApiError(status, json!({ "error": msg.into() }))
}

fn invalid(i: Invalid) -> ApiError {
    ApiError(
        StatusCode::BAD_REQUEST,
        json!({ "error": "validation failed", "field": i.field, "reason": i.reason }),
    )
}

pub(crate) fn internal(e: impl std::fmt::Display) -> ApiError {
    err(StatusCode::INTERNAL_SERVER_ERROR, e.to_string())
}

/// Runs database work off the async threads.
pub(crate) async fn with_db<T: Send + 'static>(
    app: &Arc<App>,
    f: impl FnOnce(&mut Connection) -> anyhow::Result<T> + Send + 'static,
) -> Result<T, ApiError> {
    let app = app.clone();
    tokio::task::spawn_blocking(move || {
        let mut c = app.db.lock().unwrap_or_else(|e| e.into_inner());
        f(&mut c)
    })
    .await
    .map_err(internal)?
    .map_err(internal)
}

/// Who is calling, from `Authorization: Bearer <token>`.
pub struct Caller {
    pub name: String,
    pub role: Role,
}

impl Caller {
    pub(crate) fn may_change(&self) -> Result<(), ApiError> {
        match self.role {
            Role::CustomerAdmin | Role::DeskOperator => Ok(()),
            Role::ReadOnly => Err(err(
                StatusCode::FORBIDDEN,
                format!("token {:?} is read-only", self.name),
            )),
        }
    }
    fn is_admin(&self) -> Result<(), ApiError> {
        match self.role {
            Role::CustomerAdmin => Ok(()),
            _ => Err(err(
                StatusCode::FORBIDDEN,
                format!(
                    "only a customer-admin may do this; token {:?} is {}",
                    self.name,
                    self.role.name()
                ),
            )),
        }
    }
}

impl FromRequestParts<Arc<App>> for Caller {
    type Rejection = ApiError;
    async fn from_request_parts(parts: &mut Parts, app: &Arc<App>) -> Result<Self, ApiError> {
        app.counters.requests.fetch_add(1, Relaxed);
        let denied = |m: &str| {
            app.counters.denied.fetch_add(1, Relaxed);
            err(StatusCode::UNAUTHORIZED, m)
        };
        let token = parts
            .headers
            .get(header::AUTHORIZATION)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.strip_prefix("Bearer "))
            .map(|t| t.trim().to_string())
            .ok_or_else(|| denied("missing Authorization: Bearer <token>"))?;
        let found = with_db(app, move |c| Ok(db::check_token(c, &token)?)).await?;
        match found {
            Some((name, role)) => Ok(Caller { name, role }),
            None => Err(denied("unknown token")),
        }
    }
}

pub fn router(app: Arc<App>) -> Router {
    let bundle_max = app
        .patterns
        .as_ref()
        .map_or(1 << 20, |p| p.limits().max_bundle as usize);
    Router::new()
        .merge(crate::patterns::routes(bundle_max))
        .route("/openapi.json", get(openapi))
        .route("/metrics", get(metrics))
        .route("/api/v1/status", get(status))
        .route("/api/v1/policy", get(policy))
        .route(
            "/api/v1/policy/{section}",
            get(get_section).put(put_section),
        )
        .route("/api/v1/quarantine", get(quarantine))
        .route("/api/v1/quarantine/{mac}/release", post(release))
        .route("/api/v1/events", get(events_query))
        .route("/api/v1/events/hourly", get(events_hourly))
        .route("/api/v1/audit", get(audit))
        .route("/api/v1/report", get(report))
        .route("/api/v1/reports", get(reports))
        .route("/api/v1/tokens", get(tokens).post(create_token))
        .merge(crate::console::routes())
        .with_state(app)
}

/// The sections of the stored policy, as the API names them.
pub const SECTIONS: &[&str] = &[
    "firewall",
    "categories",
    "exceptions",
    "host-groups",
    "ips",
    "quarantine",
    "contacts",
    "lan-subnets",
    "web-options",
];

fn section_value(doc: &PolicyDoc, s: &str) -> Option<Value> {
    Some(match s {
        "firewall" => json!(doc.firewall),
        "categories" => json!(doc.categories),
        "exceptions" => json!(doc.exceptions),
        "host-groups" => json!(doc.host_groups),
        "ips" => json!(doc.ips),
        "quarantine" => json!(doc.quarantine),
        "contacts" => json!(doc.contacts),
        "lan-subnets" => json!(doc.lan_subnets),
        "web-options" => json!(doc.web_options),
        _ => return None,
    })
}

fn parse<T: serde::de::DeserializeOwned>(prefix: &str, body: &[u8]) -> Result<T, Invalid> {
    let de = &mut serde_json::Deserializer::from_slice(body);
    serde_path_to_error::deserialize(de).map_err(|e| {
        let path = e.path().to_string();
        Invalid {
            field: if path == "." {
                prefix.to_string()
            } else {
                format!("{prefix}.{path}")
            },
            reason: e.into_inner().to_string(),
        }
    })
}

fn set_section(doc: &mut PolicyDoc, s: &str, body: &[u8]) -> Result<(), Invalid> {
    let p = s.replace('-', "_");
    match s {
        "firewall" => doc.firewall = parse(&p, body)?,
        "categories" => doc.categories = parse(&p, body)?,
        "exceptions" => doc.exceptions = parse(&p, body)?,
        "host-groups" => doc.host_groups = parse(&p, body)?,
        "ips" => doc.ips = parse(&p, body)?,
        "quarantine" => doc.quarantine = parse(&p, body)?,
        "contacts" => doc.contacts = parse(&p, body)?,
        "lan-subnets" => doc.lan_subnets = parse(&p, body)?,
        "web-options" => doc.web_options = parse(&p, body)?,
        _ => {
            return Err(Invalid {
                field: s.into(),
                reason: "no such section".into(),
            });
        }
    }
    Ok(())
}

async fn policy(State(app): State<Arc<App>>, _c: Caller) -> Result<Json<Value>, ApiError> {
    let cur = with_db(&app, |c| db::current_policy(c)).await?;
    Ok(Json(json!({
        "version": cur.version, "created": cur.created, "actor": cur.actor,
        "applied": cur.applied, "note": cur.note, "doc": cur.doc, "toml": cur.doc.to_toml().map_err(internal)?,
    })))
}

async fn get_section(
    State(app): State<Arc<App>>,
    _c: Caller,
    Path(section): Path<String>,
) -> Result<Json<Value>, ApiError> {
    let cur = with_db(&app, |c| db::current_policy(c)).await?;
    section_value(&cur.doc, &section).map(Json).ok_or_else(|| {
        err(
            StatusCode::NOT_FOUND,
            format!("no section {section:?}; sections: {}", SECTIONS.join(", ")),
        )
    })
}

async fn put_section(
    State(app): State<Arc<App>>,
    caller: Caller,
    Path(section): Path<String>,
    body: Bytes,
) -> Result<Response, ApiError> {
    let (status, answer) = change_section(&app, &caller, &section, &body).await?;
    Ok((status, Json(answer)).into_response())
}

/// Replaces one policy section: checked, compiled, pushed to the gateway, then stored
/// with its audit record. The API and the console both change the policy through here.
pub(crate) async fn change_section(
    app: &Arc<App>,
    caller: &Caller,
    section: &str,
    body: &[u8],
) -> Result<(StatusCode, Value), ApiError> {
    caller.may_change()?;
    let section = section.to_string();
    let _one = app.changes.lock().await;
    let cur = with_db(app, |c| db::current_policy(c)).await?;
    let before = section_value(&cur.doc, &section).ok_or_else(|| {
        err(
            StatusCode::NOT_FOUND,
            format!("no section {section:?}; sections: {}", SECTIONS.join(", ")),
        )
    })?;
    let mut doc = cur.doc.clone();
    let checked = set_section(&mut doc, &section, body).and_then(|()| doc.validate());
    let policy = match checked {
        Ok(p) => p,
        Err(i) => {
            app.counters.invalid.fetch_add(1, Relaxed);
            return Err(invalid(i));
        }
    };
    // Well-formed, but the gateway could not compile it against its category database:
    // refused like a gateway refusal, even while the gateway is down.
    if let Err(i) = PolicyDoc::compiles_against(&policy, app.categories.as_ref()) {
        app.counters.refused.fetch_add(1, Relaxed);
        return Err(ApiError(
            StatusCode::UNPROCESSABLE_ENTITY,
            json!({"error": "the gateway could not compile this policy against its category database; nothing was stored",
                   "field": i.field, "reason": i.reason}),
        ));
    }
    let after = section_value(&doc, &section).unwrap_or(Value::Null);
    let version = cur.version + 1;
    let toml = doc.to_toml().map_err(internal)?;
    let started = Instant::now();
    let gw = app.gateway.clone();
    let pushed = {
        let toml = toml.clone();
        tokio::task::spawn_blocking(move || gw.apply(version, &toml))
            .await
            .map_err(internal)?
    };
    let (applied, note, status) = match &pushed {
        Ok(us) => {
            app.counters.applied.fetch_add(1, Relaxed);
            app.counters.last_apply_us.store(*us, Relaxed);
            (
                true,
                format!("running on the gateway ({us} µs to swap)"),
                StatusCode::OK,
            )
        }
        Err(GwError::Refused(reason)) => {
            app.counters.refused.fetch_add(1, Relaxed);
            return Err(ApiError(
                StatusCode::UNPROCESSABLE_ENTITY,
                json!({"error": "the gateway refused this policy; the running policy stays and nothing was stored",
                       "reason": reason}),
            ));
        }
        Err(e @ GwError::Unreachable(_)) => {
            app.counters.unreachable.fetch_add(1, Relaxed);
            (
                false,
                format!("stored, not applied: {e}; the gateway gets it when it asks at start"),
                StatusCode::ACCEPTED,
            )
        }
    };
    let (actor, target) = (caller.name.clone(), section.clone());
    let (doc2, note2, b, a) = (doc.clone(), note.clone(), before.clone(), after.clone());
    with_db(app, move |c| {
        db::store_policy(
            c,
            version,
            &actor,
            &doc2,
            applied,
            &note2,
            "PUT policy section",
            &target,
            &b,
            &a,
        )
    })
    .await?;
    *app.current.lock().unwrap_or_else(|e| e.into_inner()) = Some((version, toml));
    let ms = started.elapsed().as_secs_f64() * 1e3;
    Ok((
        status,
        json!({"version": version, "applied": applied, "note": note, "push_ms": ms, section: after}),
    ))
}

/// The pattern sets' state (versions, ages, staleness), when the box takes bundles.
async fn patterns_state(app: &Arc<App>) -> Result<Option<Value>, ApiError> {
    match app.patterns.clone() {
        Some(p) => Ok(Some(
            with_db(app, move |c| Ok(p.status(c, db::now())?)).await?,
        )),
        None => Ok(None),
    }
}

async fn status(State(app): State<Arc<App>>, _c: Caller) -> Result<Json<Value>, ApiError> {
    let cur = with_db(&app, |c| db::current_policy(c)).await?;
    let patterns = patterns_state(&app).await?;
    let gw = app.gateway.clone();
    let stats = tokio::task::spawn_blocking(move || gw.stats())
        .await
        .map_err(internal)?;
    let i = &app.intake;
    let gateway = match &stats {
        Ok(s) => {
            json!({"up": true, "policy_version": s["policy_version"], "uptime_secs": s["uptime_secs"],
                        "layout": s["layout"], "ports": s["ports"], "events_unsent": s["events_unsent"],
                        "policy_refused": s["policy_refused"]})
        }
        Err(e) => json!({"up": false, "error": e.to_string()}),
    };
    let gw_version = stats
        .as_ref()
        .ok()
        .and_then(|s| s["policy_version"].as_u64());
    Ok(Json(json!({
        "policy": {"stored_version": cur.version, "applied": cur.applied, "note": cur.note,
                   "gateway_version": gw_version, "in_sync": gw_version == Some(cur.version)},
        "gateway": gateway,
        "events": {"received": i.received.load(Relaxed), "stored": i.stored.load(Relaxed),
                   "malformed": i.malformed.load(Relaxed), "dropped": i.dropped.load(Relaxed),
                   "pruned": i.pruned.load(Relaxed)},
        "patterns_stale": patterns.as_ref().map(|p| p["patterns_stale"].clone()),
        "licence_expired": patterns.as_ref().map(|p| p["licence_expired"].clone()),
        "patterns": patterns,
    })))
}

async fn quarantine(State(app): State<Arc<App>>, _c: Caller) -> Result<Json<Value>, ApiError> {
    let gw = app.gateway.clone();
    match tokio::task::spawn_blocking(move || gw.hosts())
        .await
        .map_err(internal)?
    {
        Ok(v) => {
            let q: Vec<Value> = v["hosts"]
                .as_array()
                .map(|a| {
                    a.iter()
                        .filter(|h| h["quarantined"] == json!(true))
                        .cloned()
                        .collect()
                })
                .unwrap_or_default();
            Ok(Json(
                json!({"quarantined": q, "hosts_known": v["stats"]["hosts"]}),
            ))
        }
        Err(GwError::Refused(r)) => Err(err(StatusCode::CONFLICT, r)),
        Err(e) => Err(err(StatusCode::SERVICE_UNAVAILABLE, e.to_string())),
    }
}

async fn release(
    State(app): State<Arc<App>>,
    caller: Caller,
    Path(mac): Path<String>,
) -> Result<Json<Value>, ApiError> {
    release_host(&app, &caller, &mac).await.map(Json)
}

/// Lets a quarantined host out (the gateway does it) and records who did.
pub(crate) async fn release_host(
    app: &Arc<App>,
    caller: &Caller,
    mac: &str,
) -> Result<Value, ApiError> {
    caller.may_change()?;
    let mac = mac.to_string();
    if mac.parse::<mimamori_pipelines::wire::MacAddr>().is_err() {
        return Err(invalid(Invalid {
            field: "mac".into(),
            reason: format!("{mac:?} is not a MAC address (aa:bb:cc:dd:ee:ff)"),
        }));
    }
    let gw = app.gateway.clone();
    let m = mac.clone();
    match tokio::task::spawn_blocking(move || gw.release(&m))
        .await
        .map_err(internal)?
    {
        Ok(()) => {
            let (actor, m) = (caller.name.clone(), mac.clone());
            with_db(app, move |c| {
                Ok(db::audit(
                    c,
                    &actor,
                    "release from quarantine",
                    &m,
                    "\"quarantined\"",
                    "\"released\"",
                )?)
            })
            .await?;
            Ok(json!({"released": mac}))
        }
        Err(GwError::Refused(r)) => Err(err(StatusCode::CONFLICT, r)),
        Err(e) => Err(err(StatusCode::SERVICE_UNAVAILABLE, e.to_string())),
    }
}

fn query_of(q: Result<Query<events::Query>, QueryRejection>) -> Result<events::Query, ApiError> {
    q.map(|Query(q)| q).map_err(|e| {
        ApiError(
            StatusCode::BAD_REQUEST,
            json!({"error": "validation failed", "field": "query", "reason": e.body_text()}),
        )
    })
}

async fn events_query(
    State(app): State<Arc<App>>,
    _c: Caller,
    q: Result<Query<events::Query>, QueryRejection>,
) -> Result<Json<Value>, ApiError> {
    let q = query_of(q)?;
    let rows = with_db(&app, move |c| Ok(events::query(c, &q)?)).await?;
    Ok(Json(json!({"count": rows.len(), "events": rows})))
}

async fn events_hourly(
    State(app): State<Arc<App>>,
    _c: Caller,
    q: Result<Query<events::Query>, QueryRejection>,
) -> Result<Json<Value>, ApiError> {
    let q = query_of(q)?;
    let rows = with_db(&app, move |c| Ok(events::hourly(c, &q)?)).await?;
    Ok(Json(json!({"hours": rows})))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct Limit {
    limit: Option<i64>,
}

async fn audit(
    State(app): State<Arc<App>>,
    _c: Caller,
    q: Result<Query<Limit>, QueryRejection>,
) -> Result<Json<Value>, ApiError> {
    let limit = q
        .map_err(|e| {
            ApiError(
                StatusCode::BAD_REQUEST,
                json!({"error": "validation failed", "field": "query", "reason": e.body_text()}),
            )
        })?
        .0
        .limit
        .unwrap_or(100)
        .clamp(1, 10_000);
    let rows = with_db(&app, move |c| Ok(db::audit_log(c, limit)?)).await?;
    Ok(Json(json!({"audit": rows})))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct ReportQuery {
    month: Option<String>,
    lang: Option<String>,
}

fn bad(field: &str, reason: String) -> ApiError {
    invalid(Invalid {
        field: field.into(),
        reason,
    })
}

/// What the gateway says now (its uptime, its hosts' names), for the report; nothing
/// when it is down.
pub(crate) fn live(gw: &GatewayLink) -> crate::report::Live {
    let mut l = crate::report::Live::default();
    if let Ok(s) = gw.stats() {
        l.gateway_up = true;
        l.uptime_secs = s["uptime_secs"].as_f64();
        l.policy_version = s["policy_version"].as_u64();
    }
    if let Ok(h) = gw.hosts() {
        for x in h["hosts"].as_array().into_iter().flatten() {
            let f = |k: &str| x[k].as_str().unwrap_or("").to_string();
            l.hosts.push((f("mac"), f("ipv4"), f("hostname")));
        }
    }
    l
}

async fn report(
    State(app): State<Arc<App>>,
    _c: Caller,
    q: Result<Query<ReportQuery>, QueryRejection>,
) -> Result<Response, ApiError> {
    let q = q.map_err(|e| bad("query", e.body_text()))?.0;
    let html = report_html(&app, q.month.as_deref(), q.lang.as_deref().unwrap_or("ja")).await?;
    Ok(([(header::CONTENT_TYPE, "text/html; charset=utf-8")], html).into_response())
}

/// The month's report as HTML (last month when `month` is none): the kept one when it is
/// complete, else rendered now. The API and the console's download both come here.
pub(crate) async fn report_html(
    app: &Arc<App>,
    month: Option<&str>,
    lang: &str,
) -> Result<String, ApiError> {
    use crate::report::{self, Lang, Month};
    let now = db::now();
    let month = match month {
        None => Month::of(now).prev(),
        Some(s) => Month::parse(s).map_err(|r| bad("month", r))?,
    };
    report::check_month(month, now).map_err(|r| bad("month", r))?;
    let lang = Lang::parse(lang).map_err(|r| bad("lang", r))?;
    let _one = app.reports.lock().await;
    let a = app.clone();
    tokio::task::spawn_blocking(move || -> anyhow::Result<String> {
        let c = db::open(&a.db_path)?;
        if let Some(s) = report::stored(&c, month, lang)?
            && s.complete
        {
            return Ok(s.html);
        }
        let live = live(&a.gateway);
        report::get_or_render(&c, month, lang, now, &live)
    })
    .await
    .map_err(internal)?
    .map_err(internal)
}

async fn reports(State(app): State<Arc<App>>, _c: Caller) -> Result<Json<Value>, ApiError> {
    let rows = with_db(&app, |c| Ok(crate::report::kept(c)?)).await?;
    let rows: Vec<Value> = rows
        .into_iter()
        .map(|(m, l, created, complete)| json!({"month": m, "lang": l, "created": created, "complete": complete}))
        .collect();
    Ok(Json(
        json!({"reports": rows, "keep_months": crate::report::KEEP_MONTHS}),
    ))
}

async fn tokens(State(app): State<Arc<App>>, caller: Caller) -> Result<Json<Value>, ApiError> {
    caller.is_admin()?;
    let rows = with_db(&app, |c| Ok(db::list_tokens(c)?)).await?;
    Ok(Json(json!({"tokens": rows})))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct NewToken {
    name: String,
    role: Role,
}

async fn create_token(
    State(app): State<Arc<App>>,
    caller: Caller,
    body: Bytes,
) -> Result<Response, ApiError> {
    caller.is_admin()?;
    let t: NewToken = parse("token", &body).map_err(invalid)?;
    if t.name.trim().is_empty() || t.name.len() > 64 {
        return Err(invalid(Invalid {
            field: "token.name".into(),
            reason: "1 to 64 characters".into(),
        }));
    }
    let actor = caller.name.clone();
    let (name, role) = (t.name.clone(), t.role);
    let secret = with_db(&app, move |c| {
        let s = db::create_token(c, &name, role)?;
        db::audit(
            c,
            &actor,
            "create token",
            &name,
            "null",
            &json!({"role": role.name()}).to_string(),
        )?;
        Ok(s)
    })
    .await
    .map_err(|e| ApiError(StatusCode::CONFLICT, json!({"error": e.1["error"]})))?;
    Ok((
        StatusCode::CREATED,
        Json(json!({"name": t.name, "role": t.role.name(), "token": secret})),
    )
        .into_response())
}

async fn metrics(State(app): State<Arc<App>>, _c: Caller) -> Result<Response, ApiError> {
    let gw = app.gateway.clone();
    let stats = tokio::task::spawn_blocking(move || gw.stats())
        .await
        .map_err(internal)?;
    let cur = with_db(&app, |c| db::current_policy(c)).await?;
    let patterns = patterns_state(&app).await?;
    Ok((
        [(header::CONTENT_TYPE, "text/plain; version=0.0.4")],
        crate::metrics::render(&app, cur.version, stats.ok().as_ref(), patterns.as_ref()),
    )
        .into_response())
}

async fn openapi() -> Json<Value> {
    Json(crate::openapi::document())
}
