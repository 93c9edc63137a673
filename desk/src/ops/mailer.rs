//! The mail outbox: notifications are queued in the store inside the transaction that
//! decided them, and sent from here with retries, so an SMTP outage delays mail but
//! loses none.

use super::{Result, now};
use crate::params;
use crate::store::{Conn, RowExt, Store};
use lettre::message::{Attachment, Mailbox, MultiPart, SinglePart, header::ContentType};
use lettre::{Message, SmtpTransport, Transport};
use std::sync::atomic::{AtomicU64, Ordering::Relaxed};
use std::time::Duration;

#[derive(Clone, Debug)]
pub struct MailConfig {
    /// `host:port` of the SMTP relay (plain SMTP, e.g. the local MTA).
    pub relay: String,
    pub from: String,
}

#[derive(Default)]
pub struct MailCounters {
    pub sent: AtomicU64,
    pub failed: AtomicU64,
}

pub struct Due {
    pub id: i64,
    pub to: String,
    pub subject: String,
    pub body: String,
    pub attempts: i64,
    /// `{"path", "name", "mime"}` of a file to attach.
    pub attachment: Option<String>,
}

pub fn due(c: &mut dyn Conn, at: i64, limit: i64) -> Result<Vec<Due>> {
    c.query(
        "SELECT id, to_addr, subject, body, attempts, attachment FROM notification
         WHERE sent IS NULL AND next_try <= ? ORDER BY id LIMIT ?",
        params![at, limit],
    )?
    .iter()
    .map(|r| {
        Ok(Due {
            id: r.int(0)?,
            to: r.text(1)?,
            subject: r.text(2)?,
            body: r.text(3)?,
            attempts: r.int(4)?,
            attachment: r.opt_text(5)?,
        })
    })
    .collect()
}

pub fn mark(
    c: &mut dyn Conn,
    d: &Due,
    outcome: std::result::Result<(), String>,
    at: i64,
) -> Result<()> {
    match outcome {
        Ok(()) => c.exec(
            "UPDATE notification SET sent = ?, attempts = attempts + 1, error = NULL WHERE id = ?",
            params![at, d.id],
        )?,
        Err(e) => {
            // 5 s, 10 s, 20 s … at most 10 min apart, for ever: 24/365 means we keep trying.
            let wait = (5i64 << d.attempts.clamp(0, 7)).min(600);
            c.exec(
                "UPDATE notification SET attempts = attempts + 1, next_try = ?, error = ? WHERE id = ?",
                params![at + wait, e.chars().take(500).collect::<String>(), d.id],
            )?
        }
    };
    Ok(())
}

fn build(cfg: &MailConfig, d: &Due) -> std::result::Result<Message, String> {
    let from: Mailbox = cfg
        .from
        .parse()
        .map_err(|e| format!("from {:?}: {e}", cfg.from))?;
    let to: Mailbox = d.to.parse().map_err(|e| format!("to {:?}: {e}", d.to))?;
    let b = Message::builder()
        .from(from)
        .to(to)
        .subject(d.subject.clone());
    let Some(att) = &d.attachment else {
        return b
            .header(ContentType::TEXT_PLAIN)
            .body(d.body.clone())
            .map_err(|e| e.to_string());
    };
    let att: serde_json::Value =
        serde_json::from_str(att).map_err(|e| format!("attachment: {e}"))?;
    let path = att["path"].as_str().unwrap_or_default();
    let bytes = std::fs::read(path).map_err(|e| format!("attachment {path}: {e}"))?;
    let mime = ContentType::parse(att["mime"].as_str().unwrap_or("application/octet-stream"))
        .map_err(|e| format!("attachment mime: {e}"))?;
    let name = att["name"].as_str().unwrap_or("attachment").to_string();
    b.multipart(
        MultiPart::mixed()
            .singlepart(SinglePart::plain(d.body.clone()))
            .singlepart(Attachment::new(name).body(bytes, mime)),
    )
    .map_err(|e| e.to_string())
}

/// Sends what is due every second, until the process ends.
pub async fn run(store: Store, cfg: MailConfig, counters: std::sync::Arc<MailCounters>) {
    let (host, port) = match cfg.relay.rsplit_once(':') {
        Some((h, p)) => (h.to_string(), p.parse().unwrap_or(25)),
        None => (cfg.relay.clone(), 25),
    };
    let transport = SmtpTransport::builder_dangerous(host)
        .port(port)
        .timeout(Some(Duration::from_secs(10)))
        .build();
    loop {
        // Read, send and record in three steps: the store is not held while SMTP talks.
        // A crash between sending and recording sends that mail again (at least once).
        let list: Vec<Due> = store.run(|c| due(c, now(), 50)).await.unwrap_or_default();
        let n = list.len();
        if n > 0 {
            let (cfg, transport) = (cfg.clone(), transport.clone());
            let sent = tokio::task::spawn_blocking(move || {
                list.into_iter()
                    .map(|d| {
                        let outcome = build(&cfg, &d).and_then(|m| {
                            transport.send(&m).map(|_| ()).map_err(|e| e.to_string())
                        });
                        (d, outcome)
                    })
                    .collect::<Vec<_>>()
            })
            .await
            .unwrap_or_default();
            for (_, o) in &sent {
                match o {
                    Ok(()) => counters.sent.fetch_add(1, Relaxed),
                    Err(_) => counters.failed.fetch_add(1, Relaxed),
                };
            }
            let r: Result<()> = store
                .run(move |c| {
                    let at = now();
                    for (d, o) in sent {
                        mark(c, &d, o, at)?;
                    }
                    Ok(())
                })
                .await;
            if let Err(e) = r {
                // Sent but not recorded: these go out again on the next round.
                eprintln!("mimamori-desk: mail outbox: {e}");
            }
        }
        tokio::time::sleep(Duration::from_millis(if n == 0 { 1000 } else { 50 })).await;
    }
}
