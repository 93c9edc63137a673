//! The desk's two HTTP faces: the boxes' uplink (mutual TLS, `uplink`) and the operators'
//! and customers' API (bearer tokens with roles, `operator`).

pub mod auth;
pub mod openapi;
pub mod operator;
pub mod uplink;

use crate::ops::Refusal;
use crate::ops::incidents::Ctx;
use crate::ops::mailer::MailCounters;
use crate::store::{Store, StoreError};
use crate::tls::TlsCounters;
use axum::Json;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use std::sync::Arc;

/// Everything a handler needs.
pub struct Desk {
    pub store: Store,
    pub ctx: Arc<Ctx>,
    pub ca: crate::ca::Ca,
    pub heartbeat_secs: u64,
    pub tls: Arc<TlsCounters>,
    pub mail: Arc<MailCounters>,
    /// Where published pattern bundles are kept.
    pub patterns_dir: std::path::PathBuf,
    /// Where the boxes' monthly reports are kept.
    pub reports_dir: std::path::PathBuf,
}

pub type App = Arc<Desk>;

/// A refusal as an HTTP answer: `{"error": "..."}` with the status that says what kind.
pub struct ApiError(pub Refusal);

impl From<Refusal> for ApiError {
    fn from(r: Refusal) -> ApiError {
        ApiError(r)
    }
}

impl From<StoreError> for ApiError {
    fn from(e: StoreError) -> ApiError {
        ApiError(Refusal::Store(e))
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let status = match &self.0 {
            Refusal::BadInput(_) => StatusCode::UNPROCESSABLE_ENTITY,
            Refusal::NotFound(_) => StatusCode::NOT_FOUND,
            Refusal::Forbidden(_) => StatusCode::FORBIDDEN,
            Refusal::Conflict(_) => StatusCode::CONFLICT,
            Refusal::Store(StoreError::Full(_)) => StatusCode::INSUFFICIENT_STORAGE,
            Refusal::Store(StoreError::Unavailable(_)) => StatusCode::SERVICE_UNAVAILABLE,
            Refusal::Store(StoreError::Constraint(_)) => StatusCode::CONFLICT,
            Refusal::Store(StoreError::Other(_)) => StatusCode::INTERNAL_SERVER_ERROR,
        };
        (
            status,
            Json(serde_json::json!({"error": self.0.to_string()})),
        )
            .into_response()
    }
}

pub type ApiResult<T> = Result<Json<T>, ApiError>;

/// A JSON body that failed to parse, answered like every other refusal.
pub fn body<T: serde::de::DeserializeOwned>(bytes: &[u8]) -> Result<T, ApiError> {
    let de = &mut serde_json::Deserializer::from_slice(bytes);
    serde_path_to_error::deserialize(de).map_err(|e| {
        ApiError(Refusal::BadInput(format!(
            "body: {} at {}",
            e.inner(),
            e.path()
        )))
    })
}
