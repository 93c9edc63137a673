//! What boxes send: enrolment, event batches (an acknowledged stream per box) and
//! heartbeats.

use super::{Actor, Refusal, Result, audit, boxes, faults, incidents, now};
use crate::params;
use crate::store::{Conn, RowExt, Value};
use mimamori_proto::desk::{BATCH_MAX, EventAck, EventBatch, Heartbeat, HeartbeatAnswer};
use std::sync::atomic::{AtomicU64, Ordering::Relaxed};

/// Longest EVE record kept.
const EVENT_MAX: usize = 64 * 1024;
/// Longest heartbeat kept.
const HEARTBEAT_MAX: usize = 64 * 1024;

#[derive(Default)]
pub struct IngestCounters {
    pub batches: AtomicU64,
    pub stored: AtomicU64,
    pub duplicates: AtomicU64,
    pub rejected: AtomicU64,
    pub gaps: AtomicU64,
    pub heartbeats: AtomicU64,
    pub refused: AtomicU64,
}

/// One event after checking: stored, or recorded as refused with the reason.
enum Checked {
    Good {
        ts: i64,
        event_type: String,
        host: Option<String>,
        raw: String,
    },
    Bad {
        reason: String,
        raw: String,
    },
}

fn check(event: &serde_json::Value) -> Checked {
    let raw = event.to_string();
    let bad = |reason: &str, raw: String| Checked::Bad {
        reason: reason.to_string(),
        raw: raw.chars().take(4096).collect(),
    };
    if raw.len() > EVENT_MAX {
        return bad("longer than 64 KiB", raw);
    }
    let Some(obj) = event.as_object() else {
        return bad("not a JSON object", raw);
    };
    let event_type = match obj.get("event_type").and_then(|v| v.as_str()) {
        Some(t)
            if !t.is_empty()
                && t.len() <= 32
                && t.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_') =>
        {
            t.to_string()
        }
        Some(_) => return bad("event_type: not a short name", raw),
        None => return bad("event_type: missing", raw),
    };
    let ts = match obj
        .get("timestamp")
        .and_then(|v| v.as_str())
        .and_then(crate::clock::parse_eve_timestamp)
    {
        Some(t) => t,
        None => return bad("timestamp: missing or not an EVE time", raw),
    };
    let host = lan_host(event);
    Checked::Good {
        ts,
        event_type,
        host,
        raw,
    }
}

/// The LAN host an event is about, for lookups by PC: its MAC where the event carries one,
/// else the address on the LAN side.
fn lan_host(event: &serde_json::Value) -> Option<String> {
    let s = |p: &str| {
        event
            .pointer(p)
            .and_then(|v| v.as_str())
            .filter(|t| !t.is_empty())
    };
    if let Some(mac) = s("/web/src_mac").or_else(|| s("/host/mac")) {
        return crate::incident::normalize_mac(mac).map(|m| format!("mac:{m}"));
    }
    let ip = if s("/in_iface") == Some("wan") {
        s("/dest_ip")
    } else {
        s("/src_ip")
    };
    ip.and_then(crate::incident::normalize_ip)
        .map(|i| format!("ip:{i}"))
}

