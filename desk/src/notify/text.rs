//! The notification mail: subject and body in Japanese or English.
//!
//! Japanese first: plain, polite business Japanese (です/ます). Every mail says when, which PC
//! (MAC, DHCP host name, IP) and what happened in plain words, then what to do now. Host names,
//! signature names and site names come from the network or from customers: each one is cleaned
//! to a single bounded line before it goes into a subject or a body, so it cannot add header
//! lines or fake paragraphs.

use crate::clock::{format_jst, next_dispatch};
use crate::incident::{HostKey, Severity, ThreatKind, clean_text};
use mimamori_contracts::RepairWindow;
use serde::{Deserialize, Serialize};

const CUSTOMER_CHARS: usize = 60;
const PLACE_CHARS: usize = 40;
const SUMMARY_CHARS: usize = 200;
const CONTACT_CHARS: usize = 60;

/// The mail's language.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Lang {
    #[default]
    Ja,
    En,
}

/// Which mail an incident gets.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum NoticeKind {
    InfectedHost,
    MaliciousSite,
    Intrusion,
    /// Many detections in a short time (the rule's outbreak threshold was met).
    Outbreak,
    Other,
}

impl From<ThreatKind> for NoticeKind {
    fn from(kind: ThreatKind) -> NoticeKind {
        match kind {
            ThreatKind::InfectedHost => NoticeKind::InfectedHost,
            ThreatKind::MaliciousSite => NoticeKind::MaliciousSite,
            ThreatKind::Intrusion => NoticeKind::Intrusion,
            ThreatKind::Other => NoticeKind::Other,
        }
    }
}

/// An incident notice to a customer.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Notice {
    pub customer: String,
    pub box_name: String,
    pub site: String,
    pub incident_id: i64,
    pub severity: Severity,
    pub threat_summary: String,
    pub first_seen: i64,
    pub last_seen: i64,
    pub count: u64,
    pub host: HostKey,
    pub kind: NoticeKind,
    pub desk_phone: String,
    /// E.g. `9:00～21:00（年中無休）`.
    pub desk_hours: String,
}

/// A box that stopped (or resumed) talking to the desk.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct BoxNotice {
    pub customer: String,
    pub box_name: String,
    pub site: String,
    /// The last heartbeat the desk received.
    pub last_heartbeat: i64,
    /// When the fault was detected (for `render_fault`) or the box came back (`render_recovered`).
    pub at: i64,
    pub repair: RepairWindow,
    pub desk_phone: String,
    pub desk_hours: String,
}

/// A rendered mail. The subject is one line without control characters.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Mail {
    pub subject: String,
    pub body: String,
}

/// The untrusted fields of a mail, cleaned once.
struct Clean {
    customer: String,
    place: String,
    phone: String,
    hours: String,
}

impl Clean {
    fn of(customer: &str, site: &str, box_name: &str, phone: &str, hours: &str) -> Clean {
        let site = clean_text(site, PLACE_CHARS);
        let box_name = clean_text(box_name, PLACE_CHARS);
        let place = match (site.is_empty(), box_name.is_empty()) {
            (false, false) => format!("{site} / {box_name}"),
            (false, true) => site,
            (true, false) => box_name,
            (true, true) => "-".to_string(),
        };
        Clean {
            customer: clean_text(customer, CUSTOMER_CHARS),
            place,
            phone: clean_text(phone, CONTACT_CHARS),
            hours: clean_text(hours, CONTACT_CHARS),
        }
    }
}

fn tag(severity: Severity, lang: Lang) -> &'static str {
    match (lang, severity) {
        (Lang::Ja, Severity::Critical) => "【緊急】",
        (Lang::Ja, Severity::High) => "【重要】",
        (Lang::Ja, Severity::Medium) => "【注意】",
        (Lang::Ja, Severity::Low) => "【お知らせ】",
        (Lang::En, Severity::Critical) => "[URGENT] ",
        (Lang::En, Severity::High) => "[Important] ",
        (Lang::En, Severity::Medium) => "[Warning] ",
        (Lang::En, Severity::Low) => "[Notice] ",
    }
}

