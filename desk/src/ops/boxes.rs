//! Customers, their sites, contacts and boxes; enrolment codes; what a box's status is.

use super::{Actor, Refusal, Result, audit, clean, now};
use crate::params;
use crate::store::{Conn, RowExt};
use mimamori_contracts::Plan;
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct NewCustomer {
    pub id: String,
    pub name: String,
}

#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct NewSite {
    pub id: String,
    pub customer_id: String,
    pub name: String,
    /// `east` or `west` (the on-site hours differ).
    pub area: crate::onsite::Area,
    #[serde(default)]
    pub island: bool,
    #[serde(default)]
    pub vpn: bool,
}

#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct NewContact {
    pub name: String,
    pub email: String,
    /// `ja` (default) or `en`.
    #[serde(default = "ja")]
    pub lang: String,
}

fn ja() -> String {
    "ja".into()
}

#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct NewBox {
    pub id: String,
    pub customer_id: String,
    pub site_id: String,
    pub name: String,
    pub plan: Plan,
    /// `rental` or `purchase`.
    pub kind: String,
    #[serde(default)]
    pub repair_24h: bool,
    /// `YYYY-MM-DD`, for purchased boxes.
    #[serde(default)]
    pub licence_end: Option<String>,
}

/// A box as the desk shows it (like Sophos Central: Connected / Last seen … / Fault).
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct BoxView {
    pub id: String,
    pub customer_id: String,
    pub site_id: String,
    pub name: String,
    pub plan: String,
    pub kind: String,
    pub repair_24h: bool,
    pub licence_end: Option<String>,
    pub enrolled: Option<i64>,
    pub revoked: Option<i64>,
    pub last_seen: Option<i64>,
    /// `not-enrolled`, `connected`, `last-seen`, `fault`, `revoked`.
    pub status: String,
    /// In words: "Connected", "Last seen 12 min ago", "Fault since …".
    pub status_text: String,
    pub acked_seq: i64,
    pub gaps: i64,
    pub heartbeat: Option<serde_json::Value>,
}

pub fn add_customer(c: &mut dyn Conn, actor: &Actor, n: &NewCustomer) -> Result<()> {
    actor.require_desk()?;
    check_id("id", &n.id)?;
    let name = clean("name", &n.name, 200)?;
    if c.one("SELECT 1 FROM customer WHERE id = ?", params![&n.id])?
        .is_some()
    {
        return Err(Refusal::Conflict(format!("customer {} exists", n.id)));
    }
    c.exec(
        "INSERT INTO customer (id, name, created) VALUES (?, ?, ?)",
        params![&n.id, name, now()],
    )?;
    audit(c, actor, "customer.add", &n.id, &n.name)
}

pub fn check_id(field: &str, id: &str) -> Result<()> {
    if crate::ca::valid_box_id(id) {
        Ok(())
    } else {
        Err(Refusal::BadInput(format!(
            "{field}: {id:?} — use lower-case letters, digits, '-' and '_' (at most 64)"
        )))
    }
}

fn customer_exists(c: &mut dyn Conn, id: &str) -> Result<()> {
    match c.one("SELECT 1 FROM customer WHERE id = ?", params![id])? {
        Some(_) => Ok(()),
        None => Err(Refusal::NotFound(format!(
            "customer {id}: no such customer"
        ))),
    }
}

pub fn list_customers(c: &mut dyn Conn, actor: &Actor) -> Result<Vec<serde_json::Value>> {
    let rows = match actor.customer() {
        Some(cu) => c.query(
            "SELECT id, name, created FROM customer WHERE id = ? ORDER BY id",
            params![cu],
        )?,
        None => c.query("SELECT id, name, created FROM customer ORDER BY id", &[])?,
    };
    rows.iter()
        .map(|r| {
            Ok(serde_json::json!({"id": r.text(0)?, "name": r.text(1)?, "created": r.int(2)?}))
        })
        .collect()
}

