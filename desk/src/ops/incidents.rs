//! Incidents at the desk: detections from the boxes' events open or fold into incidents
//! (rules in `crate::incident`), operators move them through their life cycle, and the
//! customer's contacts are told by mail (and, for serious ones, called back by phone).

use super::ingest::IngestCounters;
use super::{Actor, Refusal, Result, boxes, now};
use crate::incident::rules::RuleSet;
use crate::incident::state::{self, Action, IncidentState};
use crate::incident::{Detection, FoldDecision, HostKey, OpenIncident, Severity};
use crate::notify::text::{self, Lang, Notice};
use crate::params;
use crate::store::{Conn, Row, RowExt};
use serde::Serialize;

/// What the ingest and operator paths share.
pub struct Ctx {
    pub rules: RuleSet,
    pub counters: IngestCounters,
    pub desk_phone: String,
    pub desk_hours: String,
    /// Seconds without a heartbeat before a box is in fault.
    pub fault_after: i64,
}

#[derive(Clone, Debug, Serialize)]
pub struct IncidentView {
    pub id: i64,
    pub box_id: String,
    pub host: HostKey,
    pub threat: String,
    pub rule: String,
    pub severity: String,
    pub state: String,
    pub first_seen: i64,
    pub last_seen: i64,
    pub count: i64,
    pub summary: String,
}

const COLUMNS: &str = "i.id, i.box_id, i.host, i.threat, i.rule, i.severity, i.state, i.first_seen, i.last_seen, i.count, i.summary";

fn view(r: &Row) -> Result<IncidentView> {
    Ok(IncidentView {
        id: r.int(0)?,
        box_id: r.text(1)?,
        host: serde_json::from_str(&r.text(2)?).unwrap_or_default(),
        threat: r.text(3)?,
        rule: r.text(4)?,
        severity: r.text(5)?,
        state: r.text(6)?,
        first_seen: r.int(7)?,
        last_seen: r.int(8)?,
        count: r.int(9)?,
        summary: r.text(10)?,
    })
}

/// Opens or folds an incident for one detection (inside the batch's transaction).
pub fn detect(
    c: &mut dyn Conn,
    ctx: &Ctx,
    box_id: &str,
    customer: &str,
    d: &Detection,
) -> Result<()> {
    let host_key = d.host.key();
    let open = c
        .one(
            "SELECT id, last_seen, severity, count FROM incident
             WHERE box_id = ? AND host_key = ? AND threat = ? AND state NOT LIKE 'closed%'
             ORDER BY id DESC LIMIT 1",
            params![box_id, &host_key, &d.threat],
        )?
        .map(|r| -> Result<OpenIncident> {
            Ok(OpenIncident {
                id: r.int(0)?,
                last_seen: r.int(1)?,
                severity: r.text(2)?.parse().unwrap_or(Severity::Low),
                count: r.int(3)? as u64,
            })
        })
        .transpose()?;
    // An outbreak counts this threat's detections on the whole box, every PC: the same
    // worm on five PCs in ten minutes is the outbreak, not one PC calling home five times.
    let recent: Vec<i64> = match d.outbreak {
        Some(o) => c
            .query(
                "SELECT ts FROM detection WHERE box_id = ? AND threat = ? AND ts >= ? AND ts <= ?",
                params![box_id, &d.threat, d.ts - o.window_secs, d.ts],
            )?
            .iter()
            .map(|r| r.int(0))
            .collect::<std::result::Result<_, _>>()?,
        None => Vec::new(),
    };
    let t = now();
    let (id, tell, raised) = match crate::incident::fold(open.as_ref(), &recent, d) {
        FoldDecision::Open { severity } => {
            let host = serde_json::to_string(&d.host).unwrap_or_default();
            let id = c
                .one(
                    "INSERT INTO incident (box_id, host_key, threat, rule, severity, state, first_seen, last_seen, count, summary, host)
                     VALUES (?, ?, ?, ?, ?, 'new', ?, ?, 1, ?, ?) RETURNING id",
                    params![box_id, &host_key, &d.threat, &d.rule, severity.as_str(), d.ts, d.ts, &d.summary, host],
                )?
                .ok_or_else(|| Refusal::Conflict("incident not stored".into()))?
                .int(0)?;
            audit_step(
                c,
                id,
                "desk",
                "",
                "new",
                &format!("opened by rule {}: {}", d.rule, d.summary),
                t,
            )?;
            (id, Some(severity), false)
        }
        FoldDecision::Fold { id, raise_to } => {
            c.exec(
                "UPDATE incident SET count = count + 1,
                    last_seen = CASE WHEN last_seen < ? THEN ? ELSE last_seen END,
                    severity = COALESCE(?, severity)
                 WHERE id = ?",
                params![d.ts, d.ts, raise_to.map(|s| s.as_str()), id],
            )?;
            if let Some(s) = raise_to {
                let st = c
                    .one("SELECT state FROM incident WHERE id = ?", params![id])?
                    .map(|r| r.text(0))
                    .transpose()?
                    .unwrap_or_default();
                audit_step(
                    c,
                    id,
                    "desk",
                    &st,
                    &st,
                    &format!(
                        "severity raised to {s}: outbreak threshold of rule {} met",
                        d.rule
                    ),
                    t,
                )?;
            }
            (id, raise_to, true)
        }
    };
    c.exec(
        "INSERT INTO detection (incident_id, box_id, threat, ts) VALUES (?, ?, ?, ?)",
        params![id, box_id, &d.threat, d.ts],
    )?;
    if let Some(severity) = tell {
        if d.notify && severity >= ctx.rules.notify_threshold() {
            let why = Why {
                severity,
                kind: d.kind,
                outbreak: raised,
            };
            notify(c, ctx, id, box_id, customer, why)?;
        }
    }
    Ok(())
}

