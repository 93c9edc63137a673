//! The operators' and customers' API (`http://127.0.0.1:8450/api/v1/…`, bearer tokens).
//! Desk admins manage customers, boxes and tokens; desk operators work incidents, calls,
//! tickets and visits; a customer token sees and asks about its own boxes only.

use super::{ApiError, ApiResult, App, auth, body};
use crate::ops::{self, Actor, Refusal, boxes, contracts, incidents, tickets, visits};
use crate::store::Conn;
use axum::body::Bytes;
use axum::extract::{Path, Query, State};
use axum::http::HeaderMap;
use axum::response::IntoResponse;
use axum::routing::{get, post};
use axum::{Json, Router};
use serde::Deserialize;
use std::sync::atomic::Ordering::Relaxed;

pub fn router(app: App) -> Router {
    Router::new()
        .route("/api/v1/customers", get(list_customers).post(add_customer))
        .route("/api/v1/customers/{id}/contacts", post(add_contact))
        .route("/api/v1/sites", post(add_site))
        .route("/api/v1/boxes", get(list_boxes).post(add_box))
        .route("/api/v1/boxes/{id}", get(get_box))
        .route("/api/v1/boxes/{id}/enrol-code", post(enrol_code))
        .route("/api/v1/boxes/{id}/revoke", post(revoke))
        .route("/api/v1/boxes/{id}/plan", post(set_plan))
        .route("/api/v1/boxes/{id}/events", get(box_events))
        .route(
            "/api/v1/boxes/{id}/contract",
            get(get_contract).post(open_contract),
        )
        .route("/api/v1/boxes/{id}/contract/changes", post(change_contract))
        .route("/api/v1/boxes/{id}/contract/switch", post(switch_contract))
        .route("/api/v1/customers/{id}/statement", get(statement))
        .route(
            "/api/v1/boxes/{id}/visits",
            get(list_visits).post(book_visit),
        )
        .route("/api/v1/boxes/{id}/reports", get(list_reports))
        .route("/api/v1/boxes/{id}/hourly", get(box_hourly))
        .route(
            "/api/v1/boxes/{id}/reports/{month}/{lang}/{format}",
            get(get_report),
        )
        .route("/api/v1/incidents", get(list_incidents))
        .route("/api/v1/incidents/{id}", get(get_incident))
        .route("/api/v1/incidents/{id}/actions", post(act))
        .route("/api/v1/calls", get(calls))
        .route("/api/v1/calls/{id}/done", post(call_done))
        .route("/api/v1/tickets", get(list_tickets).post(open_ticket))
        .route("/api/v1/tickets/{id}", get(get_ticket))
        .route("/api/v1/tickets/{id}/messages", post(reply))
        .route("/api/v1/tickets/{id}/close", post(close_ticket))
        .route("/api/v1/notifications", get(notifications))
        .route("/api/v1/tokens", post(add_token))
        .route("/api/v1/patterns", get(list_patterns))
        .route(
            "/api/v1/patterns/{kind}",
            post(publish_pattern).layer(axum::extract::DefaultBodyLimit::max(
                ops::patterns::BUNDLE_MAX,
            )),
        )
        .route("/api/v1/status", get(status))
        .route("/api/v1/openapi.json", get(openapi))
        .route("/metrics", get(metrics))
        .route("/healthz", get(|| async { "ok\n" }))
        .merge(crate::console::routes())
        .with_state(app)
}

/// Runs `work` for the token's actor in one transaction.
async fn as_actor<T: Send + 'static>(
    app: &App,
    headers: HeaderMap,
    work: impl FnOnce(&mut dyn Conn, &Actor) -> ops::Result<T> + Send + 'static,
) -> Result<T, ApiError> {
    app.store
        .run(move |c| {
            let actor = auth::actor_of(c, &headers)?;
            work(c, &actor).map_err(ApiError)
        })
        .await
}

async fn list_customers(State(app): State<App>, h: HeaderMap) -> ApiResult<Vec<serde_json::Value>> {
    Ok(Json(
        as_actor(&app, h, |c, a| boxes::list_customers(c, a)).await?,
    ))
}

