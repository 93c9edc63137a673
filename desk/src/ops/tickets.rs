//! Customer questions ("I think I'm infected", "I opened a suspicious mail") and fault
//! tickets: a thread of messages, linked to the box's recent events.

use super::{Actor, Refusal, Result, audit, clean, now};
use crate::params;
use crate::store::{Conn, RowExt, Value};
use serde::Deserialize;

#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct NewTicket {
    /// Required for desk staff (whose customer?); a customer opens for themselves.
    #[serde(default)]
    pub customer_id: Option<String>,
    #[serde(default)]
    pub box_id: Option<String>,
    pub subject: String,
    pub body: String,
}

pub fn open(c: &mut dyn Conn, actor: &Actor, t: &NewTicket) -> Result<i64> {
    let customer = match (actor.customer(), &t.customer_id) {
        (Some(own), Some(asked)) if own != asked => {
            return Err(Refusal::Forbidden("customer_id: not your customer".into()));
        }
        (Some(own), _) => own.to_string(),
        (None, Some(asked)) => asked.clone(),
        (None, None) => return Err(Refusal::BadInput("customer_id: required".into())),
    };
    if matches!(actor, Actor::Box(_)) {
        return Err(Refusal::Forbidden("boxes do not open tickets".into()));
    }
    if c.one("SELECT 1 FROM customer WHERE id = ?", params![&customer])?
        .is_none()
    {
        return Err(Refusal::NotFound(format!(
            "customer {customer}: no such customer"
        )));
    }
    if let Some(b) = &t.box_id {
        match c.one("SELECT customer_id FROM box WHERE id = ?", params![b])? {
            Some(r) if r.text(0)? == customer => {}
            _ => {
                return Err(Refusal::NotFound(format!(
                    "box_id: {b} is not a box of customer {customer}"
                )));
            }
        }
    }
    let subject = clean("subject", &t.subject, 200)?;
    let body = clean("body", &t.body, 10_000)?;
    let at = now();
    let id = c
        .one(
            "INSERT INTO ticket (customer_id, box_id, kind, state, subject, opened, opened_by)
             VALUES (?, ?, 'question', 'open', ?, ?, ?) RETURNING id",
            params![&customer, t.box_id.clone(), subject, at, actor.name()],
        )?
        .ok_or_else(|| Refusal::Conflict("ticket not stored".into()))?
        .int(0)?;
    c.exec(
        "INSERT INTO ticket_message (ticket_id, at, author, body) VALUES (?, ?, ?, ?)",
        params![id, at, actor.name(), body],
    )?;
    audit(c, actor, "ticket.open", &id.to_string(), &customer)?;
    Ok(id)
}

const COLUMNS: &str =
    "id, customer_id, box_id, kind, state, subject, opened, opened_by, dispatch_at, closed";

fn view(r: &crate::store::Row) -> Result<serde_json::Value> {
    Ok(serde_json::json!({
        "id": r.int(0)?, "customer_id": r.text(1)?, "box_id": r.opt_text(2)?, "kind": r.text(3)?,
        "state": r.text(4)?, "subject": r.text(5)?, "opened": r.int(6)?, "opened_by": r.text(7)?,
        "dispatch_at": r.opt_int(8)?, "closed": r.opt_int(9)?,
    }))
}

#[derive(Clone, Debug, Default, Deserialize)]
pub struct Filter {
    pub kind: Option<String>,
    pub state: Option<String>,
    pub box_id: Option<String>,
}

pub fn list(c: &mut dyn Conn, actor: &Actor, f: &Filter) -> Result<Vec<serde_json::Value>> {
    let mut sql = format!("SELECT {COLUMNS} FROM ticket WHERE 1 = 1");
    let mut p: Vec<Value> = Vec::new();
    for (col, v) in [
        ("customer_id", actor.customer().map(str::to_string)),
        ("kind", f.kind.clone()),
        ("state", f.state.clone()),
        ("box_id", f.box_id.clone()),
    ] {
        if let Some(v) = v {
            sql.push_str(&format!(" AND {col} = ?"));
            p.push(v.into());
        }
    }
    sql.push_str(" ORDER BY id DESC LIMIT 500");
    c.query(&sql, &p)?.iter().map(view).collect()
}