fn audit_step(
    c: &mut dyn Conn,
    id: i64,
    actor: &str,
    from: &str,
    to: &str,
    note: &str,
    at: i64,
) -> Result<()> {
    c.exec(
        "INSERT INTO incident_audit (incident_id, at, actor, from_state, to_state, note) VALUES (?, ?, ?, ?, ?, ?)",
        params![id, at, actor, from, to, note],
    )?;
    Ok(())
}

/// Why a notice goes out.
struct Why {
    severity: Severity,
    kind: crate::incident::ThreatKind,
    /// The incident was raised past its threshold (an outbreak), not opened.
    outbreak: bool,
}

/// Queues the mail to every contact of the customer, and a phone call for serious ones.
fn notify(
    c: &mut dyn Conn,
    ctx: &Ctx,
    id: i64,
    box_id: &str,
    customer: &str,
    why: Why,
) -> Result<()> {
    let severity = why.severity;
    let r = c
        .one(
            &format!("SELECT {COLUMNS}, b.name, s.name, cu.name FROM incident i
              JOIN box b ON b.id = i.box_id JOIN site s ON s.id = b.site_id JOIN customer cu ON cu.id = b.customer_id
              WHERE i.id = ?"),
            params![id],
        )?
        .ok_or_else(|| Refusal::NotFound(format!("incident {id}")))?;
    let v = view(&r)?;
    let notice = Notice {
        customer: r.text(13)?,
        box_name: r.text(11)?,
        site: r.text(12)?,
        incident_id: id,
        severity,
        threat_summary: v.summary.clone(),
        first_seen: v.first_seen,
        last_seen: v.last_seen,
        count: v.count as u64,
        host: v.host.clone(),
        kind: if why.outbreak {
            text::NoticeKind::Outbreak
        } else {
            why.kind.into()
        },
        desk_phone: ctx.desk_phone.clone(),
        desk_hours: ctx.desk_hours.clone(),
    };
    let t = now();
    for (_name, email, lang) in boxes::contacts(c, customer)? {
        let mail = text::render(&notice, if lang == "en" { Lang::En } else { Lang::Ja });
        c.exec(
            "INSERT INTO notification (box_id, incident_id, kind, to_addr, subject, body, created, attempts, next_try)
             VALUES (?, ?, 'incident', ?, ?, ?, ?, 0, ?)",
            params![box_id, id, email, mail.subject, mail.body, t, t],
        )?;
    }
    if severity >= Severity::High {
        c.exec(
            "INSERT INTO phone_call (box_id, incident_id, reason, created) VALUES (?, ?, ?, ?)",
            params![box_id, id, format!("{severity}: {}", v.summary), t],
        )?;
    }
    Ok(())
}

#[derive(Clone, Debug, Default, serde::Deserialize)]
pub struct Filter {
    pub state: Option<String>,
    pub box_id: Option<String>,
    pub open: Option<bool>,
    pub limit: Option<i64>,
}

pub fn list(c: &mut dyn Conn, actor: &Actor, f: &Filter) -> Result<Vec<IncidentView>> {
    let mut sql =
        format!("SELECT {COLUMNS} FROM incident i JOIN box b ON b.id = i.box_id WHERE 1 = 1");
    let mut p = Vec::new();
    if let Some(cu) = actor.customer() {
        sql.push_str(" AND b.customer_id = ?");
        p.push(cu.into());
    }
    if let Some(s) = &f.state {
        sql.push_str(" AND i.state = ?");
        p.push(s.into());
    }
    if let Some(b) = &f.box_id {
        sql.push_str(" AND i.box_id = ?");
        p.push(b.into());
    }
    match f.open {
        Some(true) => sql.push_str(" AND i.state NOT LIKE 'closed%'"),
        Some(false) => sql.push_str(" AND i.state LIKE 'closed%'"),
        None => {}
    }
    sql.push_str(" ORDER BY i.id DESC LIMIT ?");
    p.push(f.limit.unwrap_or(100).clamp(1, 1000).into());
    c.query(&sql, &p)?.iter().map(view).collect()
}

#[derive(Clone, Debug, Serialize)]
pub struct IncidentDetail {
    #[serde(flatten)]
    pub incident: IncidentView,
    pub audit: Vec<serde_json::Value>,
    pub notifications: Vec<serde_json::Value>,
}

pub fn get(c: &mut dyn Conn, actor: &Actor, id: i64) -> Result<IncidentDetail> {
    let mut sql =
        format!("SELECT {COLUMNS} FROM incident i JOIN box b ON b.id = i.box_id WHERE i.id = ?");
    let mut p = vec![id.into()];
    if let Some(cu) = actor.customer() {
        sql.push_str(" AND b.customer_id = ?");
        p.push(cu.into());
    }
    let incident = match c.one(&sql, &p)? {
        Some(r) => view(&r)?,
        None => {
            return Err(Refusal::NotFound(format!(
                "incident {id}: no such incident"
            )));
        }
    };
    let audit = c
        .query(
            "SELECT at, actor, from_state, to_state, note FROM incident_audit WHERE incident_id = ? ORDER BY id",
            params![id],
        )?
        .iter()
        .map(|r| Ok(serde_json::json!({"at": r.int(0)?, "actor": r.text(1)?, "from": r.text(2)?, "to": r.text(3)?, "note": r.text(4)?})))
        .collect::<Result<_>>()?;
    let notifications = c
        .query(
            "SELECT id, to_addr, subject, created, sent, attempts, error FROM notification WHERE incident_id = ? ORDER BY id",
            params![id],
        )?
        .iter()
        .map(|r| Ok(serde_json::json!({"id": r.int(0)?, "to": r.text(1)?, "subject": r.text(2)?, "created": r.int(3)?, "sent": r.opt_int(4)?, "attempts": r.int(5)?, "error": r.opt_text(6)?})))
        .collect::<Result<_>>()?;
    Ok(IncidentDetail {
        incident,
        audit,
        notifications,
    })
}

/// An operator moves an incident on: the step is checked against the life cycle and
/// recorded with who did it, when and why.
pub fn act(
    c: &mut dyn Conn,
    actor: &Actor,
    id: i64,
    action: &str,
    note: &str,
) -> Result<IncidentView> {
    actor.require_desk()?;
    let action: Action = action
        .parse()
        .map_err(|e| Refusal::BadInput(format!("action: {e}")))?;
    let row = c
        .one("SELECT state FROM incident WHERE id = ?", params![id])?
        .ok_or_else(|| Refusal::NotFound(format!("incident {id}: no such incident")))?;
    let from: IncidentState = row
        .text(0)?
        .parse()
        .map_err(|e| Refusal::Conflict(format!("incident {id}: stored state unreadable: {e}")))?;
    let (to, entry) = state::step(from, action, &actor.name(), now(), note)
        .map_err(|e| Refusal::Conflict(format!("incident {id}: {e}")))?;
    c.exec(
        "UPDATE incident SET state = ? WHERE id = ?",
        params![to.as_str(), id],
    )?;
    audit_step(
        c,
        id,
        &entry.actor,
        from.as_str(),
        to.as_str(),
        &entry.note,
        entry.at,
    )?;
    let r = c
        .one(
            &format!("SELECT {COLUMNS} FROM incident i WHERE i.id = ?"),
            params![id],
        )?
        .ok_or_else(|| Refusal::NotFound(format!("incident {id}")))?;
    view(&r)
}

/// The phone follow-ups: offered to operators only while the desk phones (9:00–21:00 JST).
pub fn calls(c: &mut dyn Conn, actor: &Actor, at: i64) -> Result<serde_json::Value> {
    actor.require_desk()?;
    let open = crate::clock::phone_open(at);
    let rows = c.query(
        "SELECT p.id, p.box_id, p.incident_id, p.reason, p.created, cu.name FROM phone_call p
         JOIN box b ON b.id = p.box_id JOIN customer cu ON cu.id = b.customer_id
         WHERE p.done IS NULL ORDER BY p.id",
        &[],
    )?;
    let waiting = rows.len();
    let offered: Vec<serde_json::Value> = if open {
        rows.iter()
            .map(|r| Ok(serde_json::json!({"id": r.int(0)?, "box_id": r.text(1)?, "incident_id": r.opt_int(2)?, "reason": r.text(3)?, "created": r.int(4)?, "customer": r.text(5)?})))
            .collect::<Result<_>>()?
    } else {
        Vec::new()
    };
    Ok(serde_json::json!({
        "phone_open": open,
        "next_slot": crate::clock::next_phone_slot(at),
        "waiting": waiting,
        "offered": offered,
    }))
}

pub fn call_done(c: &mut dyn Conn, actor: &Actor, id: i64, note: &str) -> Result<()> {
    actor.require_desk()?;
    if !crate::clock::phone_open(now()) {
        return Err(Refusal::Conflict(
            "the desk phones customers 9:00–21:00 Japan time only".into(),
        ));
    }
    let n = c.exec(
        "UPDATE phone_call SET done = ?, operator = ?, note = ? WHERE id = ? AND done IS NULL",
        params![now(), actor.name(), note, id],
    )?;
    if n == 0 {
        return Err(Refusal::NotFound(format!("call {id}: none waiting")));
    }
    Ok(())
}