fn severity_name(severity: Severity, lang: Lang) -> &'static str {
    match (lang, severity) {
        (Lang::Ja, Severity::Critical) => "緊急",
        (Lang::Ja, Severity::High) => "高",
        (Lang::Ja, Severity::Medium) => "中",
        (Lang::Ja, Severity::Low) => "低",
        (Lang::En, s) => s.as_str(),
    }
}

fn subject(tag: &str, title: &str, place: &str, lang: Lang) -> String {
    let line = match lang {
        Lang::Ja => format!("{tag}mimamori: {title}（{place}）"),
        Lang::En => format!("{tag}mimamori: {title} ({place})"),
    };
    // Everything in it is cleaned already; cleaning again guarantees the one-line promise.
    clean_text(&line, 160)
}

fn title(kind: NoticeKind, lang: Lang) -> &'static str {
    match (lang, kind) {
        (Lang::Ja, NoticeKind::InfectedHost) => "感染の疑いがある端末を検知しました",
        (Lang::Ja, NoticeKind::MaliciousSite) => "危険なWebサイトへのアクセスをブロックしました",
        (Lang::Ja, NoticeKind::Intrusion) => "不正侵入の疑いがある通信を検知しました",
        (Lang::Ja, NoticeKind::Outbreak) => "短時間に多数の不正な通信を検知しました",
        (Lang::Ja, NoticeKind::Other) => "注意が必要な通信を検知しました",
        (Lang::En, NoticeKind::InfectedHost) => "a possibly infected PC was detected",
        (Lang::En, NoticeKind::MaliciousSite) => "access to a dangerous web site was blocked",
        (Lang::En, NoticeKind::Intrusion) => "possible intrusion traffic was detected",
        (Lang::En, NoticeKind::Outbreak) => "many malicious connections in a short time",
        (Lang::En, NoticeKind::Other) => "traffic that needs attention was detected",
    }
}

fn what_happened(kind: NoticeKind, lang: Lang) -> &'static str {
    match (lang, kind) {
        (Lang::Ja, NoticeKind::InfectedHost) => {
            "お客さまのネットワーク内のパソコンが、ウイルスに感染している疑いがあります。\n\
             専用BOXが、このパソコンから外部の攻撃者のサーバーへの不正な通信を検知しました。"
        }
        (Lang::Ja, NoticeKind::MaliciousSite) => {
            "お客さまのネットワーク内のパソコンから、危険なWebサイト（ウイルス配布や詐欺のサイト）\n\
             へのアクセスがありましたが、専用BOXがブロックしました。"
        }
        (Lang::Ja, NoticeKind::Intrusion) => {
            "専用BOXが、不正侵入や攻撃の疑いがある通信を検知しました。"
        }
        (Lang::Ja, NoticeKind::Outbreak) => {
            "短時間のうちに不正な通信が繰り返し検知されました。ウイルスの感染が広がっている\n\
             おそれがあります。"
        }
        (Lang::Ja, NoticeKind::Other) => "専用BOXが、注意が必要な通信を検知しました。",
        (Lang::En, NoticeKind::InfectedHost) => {
            "A PC on your network may be infected with a virus.\n\
             The box detected it trying to reach an attacker's server."
        }
        (Lang::En, NoticeKind::MaliciousSite) => {
            "A PC on your network tried to open a dangerous web site (malware or fraud);\n\
             the box blocked it."
        }
        (Lang::En, NoticeKind::Intrusion) => {
            "The box detected traffic that looks like an intrusion or an attack."
        }
        (Lang::En, NoticeKind::Outbreak) => {
            "Malicious traffic was detected again and again in a short time.\n\
             An infection may be spreading."
        }
        (Lang::En, NoticeKind::Other) => "The box detected traffic that needs attention.",
    }
}

