//! Monthly reports from the boxes: kept per box (13 months) and mailed once per month and
//! language to the customer's contacts, the report attached (PDF when the box made one).

use super::{Actor, Refusal, Result, now};
use crate::notify::text::{self, Lang};
use crate::params;
use crate::store::{Conn, RowExt};
use std::path::{Path, PathBuf};

pub const REPORT_MAX: usize = 32 << 20;
const KEEP_MONTHS: i32 = 13;

fn check_month(month: &str) -> Result<(i32, u8)> {
    mimamori_contracts::date::parse_year_month(month)
        .map(|m| (m.year(), m.month()))
        .ok_or_else(|| Refusal::BadInput(format!("month: {month:?} is not YYYY-MM")))
}

fn check(lang: &str, format: &str) -> Result<()> {
    if lang != "ja" && lang != "en" {
        return Err(Refusal::BadInput(format!("lang: {lang:?} — ja or en")));
    }
    if format != "html" && format != "pdf" {
        return Err(Refusal::BadInput(format!(
            "format: {format:?} — html or pdf"
        )));
    }
    Ok(())
}

/// Stores one rendering of a box's report (replacing an earlier upload of it).
pub fn store(
    c: &mut dyn Conn,
    dir: &Path,
    box_id: &str,
    month: &str,
    lang: &str,
    format: &str,
    bytes: &[u8],
) -> Result<()> {
    let (y, m) = check_month(month)?;
    check(lang, format)?;
    if bytes.is_empty() || bytes.len() > REPORT_MAX {
        return Err(Refusal::BadInput(format!(
            "body: 1 byte to {} MiB",
            REPORT_MAX >> 20
        )));
    }
    if format == "pdf" && !bytes.starts_with(b"%PDF-") {
        return Err(Refusal::BadInput("body: not a PDF".into()));
    }
    let folder = dir.join(box_id);
    std::fs::create_dir_all(&folder)
        .map_err(|e| Refusal::Conflict(format!("{}: {e}", folder.display())))?;
    let file = folder.join(format!("{month}-{lang}.{format}"));
    let tmp = file.with_extension("tmp");
    std::fs::write(&tmp, bytes)
        .and_then(|()| std::fs::rename(&tmp, &file))
        .map_err(|e| {
            Refusal::Store(crate::store::StoreError::Full(format!(
                "{}: {e}",
                file.display()
            )))
        })?;
    c.exec(
        "DELETE FROM report WHERE box_id = ? AND month = ? AND lang = ? AND format = ?",
        params![box_id, month, lang, format],
    )?;
    c.exec(
        "INSERT INTO report (box_id, month, lang, format, file, size, received) VALUES (?, ?, ?, ?, ?, ?, ?)",
        params![box_id, month, lang, format, file.display().to_string(), bytes.len() as i64, now()],
    )?;
    // Keep 13 months per box: older files and rows go.
    let total = y * 12 + i32::from(m) - 1 - KEEP_MONTHS;
    let oldest = format!(
        "{:04}-{:02}",
        total.div_euclid(12),
        total.rem_euclid(12) + 1
    );
    for r in c.query(
        "SELECT file FROM report WHERE box_id = ? AND month < ?",
        params![box_id, &oldest],
    )? {
        let _ = std::fs::remove_file(r.text(0)?);
    }
    c.exec(
        "DELETE FROM report WHERE box_id = ? AND month < ?",
        params![box_id, oldest],
    )?;
    Ok(())
}