pub fn add_site(c: &mut dyn Conn, actor: &Actor, s: &NewSite) -> Result<()> {
    actor.require_desk()?;
    check_id("id", &s.id)?;
    customer_exists(c, &s.customer_id)?;
    let name = clean("name", &s.name, 200)?;
    if c.one("SELECT 1 FROM site WHERE id = ?", params![&s.id])?
        .is_some()
    {
        return Err(Refusal::Conflict(format!("site {} exists", s.id)));
    }
    c.exec(
        "INSERT INTO site (id, customer_id, name, area, island, vpn) VALUES (?, ?, ?, ?, ?, ?)",
        params![
            &s.id,
            &s.customer_id,
            name,
            s.area.as_str(),
            s.island,
            s.vpn
        ],
    )?;
    audit(c, actor, "site.add", &s.id, &s.customer_id)
}

pub fn add_contact(c: &mut dyn Conn, actor: &Actor, customer: &str, n: &NewContact) -> Result<i64> {
    actor.require_desk()?;
    customer_exists(c, customer)?;
    let name = clean("name", &n.name, 200)?;
    let email = clean("email", &n.email, 254)?;
    if email.parse::<lettre::Address>().is_err() {
        return Err(Refusal::BadInput(format!(
            "email: {email:?} is not a mail address"
        )));
    }
    if n.lang != "ja" && n.lang != "en" {
        return Err(Refusal::BadInput(format!(
            "lang: {:?} — use ja or en",
            n.lang
        )));
    }
    let row = c
        .one(
            "INSERT INTO contact (customer_id, name, email, lang) VALUES (?, ?, ?, ?) RETURNING id",
            params![customer, name, &email, &n.lang],
        )?
        .ok_or_else(|| Refusal::Conflict("contact not stored".into()))?;
    audit(c, actor, "contact.add", customer, &email)?;
    Ok(row.int(0)?)
}

/// (name, email, lang) of a customer's contacts.
pub fn contacts(c: &mut dyn Conn, customer: &str) -> Result<Vec<(String, String, String)>> {
    c.query(
        "SELECT name, email, lang FROM contact WHERE customer_id = ? ORDER BY id",
        params![customer],
    )?
    .iter()
    .map(|r| Ok((r.text(0)?, r.text(1)?, r.text(2)?)))
    .collect()
}

pub fn add_box(c: &mut dyn Conn, actor: &Actor, b: &NewBox) -> Result<()> {
    actor.require_desk()?;
    check_id("id", &b.id)?;
    customer_exists(c, &b.customer_id)?;
    let name = clean("name", &b.name, 200)?;
    match c.one(
        "SELECT customer_id FROM site WHERE id = ?",
        params![&b.site_id],
    )? {
        Some(r) if r.text(0)? == b.customer_id => {}
        Some(_) => {
            return Err(Refusal::BadInput(format!(
                "site_id: site {} belongs to another customer",
                b.site_id
            )));
        }
        None => {
            return Err(Refusal::NotFound(format!(
                "site {}: no such site",
                b.site_id
            )));
        }
    }
    if b.kind != "rental" && b.kind != "purchase" {
        return Err(Refusal::BadInput(format!(
            "kind: {:?} — use rental or purchase",
            b.kind
        )));
    }
    if let Some(d) = &b.licence_end {
        if mimamori_contracts::date::parse_date(d).is_none() {
            return Err(Refusal::BadInput(format!(
                "licence_end: {d:?} is not a YYYY-MM-DD date"
            )));
        }
    }
    if c.one("SELECT 1 FROM box WHERE id = ?", params![&b.id])?
        .is_some()
    {
        return Err(Refusal::Conflict(format!("box {} exists", b.id)));
    }
    c.exec(
        "INSERT INTO box (id, customer_id, site_id, name, plan, kind, repair_24h, licence_end, created, acked_seq, gaps, status)
         VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, 0, 0, 'not-enrolled')",
        params![
            &b.id,
            &b.customer_id,
            &b.site_id,
            name,
            b.plan.as_str(),
            &b.kind,
            b.repair_24h,
            b.licence_end.clone(),
            now()
        ],
    )?;
    audit(
        c,
        actor,
        "box.add",
        &b.id,
        &format!("{} {} {}", b.customer_id, b.plan.as_str(), b.kind),
    )
}