fn owned(c: &mut dyn Conn, actor: &Actor, id: i64) -> Result<serde_json::Value> {
    let r = c
        .one(
            &format!("SELECT {COLUMNS} FROM ticket WHERE id = ?"),
            params![id],
        )?
        .ok_or_else(|| Refusal::NotFound(format!("ticket {id}: no such ticket")))?;
    if actor
        .customer()
        .is_some_and(|cu| r.text(1).ok().as_deref() != Some(cu))
    {
        return Err(Refusal::NotFound(format!("ticket {id}: no such ticket")));
    }
    view(&r)
}

/// A ticket with its messages and the recent events of its box (or of all the customer's
/// boxes when it names none), for the operator answering it.
pub fn get(c: &mut dyn Conn, actor: &Actor, id: i64) -> Result<serde_json::Value> {
    let mut t = owned(c, actor, id)?;
    let messages: Vec<serde_json::Value> = c
        .query(
            "SELECT at, author, body FROM ticket_message WHERE ticket_id = ? ORDER BY id",
            params![id],
        )?
        .iter()
        .map(|r| Ok(serde_json::json!({"at": r.int(0)?, "author": r.text(1)?, "body": r.text(2)?})))
        .collect::<Result<_>>()?;
    let recent = match t["box_id"].as_str() {
        Some(b) => c.query(
            "SELECT box_id, seq, ts, event_type, host, raw FROM event WHERE box_id = ? ORDER BY ts DESC LIMIT 20",
            params![b],
        )?,
        None => c.query(
            "SELECT e.box_id, e.seq, e.ts, e.event_type, e.host, e.raw FROM event e JOIN box b ON b.id = e.box_id
             WHERE b.customer_id = ? ORDER BY e.ts DESC LIMIT 20",
            params![t["customer_id"].as_str().unwrap_or_default()],
        )?,
    };
    let recent: Vec<serde_json::Value> = recent
        .iter()
        .map(|r| Ok(serde_json::json!({"box_id": r.text(0)?, "seq": r.int(1)?, "ts": r.int(2)?, "event_type": r.text(3)?, "host": r.opt_text(4)?, "event": serde_json::from_str::<serde_json::Value>(&r.text(5)?).unwrap_or_default()})))
        .collect::<Result<_>>()?;
    t["messages"] = messages.into();
    t["recent_events"] = recent.into();
    Ok(t)
}

pub fn reply(c: &mut dyn Conn, actor: &Actor, id: i64, body: &str) -> Result<()> {
    let t = owned(c, actor, id)?;
    if t["state"] == "closed" {
        return Err(Refusal::Conflict(format!("ticket {id}: closed")));
    }
    let body = clean("body", body, 10_000)?;
    c.exec(
        "INSERT INTO ticket_message (ticket_id, at, author, body) VALUES (?, ?, ?, ?)",
        params![id, now(), actor.name(), body],
    )?;
    Ok(())
}

pub fn close(c: &mut dyn Conn, actor: &Actor, id: i64, note: &str) -> Result<()> {
    let t = owned(c, actor, id)?;
    if t["state"] == "closed" {
        return Err(Refusal::Conflict(format!("ticket {id}: already closed")));
    }
    if t["kind"] == "fault" {
        actor.require_desk()?;
    }
    let at = now();
    c.exec(
        "UPDATE ticket SET state = 'closed', closed = ? WHERE id = ?",
        params![at, id],
    )?;
    c.exec(
        "INSERT INTO ticket_message (ticket_id, at, author, body) VALUES (?, ?, ?, ?)",
        params![
            id,
            at,
            actor.name(),
            format!(
                "closed: {}",
                note.chars()
                    .filter(|c| !c.is_control())
                    .take(2000)
                    .collect::<String>()
            )
        ],
    )?;
    audit(c, actor, "ticket.close", &id.to_string(), note)
}