/// Stores a batch from `box_id` (the certificate's) and answers with what is acknowledged.
/// Numbers at or below the box's acknowledged one are resends and are dropped; the
/// numbers stored and the new acknowledged number are one transaction.
pub fn events(
    c: &mut dyn Conn,
    ctx: &incidents::Ctx,
    box_id: &str,
    batch: &EventBatch,
) -> Result<EventAck> {
    if batch.box_id != box_id {
        return Err(Refusal::Forbidden(format!(
            "box_id: this batch is for box {:?} but was sent with the certificate of box {box_id}",
            batch.box_id
        )));
    }
    if batch.events.len() > BATCH_MAX {
        return Err(Refusal::BadInput(format!(
            "events: more than {BATCH_MAX} in one batch"
        )));
    }
    if batch.stream.is_empty() || batch.stream.len() > 64 {
        return Err(Refusal::BadInput("stream: 1 to 64 characters".into()));
    }
    if let Some(w) = batch.events.windows(2).find(|w| w[1].seq <= w[0].seq) {
        return Err(Refusal::BadInput(format!(
            "events: numbers must increase ({} then {})",
            w[0].seq, w[1].seq
        )));
    }
    if batch.events.first().is_some_and(|e| e.seq == 0) {
        return Err(Refusal::BadInput("events: numbers start at 1".into()));
    }
    let row = c
        .one(
            "SELECT customer_id, stream, acked_seq FROM box WHERE id = ?",
            params![box_id],
        )?
        .ok_or_else(|| Refusal::NotFound(format!("box {box_id}: not known to the desk")))?;
    let customer = row.text(0)?;
    let stream = row.opt_text(1)?;
    let mut acked = row.int(2)? as u64;
    let first = batch.events.first().map_or(0, |e| e.seq);
    if stream.as_deref() != Some(batch.stream.as_str()) {
        // A new outbox (reinstalled box, new database): it numbers from 1 again.
        if stream.is_some() && first != 1 {
            return Err(Refusal::Conflict(format!(
                "stream: {:?} is not the stream the desk follows for box {box_id}, and does not start at 1",
                batch.stream
            )));
        }
        audit(
            c,
            &Actor::Box(box_id.into()),
            "box.stream",
            box_id,
            &format!("{:?} → {:?} after {acked}", stream, batch.stream),
        )?;
        acked = 0;
    }
    let fresh: Vec<_> = batch.events.iter().filter(|e| e.seq > acked).collect();
    let mut ack = EventAck {
        acked,
        duplicates: (batch.events.len() - fresh.len()) as u64,
        ..EventAck::default()
    };
    let Some(last) = fresh.last() else {
        return Ok(ack);
    };
    ack.gap = fresh[0].seq - acked - 1;
    // Compare-and-set on the acknowledged number: a concurrent resend of the same batch
    // waits for this one and then finds nothing to do.
    let moved = c.exec(
        "UPDATE box SET acked_seq = ?, stream = ?, gaps = gaps + ? WHERE id = ? AND acked_seq = ?",
        params![
            last.seq as i64,
            &batch.stream,
            ack.gap as i64,
            box_id,
            row.int(2)?
        ],
    )?;
    if moved == 0 {
        return Err(Refusal::Conflict(
            "another batch of this box was stored meanwhile: send again".into(),
        ));
    }
    ack.acked = last.seq;
    let received = now();
    let mut good: Vec<(u64, i64, String, Option<String>, String)> = Vec::with_capacity(fresh.len());
    let mut detections = Vec::new();
    for e in &fresh {
        match check(&e.event) {
            Checked::Good {
                ts,
                event_type,
                host,
                raw,
            } => {
                if let Some(d) = ctx.rules.classify(&e.event) {
                    detections.push(d);
                }
                good.push((e.seq, ts, event_type, host, raw));
            }
            Checked::Bad { reason, raw } => {
                c.exec(
                    "INSERT INTO rejected_event (box_id, seq, received, reason, raw) VALUES (?, ?, ?, ?, ?)",
                    params![box_id, e.seq as i64, received, reason, raw],
                )?;
                ack.rejected += 1;
            }
        }
    }
    let rows: Vec<Vec<Value>> = good
        .into_iter()
        .map(|(seq, ts, ty, host, raw)| {
            vec![
                Value::from(box_id),
                Value::Int(seq as i64),
                Value::Int(ts),
                Value::Int(received),
                Value::from(ty),
                Value::from(host),
                Value::from(raw),
            ]
        })
        .collect();
    c.append(
        "event",
        &[
            "box_id",
            "seq",
            "ts",
            "received",
            "event_type",
            "host",
            "raw",
        ],
        &rows,
    )?;
    ack.stored = rows.len() as u64;
    for d in &detections {
        incidents::detect(c, ctx, box_id, &customer, d)?;
    }
    let counters = &ctx.counters;
    counters.batches.fetch_add(1, Relaxed);
    Ok(ack)
}