/// Changes what the contract says a box has (the plan drives the box at its next heartbeat).
pub fn set_plan(
    c: &mut dyn Conn,
    actor: &Actor,
    box_id: &str,
    plan: Plan,
    repair_24h: bool,
) -> Result<()> {
    actor.require_desk()?;
    let n = c.exec(
        "UPDATE box SET plan = ?, repair_24h = ? WHERE id = ?",
        params![plan.as_str(), repair_24h, box_id],
    )?;
    if n == 0 {
        return Err(Refusal::NotFound(format!("box {box_id}: no such box")));
    }
    audit(
        c,
        actor,
        "box.plan",
        box_id,
        &format!("{} repair_24h={repair_24h}", plan.as_str()),
    )
}

const BOX_COLUMNS: &str = "id, customer_id, site_id, name, plan, kind, repair_24h, licence_end, enrolled, revoked, last_seen, status, acked_seq, gaps, heartbeat";

fn view(r: &crate::store::Row, now: i64, fault_after: i64) -> Result<BoxView> {
    let last_seen = r.opt_int(10)?;
    let revoked = r.opt_int(9)?;
    let enrolled = r.opt_int(8)?;
    let stored = r.text(11)?;
    let (status, text) = if revoked.is_some() {
        ("revoked", "Revoked".to_string())
    } else if stored == "fault" {
        (
            "fault",
            format!(
                "Fault: no heartbeat since {}",
                last_seen.map_or("enrolment".into(), crate::clock::format_jst)
            ),
        )
    } else if enrolled.is_none() {
        ("not-enrolled", "Not enrolled".to_string())
    } else {
        match last_seen {
            Some(t) if now - t <= fault_after.min(120) => ("connected", "Connected".to_string()),
            Some(t) => ("last-seen", format!("Last seen {} ago", ago(now - t))),
            None => ("last-seen", "Enrolled, never seen".to_string()),
        }
    };
    Ok(BoxView {
        id: r.text(0)?,
        customer_id: r.text(1)?,
        site_id: r.text(2)?,
        name: r.text(3)?,
        plan: r.text(4)?,
        kind: r.text(5)?,
        repair_24h: r.int(6)? != 0,
        licence_end: r.opt_text(7)?,
        enrolled,
        revoked,
        last_seen,
        status: status.into(),
        status_text: text,
        acked_seq: r.int(12)?,
        gaps: r.int(13)?,
        heartbeat: r.opt_text(14)?.and_then(|t| serde_json::from_str(&t).ok()),
    })
}

fn ago(secs: i64) -> String {
    match secs {
        s if s < 120 => format!("{s} s"),
        s if s < 7200 => format!("{} min", s / 60),
        s if s < 172_800 => format!("{} h", s / 3600),
        s => format!("{} days", s / 86_400),
    }
}

pub fn list_boxes(c: &mut dyn Conn, actor: &Actor, fault_after: i64) -> Result<Vec<BoxView>> {
    let now = now();
    let rows = match actor.customer() {
        Some(cu) => c.query(
            &format!("SELECT {BOX_COLUMNS} FROM box WHERE customer_id = ? ORDER BY id"),
            params![cu],
        )?,
        None => c.query(&format!("SELECT {BOX_COLUMNS} FROM box ORDER BY id"), &[])?,
    };
    rows.iter().map(|r| view(r, now, fault_after)).collect()
}