fn what_to_do(kind: NoticeKind, lang: Lang, phone: &str, hours: &str) -> String {
    match (lang, kind) {
        (Lang::Ja, NoticeKind::InfectedHost | NoticeKind::Outbreak) => format!(
            "  1. 該当のパソコンをネットワーク（LANケーブル・Wi-Fi）から外してください。\n\
             \x20 2. 電源は切らないでください（原因の調査に必要な情報が消えるおそれがあります）。\n\
             \x20 3. セキュリティサポートデスク（電話 {phone}、{hours}）へご連絡ください。\n\
             \x20    ウイルスの駆除と復旧をお手伝いいたします。"
        ),
        (Lang::Ja, NoticeKind::MaliciousSite) => format!(
            "  アクセスはブロック済みのため、通常は対応の必要はありません。\n\
             \x20 ただし、該当のサイトでID・パスワードやカード番号などを入力された場合は、\n\
             \x20 そのパスワードを変更のうえ、セキュリティサポートデスク（電話 {phone}、{hours}）\n\
             \x20 へご連絡ください。"
        ),
        (Lang::Ja, NoticeKind::Intrusion | NoticeKind::Other) => format!(
            "  セキュリティサポートデスクで内容を確認しております。必要な場合はお電話でご連絡します。\n\
             \x20 該当のパソコンに見覚えのない画面やファイル、極端な動作の遅さなどがあれば、\n\
             \x20 セキュリティサポートデスク（電話 {phone}、{hours}）へご連絡ください。"
        ),
        (Lang::En, NoticeKind::InfectedHost | NoticeKind::Outbreak) => format!(
            "  1. Disconnect the PC from the network (unplug the LAN cable, turn off Wi-Fi).\n\
             \x20 2. Do not turn it off (that would erase what we need to investigate).\n\
             \x20 3. Call the Security Support Desk ({phone}, {hours});\n\
             \x20    we will help you remove the virus and restore the PC."
        ),
        (Lang::En, NoticeKind::MaliciousSite) => format!(
            "  The access was blocked, so normally nothing needs to be done.\n\
             \x20 If someone entered an ID, a password or card details on that site, change that\n\
             \x20 password and call the Security Support Desk ({phone}, {hours})."
        ),
        (Lang::En, NoticeKind::Intrusion | NoticeKind::Other) => format!(
            "  The Security Support Desk is looking into it and will call you if needed.\n\
             \x20 If the PC shows unfamiliar screens or files or is unusually slow, call the\n\
             \x20 Security Support Desk ({phone}, {hours})."
        ),
    }
}

fn host_lines(host: &HostKey, lang: Lang) -> String {
    let unknown = match lang {
        Lang::Ja => "不明",
        Lang::En => "unknown",
    };
    let field = |v: &Option<String>| {
        v.as_deref()
            .map_or(unknown.to_string(), |v| clean_text(v, 64))
    };
    let (mac, name, ip) = (field(&host.mac), field(&host.hostname), field(&host.ip));
    let named = host.mac.is_some() || host.hostname.is_some();
    match lang {
        Lang::Ja => {
            let note = if named {
                "※専用BOXはMACアドレスとホスト名でパソコンを特定しています。IPアドレスが自動で\n\
                 \x20 割り当てられている（変わる）場合でも、上記のパソコンです。"
            } else {
                "※このパソコンはIPアドレスでのみ特定しています。IPアドレスが自動で割り当てられて\n\
                 \x20 いる場合、現在は別のパソコンがこのアドレスを使っていることがあります。"
            };
            format!(
                "  MACアドレス: {mac}\n  ホスト名: {name}\n  IPアドレス（検知時）: {ip}\n  {note}"
            )
        }
        Lang::En => {
            let note = if named {
                "The box identifies the PC by its MAC address and host name, so this is the PC\n\
                 \x20 even if its IP address is assigned automatically and has changed."
            } else {
                "This PC is known only by its IP address. If addresses are assigned\n\
                 \x20 automatically, another PC may be using it by now."
            };
            format!(
                "  MAC address: {mac}\n  Host name: {name}\n  IP address (at the time): {ip}\n  {note}"
            )
        }
    }
}