/// Records a heartbeat: the box is connected; a fault it was in is over.
pub fn heartbeat(
    c: &mut dyn Conn,
    ctx: &incidents::Ctx,
    box_id: &str,
    hb: &Heartbeat,
) -> Result<HeartbeatAnswer> {
    if hb.box_id != box_id {
        return Err(Refusal::Forbidden(format!(
            "box_id: this heartbeat is for box {:?} but was sent with the certificate of box {box_id}",
            hb.box_id
        )));
    }
    let text = serde_json::to_string(hb).map_err(|e| Refusal::BadInput(e.to_string()))?;
    if text.len() > HEARTBEAT_MAX {
        return Err(Refusal::BadInput("heartbeat: longer than 64 KiB".into()));
    }
    let row = c
        .one(
            "SELECT status, plan, repair_24h, licence_end FROM box WHERE id = ?",
            params![box_id],
        )?
        .ok_or_else(|| Refusal::NotFound(format!("box {box_id}: not known to the desk")))?;
    let t = now();
    if row.text(0)? == "fault" {
        faults::recovered(c, ctx, box_id, t)?;
    }
    c.exec(
        "UPDATE box SET heartbeat = ?, last_seen = ?, status = 'connected' WHERE id = ?",
        params![text, t, box_id],
    )?;
    ctx.counters.heartbeats.fetch_add(1, Relaxed);
    let plan: Option<mimamori_contracts::Plan> = row.text(1)?.parse().ok();
    let repair_24h = row.int(2)? != 0;
    let profile = plan.map(|p| mimamori_contracts::profile(p, repair_24h));
    Ok(HeartbeatAnswer {
        status: "connected".into(),
        plan: profile.map(|p| p.plan.as_str().to_string()),
        tier: profile.map(|p| p.tier.as_str().to_string()),
        repair: profile.map(|p| match p.repair {
            mimamori_contracts::RepairWindow::AllDay => "24h".to_string(),
            mimamori_contracts::RepairWindow::Daytime { from_hour, to_hour } => {
                format!("{from_hour}:00-{to_hour}:00")
            }
        }),
        licence_end: row.opt_text(3)?,
    })
}

/// Takes an enrolment code and a signing request; answers with the box's certificate.
pub fn enrol(
    c: &mut dyn Conn,
    ca: &crate::ca::Ca,
    req: &mimamori_proto::desk::EnrolRequest,
    heartbeat_secs: u64,
) -> Result<mimamori_proto::desk::EnrolAnswer> {
    let box_id = boxes::use_code(c, &req.code)?;
    let t = now();
    let issued = ca
        .issue_box(
            &req.csr_pem,
            &box_id,
            t - 300,
            t + crate::ca::BOX_CERT_DAYS * 86_400,
        )
        .map_err(|e| Refusal::BadInput(format!("{e:#}")))?;
    boxes::enrolled(c, &box_id, &issued.serial)?;
    Ok(mimamori_proto::desk::EnrolAnswer {
        box_id,
        cert_pem: issued.cert_pem,
        ca_pem: ca.cert_pem().to_string(),
        not_after: issued.not_after,
        heartbeat_secs,
    })
}

/// Stores a box's hourly aggregates; an hour sent again replaces the earlier counts.
pub fn hourly(
    c: &mut dyn Conn,
    box_id: &str,
    batch: &mimamori_proto::desk::HourlyBatch,
) -> Result<u64> {
    if batch.box_id != box_id {
        return Err(Refusal::Forbidden(format!(
            "box_id: these counts are for box {:?} but were sent with the certificate of box {box_id}",
            batch.box_id
        )));
    }
    if batch.hours.len() > mimamori_proto::desk::HOURLY_MAX {
        return Err(Refusal::BadInput(format!(
            "hours: more than {}",
            mimamori_proto::desk::HOURLY_MAX
        )));
    }
    for (i, h) in batch.hours.iter().enumerate() {
        let name_ok = |t: &str| {
            !t.is_empty()
                && t.len() <= 32
                && t.bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-')
        };
        if h.hour % 3600 != 0
            || h.count < 0
            || !name_ok(&h.event_type)
            || h.action.as_deref().is_some_and(|a| !name_ok(a))
        {
            return Err(Refusal::BadInput(format!(
                "hours[{i}]: an hour start, a short event type and action, a count ≥ 0"
            )));
        }
        c.exec(
            "INSERT INTO hourly (box_id, hour, event_type, action, count) VALUES (?, ?, ?, ?, ?)
             ON CONFLICT (box_id, hour, event_type, action) DO UPDATE SET count = excluded.count",
            params![
                box_id,
                h.hour,
                &h.event_type,
                h.action.clone().unwrap_or_default(),
                h.count
            ],
        )?;
    }
    Ok(batch.hours.len() as u64)
}

/// A box's hourly aggregates between two times (Unix seconds).
pub fn hourly_view(
    c: &mut dyn Conn,
    box_id: &str,
    from: i64,
    to: i64,
) -> Result<Vec<serde_json::Value>> {
    c.query(
        "SELECT hour, event_type, action, count FROM hourly WHERE box_id = ? AND hour >= ? AND hour < ? ORDER BY hour, event_type, action",
        params![box_id, from, to],
    )?
    .iter()
    .map(|r| Ok(serde_json::json!({"hour": r.int(0)?, "event_type": r.text(1)?, "action": r.text(2)?, "count": r.int(3)?})))
    .collect()
}