async fn add_customer(
    State(app): State<App>,
    h: HeaderMap,
    b: Bytes,
) -> ApiResult<serde_json::Value> {
    let n: boxes::NewCustomer = body(&b)?;
    let id = n.id.clone();
    as_actor(&app, h, move |c, a| boxes::add_customer(c, a, &n)).await?;
    Ok(Json(serde_json::json!({"id": id})))
}

async fn add_contact(
    State(app): State<App>,
    h: HeaderMap,
    Path(id): Path<String>,
    b: Bytes,
) -> ApiResult<serde_json::Value> {
    let n: boxes::NewContact = body(&b)?;
    let cid = as_actor(&app, h, move |c, a| boxes::add_contact(c, a, &id, &n)).await?;
    Ok(Json(serde_json::json!({"id": cid})))
}

async fn add_site(State(app): State<App>, h: HeaderMap, b: Bytes) -> ApiResult<serde_json::Value> {
    let n: boxes::NewSite = body(&b)?;
    let id = n.id.clone();
    as_actor(&app, h, move |c, a| boxes::add_site(c, a, &n)).await?;
    Ok(Json(serde_json::json!({"id": id})))
}

async fn list_boxes(State(app): State<App>, h: HeaderMap) -> ApiResult<Vec<boxes::BoxView>> {
    let fa = app.ctx.fault_after;
    Ok(Json(
        as_actor(&app, h, move |c, a| boxes::list_boxes(c, a, fa)).await?,
    ))
}

async fn add_box(State(app): State<App>, h: HeaderMap, b: Bytes) -> ApiResult<serde_json::Value> {
    let n: boxes::NewBox = body(&b)?;
    let id = n.id.clone();
    as_actor(&app, h, move |c, a| boxes::add_box(c, a, &n)).await?;
    Ok(Json(serde_json::json!({"id": id})))
}

