//! The desk console's pages (maud: every interpolated value is HTML-escaped, so a box,
//! host or ticket name carrying markup shows as text).

use super::{BoxPage, Home, IncidentPage, Session};
use crate::clock::format_jst;
use maud::{DOCTYPE, Markup, PreEscaped, html};

const STYLE: &str = "body{font-family:'Noto Sans CJK JP','Noto Sans',sans-serif;margin:0;background:#f3f4f7;color:#1b2430}\
header{background:#2d2f5f;color:#fff;padding:.6em 1em;display:flex;gap:1em;align-items:center}\
header h1{font-size:1.1em;margin:0;flex:1}header a{color:#fff}\
main{max-width:1200px;margin:1em auto;padding:0 1em}\
section{background:#fff;border-radius:6px;padding:1em;margin-bottom:1em;box-shadow:0 1px 2px #0002}\
h2{font-size:1em;margin-top:0}table{border-collapse:collapse;width:100%}\
td,th{border-bottom:1px solid #e3e7ec;padding:.3em .5em;text-align:left;font-size:.9em;vertical-align:top}\
.connected{color:#17612e}.fault{color:#8a1c1c;font-weight:bold}.last-seen,.not-enrolled{color:#7a5200}\
.err{background:#fde4e4;padding:.5em 1em;border-radius:6px}pre{white-space:pre-wrap;font-size:.8em;margin:0}\
form.inline{display:inline}";

fn page(title: &str, session: Option<&Session>, body: Markup) -> Markup {
    html! {
        (DOCTYPE)
        html lang="ja" {
            head {
                meta charset="utf-8";
                meta name="viewport" content="width=device-width, initial-scale=1";
                title { (title) " — mimamori desk" }
                style { (PreEscaped(STYLE)) }
            }
            body {
                header {
                    h1 { a href="/console" { "mimamori セキュリティサポートデスク / Security Support Desk" } }
                    @if let Some(s) = session {
                        span #who { (s.actor.name()) }
                        form.inline method="post" action="/console/logout" {
                            input type="hidden" name="csrf" value=(s.csrf);
                            button #logout type="submit" { "Log out" }
                        }
                    }
                }
                main { (body) }
            }
        }
    }
}

pub fn login(error: Option<&str>) -> Markup {
    page(
        "Log in",
        None,
        html! {
            section {
                h2 { "ログイン / Log in" }
                @if let Some(e) = error { p.err #login-error { (e) } }
                form method="post" action="/console/login" {
                    input #token type="password" name="token" autocomplete="current-password" size="60" required;
                    " "
                    button #login type="submit" { "Log in" }
                }
            }
        },
    )
}

pub fn failure(message: &str) -> Markup {
    page(
        "Error",
        None,
        html! {
            section {
                h2 { "That did not work" }
                p.err #error { (message) }
                p { a href="/console" { "Back to the console" } }
            }
        },
    )
}

fn when(ts: i64) -> String {
    format_jst(ts)
}

fn boxes_table(boxes: &[crate::ops::boxes::BoxView]) -> Markup {
    html! {
        table #box-list {
            tr { th { "Box" } th { "Customer" } th { "Plan" } th { "Health" } th { "Patterns / policy" } }
            @for b in boxes {
                tr.box data-box=(b.id) {
                    td { a href={ "/console/boxes/" (b.id) } { (b.name) } br; small { (b.id) } }
                    td { (b.customer_id) }
                    td { (b.plan) }
                    td class=(b.status) { (b.status_text) }
                    td { small {
                        @if let Some(h) = &b.heartbeat {
                            @if h["patterns_stale"] == serde_json::json!(true) { span.fault { "patterns stale" } " " }
                            "policy v" (h["policy_version"].as_u64().map_or("-".to_string(), |v| v.to_string()))
                        } @else { "-" }
                    } }
                }
            }
        }
    }
}

fn incidents_table(list: &[crate::ops::incidents::IncidentView]) -> Markup {
    html! {
        @if list.is_empty() { p #no-incidents { "No open incidents." } }
        @else {
            table #incident-list {
                tr { th { "#" } th { "Box" } th { "Host" } th { "Severity" } th { "State" } th { "Last seen" } th { "Summary" } }
                @for i in list {
                    tr.incident data-incident=(i.id) {
                        td { a href={ "/console/incidents/" (i.id) } { (i.id) } }
                        td { (i.box_id) }
                        td { (i.host.hostname.as_deref().unwrap_or("")) " " small { (i.host.ip.as_deref().unwrap_or("")) " " (i.host.mac.as_deref().unwrap_or("")) } }
                        td { (i.severity) }
                        td.state { (i.state) }
                        td { (when(i.last_seen)) }
                        td { (i.summary) " (×" (i.count) ")" }
                    }
                }
            }
        }
    }
}

