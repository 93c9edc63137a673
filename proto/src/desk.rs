//! The box ↔ desk uplink (HTTPS with mutual TLS): what the box's control plane sends and
//! what the desk answers. Events travel as an acknowledged stream like [`crate::stream`]:
//! every event carries its number in the box's outbox, the desk stores a batch and its
//! highest number in one transaction and answers with that number; the box forgets what
//! was acknowledged and sends the rest again after any failure, so nothing is lost and the
//! desk drops what it already has.

use serde::{Deserialize, Serialize};

/// `POST /v1/enrol` (the only request without a client certificate).
#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct EnrolRequest {
    /// The one-time code the desk operator gave for this box.
    pub code: String,
    /// A PKCS#10 request for the box's own key (the key never leaves the box).
    pub csr_pem: String,
    pub version: String,
}

#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct EnrolAnswer {
    pub box_id: String,
    pub cert_pem: String,
    pub ca_pem: String,
    /// Unix seconds.
    pub not_after: i64,
    pub heartbeat_secs: u64,
}

/// One event of the stream: its number in the box's outbox and the EVE record.
#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Numbered {
    pub seq: u64,
    pub event: serde_json::Value,
}

/// `POST /v1/events`.
#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct EventBatch {
    /// The box these events are from: must be the certificate's.
    pub box_id: String,
    /// The outbox's identity: a new outbox (a reinstalled box) numbers from 1 again.
    pub stream: String,
    /// Strictly increasing numbers.
    pub events: Vec<Numbered>,
}

/// Events per batch the desk takes at most.
pub const BATCH_MAX: usize = 5_000;

#[derive(Clone, Debug, Default, Serialize, Deserialize, PartialEq, Eq)]
pub struct EventAck {
    /// Every number up to this one is stored (or was refused as malformed and recorded so).
    pub acked: u64,
    pub stored: u64,
    pub duplicates: u64,
    pub rejected: u64,
    /// Numbers missing before this batch (the box's outbox overflowed).
    pub gap: u64,
}

/// Pattern state per kind, as the box's control plane knows it.
#[derive(Clone, Debug, Default, Serialize, Deserialize)]
pub struct PatternAge {
    pub kind: String,
    pub version: Option<u64>,
    /// Seconds since the active bundle was published.
    pub age_secs: Option<i64>,
    /// Seconds since the last successful check.
    pub since_check_secs: Option<i64>,
    pub stale: bool,
}

/// `POST /v1/heartbeat`, every minute.
#[derive(Clone, Debug, Default, Serialize, Deserialize)]
pub struct Heartbeat {
    pub box_id: String,
    /// Unix seconds on the box's clock.
    pub sent_at: i64,
    pub uptime_secs: u64,
    pub cp_version: String,
    /// `None` when the control plane cannot reach its gateway.
    pub gateway: Option<serde_json::Value>,
    pub policy_version: u64,
    pub patterns: Vec<PatternAge>,
    /// Events waiting in the outbox, and those it had to drop when full.
    pub outbox: u64,
    pub outbox_dropped: u64,
    /// `ok`, or what is wrong (`gateway unreachable`, `patterns stale`, …).
    pub health: Vec<String>,
}

/// The desk's answer to a heartbeat: what the contract says the box should run.
#[derive(Clone, Debug, Default, Serialize, Deserialize)]
pub struct HeartbeatAnswer {
    pub status: String,
    pub plan: Option<String>,
    /// The gateway layout of the plan (`light`, `standard`, `professional`).
    pub tier: Option<String>,
    pub repair: Option<String>,
    /// A purchased box's licence end (`YYYY-MM-DD`, the first day without a licence):
    /// from then on the box takes no pattern updates.
    #[serde(default)]
    pub licence_end: Option<String>,
}

/// One hour's count of one kind of event on the box (all of them, firewall and flows too,
/// which are not uplinked one by one).
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq, Eq)]
#[serde(deny_unknown_fields)]
pub struct HourCount {
    /// Start of the hour, Unix seconds.
    pub hour: i64,
    pub event_type: String,
    pub action: Option<String>,
    pub count: i64,
}

/// `POST /v1/hourly`: the box's hourly aggregates (the last complete hours; resending an
/// hour replaces it).
#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct HourlyBatch {
    pub box_id: String,
    pub hours: Vec<HourCount>,
}

/// Rows per hourly batch the desk takes at most.
pub const HOURLY_MAX: usize = 10_000;

/// An error answer from the desk.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct DeskError {
    pub error: String,
}