/// The mail for an incident.
pub fn render(notice: &Notice, lang: Lang) -> Mail {
    let c = Clean::of(
        &notice.customer,
        &notice.site,
        &notice.box_name,
        &notice.desk_phone,
        &notice.desk_hours,
    );
    let summary = clean_text(&notice.threat_summary, SUMMARY_CHARS);
    let subject = subject(
        tag(notice.severity, lang),
        title(notice.kind, lang),
        &c.place,
        lang,
    );
    let (first, last) = (format_jst(notice.first_seen), format_jst(notice.last_seen));
    let severity = severity_name(notice.severity, lang);
    let happened = what_happened(notice.kind, lang);
    let todo = what_to_do(notice.kind, lang, &c.phone, &c.hours);
    let host = host_lines(&notice.host, lang);
    let (id, count, place, customer) = (notice.incident_id, notice.count, &c.place, &c.customer);
    let body = match lang {
        Lang::Ja => format!(
            "{customer} 御中\n\n\
             いつも「おまかせサイバーみまもり」（mimamori）をご利用いただきありがとうございます。\n\
             セキュリティサポートデスクです。\n\n\
             {happened}\n\n\
             ■ 検知の内容\n\
             \x20 重要度: {severity}\n\
             \x20 内容: {summary}\n\
             \x20 初回検知: {first}\n\
             \x20 最終検知: {last}\n\
             \x20 検知回数: {count}回\n\
             \x20 設置拠点 / 専用BOX: {place}\n\
             \x20 受付番号: {id}\n\n\
             ■ 対象のパソコン\n{host}\n\n\
             ■ お願いしたいこと\n{todo}\n\n\
             お問い合わせの際は、受付番号 {id} をお伝えください。\n\
             このメールは専用BOXの検知結果をもとに自動で送信しています。\n"
        ),
        Lang::En => format!(
            "Dear {customer},\n\n\
             This is the mimamori Security Support Desk.\n\n\
             {happened}\n\n\
             == What was detected\n\
             \x20 Severity: {severity}\n\
             \x20 Detail: {summary}\n\
             \x20 First seen: {first}\n\
             \x20 Last seen: {last}\n\
             \x20 Detections: {count}\n\
             \x20 Site / box: {place}\n\
             \x20 Reference: {id}\n\n\
             == The PC\n{host}\n\n\
             == What to do now\n{todo}\n\n\
             Please quote reference {id} when you contact us.\n\
             This mail was sent automatically from the box's detections.\n"
        ),
    };
    Mail { subject, body }
}

fn repair_hours(window: RepairWindow, lang: Lang) -> String {
    match (lang, window) {
        (Lang::Ja, RepairWindow::AllDay) => "24時間（24時間訪問修理オプション）".to_string(),
        (Lang::Ja, RepairWindow::Daytime { from_hour, to_hour }) => {
            format!("{from_hour}:00～{to_hour}:00（年中無休）")
        }
        (Lang::En, RepairWindow::AllDay) => "24 hours (24 h repair option)".to_string(),
        (Lang::En, RepairWindow::Daytime { from_hour, to_hour }) => {
            format!("{from_hour}:00–{to_hour}:00, every day")
        }
    }
}