fn s(v: &serde_json::Value, k: &str) -> String {
    match &v[k] {
        serde_json::Value::String(x) => x.clone(),
        serde_json::Value::Null => String::new(),
        other => other.to_string(),
    }
}

pub fn home(session: &Session, h: &Home) -> Markup {
    let desk = session.actor.is_desk();
    page(
        "Console",
        Some(session),
        html! {
            section #boxes {
                h2 { @if desk { "Boxes / ボックス一覧" } @else { "Your boxes / ご契約のボックス" } }
                (boxes_table(&h.boxes))
            }
            section #incidents {
                h2 { "Incident queue (open) / 対応中のインシデント" }
                (incidents_table(&h.incidents))
            }
            section #tickets {
                h2 { "Tickets / お問い合わせ" }
                @if h.tickets.is_empty() { p { "None." } }
                @else {
                    table {
                        tr { th { "#" } th { "Customer" } th { "Box" } th { "Kind" } th { "State" } th { "Opened" } th { "Subject" } }
                        @for t in &h.tickets {
                            tr.ticket {
                                td { (s(t, "id")) } td { (s(t, "customer_id")) } td { (s(t, "box_id")) } td { (s(t, "kind")) }
                                td { (s(t, "state")) } td { (t["opened"].as_i64().map(when).unwrap_or_default()) } td { (s(t, "subject")) }
                            }
                        }
                    }
                }
            }
        },
    )
}

pub fn box_page(session: &Session, p: &BoxPage) -> Markup {
    let b = &p.view;
    page(
        &b.name,
        Some(session),
        html! {
            section #box {
                h2 { (b.name) " (" (b.id) ")" }
                p { "Customer " a href={ "/console/customers/" (b.customer_id) "/months/" (format_jst(crate::ops::now()).get(..7).unwrap_or("")) } { (b.customer_id) } " · site " (b.site_id) " · plan " (b.plan) " · " span class=(b.status) #health { (b.status_text) } }
                @if let Some(e) = &b.licence_end { p { "Licence ends " (e) } }
            }
            section #onsite {
                h2 { "On-site quota this month / 今月の訪問枠" }
                p #quota {
                    (p.free_used_this_month) " of " (p.quota.visits_per_month) " free visits used, up to "
                    (p.quota.pcs_per_visit) " PC(s) per visit"
                }
                @if !p.visits.is_empty() {
                    table {
                        tr { th { "When (JST)" } th { "PCs" } th { "Free" } th { "Booked by" } }
                        @for v in &p.visits {
                            tr { td { (s(v, "start_jst")) } td { (s(v, "pcs")) } td { (s(v, "free")) } td { (s(v, "booked_by")) } }
                        }
                    }
                }
            }
            section #reports {
                h2 { "Monthly reports / 月次レポート" }
                @if p.reports.is_empty() { p { "None kept yet." } }
                ul {
                    @for r in &p.reports {
                        li.report { a href={ "/console/boxes/" (b.id) "/reports/" (s(r, "month")) "/" (s(r, "lang")) "/" (s(r, "format")) } {
                            (s(r, "month")) " " (s(r, "lang")) " " (s(r, "format"))
                        } }
                    }
                }
            }
            section #incidents {
                h2 { "Incidents" }
                (incidents_table(&p.incidents))
            }
        },
    )
}

