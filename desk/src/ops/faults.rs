//! Faults: a box silent for longer than the threshold gets a fault ticket and a repair
//! dispatch inside its plan's window (9:00–17:00 every day, or at once with the 24 h
//! option); its next heartbeat closes the ticket with a note.

use super::{Actor, Result, audit, boxes, incidents::Ctx};
use crate::notify::text::{self, Lang};
use crate::params;
use crate::store::{Conn, RowExt};

/// Puts every box silent for longer than `ctx.fault_after` into fault; returns their ids.
pub fn sweep(c: &mut dyn Conn, ctx: &Ctx, at: i64) -> Result<Vec<String>> {
    let rows = c.query(
        "SELECT b.id, b.customer_id, b.name, b.plan, b.repair_24h, b.last_seen, s.name
         FROM box b JOIN site s ON s.id = b.site_id
         WHERE b.status = 'connected' AND b.revoked IS NULL AND b.enrolled IS NOT NULL AND b.last_seen < ?",
        params![at - ctx.fault_after],
    )?;
    let mut faulted = Vec::new();
    for r in rows {
        let (id, customer, name) = (r.text(0)?, r.text(1)?, r.text(2)?);
        let plan: mimamori_contracts::Plan = r
            .text(3)?
            .parse()
            .unwrap_or(mimamori_contracts::Plan::Light);
        let profile = mimamori_contracts::profile(plan, r.int(4)? != 0);
        let last_seen = r.int(5)?;
        let dispatch = crate::clock::next_dispatch(profile.repair, at);
        c.exec("UPDATE box SET status = 'fault' WHERE id = ?", params![&id])?;
        let subject = format!(
            "Box {id} ({name}): no heartbeat since {}",
            crate::clock::format_jst(last_seen)
        );
        let ticket = c
            .one(
                "INSERT INTO ticket (customer_id, box_id, kind, state, subject, opened, opened_by, dispatch_at)
                 VALUES (?, ?, 'fault', 'open', ?, ?, 'desk', ?) RETURNING id",
                params![&customer, &id, subject, at, dispatch],
            )?
            .map(|r| r.int(0))
            .transpose()?
            .unwrap_or(0);
        let window = match profile.repair {
            mimamori_contracts::RepairWindow::AllDay => "24 h repair option".to_string(),
            mimamori_contracts::RepairWindow::Daytime { from_hour, to_hour } => {
                format!("repair window {from_hour}:00–{to_hour}:00 every day")
            }
        };
        c.exec(
            "INSERT INTO ticket_message (ticket_id, at, author, body) VALUES (?, ?, 'desk', ?)",
            params![
                ticket,
                at,
                format!(
                    "No heartbeat for {} min. Repair visit to be dispatched at {} ({window}).",
                    (at - last_seen) / 60,
                    crate::clock::format_jst(dispatch)
                )
            ],
        )?;
        let site = r.text(6)?;
        for (_, email, lang) in boxes::contacts(c, &customer)? {
            let lang = if lang == "en" { Lang::En } else { Lang::Ja };
            let mail = text::render_fault(
                &text::BoxNotice {
                    customer: customer.clone(),
                    box_name: name.clone(),
                    site: site.clone(),
                    last_heartbeat: last_seen,
                    at,
                    repair: profile.repair,
                    desk_phone: ctx.desk_phone.clone(),
                    desk_hours: ctx.desk_hours.clone(),
                },
                lang,
            );
            queue_mail(c, &id, &email, &mail.subject, &mail.body, at)?;
        }
        audit(
            c,
            &Actor::System,
            "box.fault",
            &id,
            &format!("ticket {ticket}, dispatch {dispatch}"),
        )?;
        faulted.push(id);
    }
    Ok(faulted)
}

pub(super) fn queue_mail(
    c: &mut dyn Conn,
    box_id: &str,
    to: &str,
    subject: &str,
    body: &str,
    at: i64,
) -> Result<()> {
    c.exec(
        "INSERT INTO notification (box_id, kind, to_addr, subject, body, created, attempts, next_try)
         VALUES (?, 'fault', ?, ?, ?, ?, 0, ?)",
        params![box_id, to, subject, body, at, at],
    )?;
    Ok(())
}

/// The box spoke again: its open fault tickets close with a note, the customer is told.
pub fn recovered(c: &mut dyn Conn, ctx: &Ctx, box_id: &str, at: i64) -> Result<()> {
    let tickets = c.query(
        "SELECT id FROM ticket WHERE box_id = ? AND kind = 'fault' AND state = 'open'",
        params![box_id],
    )?;
    for t in &tickets {
        let id = t.int(0)?;
        c.exec(
            "UPDATE ticket SET state = 'closed', closed = ? WHERE id = ?",
            params![at, id],
        )?;
        c.exec(
            "INSERT INTO ticket_message (ticket_id, at, author, body) VALUES (?, ?, 'desk', ?)",
            params![
                id,
                at,
                format!(
                    "Heartbeat resumed at {}: closed, repair dispatch cancelled.",
                    crate::clock::format_jst(at)
                )
            ],
        )?;
    }
    let r = c
        .one(
            "SELECT b.customer_id, b.name, s.name, b.last_seen, b.plan, b.repair_24h FROM box b JOIN site s ON s.id = b.site_id WHERE b.id = ?",
            params![box_id],
        )?;
    if let Some(r) = r {
        let customer = r.text(0)?;
        for (_, email, lang) in boxes::contacts(c, &customer)? {
            let lang = if lang == "en" { Lang::En } else { Lang::Ja };
            let plan: mimamori_contracts::Plan = r
                .text(4)?
                .parse()
                .unwrap_or(mimamori_contracts::Plan::Light);
            let mail = text::render_recovered(
                &text::BoxNotice {
                    customer: customer.clone(),
                    box_name: r.text(1)?,
                    site: r.text(2)?,
                    last_heartbeat: r.opt_int(3)?.unwrap_or(at),
                    at,
                    repair: mimamori_contracts::profile(plan, r.int(5)? != 0).repair,
                    desk_phone: ctx.desk_phone.clone(),
                    desk_hours: ctx.desk_hours.clone(),
                },
                lang,
            );
            queue_mail(c, box_id, &email, &mail.subject, &mail.body, at)?;
        }
    }
    audit(
        c,
        &Actor::System,
        "box.recovered",
        box_id,
        &format!("{} ticket(s) closed", tickets.len()),
    )?;
    Ok(())
}
