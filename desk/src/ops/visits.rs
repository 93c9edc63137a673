//! On-site OS-recovery visits: booked inside the seed's hours and the plan's monthly quota
//! (rules in `crate::onsite`), refused with the reason otherwise.

use super::{Actor, Refusal, Result, audit, now};
use crate::onsite::{self, Area, BookedVisit, Site, VisitRequest};
use crate::params;
use crate::store::{Conn, RowExt};
use serde::Deserialize;

#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct NewVisit {
    /// Unix seconds.
    pub start: i64,
    pub pcs: u8,
}

pub fn book(
    c: &mut dyn Conn,
    actor: &Actor,
    box_id: &str,
    v: &NewVisit,
) -> Result<serde_json::Value> {
    actor.require_desk()?;
    let r = c
        .one(
            "SELECT b.plan, s.area, s.island, s.vpn FROM box b JOIN site s ON s.id = b.site_id WHERE b.id = ?",
            params![box_id],
        )?
        .ok_or_else(|| Refusal::NotFound(format!("box {box_id}: no such box")))?;
    let plan: mimamori_contracts::Plan = r
        .text(0)?
        .parse()
        .map_err(|e| Refusal::Conflict(format!("box {box_id}: stored plan unreadable: {e}")))?;
    let area: Area = r
        .text(1)?
        .parse()
        .map_err(|_| Refusal::Conflict(format!("box {box_id}: stored area unreadable")))?;
    let site = Site {
        area,
        island: r.int(2)? != 0,
        vpn_connected: r.int(3)? != 0,
    };
    let earlier: Vec<BookedVisit> = c
        .query(
            "SELECT start_at, pcs FROM visit WHERE box_id = ? AND free = 1",
            params![box_id],
        )?
        .iter()
        .map(|r| {
            Ok(BookedVisit {
                start: r.int(0)?,
                pcs: u8::try_from(r.int(1)?).unwrap_or(u8::MAX),
            })
        })
        .collect::<Result<_>>()?;
    let req = VisitRequest {
        box_plan: plan,
        site,
        start: v.start,
        pcs: v.pcs,
    };
    let booking = onsite::check_booking(&req, &earlier)
        .map_err(|e| Refusal::Conflict(format!("visit refused: {}", e.explain())))?;
    let charges: Vec<serde_json::Value> = booking
        .charges
        .iter()
        .map(|ch| serde_json::json!({"charge": ch, "ja": ch.note_ja(), "en": ch.note_en(), "clause": ch.clause().to_string()}))
        .collect();
    let charges = serde_json::Value::from(charges);
    let id = c
        .one(
            "INSERT INTO visit (box_id, start_at, pcs, free, charges, booked_by, created) VALUES (?, ?, ?, ?, ?, ?, ?) RETURNING id",
            params![box_id, v.start, i64::from(v.pcs), booking.free, charges.to_string(), actor.name(), now()],
        )?
        .ok_or_else(|| Refusal::Conflict("visit not stored".into()))?
        .int(0)?;
    audit(
        c,
        actor,
        "visit.book",
        box_id,
        &format!("visit {id} at {} for {} PC(s)", v.start, v.pcs),
    )?;
    Ok(serde_json::json!({
        "id": id, "box_id": box_id, "start": v.start, "start_jst": crate::clock::format_jst(v.start),
        "pcs": v.pcs, "free": booking.free, "month": format!("{}-{:02}", booking.month.0, booking.month.1),
        "charges": charges,
    }))
}

pub fn list(c: &mut dyn Conn, actor: &Actor, box_id: &str) -> Result<Vec<serde_json::Value>> {
    if let Some(cu) = actor.customer() {
        match c.one("SELECT customer_id FROM box WHERE id = ?", params![box_id])? {
            Some(r) if r.text(0)? == cu => {}
            _ => return Err(Refusal::NotFound(format!("box {box_id}: no such box"))),
        }
    }
    c.query(
        "SELECT id, start_at, pcs, free, charges, booked_by FROM visit WHERE box_id = ? ORDER BY start_at",
        params![box_id],
    )?
    .iter()
    .map(|r| {
        Ok(serde_json::json!({
            "id": r.int(0)?, "start": r.int(1)?, "start_jst": crate::clock::format_jst(r.int(1)?),
            "pcs": r.int(2)?, "free": r.int(3)? != 0,
            "charges": serde_json::from_str::<serde_json::Value>(&r.text(4)?).unwrap_or_default(),
            "booked_by": r.text(5)?,
        }))
    })
    .collect()
}