/// The mail for a box the desk no longer hears from.
pub fn render_fault(notice: &BoxNotice, lang: Lang) -> Mail {
    let c = Clean::of(
        &notice.customer,
        &notice.site,
        &notice.box_name,
        &notice.desk_phone,
        &notice.desk_hours,
    );
    let (place, customer, phone, hours) = (&c.place, &c.customer, &c.phone, &c.hours);
    let (last, at) = (format_jst(notice.last_heartbeat), format_jst(notice.at));
    let dispatch = format_jst(next_dispatch(notice.repair, notice.at));
    let window = repair_hours(notice.repair, lang);
    match lang {
        Lang::Ja => Mail {
            subject: subject("【重要】", "専用BOXとの通信が途絶えています", place, lang),
            body: format!(
                "{customer} 御中\n\n\
                 セキュリティサポートデスクです。\n\
                 専用BOX（{place}）との通信が途絶えています。\n\
                 専用BOXが停止している間は、不正な通信の検知・遮断ができないおそれがあります。\n\n\
                 ■ 状況\n\
                 \x20 最後に通信を確認した日時: {last}\n\
                 \x20 途絶を検知した日時: {at}\n\n\
                 ■ ご確認のお願い\n\
                 \x20 1. 専用BOXの電源が入っているか、電源ケーブル・LANケーブルが外れていないかご確認ください。\n\
                 \x20 2. インターネットに接続できるかご確認ください（ルーターや回線の障害の場合もあります）。\n\n\
                 ■ 修理の手配\n\
                 \x20 通信が回復しない場合は、セキュリティサポートデスクが訪問修理を手配いたします。\n\
                 \x20 訪問修理の対応時間: {window}\n\
                 \x20 手配できる最も早い日時: {dispatch}\n\
                 \x20 ※故障受付から現地までの駆けつけおよび回復時間を保証するものではありません。\n\n\
                 お問い合わせ: セキュリティサポートデスク（電話 {phone}、{hours}）\n"
            ),
        },
        Lang::En => Mail {
            subject: subject(
                "[Important] ",
                "the desk has lost contact with your box",
                place,
                lang,
            ),
            body: format!(
                "Dear {customer},\n\n\
                 This is the mimamori Security Support Desk.\n\
                 We have lost contact with your box ({place}).\n\
                 While the box is down, malicious traffic may not be detected or blocked.\n\n\
                 == Status\n\
                 \x20 Last heard from: {last}\n\
                 \x20 Loss detected: {at}\n\n\
                 == Please check\n\
                 \x20 1. That the box is powered on and its power and LAN cables are plugged in.\n\
                 \x20 2. That the internet connection works (the router or the line may be down).\n\n\
                 == Repair\n\
                 \x20 If contact does not come back, the desk will send a technician.\n\
                 \x20 Repair visits: {window}\n\
                 \x20 Earliest dispatch: {dispatch}\n\
                 \x20 (No arrival or recovery time is guaranteed.)\n\n\
                 Contact: Security Support Desk ({phone}, {hours})\n"
            ),
        },
    }
}

/// The mail for a box that is talking to the desk again.
pub fn render_recovered(notice: &BoxNotice, lang: Lang) -> Mail {
    let c = Clean::of(
        &notice.customer,
        &notice.site,
        &notice.box_name,
        &notice.desk_phone,
        &notice.desk_hours,
    );
    let (place, customer, phone, hours) = (&c.place, &c.customer, &c.phone, &c.hours);
    let (last, at) = (format_jst(notice.last_heartbeat), format_jst(notice.at));
    match lang {
        Lang::Ja => Mail {
            subject: subject("【お知らせ】", "専用BOXとの通信が回復しました", place, lang),
            body: format!(
                "{customer} 御中\n\n\
                 セキュリティサポートデスクです。\n\
                 専用BOX（{place}）との通信が回復しました。\n\n\
                 \x20 通信が途絶えた日時: {last} ごろ\n\
                 \x20 回復を確認した日時: {at}\n\n\
                 修理の手配をご案内していた場合、その手配は不要となります。\n\
                 ご不明な点は、セキュリティサポートデスク（電話 {phone}、{hours}）へお問い合わせください。\n"
            ),
        },
        Lang::En => Mail {
            subject: subject("[Notice] ", "contact with your box is back", place, lang),
            body: format!(
                "Dear {customer},\n\n\
                 This is the mimamori Security Support Desk.\n\
                 Your box ({place}) is in contact with the desk again.\n\n\
                 \x20 Lost since about: {last}\n\
                 \x20 Back at: {at}\n\n\
                 Any repair visit we mentioned is no longer needed.\n\
                 Questions: Security Support Desk ({phone}, {hours})\n"
            ),
        },
    }
}

/// The monthly report's mail: a short body, the report attached.
pub struct ReportNotice {
    pub customer: String,
    pub box_name: String,
    pub site: String,
    /// `2026-11`
    pub month: String,
    pub desk_phone: String,
    pub desk_hours: String,
}