/// One box, if the actor may see it (a customer sees "no such box" for another's).
pub fn get_box(c: &mut dyn Conn, actor: &Actor, id: &str, fault_after: i64) -> Result<BoxView> {
    let row = c.one(
        &format!("SELECT {BOX_COLUMNS} FROM box WHERE id = ?"),
        params![id],
    )?;
    let v = match row {
        Some(r) => view(&r, now(), fault_after)?,
        None => return Err(Refusal::NotFound(format!("box {id}: no such box"))),
    };
    if actor.customer().is_some_and(|cu| cu != v.customer_id) {
        return Err(Refusal::NotFound(format!("box {id}: no such box")));
    }
    Ok(v)
}

pub fn hash_code(code: &str) -> String {
    let d = Sha256::digest(code.trim().as_bytes());
    d.iter().map(|b| format!("{b:02x}")).collect()
}

/// A one-time enrolment code for a box, valid for `valid_secs`. Any earlier unused code
/// for the box stops working.
pub fn enrol_code(
    c: &mut dyn Conn,
    actor: &Actor,
    box_id: &str,
    valid_secs: i64,
) -> Result<(String, i64)> {
    actor.require_desk()?;
    if c.one("SELECT 1 FROM box WHERE id = ?", params![box_id])?
        .is_none()
    {
        return Err(Refusal::NotFound(format!("box {box_id}: no such box")));
    }
    let mut raw = [0u8; 15];
    getrandom::fill(&mut raw).map_err(|e| Refusal::Conflict(format!("no randomness: {e}")))?;
    // Base32 without look-alikes, in groups of five: easy to read out over the phone.
    const ALPHABET: &[u8] = b"ABCDEFGHJKLMNPQRSTUVWXYZ23456789";
    let chars: String = raw
        .iter()
        .map(|b| ALPHABET[(*b as usize) % 32] as char)
        .collect();
    let code = format!("{}-{}-{}", &chars[0..5], &chars[5..10], &chars[10..15]);
    let expires = now() + valid_secs;
    c.exec(
        "DELETE FROM enrol_code WHERE box_id = ? AND used IS NULL",
        params![box_id],
    )?;
    c.exec(
        "INSERT INTO enrol_code (code_hash, box_id, expires) VALUES (?, ?, ?)",
        params![hash_code(&code), box_id, expires],
    )?;
    audit(
        c,
        actor,
        "box.enrol-code",
        box_id,
        &format!("expires {expires}"),
    )?;
    Ok((code, expires))
}

/// Takes a code: the box it was for, once. Expired, used or unknown codes are refused alike.
pub fn use_code(c: &mut dyn Conn, code: &str) -> Result<String> {
    let h = hash_code(code);
    let row = c.one(
        "SELECT box_id, expires, used FROM enrol_code WHERE code_hash = ?",
        params![&h],
    )?;
    match row {
        Some(r) if r.opt_int(2)?.is_none() && r.int(1)? > now() => {
            c.exec(
                "UPDATE enrol_code SET used = ? WHERE code_hash = ?",
                params![now(), &h],
            )?;
            Ok(r.text(0)?)
        }
        _ => Err(Refusal::Forbidden(
            "code: unknown, expired or already used — ask the desk for a new one".into(),
        )),
    }
}

/// Records the certificate a box was given; an earlier certificate stops working.
pub fn enrolled(c: &mut dyn Conn, box_id: &str, serial: &str) -> Result<()> {
    c.exec(
        "UPDATE box SET cert_serial = ?, enrolled = ?, revoked = NULL, status = 'connected', last_seen = ? WHERE id = ?",
        params![serial, now(), now(), box_id],
    )?;
    audit(
        c,
        &Actor::Box(box_id.into()),
        "box.enrolled",
        box_id,
        serial,
    )
}

pub fn revoke(c: &mut dyn Conn, actor: &Actor, box_id: &str) -> Result<()> {
    actor.require_admin()?;
    let n = c.exec(
        "UPDATE box SET revoked = ? WHERE id = ?",
        params![now(), box_id],
    )?;
    if n == 0 {
        return Err(Refusal::NotFound(format!("box {box_id}: no such box")));
    }
    audit(c, actor, "box.revoke", box_id, "")
}