async fn get_box(
    State(app): State<App>,
    h: HeaderMap,
    Path(id): Path<String>,
) -> ApiResult<boxes::BoxView> {
    let fa = app.ctx.fault_after;
    Ok(Json(
        as_actor(&app, h, move |c, a| boxes::get_box(c, a, &id, fa)).await?,
    ))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct CodeAsk {
    #[serde(default = "day")]
    valid_secs: i64,
}
fn day() -> i64 {
    86_400
}

async fn enrol_code(
    State(app): State<App>,
    h: HeaderMap,
    Path(id): Path<String>,
    b: Bytes,
) -> ApiResult<serde_json::Value> {
    let ask: CodeAsk = if b.is_empty() {
        CodeAsk { valid_secs: day() }
    } else {
        body(&b)?
    };
    if !(60..=30 * 86_400).contains(&ask.valid_secs) {
        return Err(ApiError(Refusal::BadInput(
            "valid_secs: 60 to 2592000".into(),
        )));
    }
    let (code, expires) = as_actor(&app, h, move |c, a| {
        boxes::enrol_code(c, a, &id, ask.valid_secs)
    })
    .await?;
    Ok(Json(serde_json::json!({"code": code, "expires": expires})))
}

async fn revoke(
    State(app): State<App>,
    h: HeaderMap,
    Path(id): Path<String>,
) -> ApiResult<serde_json::Value> {
    as_actor(&app, h, move |c, a| boxes::revoke(c, a, &id)).await?;
    Ok(Json(serde_json::json!({"revoked": true})))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct PlanAsk {
    plan: mimamori_contracts::Plan,
    #[serde(default)]
    repair_24h: bool,
}

async fn set_plan(
    State(app): State<App>,
    h: HeaderMap,
    Path(id): Path<String>,
    b: Bytes,
) -> ApiResult<serde_json::Value> {
    let ask: PlanAsk = body(&b)?;
    as_actor(&app, h, move |c, a| {
        boxes::set_plan(c, a, &id, ask.plan, ask.repair_24h)
    })
    .await?;
    Ok(Json(serde_json::json!({"ok": true})))
}

#[derive(Deserialize)]
struct EventsAsk {
    limit: Option<i64>,
    event_type: Option<String>,
}

async fn box_events(
    State(app): State<App>,
    h: HeaderMap,
    Path(id): Path<String>,
    Query(q): Query<EventsAsk>,
) -> ApiResult<Vec<serde_json::Value>> {
    let fa = app.ctx.fault_after;
    Ok(Json(
        as_actor(&app, h, move |c, a| {
            boxes::get_box(c, a, &id, fa)?;
            boxes::events(c, &id, q.event_type.as_deref(), q.limit.unwrap_or(100))
        })
        .await?,
    ))
}

async fn get_contract(
    State(app): State<App>,
    h: HeaderMap,
    Path(id): Path<String>,
) -> ApiResult<serde_json::Value> {
    Ok(Json(
        as_actor(&app, h, move |c, a| contracts::get(c, a, &id)).await?,
    ))
}

async fn open_contract(
    State(app): State<App>,
    h: HeaderMap,
    Path(id): Path<String>,
    b: Bytes,
) -> ApiResult<serde_json::Value> {
    let t: contracts::Terms = body(&b)?;
    Ok(Json(
        as_actor(&app, h, move |c, a| contracts::open(c, a, &id, &t)).await?,
    ))
}

async fn change_contract(
    State(app): State<App>,
    h: HeaderMap,
    Path(id): Path<String>,
    b: Bytes,
) -> ApiResult<serde_json::Value> {
    let t: contracts::ChangeAsk = body(&b)?;
    Ok(Json(
        as_actor(&app, h, move |c, a| contracts::change(c, a, &id, &t)).await?,
    ))
}

async fn switch_contract(
    State(app): State<App>,
    h: HeaderMap,
    Path(id): Path<String>,
    b: Bytes,
) -> ApiResult<serde_json::Value> {
    let t: contracts::SwitchAsk = body(&b)?;
    Ok(Json(
        as_actor(&app, h, move |c, a| contracts::switch(c, a, &id, &t)).await?,
    ))
}

#[derive(Deserialize)]
struct MonthAsk {
    month: String,
}

async fn statement(
    State(app): State<App>,
    h: HeaderMap,
    Path(id): Path<String>,
    Query(q): Query<MonthAsk>,
) -> ApiResult<serde_json::Value> {
    Ok(Json(
        as_actor(&app, h, move |c, a| {
            contracts::statement(c, a, &id, &q.month)
        })
        .await?,
    ))
}

#[derive(Deserialize)]
struct SpanAsk {
    from: Option<i64>,
    to: Option<i64>,
}

async fn box_hourly(
    State(app): State<App>,
    h: HeaderMap,
    Path(id): Path<String>,
    Query(q): Query<SpanAsk>,
) -> ApiResult<Vec<serde_json::Value>> {
    let fa = app.ctx.fault_after;
    let to = q.to.unwrap_or_else(|| ops::now() + 3600);
    let from = q.from.unwrap_or(to - 7 * 86_400);
    Ok(Json(
        as_actor(&app, h, move |c, a| {
            boxes::get_box(c, a, &id, fa)?;
            ops::ingest::hourly_view(c, &id, from, to)
        })
        .await?,
    ))
}

async fn list_reports(
    State(app): State<App>,
    h: HeaderMap,
    Path(id): Path<String>,
) -> ApiResult<Vec<serde_json::Value>> {
    Ok(Json(
        as_actor(&app, h, move |c, a| ops::reports::list(c, a, &id)).await?,
    ))
}

async fn get_report(
    State(app): State<App>,
    h: HeaderMap,
    Path((id, month, lang, format)): Path<(String, String, String, String)>,
) -> Result<axum::response::Response, ApiError> {
    let pdf = format == "pdf";
    let path = as_actor(&app, h, move |c, a| {
        ops::reports::file(c, a, &id, &month, &lang, &format)
    })
    .await?;
    let bytes = tokio::task::spawn_blocking(move || std::fs::read(&path))
        .await
        .map_err(|e| ApiError(Refusal::NotFound(e.to_string())))?
        .map_err(|e| ApiError(Refusal::NotFound(e.to_string())))?;
    let mime = if pdf {
        "application/pdf"
    } else {
        "text/html; charset=utf-8"
    };
    Ok(([(axum::http::header::CONTENT_TYPE, mime)], bytes).into_response())
}

async fn list_visits(
    State(app): State<App>,
    h: HeaderMap,
    Path(id): Path<String>,
) -> ApiResult<Vec<serde_json::Value>> {
    Ok(Json(
        as_actor(&app, h, move |c, a| visits::list(c, a, &id)).await?,
    ))
}

async fn book_visit(
    State(app): State<App>,
    h: HeaderMap,
    Path(id): Path<String>,
    b: Bytes,
) -> ApiResult<serde_json::Value> {
    let v: visits::NewVisit = body(&b)?;
    Ok(Json(
        as_actor(&app, h, move |c, a| visits::book(c, a, &id, &v)).await?,
    ))
}

async fn list_incidents(
    State(app): State<App>,
    h: HeaderMap,
    Query(f): Query<incidents::Filter>,
) -> ApiResult<Vec<incidents::IncidentView>> {
    Ok(Json(
        as_actor(&app, h, move |c, a| incidents::list(c, a, &f)).await?,
    ))
}

async fn get_incident(
    State(app): State<App>,
    h: HeaderMap,
    Path(id): Path<i64>,
) -> ApiResult<incidents::IncidentDetail> {
    Ok(Json(
        as_actor(&app, h, move |c, a| incidents::get(c, a, id)).await?,
    ))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct ActAsk {
    action: String,
    #[serde(default)]
    note: String,
}

async fn act(
    State(app): State<App>,
    h: HeaderMap,
    Path(id): Path<i64>,
    b: Bytes,
) -> ApiResult<incidents::IncidentView> {
    let ask: ActAsk = body(&b)?;
    Ok(Json(
        as_actor(&app, h, move |c, a| {
            incidents::act(c, a, id, &ask.action, &ask.note)
        })
        .await?,
    ))
}

async fn calls(State(app): State<App>, h: HeaderMap) -> ApiResult<serde_json::Value> {
    Ok(Json(
        as_actor(&app, h, |c, a| incidents::calls(c, a, ops::now())).await?,
    ))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct NoteAsk {
    #[serde(default)]
    note: String,
}

async fn call_done(
    State(app): State<App>,
    h: HeaderMap,
    Path(id): Path<i64>,
    b: Bytes,
) -> ApiResult<serde_json::Value> {
    let ask: NoteAsk = if b.is_empty() {
        NoteAsk {
            note: String::new(),
        }
    } else {
        body(&b)?
    };
    as_actor(&app, h, move |c, a| {
        incidents::call_done(c, a, id, &ask.note)
    })
    .await?;
    Ok(Json(serde_json::json!({"done": true})))
}

async fn list_tickets(
    State(app): State<App>,
    h: HeaderMap,
    Query(f): Query<tickets::Filter>,
) -> ApiResult<Vec<serde_json::Value>> {
    Ok(Json(
        as_actor(&app, h, move |c, a| tickets::list(c, a, &f)).await?,
    ))
}

async fn open_ticket(
    State(app): State<App>,
    h: HeaderMap,
    b: Bytes,
) -> ApiResult<serde_json::Value> {
    let t: tickets::NewTicket = body(&b)?;
    let id = as_actor(&app, h, move |c, a| tickets::open(c, a, &t)).await?;
    Ok(Json(serde_json::json!({"id": id})))
}

async fn get_ticket(
    State(app): State<App>,
    h: HeaderMap,
    Path(id): Path<i64>,
) -> ApiResult<serde_json::Value> {
    Ok(Json(
        as_actor(&app, h, move |c, a| tickets::get(c, a, id)).await?,
    ))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct ReplyAsk {
    body: String,
}

async fn reply(
    State(app): State<App>,
    h: HeaderMap,
    Path(id): Path<i64>,
    b: Bytes,
) -> ApiResult<serde_json::Value> {
    let ask: ReplyAsk = body(&b)?;
    as_actor(&app, h, move |c, a| tickets::reply(c, a, id, &ask.body)).await?;
    Ok(Json(serde_json::json!({"ok": true})))
}

async fn close_ticket(
    State(app): State<App>,
    h: HeaderMap,
    Path(id): Path<i64>,
    b: Bytes,
) -> ApiResult<serde_json::Value> {
    let ask: NoteAsk = if b.is_empty() {
        NoteAsk {
            note: String::new(),
        }
    } else {
        body(&b)?
    };
    as_actor(&app, h, move |c, a| tickets::close(c, a, id, &ask.note)).await?;
    Ok(Json(serde_json::json!({"closed": true})))
}

async fn notifications(State(app): State<App>, h: HeaderMap) -> ApiResult<Vec<serde_json::Value>> {
    Ok(Json(
        as_actor(&app, h, |c, a| boxes::notifications(c, a)).await?,
    ))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct TokenAsk {
    name: String,
    role: String,
    #[serde(default)]
    customer_id: Option<String>,
}

async fn list_patterns(
    State(app): State<App>,
    h: HeaderMap,
) -> ApiResult<Vec<ops::patterns::Published>> {
    Ok(Json(
        as_actor(&app, h, |c, _| ops::patterns::latest(c)).await?,
    ))
}

#[derive(Deserialize)]
struct VersionAsk {
    version: u64,
}

async fn publish_pattern(
    State(app): State<App>,
    h: HeaderMap,
    Path(kind): Path<String>,
    Query(q): Query<VersionAsk>,
    b: Bytes,
) -> ApiResult<ops::patterns::Published> {
    let dir = app.patterns_dir.clone();
    Ok(Json(
        as_actor(&app, h, move |c, a| {
            ops::patterns::publish(c, a, &dir, &kind, q.version, &b)
        })
        .await?,
    ))
}

async fn add_token(State(app): State<App>, h: HeaderMap, b: Bytes) -> ApiResult<serde_json::Value> {
    let ask: TokenAsk = body(&b)?;
    let token = as_actor(&app, h, move |c, a| {
        auth::create(c, a, &ask.name, &ask.role, ask.customer_id.as_deref())
    })
    .await?;
    Ok(Json(serde_json::json!({"token": token})))
}

async fn status(State(app): State<App>, h: HeaderMap) -> ApiResult<serde_json::Value> {
    let fa = app.ctx.fault_after;
    let backend = app.store.backend().name();
    Ok(Json(
        as_actor(&app, h, move |c, a| {
            let list = boxes::list_boxes(c, a, fa)?;
            let mut by = std::collections::BTreeMap::<String, u64>::new();
            for b in &list {
                *by.entry(b.status.clone()).or_default() += 1;
            }
            Ok(serde_json::json!({"store": backend, "boxes": list.len(), "by_status": by}))
        })
        .await?,
    ))
}

async fn openapi() -> impl IntoResponse {
    Json(super::openapi::document())
}

async fn metrics(State(app): State<App>) -> Result<String, ApiError> {
    let fa = app.ctx.fault_after;
    let by = app
        .store
        .run(move |c| boxes::status_counts(c, fa).map_err(ApiError))
        .await?;
    let k = &app.ctx.counters;
    let mut out = String::new();
    let mut counter = |name: &str, help: &str, v: u64| {
        out.push_str(&format!(
            "# HELP {name} {help}\n# TYPE {name} counter\n{name} {v}\n"
        ));
    };
    counter(
        "mimamori_desk_batches_total",
        "Event batches stored.",
        k.batches.load(Relaxed),
    );
    counter(
        "mimamori_desk_events_stored_total",
        "Events stored.",
        k.stored.load(Relaxed),
    );
    counter(
        "mimamori_desk_events_duplicate_total",
        "Resent events dropped.",
        k.duplicates.load(Relaxed),
    );
    counter(
        "mimamori_desk_events_rejected_total",
        "Malformed events recorded as refused.",
        k.rejected.load(Relaxed),
    );
    counter(
        "mimamori_desk_events_gap_total",
        "Event numbers boxes never sent (outbox overflow).",
        k.gaps.load(Relaxed),
    );
    counter(
        "mimamori_desk_heartbeats_total",
        "Heartbeats.",
        k.heartbeats.load(Relaxed),
    );
    counter(
        "mimamori_desk_uplink_refused_total",
        "Box requests refused.",
        k.refused.load(Relaxed),
    );
    counter(
        "mimamori_desk_tls_refused_total",
        "TLS handshakes refused.",
        app.tls.refused.load(Relaxed),
    );
    counter(
        "mimamori_desk_mail_sent_total",
        "Notifications sent.",
        app.mail.sent.load(Relaxed),
    );
    counter(
        "mimamori_desk_mail_failed_total",
        "Notification sends that failed (retried).",
        app.mail.failed.load(Relaxed),
    );
    out.push_str("# HELP mimamori_desk_boxes Boxes by status.\n# TYPE mimamori_desk_boxes gauge\n");
    for (status, n) in by {
        out.push_str(&format!("mimamori_desk_boxes{{status=\"{status}\"}} {n}\n"));
    }
    Ok(out)
}