/// The box finished uploading `month` in `lang`: mail it to the contacts reading that
/// language, once. Answers how many mails were queued.
pub fn done(
    c: &mut dyn Conn,
    ctx: &super::incidents::Ctx,
    box_id: &str,
    month: &str,
    lang: &str,
) -> Result<u64> {
    check_month(month)?;
    check(lang, "html")?;
    if c.one(
        "SELECT 1 FROM report_mailed WHERE box_id = ? AND month = ? AND lang = ?",
        params![box_id, month, lang],
    )?
    .is_some()
    {
        return Ok(0);
    }
    let file = c
        .one(
            "SELECT file, format FROM report WHERE box_id = ? AND month = ? AND lang = ? ORDER BY CASE format WHEN 'pdf' THEN 0 ELSE 1 END LIMIT 1",
            params![box_id, month, lang],
        )?
        .ok_or_else(|| Refusal::NotFound(format!("report {month} ({lang}): not uploaded")))?;
    let (path, format) = (file.text(0)?, file.text(1)?);
    let b = c
        .one(
            "SELECT b.customer_id, b.name, s.name, cu.name FROM box b JOIN site s ON s.id = b.site_id JOIN customer cu ON cu.id = b.customer_id WHERE b.id = ?",
            params![box_id],
        )?
        .ok_or_else(|| Refusal::NotFound(format!("box {box_id}")))?;
    let notice = text::ReportNotice {
        customer: b.text(3)?,
        box_name: b.text(1)?,
        site: b.text(2)?,
        month: month.to_string(),
        desk_phone: ctx.desk_phone.clone(),
        desk_hours: ctx.desk_hours.clone(),
    };
    let mail = text::render_report(&notice, if lang == "en" { Lang::En } else { Lang::Ja });
    let attachment = serde_json::json!({
        "path": path,
        "name": format!("mimamori-report-{box_id}-{month}.{format}"),
        "mime": if format == "pdf" { "application/pdf" } else { "text/html; charset=utf-8" },
    })
    .to_string();
    let t = now();
    let mut n = 0;
    for (_, email, contact_lang) in super::boxes::contacts(c, &b.text(0)?)? {
        if contact_lang != lang {
            continue;
        }
        c.exec(
            "INSERT INTO notification (box_id, kind, to_addr, subject, body, created, attempts, next_try, attachment)
             VALUES (?, 'report', ?, ?, ?, ?, 0, ?, ?)",
            params![box_id, email, &mail.subject, &mail.body, t, t, &attachment],
        )?;
        n += 1;
    }
    c.exec(
        "INSERT INTO report_mailed (box_id, month, lang, mailed) VALUES (?, ?, ?, ?)",
        params![box_id, month, lang, t],
    )?;
    Ok(n)
}

pub fn list(c: &mut dyn Conn, actor: &Actor, box_id: &str) -> Result<Vec<serde_json::Value>> {
    owned(c, actor, box_id)?;
    c.query("SELECT month, lang, format, size, received FROM report WHERE box_id = ? ORDER BY month DESC, lang, format", params![box_id])?
        .iter()
        .map(|r| Ok(serde_json::json!({"month": r.text(0)?, "lang": r.text(1)?, "format": r.text(2)?, "size": r.int(3)?, "received": r.int(4)?})))
        .collect()
}

fn owned(c: &mut dyn Conn, actor: &Actor, box_id: &str) -> Result<()> {
    match c.one("SELECT customer_id FROM box WHERE id = ?", params![box_id])? {
        Some(r)
            if actor
                .customer()
                .is_none_or(|cu| cu == r.text(0).unwrap_or_default()) =>
        {
            Ok(())
        }
        _ => Err(Refusal::NotFound(format!("box {box_id}: no such box"))),
    }
}

/// A kept report's file, if the actor may see it.
pub fn file(
    c: &mut dyn Conn,
    actor: &Actor,
    box_id: &str,
    month: &str,
    lang: &str,
    format: &str,
) -> Result<PathBuf> {
    owned(c, actor, box_id)?;
    c.one(
        "SELECT file FROM report WHERE box_id = ? AND month = ? AND lang = ? AND format = ?",
        params![box_id, month, lang, format],
    )?
    .map(|r| r.text(0).map(PathBuf::from))
    .transpose()?
    .ok_or_else(|| Refusal::NotFound(format!("report {month} {lang} {format}: not kept")))
}

/// One box's month in a customer's summary.
#[derive(Debug, Clone, PartialEq)]
pub struct BoxMonth {
    pub box_id: String,
    pub name: String,
    /// From the box's hourly counts: (event type, action) → events.
    pub counts: Vec<(String, String, i64)>,
    /// Hours of the month the box sent counts for (a gap: it was off or offline).
    pub hours_reported: i64,
    pub reports: Vec<(String, String)>,
}