/// The box a certificate may speak for: refused when revoked, replaced or unknown.
pub fn authorise(c: &mut dyn Conn, peer: &crate::tls::PeerCert) -> Result<String> {
    let row = c.one(
        "SELECT cert_serial, revoked FROM box WHERE id = ?",
        params![&peer.box_id],
    )?;
    match row {
        None => Err(Refusal::Forbidden(format!(
            "box {}: not known to the desk",
            peer.box_id
        ))),
        Some(r) if r.opt_int(1)?.is_some() => Err(Refusal::Forbidden(format!(
            "box {}: its certificate was revoked",
            peer.box_id
        ))),
        Some(r) if r.opt_text(0)?.as_deref() != Some(peer.serial.as_str()) => {
            Err(Refusal::Forbidden(format!(
                "box {}: certificate {} was replaced by a later enrolment",
                peer.box_id, peer.serial
            )))
        }
        Some(_) => Ok(peer.box_id.clone()),
    }
}

/// A box's latest events (the caller checked the actor may see the box).
pub fn events(
    c: &mut dyn Conn,
    box_id: &str,
    event_type: Option<&str>,
    limit: i64,
) -> Result<Vec<serde_json::Value>> {
    let limit = limit.clamp(1, 1000);
    let rows = match event_type {
        Some(t) => c.query(
            "SELECT seq, ts, event_type, host, raw FROM event WHERE box_id = ? AND event_type = ? ORDER BY seq DESC LIMIT ?",
            params![box_id, t, limit],
        )?,
        None => c.query(
            "SELECT seq, ts, event_type, host, raw FROM event WHERE box_id = ? ORDER BY seq DESC LIMIT ?",
            params![box_id, limit],
        )?,
    };
    rows.iter()
        .map(|r| {
            Ok(serde_json::json!({
                "seq": r.int(0)?, "ts": r.int(1)?, "event_type": r.text(2)?, "host": r.opt_text(3)?,
                "event": serde_json::from_str::<serde_json::Value>(&r.text(4)?).unwrap_or_default(),
            }))
        })
        .collect()
}

/// Mail queued and sent, newest first (a customer sees their own).
pub fn notifications(c: &mut dyn Conn, actor: &Actor) -> Result<Vec<serde_json::Value>> {
    let rows = match actor.customer() {
        Some(cu) => c.query(
            "SELECT n.id, n.box_id, n.incident_id, n.kind, n.to_addr, n.subject, n.created, n.sent, n.attempts, n.error
             FROM notification n JOIN box b ON b.id = n.box_id WHERE b.customer_id = ? ORDER BY n.id DESC LIMIT 500",
            params![cu],
        )?,
        None => c.query(
            "SELECT n.id, n.box_id, n.incident_id, n.kind, n.to_addr, n.subject, n.created, n.sent, n.attempts, n.error
             FROM notification n ORDER BY n.id DESC LIMIT 500",
            &[],
        )?,
    };
    rows.iter()
        .map(|r| {
            Ok(serde_json::json!({
                "id": r.int(0)?, "box_id": r.text(1)?, "incident_id": r.opt_int(2)?, "kind": r.text(3)?,
                "to": r.text(4)?, "subject": r.text(5)?, "created": r.int(6)?, "sent": r.opt_int(7)?,
                "attempts": r.int(8)?, "error": r.opt_text(9)?,
            }))
        })
        .collect()
}

/// Boxes per status, for /metrics.
pub fn status_counts(c: &mut dyn Conn, fault_after: i64) -> Result<Vec<(String, u64)>> {
    let mut by = std::collections::BTreeMap::<String, u64>::new();
    for b in list_boxes(c, &Actor::System, fault_after)? {
        *by.entry(b.status).or_default() += 1;
    }
    Ok(by.into_iter().collect())
}