pub fn render_report(notice: &ReportNotice, lang: Lang) -> Mail {
    let c = Clean::of(
        &notice.customer,
        &notice.site,
        &notice.box_name,
        &notice.desk_phone,
        &notice.desk_hours,
    );
    let (place, customer, phone, hours) = (&c.place, &c.customer, &c.phone, &c.hours);
    let month = clean_text(&notice.month, 7);
    let (y, m) = month.split_once('-').unwrap_or((month.as_str(), ""));
    let m = m.trim_start_matches('0');
    match lang {
        Lang::Ja => Mail {
            subject: subject(
                "【月次レポート】",
                &format!("{y}年{m}月のセキュリティレポート"),
                place,
                lang,
            ),
            body: format!(
                "{customer} 御中\n\n\
                 セキュリティサポートデスクです。\n\
                 専用BOX（{place}）の{y}年{m}月のセキュリティレポートをお送りします（添付ファイル）。\n\
                 遮断した脅威や危険なサイトへのアクセス、感染の疑いがあった端末と対応の状況をまとめています。\n\n\
                 ご不明な点は、セキュリティサポートデスク（電話 {phone}、{hours}）へお問い合わせください。\n"
            ),
        },
        Lang::En => Mail {
            subject: subject(
                "[Monthly report] ",
                &format!("security report for {month}"),
                place,
                lang,
            ),
            body: format!(
                "Dear {customer},\n\n\
                 This is the mimamori Security Support Desk.\n\
                 Attached is the security report of your box ({place}) for {month}: the threats and\n\
                 dangerous sites it blocked, PCs suspected of infection, and what was done.\n\n\
                 Questions: Security Support Desk ({phone}, {hours})\n"
            ),
        },
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::clock::unix_of_jst;

    fn notice(kind: NoticeKind) -> Notice {
        Notice {
            customer: "株式会社サンプル".into(),
            box_name: "box-01".into(),
            site: "本社".into(),
            incident_id: 42,
            severity: Severity::High,
            threat_summary: "Infected host quarantined by the box: PC-SATO".into(),
            first_seen: unix_of_jst(2026, 11, 3, 14, 5).unwrap(),
            last_seen: unix_of_jst(2026, 11, 3, 14, 20).unwrap(),
            count: 3,
            host: HostKey {
                mac: Some("02:00:5e:10:00:01".into()),
                ip: Some("192.168.1.23".into()),
                hostname: Some("PC-SATO".into()),
            },
            kind,
            desk_phone: "0120-000-000".into(),
            desk_hours: "9:00～21:00（年中無休）".into(),
        }
    }

    fn box_notice() -> BoxNotice {
        BoxNotice {
            customer: "株式会社サンプル".into(),
            box_name: "box-01".into(),
            site: "本社".into(),
            last_heartbeat: unix_of_jst(2026, 11, 3, 18, 0).unwrap(),
            at: unix_of_jst(2026, 11, 3, 18, 5).unwrap(),
            repair: RepairWindow::Daytime {
                from_hour: 9,
                to_hour: 17,
            },
            desk_phone: "0120-000-000".into(),
            desk_hours: "9:00～21:00（年中無休）".into(),
        }
    }

    #[test]
    fn infected_host_mail_in_japanese() {
        let mail = render(&notice(NoticeKind::InfectedHost), Lang::Ja);
        assert_eq!(
            mail.subject,
            "【重要】mimamori: 感染の疑いがある端末を検知しました（本社 / box-01）"
        );
        for want in [
            "02:00:5e:10:00:01",
            "PC-SATO",
            "192.168.1.23",
            "2026-11-03 14:05 (JST)",
            "2026-11-03 14:20 (JST)",
            "3回",
            "該当のパソコンをネットワーク（LANケーブル・Wi-Fi）から外してください",
            "電源は切らないでください",
            "セキュリティサポートデスク（電話 0120-000-000、9:00～21:00（年中無休））",
            "MACアドレスとホスト名でパソコンを特定",
            "受付番号: 42",
        ] {
            assert!(
                mail.body.contains(want),
                "missing {want:?} in\n{}",
                mail.body
            );
        }
    }

    #[test]
    fn blocked_site_needs_no_action_unless_credentials_were_entered() {
        let mut n = notice(NoticeKind::MaliciousSite);
        n.severity = Severity::Low;
        let mail = render(&n, Lang::Ja);
        assert!(mail.subject.starts_with("【お知らせ】"));
        assert!(mail.body.contains("通常は対応の必要はありません"));
        assert!(mail.body.contains("パスワード"));
    }

    #[test]
    fn ip_only_hosts_are_flagged_as_such() {
        let mut n = notice(NoticeKind::Intrusion);
        n.host.mac = None;
        n.host.hostname = None;
        let mail = render(&n, Lang::Ja);
        assert!(mail.body.contains("MACアドレス: 不明"));
        assert!(mail.body.contains("IPアドレスでのみ特定"));
    }

    #[test]
    fn newlines_in_untrusted_fields_cannot_inject() {
        let mut n = notice(NoticeKind::InfectedHost);
        n.host.hostname = Some("PC\r\nBcc: victim@example.com".into());
        n.site = "本社\r\nX-Injected: yes".into();
        n.box_name = "box\n\n01".into();
        n.threat_summary = "sig\r\n\r\n<fake paragraph>".into();
        n.customer = "x".repeat(500);
        for lang in [Lang::Ja, Lang::En] {
            let mail = render(&n, lang);
            assert!(
                !mail.subject.chars().any(char::is_control),
                "{:?}",
                mail.subject
            );
            assert!(mail.subject.chars().count() <= 160);
            assert!(mail.subject.contains("本社 X-Injected: yes / box 01"));
            for line in mail.body.lines() {
                assert!(
                    !line.starts_with("Bcc:") && !line.starts_with("X-Injected"),
                    "{line}"
                );
            }
            assert!(!mail.body.contains('\r'));
            assert!(mail.body.contains("PC Bcc: victim@example.com"));
            assert!(mail.body.lines().all(|l| l.chars().count() < 200));
        }
    }

    #[test]
    fn english_option() {
        let mut n = notice(NoticeKind::Outbreak);
        n.severity = Severity::Critical;
        let mail = render(&n, Lang::En);
        assert_eq!(
            mail.subject,
            "[URGENT] mimamori: many malicious connections in a short time (本社 / box-01)"
        );
        assert!(mail.body.contains("Disconnect the PC from the network"));
        assert!(mail.body.contains("Do not turn it off"));
        assert!(mail.body.contains("02:00:5e:10:00:01") && mail.body.contains("PC-SATO"));
        assert!(mail.body.contains("Reference: 42"));
    }

    #[test]
    fn fault_mail_names_the_next_dispatch() {
        let ja = render_fault(&box_notice(), Lang::Ja);
        assert_eq!(
            ja.subject,
            "【重要】mimamori: 専用BOXとの通信が途絶えています（本社 / box-01）"
        );
        assert!(
            ja.body
                .contains("専用BOX（本社 / box-01）との通信が途絶えています")
        );
        assert!(
            ja.body
                .contains("最後に通信を確認した日時: 2026-11-03 18:00 (JST)")
        );
        // 18:05 is after the daytime window: the earliest dispatch is 9:00 the next day.
        assert!(
            ja.body
                .contains("手配できる最も早い日時: 2026-11-04 09:00 (JST)")
        );
        assert!(ja.body.contains("9:00～17:00（年中無休）"));
        let mut all_day = box_notice();
        all_day.repair = RepairWindow::AllDay;
        let en = render_fault(&all_day, Lang::En);
        assert!(
            en.body
                .contains("Earliest dispatch: 2026-11-03 18:05 (JST)")
        );
        assert!(en.body.contains("24 hours"));
    }

    #[test]
    fn recovered_mail() {
        let ja = render_recovered(&box_notice(), Lang::Ja);
        assert_eq!(
            ja.subject,
            "【お知らせ】mimamori: 専用BOXとの通信が回復しました（本社 / box-01）"
        );
        assert!(
            ja.body
                .contains("回復を確認した日時: 2026-11-03 18:05 (JST)")
        );
        let en = render_recovered(&box_notice(), Lang::En);
        assert!(en.subject.starts_with("[Notice] ") && en.body.contains("Back at"));
    }

    #[test]
    fn kinds_follow_the_rule_kinds() {
        assert_eq!(
            NoticeKind::from(ThreatKind::InfectedHost),
            NoticeKind::InfectedHost
        );
        assert_eq!(NoticeKind::from(ThreatKind::Other), NoticeKind::Other);
    }
}