/// What the desk did for one customer in a month: the same numbers for every box, and the
/// desk's own records (incidents, mails, tickets), which no box's report can show.
#[derive(Debug, Clone, PartialEq)]
pub struct CustomerMonth {
    pub customer_id: String,
    pub customer: String,
    pub month: String,
    pub boxes: Vec<BoxMonth>,
    /// Incidents opened in the month: (id, box, host, threat, severity, state).
    pub incidents: Vec<(i64, String, String, String, String, String)>,
    /// Mails sent in the month, by kind.
    pub mails: Vec<(String, i64)>,
    /// Tickets opened in the month, and of those, closed.
    pub tickets_opened: i64,
    pub tickets_closed: i64,
}

/// The customer's month (Japan time), for their own login or an operator.
pub fn customer_month(
    c: &mut dyn Conn,
    actor: &Actor,
    customer_id: &str,
    month: &str,
) -> Result<CustomerMonth> {
    let (y, m) = check_month(month)?;
    if actor.customer().is_some_and(|cu| cu != customer_id) {
        return Err(Refusal::NotFound(format!(
            "customer {customer_id}: no such customer"
        )));
    }
    let name = c
        .one(
            "SELECT name FROM customer WHERE id = ?",
            params![customer_id],
        )?
        .ok_or_else(|| Refusal::NotFound(format!("customer {customer_id}: no such customer")))?
        .text(0)?;
    let (start, end) = crate::clock::month_bounds_jst(y, m)
        .ok_or_else(|| Refusal::BadInput(format!("month {month:?}: out of range")))?;
    let mut boxes = Vec::new();
    for b in c.query(
        "SELECT id, name FROM box WHERE customer_id = ? ORDER BY id",
        params![customer_id],
    )? {
        let box_id = b.text(0)?;
        let counts = c
            .query(
                "SELECT event_type, action, CAST(sum(count) AS BIGINT) FROM hourly WHERE box_id = ? AND hour >= ? AND hour < ?
                 GROUP BY event_type, action ORDER BY event_type, action",
                params![&box_id, start, end],
            )?
            .iter()
            .map(|r| Ok((r.text(0)?, r.text(1)?, r.int(2)?)))
            .collect::<Result<Vec<_>>>()?;
        let hours_reported = c
            .one(
                "SELECT count(DISTINCT hour) FROM hourly WHERE box_id = ? AND hour >= ? AND hour < ?",
                params![&box_id, start, end],
            )?
            .map(|r| r.int(0))
            .transpose()?
            .unwrap_or(0);
        let reports = c
            .query(
                "SELECT lang, format FROM report WHERE box_id = ? AND month = ? ORDER BY lang, format",
                params![&box_id, month],
            )?
            .iter()
            .map(|r| Ok((r.text(0)?, r.text(1)?)))
            .collect::<Result<Vec<_>>>()?;
        boxes.push(BoxMonth {
            box_id,
            name: b.text(1)?,
            counts,
            hours_reported,
            reports,
        });
    }
    let incidents = c
        .query(
            "SELECT i.id, i.box_id, i.host, i.threat, i.severity, i.state FROM incident i JOIN box b ON b.id = i.box_id
             WHERE b.customer_id = ? AND i.first_seen >= ? AND i.first_seen < ? ORDER BY i.first_seen, i.id",
            params![customer_id, start, end],
        )?
        .iter()
        .map(|r| Ok((r.int(0)?, r.text(1)?, r.text(2)?, r.text(3)?, r.text(4)?, r.text(5)?)))
        .collect::<Result<Vec<_>>>()?;
    let mails = c
        .query(
            "SELECT n.kind, count(*) FROM notification n JOIN box b ON b.id = n.box_id
             WHERE b.customer_id = ? AND n.sent >= ? AND n.sent < ? GROUP BY n.kind ORDER BY n.kind",
            params![customer_id, start, end],
        )?
        .iter()
        .map(|r| Ok((r.text(0)?, r.int(1)?)))
        .collect::<Result<Vec<_>>>()?;
    let tickets = c
        .one(
            "SELECT count(*), count(closed) FROM ticket WHERE customer_id = ? AND opened >= ? AND opened < ?",
            params![customer_id, start, end],
        )?
        .map(|r| Ok::<_, Refusal>((r.int(0)?, r.int(1)?)))
        .transpose()?
        .unwrap_or((0, 0));
    Ok(CustomerMonth {
        customer_id: customer_id.to_string(),
        customer: name,
        month: month.to_string(),
        boxes,
        incidents,
        mails,
        tickets_opened: tickets.0,
        tickets_closed: tickets.1,
    })
}
