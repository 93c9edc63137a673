//! The boxes' side (`https://desk:8443/v1/…`, mutual TLS): enrolment with a one-time
//! code, event batches and heartbeats from an enrolled box's certificate.

use super::{ApiError, ApiResult, App, body};
use crate::ops::{self, Refusal};
use crate::tls::Peer;
use axum::body::Bytes;
use axum::extract::{DefaultBodyLimit, Path, State};
use axum::routing::{get, post};
use axum::{Extension, Json, Router};
use mimamori_proto::desk::{
    EnrolAnswer, EnrolRequest, EventAck, EventBatch, Heartbeat, HeartbeatAnswer,
};
use std::sync::atomic::Ordering::Relaxed;

pub fn router(app: App) -> Router {
    Router::new()
        .route("/v1/enrol", post(enrol))
        .route("/v1/events", post(events))
        .route("/v1/heartbeat", post(heartbeat))
        .route("/v1/hourly", post(hourly))
        .route("/v1/whoami", get(whoami))
        .route("/v1/reports/{month}/{lang}/done", post(report_done))
        .route("/v1/reports/{month}/{lang}/{format}", post(report_upload))
        .route("/v1/patterns", get(patterns))
        .route("/v1/patterns/{kind}/{version}", get(pattern_file))
        .layer(DefaultBodyLimit::max(32 << 20))
        .with_state(app)
}

/// The box a request's certificate speaks for, or why not.
fn certified(app: &App, peer: &Peer) -> Result<crate::tls::PeerCert, ApiError> {
    match &peer.0 {
        Some(p) => Ok(p.clone()),
        None => {
            app.ctx.counters.refused.fetch_add(1, Relaxed);
            Err(ApiError(Refusal::Forbidden(
                "a client certificate from the desk is required: enrol the box first".into(),
            )))
        }
    }
}

async fn enrol(State(app): State<App>, bytes: Bytes) -> ApiResult<EnrolAnswer> {
    let req: EnrolRequest = body(&bytes)?;
    let a = app.clone();
    let answer = app
        .store
        .run(move |c| ops::ingest::enrol(c, &a.ca, &req, a.heartbeat_secs).map_err(ApiError))
        .await?;
    Ok(Json(answer))
}

async fn events(
    State(app): State<App>,
    Extension(peer): Extension<Peer>,
    bytes: Bytes,
) -> ApiResult<EventAck> {
    let cert = certified(&app, &peer)?;
    let batch: EventBatch = body(&bytes)?;
    let a = app.clone();
    let r = app
        .store
        .run(move |c| {
            let box_id = ops::boxes::authorise(c, &cert)?;
            ops::ingest::events(c, &a.ctx, &box_id, &batch).map_err(ApiError)
        })
        .await;
    let counters = &app.ctx.counters;
    match &r {
        Ok(ack) => {
            counters.stored.fetch_add(ack.stored, Relaxed);
            counters.duplicates.fetch_add(ack.duplicates, Relaxed);
            counters.rejected.fetch_add(ack.rejected, Relaxed);
            counters.gaps.fetch_add(ack.gap, Relaxed);
        }
        Err(_) => {
            counters.refused.fetch_add(1, Relaxed);
        }
    }
    Ok(Json(r?))
}

async fn heartbeat(
    State(app): State<App>,
    Extension(peer): Extension<Peer>,
    bytes: Bytes,
) -> ApiResult<HeartbeatAnswer> {
    let cert = certified(&app, &peer)?;
    let hb: Heartbeat = body(&bytes)?;
    let a = app.clone();
    let answer = app
        .store
        .run(move |c| {
            let box_id = ops::boxes::authorise(c, &cert)?;
            ops::ingest::heartbeat(c, &a.ctx, &box_id, &hb).map_err(ApiError)
        })
        .await?;
    Ok(Json(answer))
}

async fn whoami(
    State(app): State<App>,
    Extension(peer): Extension<Peer>,
) -> ApiResult<serde_json::Value> {
    let cert = certified(&app, &peer)?;
    let box_id = app
        .store
        .run(move |c| ops::boxes::authorise(c, &cert).map_err(ApiError))
        .await?;
    Ok(Json(serde_json::json!({"box_id": box_id})))
}

/// The newest bundle of each kind, for an enrolled box.
async fn patterns(
    State(app): State<App>,
    Extension(peer): Extension<Peer>,
) -> ApiResult<Vec<ops::patterns::Published>> {
    let cert = certified(&app, &peer)?;
    let list = app
        .store
        .run(move |c| {
            ops::boxes::authorise(c, &cert)?;
            ops::patterns::latest(c).map_err(ApiError)
        })
        .await?;
    Ok(Json(list))
}

async fn pattern_file(
    State(app): State<App>,
    Extension(peer): Extension<Peer>,
    Path((kind, version)): Path<(String, u64)>,
) -> Result<Vec<u8>, ApiError> {
    let cert = certified(&app, &peer)?;
    let path = app
        .store
        .run(move |c| {
            ops::boxes::authorise(c, &cert)?;
            ops::patterns::file(c, &kind, version).map_err(ApiError)
        })
        .await?;
    tokio::task::spawn_blocking(move || {
        std::fs::read(&path).map_err(|e| format!("{}: {e}", path.display()))
    })
    .await
    .map_err(|e| ApiError(Refusal::NotFound(e.to_string())))?
    .map_err(|e| ApiError(Refusal::NotFound(e)))
}

/// One rendering (html, pdf) of the box's monthly report.
async fn report_upload(
    State(app): State<App>,
    Extension(peer): Extension<Peer>,
    Path((month, lang, format)): Path<(String, String, String)>,
    bytes: Bytes,
) -> ApiResult<serde_json::Value> {
    let cert = certified(&app, &peer)?;
    let dir = app.reports_dir.clone();
    app.store
        .run(move |c| {
            let box_id = ops::boxes::authorise(c, &cert)?;
            ops::reports::store(c, &dir, &box_id, &month, &lang, &format, &bytes).map_err(ApiError)
        })
        .await?;
    Ok(Json(serde_json::json!({"stored": true})))
}

/// The box uploaded every rendering of a month: the desk mails it (once).
async fn report_done(
    State(app): State<App>,
    Extension(peer): Extension<Peer>,
    Path((month, lang)): Path<(String, String)>,
) -> ApiResult<serde_json::Value> {
    let cert = certified(&app, &peer)?;
    let a = app.clone();
    let n = app
        .store
        .run(move |c| {
            let box_id = ops::boxes::authorise(c, &cert)?;
            ops::reports::done(c, &a.ctx, &box_id, &month, &lang).map_err(ApiError)
        })
        .await?;
    Ok(Json(serde_json::json!({"mails": n})))
}

async fn hourly(
    State(app): State<App>,
    Extension(peer): Extension<Peer>,
    bytes: Bytes,
) -> ApiResult<serde_json::Value> {
    let cert = certified(&app, &peer)?;
    let batch: mimamori_proto::desk::HourlyBatch = body(&bytes)?;
    let n = app
        .store
        .run(move |c| {
            let box_id = ops::boxes::authorise(c, &cert)?;
            ops::ingest::hourly(c, &box_id, &batch).map_err(ApiError)
        })
        .await?;
    Ok(Json(serde_json::json!({"stored": n})))
}