/// The customer's month: every box's counts from its hourly aggregates, its kept reports,
/// and what the desk did (incidents opened, mails sent, tickets).
pub fn customer_month(session: &Session, m: &crate::ops::reports::CustomerMonth) -> Markup {
    let blocked = |b: &crate::ops::reports::BoxMonth, kinds: &[(&str, &str)]| -> i64 {
        b.counts
            .iter()
            .filter(|(t, a, _)| kinds.contains(&(t.as_str(), a.as_str())))
            .map(|(_, _, n)| n)
            .sum()
    };
    let total =
        |b: &crate::ops::reports::BoxMonth| -> i64 { b.counts.iter().map(|(_, _, n)| n).sum() };
    page(
        &m.customer,
        Some(session),
        html! {
            section #summary {
                h2 { (m.customer) " (" (m.customer_id) ") — " (m.month) " / 月次まとめ" }
                table #boxes {
                    tr {
                        th { "Box" } th { "Web blocks / Webブロック" } th { "IPS drops / 侵入防止" }
                        th { "IPS alerts only / 検知のみ" } th { "Quarantines / 隔離" } th { "All events" }
                        th { "Hours reported / 報告時間" } th { "Reports" }
                    }
                    @for b in &m.boxes {
                        tr.box {
                            td { a href={ "/console/boxes/" (b.box_id) } { (b.name) } " (" (b.box_id) ")" }
                            td.web { (blocked(b, &[("web", "blocked"), ("web", "sinkholed"), ("web", "quarantined")])) }
                            td.drops { (blocked(b, &[("alert", "blocked")])) }
                            td.alerts { (blocked(b, &[("alert", "allowed")])) }
                            td.quarantines { (blocked(b, &[("host", "quarantined")])) }
                            td.total { (total(b)) }
                            td.hours { (b.hours_reported) }
                            td {
                                @if b.reports.is_empty() { "—" }
                                @for (lang, format) in &b.reports {
                                    a href={ "/console/boxes/" (b.box_id) "/reports/" (m.month) "/" (lang) "/" (format) } { (lang) " " (format) } " "
                                }
                            }
                        }
                    }
                }
                p { "Counts are the boxes' hourly aggregates (firewall and flow records included under All events). "
                    "A box that was off reports fewer hours. / 件数は各ボックスの時間別集計です。" }
            }
            section #desk {
                h2 { "What the desk did / サポートデスクの対応" }
                p #mails {
                    "Mails sent: " (m.mails.iter().map(|(_, n)| n).sum::<i64>())
                    @for (kind, n) in &m.mails { " · " (kind) " " (n) }
                }
                p #tickets { "Tickets opened: " (m.tickets_opened) ", of which closed: " (m.tickets_closed) }
                @if m.incidents.is_empty() {
                    p #incidents { "No incident opened this month. / 今月のインシデントはありません。" }
                } @else {
                    table #incidents {
                        tr { th { "#" } th { "Box" } th { "PC" } th { "Threat" } th { "Severity" } th { "State" } }
                        @for (id, box_id, host, threat, severity, state) in &m.incidents {
                            tr { td { a href={ "/console/incidents/" (id) } { (id) } } td { (box_id) } td { (host) } td { (threat) } td { (severity) } td { (state) } }
                        }
                    }
                }
            }
        },
    )
}

/// What each step is called on its button.
fn action_label(a: crate::incident::state::Action) -> &'static str {
    use crate::incident::state::{Action, Resolution};
    match a {
        Action::Triage => "Triage",
        Action::NotifyCustomer => "Notify customer / お客様に連絡",
        Action::StartRemoteRemoval => "Start remote removal",
        Action::EscalateOnSite => "Escalate on site",
        Action::Close(Resolution::Remediated) => "Close: remediated",
        Action::Close(Resolution::FalsePositive) => "Close: false positive",
        Action::Close(Resolution::Duplicate) => "Close: duplicate",
        Action::Reopen => "Reopen",
    }
}

pub fn incident(session: &Session, p: &IncidentPage) -> Markup {
    let i = &p.detail.incident;
    page(
        &format!("Incident {}", i.id),
        Some(session),
        html! {
            section #incident {
                h2 { "Incident " (i.id) ": " (i.summary) }
                p {
                    "Box " a href={ "/console/boxes/" (i.box_id) } { (i.box_id) }
                    " · host " span #host { (i.host.hostname.as_deref().unwrap_or("?")) } " "
                    (i.host.ip.as_deref().unwrap_or("")) " " (i.host.mac.as_deref().unwrap_or(""))
                }
                p { "Severity " (i.severity) " · rule " (i.rule) " · threat " (i.threat) " · " (i.count) " detections, "
                    (when(i.first_seen)) " – " (when(i.last_seen)) }
                p { "State: " strong #state { (i.state) } }
                @if !p.actions.is_empty() {
                    form #act method="post" action={ "/console/incidents/" (i.id) "/act" } {
                        input type="hidden" name="csrf" value=(session.csrf);
                        input #note name="note" placeholder="note" maxlength="500" size="40";
                        " "
                        @for a in &p.actions {
                            button.action type="submit" name="action" value=(a.as_str()) { (action_label(*a)) } " "
                        }
                    }
                }
            }
            section #timeline {
                h2 { "Timeline / 対応履歴" }
                table {
                    tr { th { "When (JST)" } th { "Who" } th { "From" } th { "To" } th { "Note" } }
                    @for e in &p.detail.audit {
                        tr.step { td { (e["at"].as_i64().map(when).unwrap_or_default()) } td { (s(e, "actor")) } td { (s(e, "from")) } td { (s(e, "to")) } td { (s(e, "note")) } }
                    }
                }
            }
            section #notifications {
                h2 { "Notifications / お客様への連絡" }
                @if p.detail.notifications.is_empty() { p { "None." } }
                table {
                    @for n in &p.detail.notifications {
                        tr { td { (s(n, "to")) } td { (s(n, "subject")) } td { @if n["sent"].is_null() { "queued (" (s(n, "attempts")) " tries) " (s(n, "error")) } @else { "sent" } } }
                    }
                }
            }
            section #events {
                h2 { "The box's latest events" }
                table {
                    @for e in &p.events {
                        tr { td { (e["ts"].as_i64().map(when).unwrap_or_default()) } td { (s(e, "event_type")) } td { (s(e, "host")) }
                             td { pre { (e["event"].to_string()) } } }
                    }
                }
            }
        },
    )
}
