//! The report as one self-contained HTML page: A4 print CSS, charts as hand-built inline
//! SVG, no JavaScript, Japanese or English. Every string that came from an event (names,
//! categories, signature messages, host names) goes through `esc`.

use super::Lang;
use super::aggregate::{FUNCS, Func, NF, Past, Report, blocked, jst};
use super::summary::summary;
use std::fmt::Write;

/// HTML-escapes text for element content and quoted attribute values.
pub fn esc(s: &str) -> String {
    let mut o = String::with_capacity(s.len());
    for ch in s.chars() {
        match ch {
            '&' => o.push_str("&amp;"),
            '<' => o.push_str("&lt;"),
            '>' => o.push_str("&gt;"),
            '"' => o.push_str("&quot;"),
            '\'' => o.push_str("&#39;"),
            c if c.is_control() && c != '\n' && c != '\t' => o.push('\u{fffd}'),
            c => o.push(c),
        }
    }
    o
}

/// 1234567 → "1,234,567".
pub fn num(n: i64) -> String {
    let d = n.unsigned_abs().to_string();
    let mut o = String::new();
    for (i, c) in d.chars().enumerate() {
        if i > 0 && (d.len() - i).is_multiple_of(3) {
            o.push(',');
        }
        o.push(c);
    }
    if n < 0 { format!("-{o}") } else { o }
}

const COLORS: [&str; NF] = [
    "#d9480f", "#862e9c", "#1864ab", "#74c0fc", "#2b8a3e", "#868e96",
];

/// The report's words in its language.
pub(super) struct T(pub(super) Lang);

impl T {
    pub(super) fn s<'a>(&self, ja: &'a str, en: &'a str) -> &'a str {
        match self.0 {
            Lang::Ja => ja,
            Lang::En => en,
        }
    }
    fn func(&self, f: Func) -> &'static str {
        let (ja, en) = match f {
            Func::Threat => ("不正サイト・フィッシング", "Malicious and phishing sites"),
            Func::Cnc => ("C&C 通信・隔離中の PC", "C&C callbacks and quarantined PCs"),
            Func::IpsDrop => ("侵入防御（遮断）", "Intrusion prevention (dropped)"),
            Func::IpsAlert => ("侵入検知（記録のみ）", "Intrusion detection (logged only)"),
            Func::Category => ("URL カテゴリ", "URL categories"),
            Func::Firewall => ("ファイアウォール", "Firewall"),
        };
        self.s(ja, en)
    }
    fn month(&self, m: super::Month) -> String {
        const EN: [&str; 12] = [
            "January",
            "February",
            "March",
            "April",
            "May",
            "June",
            "July",
            "August",
            "September",
            "October",
            "November",
            "December",
        ];
        match self.0 {
            Lang::Ja => format!("{}年{}月", m.year, m.month),
            Lang::En => format!("{} {}", EN[(m.month - 1) as usize], m.year),
        }
    }
    fn short_month(&self, m: super::Month) -> String {
        match self.0 {
            Lang::Ja => format!("{}年{}月", m.year, m.month),
            Lang::En => m.to_string(),
        }
    }
}

/// `2026-11-30 23:59` in Japan time.
fn when(ts: i64) -> String {
    let (y, m, d, h, mi) = jst(ts);
    format!("{y:04}-{m:02}-{d:02} {h:02}:{mi:02}")
}

fn pct(part: i64, whole: i64) -> String {
    if whole == 0 {
        "—".into()
    } else {
        format!("{:.1}%", part as f64 * 100.0 / whole as f64)
    }
}

const CSS: &str = r#"
@page { size: A4; margin: 14mm 12mm; }
* { box-sizing: border-box; }
html { -webkit-print-color-adjust: exact; print-color-adjust: exact; }
body { font-family: "Noto Sans CJK JP", "Noto Sans JP", "Hiragino Sans", "Yu Gothic", "Meiryo", sans-serif;
       font-size: 9.5pt; line-height: 1.45; color: #212529; margin: 0 auto; max-width: 186mm; }
header { border-bottom: 3px solid #1864ab; padding-bottom: 4mm; margin-bottom: 4mm; }
h1 { font-size: 17pt; margin: 0; color: #1864ab; }
.month { font-size: 14pt; font-weight: bold; }
.meta, .note { color: #495057; font-size: 8.5pt; }
h2 { font-size: 12pt; border-left: 4px solid #1864ab; padding-left: 2mm; margin: 5mm 0 2mm; }
h3 { font-size: 10pt; margin: 3mm 0 1mm; }
section { break-inside: avoid; }
section.long { break-inside: auto; }
.tiles { display: flex; gap: 3mm; margin: 2mm 0; }
.tile { flex: 1; border: 1px solid #ced4da; border-radius: 2mm; padding: 2mm 3mm; }
.tile b { display: block; font-size: 15pt; }
.tile span { font-size: 8pt; color: #495057; }
table { border-collapse: collapse; width: 100%; margin: 1mm 0 2mm; }
th, td { border-bottom: 1px solid #dee2e6; padding: 1mm 1.5mm; text-align: left; vertical-align: top; }
th { background: #f1f3f5; font-size: 8.5pt; }
td.n, th.n { text-align: right; white-space: nowrap; font-variant-numeric: tabular-nums; }
tr { break-inside: avoid; }
.nodata { color: #868e96; font-style: italic; }
.tag { display: inline-block; padding: 0 1.5mm; border-radius: 1mm; background: #ffe3e3; color: #c92a2a; font-size: 8pt; }
.todo li { margin-bottom: 1mm; }
.wrap { word-break: break-all; }
svg text { font-family: inherit; }
footer { margin-top: 6mm; border-top: 1px solid #ced4da; padding-top: 2mm; }
"#;

/// The month's pattern installs, the newest per kind at its end, and the warnings.
fn patterns(r: &Report, t: &T) -> String {
    let p = &r.patterns;
    if p.newest.is_empty() && p.refused == 0 && p.stale_warnings == 0 {
        return format!(
            "<span class=\"nodata\">{}</span>",
            t.s(
                "まだありません（パターンファイルの導入記録がありません）",
                "No data yet (no pattern bundle installed)"
            )
        );
    }
    let kind = |k: &str| match k {
        "rules" => t.s("侵入検知シグネチャ", "IPS signatures").to_string(),
        "categories" => t.s("URLカテゴリ", "URL categories").to_string(),
        other => esc(other),
    };
    let mut s = String::new();
    let _ = write!(
        s,
        "{}: {}",
        t.s("この月の更新", "Installed this month"),
        num(p.updates.len() as i64)
    );
    s.push_str("<ul style=\"margin:0;padding-left:4mm\">");
    for (k, v, at) in &p.newest {
        let _ = write!(
            s,
            "<li>{} v{v} · {} {}</li>",
            kind(k),
            t.s("最終更新", "last installed"),
            when(*at)
        );
    }
    s.push_str("</ul>");
    if p.stale_warnings > 0 {
        let _ = write!(
            s,
            "<div class=\"note\">{} {}</div>",
            t.s(
                "更新が古いという警告:",
                "Warnings that patterns were stale:"
            ),
            num(p.stale_warnings)
        );
    }
    if p.refused > 0 {
        let _ = write!(
            s,
            "<div class=\"note\">{} {}</div>",
            t.s("導入を拒否した更新:", "Bundles refused:"),
            num(p.refused)
        );
    }
    s
}

pub fn render(r: &Report, lang: Lang) -> String {
    let t = T(lang);
    let mut h = String::with_capacity(64 * 1024);
    let title = format!(
        "{} — {}",
        t.s("月次セキュリティレポート", "Monthly security report"),
        t.month(r.month)
    );
    let _ = write!(
        h,
        "<!DOCTYPE html>\n<html lang=\"{}\"><head><meta charset=\"utf-8\"><title>{}</title><style>{CSS}</style></head><body>\n",
        lang.code(),
        esc(&title)
    );
    let last = r.month.end() - 60;
    let _ = writeln!(
        h,
        "<header><h1>{}</h1><div class=\"month\">{}</div><div class=\"meta\">{} {} – {} ({}) · {} {}{}</div></header>",
        t.s("月次セキュリティレポート", "Monthly security report"),
        esc(&t.month(r.month)),
        t.s("対象期間", "Period"),
        when(r.month.start()),
        when(last),
        t.s("日本時間", "Japan time"),
        t.s("作成", "made"),
        when(r.generated),
        if r.complete() {
            String::new()
        } else {
            format!(
                " · <b>{}</b>",
                t.s(
                    "月の途中のため、作成時点までの集計です",
                    "the month is not over: counted up to the time it was made"
                )
            )
        }
    );
    summary(&mut h, r, &t);
    health(&mut h, r, &t);
    functions(&mut h, r, &t);
    per_day(&mut h, r, &t);
    trend(&mut h, r, &t);
    tops(&mut h, r, &t);
    incidents(&mut h, r, &t);
    let _ = write!(
        h,
        "<footer class=\"note\">{}</footer>\n</body></html>\n",
        t.s(
            "このレポートはボックス自身のコントロールプレーンが作成しました。メールセキュリティ、アプリケーション制御、パターンファイル更新の記録、サポートデスクの対応・通知・チケットは、まだこのレポートに含まれていません。",
            "This report was made by the box's own control plane. Mail security, application control, pattern-file update history, and what the support desk did (notifications, tickets) are not in it yet."
        )
    );
    h
}

fn health(h: &mut String, r: &Report, t: &T) {
    let ja = t.0 == Lang::Ja;
    let _ = write!(
        h,
        "<section><h2>{}</h2><table>",
        t.s("ボックスの状態", "Box health")
    );
    let row = |h: &mut String, k: &str, v: &str| {
        let _ = write!(h, "<tr><th style=\"width:32%\">{k}</th><td>{v}</td></tr>");
    };
    let uptime = {
        let mut s = t
            .s(
                "この月の稼働時間はボックスに記録されていないため、分かりません。",
                "Not known: the box does not record its uptime over the month.",
            )
            .to_string();
        match (r.live.gateway_up, r.live.uptime_secs) {
            (true, Some(u)) => {
                let (d, hr) = ((u / 86_400.0) as i64, ((u % 86_400.0) / 3600.0) as i64);
                let _ = if ja {
                    write!(
                        s,
                        " 作成時点では、ゲートウェイは {d} 日 {hr} 時間連続で稼働していました。"
                    )
                } else {
                    write!(
                        s,
                        " When this report was made the gateway had been up for {d} d {hr} h."
                    )
                };
            }
            (false, _) => s.push_str(t.s(
                " 作成時点では、ゲートウェイに接続できませんでした。",
                " When this report was made the gateway did not answer.",
            )),
            _ => {}
        }
        s
    };
    row(h, t.s("稼働時間", "Uptime"), &uptime);
    let days = if ja {
        format!("{} 日中 {} 日", r.days_elapsed, r.days_with_events)
    } else {
        format!("{} of {} days", r.days_with_events, r.days_elapsed)
    };
    row(h, t.s("イベントを記録した日", "Days with events"), &days);
    let span = match (r.first_event, r.last_event) {
        (Some(a), Some(b)) => format!("{} ({} – {})", num(r.events), when(a), when(b)),
        _ => t.s("なし", "none").to_string(),
    };
    row(h, t.s("記録したイベント", "Events recorded"), &span);
    let pv = match r.policy_version {
        Some(v) => format!("v{v}"),
        None => t.s("なし", "none").to_string(),
    };
    row(
        h,
        t.s("月末時点のポリシー", "Policy at the end of the month"),
        &pv,
    );
    let changes = if r.policy_changes.is_empty() {
        t.s("この月の変更はありません。", "No change this month.")
            .to_string()
    } else {
        let mut s = String::from("<ul style=\"margin:0;padding-left:4mm\">");
        for p in &r.policy_changes {
            let state = if p.applied {
                t.s("適用済み", "applied")
            } else {
                t.s("保存のみ（未適用）", "stored, not applied")
            };
            let _ = write!(
                s,
                "<li>v{} · {} · {} · {}{}</li>",
                p.version,
                when(p.created),
                esc(&p.actor),
                state,
                if p.note.is_empty() {
                    String::new()
                } else {
                    format!(" · <span class=\"note\">{}</span>", esc(&p.note))
                }
            );
        }
        s.push_str("</ul>");
        s
    };
    row(
        h,
        t.s("この月のポリシー変更", "Policy versions this month"),
        &changes,
    );
    let exceptions = if r.exceptions.is_empty() {
        t.s("なし", "none").to_string()
    } else {
        let mut s = String::from("<ul style=\"margin:0;padding-left:4mm\">");
        for (entry, action) in &r.exceptions {
            let what = match action.as_str() {
                "allow" => t.s("許可", "allowed"),
                "block" => t.s("ブロック", "blocked"),
                other => other,
            };
            let _ = write!(s, "<li>{} · {}</li>", esc(entry), esc(what));
        }
        s.push_str("</ul>");
        s
    };
    row(
        h,
        t.s(
            "有効なサイト例外（月末時点）",
            "Site exceptions in effect (end of month)",
        ),
        &exceptions,
    );
    row(
        h,
        t.s("パターンファイルの更新", "Pattern-file updates"),
        &patterns(r, t),
    );
    h.push_str("</table></section>\n");
}

/// Horizontal bars: one per row, label on the left, value at the bar's end.
fn hbars(rows: &[(String, Option<i64>, &str)], nodata: &str) -> String {
    let (w, lw, rh) = (680.0, 250.0, 24.0);
    let max = rows.iter().filter_map(|r| r.1).max().unwrap_or(0).max(1) as f64;
    let hgt = rh * rows.len() as f64 + 4.0;
    let mut s = format!(
        "<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"100%\" viewBox=\"0 0 {w} {hgt}\" role=\"img\">"
    );
    for (i, (label, v, color)) in rows.iter().enumerate() {
        let y = i as f64 * rh + 2.0;
        let _ = write!(
            s,
            "<text x=\"0\" y=\"{:.1}\" font-size=\"12\" fill=\"#212529\">{}</text>",
            y + rh * 0.65,
            esc(label)
        );
        match v {
            Some(v) => {
                let bw = (*v as f64 / max * (w - lw - 70.0)).max(if *v > 0 { 2.0 } else { 0.0 });
                let _ = write!(
                    s,
                    "<rect x=\"{lw}\" y=\"{:.1}\" width=\"{bw:.1}\" height=\"{:.1}\" fill=\"{color}\"/><text x=\"{:.1}\" y=\"{:.1}\" font-size=\"12\" fill=\"#212529\">{}</text>",
                    y + 3.0,
                    rh - 8.0,
                    lw + bw + 6.0,
                    y + rh * 0.65,
                    num(*v)
                );
            }
            None => {
                let _ = write!(
                    s,
                    "<text x=\"{lw}\" y=\"{:.1}\" font-size=\"11\" fill=\"#868e96\" font-style=\"italic\">{}</text>",
                    y + rh * 0.65,
                    esc(nodata)
                );
            }
        }
    }
    s.push_str("</svg>");
    s
}

fn functions(h: &mut String, r: &Report, t: &T) {
    let nodata = t.s("まだありません", "No data yet");
    let mut rows: Vec<(String, Option<i64>, &str)> = FUNCS
        .iter()
        .map(|&f| (t.func(f).to_string(), Some(r.get(f)), COLORS[f.index()]))
        .collect();
    for label in [
        t.s("メールのウイルス", "Mail malware"),
        t.s("迷惑メール", "Spam"),
        t.s("アプリケーション制御", "Application control"),
    ] {
        rows.push((label.to_string(), None, "#000"));
    }
    let _ = writeln!(
        h,
        "<section><h2>{}</h2>{}<p class=\"note\">{}</p></section>",
        t.s("機能別のブロック数", "Blocks by function"),
        hbars(&rows, nodata),
        t.s(
            "「侵入検知（記録のみ）」は遮断せずに記録した件数で、ブロック数の合計には含みません。メールセキュリティとアプリケーション制御はまだ提供されていないため「まだありません」と表示しています。",
            "“Intrusion detection (logged only)” was recorded, not blocked, and is not in the blocked total. Mail security and application control are not built yet, hence “No data yet”."
        )
    );
}

fn legend(h: &mut String, t: &T) {
    h.push_str("<div class=\"note\">");
    for f in FUNCS {
        let _ = write!(
            h,
            "<span style=\"white-space:nowrap;margin-right:3mm\"><svg width=\"10\" height=\"10\"><rect width=\"10\" height=\"10\" fill=\"{}\"/></svg> {}</span> ",
            COLORS[f.index()],
            t.func(f)
        );
    }
    h.push_str("</div>");
}

fn per_day(h: &mut String, r: &Report, t: &T) {
    let (w, ht, left, bottom, top) = (680.0, 190.0, 44.0, 20.0, 8.0);
    let n = r.per_day.len().max(1) as f64;
    let max = r
        .per_day
        .iter()
        .map(|d| d.iter().sum::<i64>())
        .max()
        .unwrap_or(0)
        .max(1);
    let plot = ht - bottom - top;
    let slot = (w - left) / n;
    let bw = (slot * 0.75).max(1.0);
    let _ = write!(
        h,
        "<section><h2>{}</h2><svg xmlns=\"http://www.w3.org/2000/svg\" width=\"100%\" viewBox=\"0 0 {w} {ht}\" role=\"img\">",
        t.s("日別のブロック・検知数", "Blocks and detections per day")
    );
    for frac in [0.0, 0.5, 1.0] {
        let y = top + plot * (1.0 - frac);
        let v = (max as f64 * frac).round() as i64;
        let _ = write!(
            h,
            "<line x1=\"{left}\" x2=\"{w}\" y1=\"{y:.1}\" y2=\"{y:.1}\" stroke=\"#dee2e6\"/><text x=\"{:.1}\" y=\"{:.1}\" font-size=\"10\" text-anchor=\"end\" fill=\"#495057\">{}</text>",
            left - 4.0,
            y + 3.5,
            num(v)
        );
    }
    for (i, day) in r.per_day.iter().enumerate() {
        let x = left + i as f64 * slot + (slot - bw) / 2.0;
        let mut y = top + plot;
        for f in FUNCS {
            let v = day[f.index()];
            if v == 0 {
                continue;
            }
            let bh = v as f64 / max as f64 * plot;
            y -= bh;
            let _ = write!(
                h,
                "<rect x=\"{x:.1}\" y=\"{y:.2}\" width=\"{bw:.1}\" height=\"{bh:.2}\" fill=\"{}\"/>",
                COLORS[f.index()]
            );
        }
        let d = i + 1;
        if d == 1 || d % 5 == 0 {
            let _ = write!(
                h,
                "<text x=\"{:.1}\" y=\"{:.1}\" font-size=\"10\" text-anchor=\"middle\" fill=\"#495057\">{d}</text>",
                x + bw / 2.0,
                ht - 6.0
            );
        }
    }
    h.push_str("</svg>");
    legend(h, t);
    h.push_str("</section>\n");
}

fn trend(h: &mut String, r: &Report, t: &T) {
    let _ = write!(
        h,
        "<section><h2>{}</h2>",
        t.s("前の 3 か月との比較", "This month and the 3 before")
    );
    let mut months: Vec<(super::Month, Option<[i64; NF]>, &str)> = r
        .trend
        .iter()
        .map(|(m, p)| {
            let src = match p {
                Past::Events(_) => "",
                Past::Partial(_) => t.s("（一部のみ記録）", " (partly recorded)"),
                Past::Kept(_) => t.s("（保存済みレポートより）", " (from the kept report)"),
                Past::Unknown => "",
            };
            (*m, p.counts().copied(), src)
        })
        .collect();
    months.push((r.month, Some(r.totals), ""));
    let rows: Vec<(String, Option<i64>, &str)> = months
        .iter()
        .map(|(m, c, src)| {
            (
                format!("{}{src}", t.short_month(*m)),
                c.as_ref().map(blocked),
                "#1864ab",
            )
        })
        .collect();
    h.push_str(&hbars(&rows, t.s("記録なし", "no record")));
    let _ = write!(h, "<table><tr><th>{}</th>", t.s("機能", "Function"));
    for (m, _, _) in &months {
        let _ = write!(h, "<th class=\"n\">{}</th>", t.short_month(*m));
    }
    h.push_str("</tr>");
    for f in FUNCS {
        let _ = write!(h, "<tr><td>{}</td>", t.func(f));
        for (_, c, _) in &months {
            let v = c.map_or("—".to_string(), |c| num(c[f.index()]));
            let _ = write!(h, "<td class=\"n\">{v}</td>");
        }
        h.push_str("</tr>");
    }
    let _ = write!(h, "<tr><th>{}</th>", t.s("ブロック合計", "Blocked in all"));
    for (_, c, _) in &months {
        let v = c.as_ref().map_or("—".to_string(), |c| num(blocked(c)));
        let _ = write!(h, "<th class=\"n\">{v}</th>");
    }
    let _ = writeln!(
        h,
        "</tr></table><p class=\"note\">{}</p></section>",
        t.s(
            "「—」の月は、イベントの記録も保存済みのレポートもありません（保存期間を過ぎたか、ボックスの設置前）。「一部のみ記録」の月は前月比の判断に使いません。",
            "“—”: neither the month's events nor a report of it are kept (past the retention period, or before the box was installed). A partly recorded month is not used to judge the trend."
        )
    );
}

fn table_head(h: &mut String, cols: &[(&str, bool)]) {
    h.push_str("<table><tr>");
    for (c, n) in cols {
        let _ = write!(h, "<th{}>{c}</th>", if *n { " class=\"n\"" } else { "" });
    }
    h.push_str("</tr>");
}

fn none(h: &mut String, t: &T) {
    let _ = write!(
        h,
        "<p class=\"nodata\">{}</p>",
        t.s("この月はありません。", "None this month.")
    );
}

fn tops(h: &mut String, r: &Report, t: &T) {
    let blocks_web: i64 = r.categories.iter().map(|c| c.count).sum();
    let _ = write!(
        h,
        "<section class=\"long\"><h2>{}</h2>",
        t.s("ブロックの多かったカテゴリ", "Most blocked categories")
    );
    if r.categories.is_empty() {
        none(h, t);
    } else {
        table_head(
            h,
            &[
                ("#", true),
                (t.s("カテゴリ", "Category"), false),
                (t.s("件数", "Count"), true),
                (t.s("割合", "Share"), true),
            ],
        );
        for (i, c) in r.categories.iter().enumerate() {
            let name = if c.name.is_empty() {
                t.s("サイトの例外（ブロック）", "site exception (block)")
                    .to_string()
            } else {
                esc(&c.name)
            };
            let _ = write!(
                h,
                "<tr><td class=\"n\">{}</td><td>{name}</td><td class=\"n\">{}</td><td class=\"n\">{}</td></tr>",
                i + 1,
                num(c.count),
                pct(c.count, blocks_web)
            );
        }
        h.push_str("</table>");
    }
    let _ = write!(
        h,
        "</section><section class=\"long\"><h2>{}</h2>",
        t.s("ブロックの多かったサイト", "Most blocked sites")
    );
    if r.sites.is_empty() {
        none(h, t);
    } else {
        table_head(
            h,
            &[
                ("#", true),
                (t.s("サイト", "Site"), false),
                (t.s("カテゴリ", "Category"), false),
                (t.s("件数", "Count"), true),
            ],
        );
        for (i, s) in r.sites.iter().enumerate() {
            let tag = if s.flag != 0 {
                format!(" <span class=\"tag\">{}</span>", t.s("危険", "threat"))
            } else {
                String::new()
            };
            let _ = write!(
                h,
                "<tr><td class=\"n\">{}</td><td class=\"wrap\">{}{tag}</td><td>{}</td><td class=\"n\">{}</td></tr>",
                i + 1,
                esc(&s.name),
                esc(s.detail.as_deref().unwrap_or("")),
                num(s.count)
            );
        }
        h.push_str("</table>");
    }
    let _ = write!(
        h,
        "</section><section class=\"long\"><h2>{}</h2>",
        t.s(
            "検知の多かったシグネチャ（侵入防御）",
            "Most frequent signatures (intrusion prevention)"
        )
    );
    if r.signatures.is_empty() {
        none(h, t);
    } else {
        table_head(
            h,
            &[
                ("#", true),
                ("SID", true),
                (t.s("内容", "Signature"), false),
                (t.s("遮断 / 検知", "Dropped / all"), true),
            ],
        );
        for (i, s) in r.signatures.iter().enumerate() {
            let class = if s.class.is_empty() {
                String::new()
            } else {
                format!("<br><span class=\"note\">{}</span>", esc(&s.class))
            };
            let _ = write!(
                h,
                "<tr><td class=\"n\">{}</td><td class=\"n\">{}</td><td class=\"wrap\">{}{class}</td><td class=\"n\">{} / {}</td></tr>",
                i + 1,
                s.sid,
                esc(&s.message),
                num(s.dropped),
                num(s.count)
            );
        }
        h.push_str("</table>");
    }
    let _ = write!(
        h,
        "</section><section class=\"long\"><h2>{}</h2>",
        t.s(
            "ブロック・検知の多かった LAN 内の PC",
            "LAN hosts with the most blocks and detections"
        )
    );
    if r.hosts.is_empty() {
        none(h, t);
    } else {
        table_head(
            h,
            &[
                ("#", true),
                (t.s("PC 名（DHCP）", "Host name (DHCP)"), false),
                ("MAC", false),
                ("IP", false),
                (t.s("件数", "Count"), true),
                (t.s("うち危険", "of them threats"), true),
            ],
        );
        for (i, x) in r.hosts.iter().enumerate() {
            let _ = write!(
                h,
                "<tr><td class=\"n\">{}</td><td class=\"wrap\">{}</td><td>{}</td><td>{}</td><td class=\"n\">{}</td><td class=\"n\">{}</td></tr>",
                i + 1,
                x.hostname.as_deref().map_or_else(|| "—".to_string(), esc),
                x.mac.as_deref().map_or_else(|| "—".to_string(), esc),
                esc(&x.ip),
                num(x.count),
                num(x.threats)
            );
        }
        h.push_str("</table>");
    }
    h.push_str("</section>\n");
}

fn incidents(h: &mut String, r: &Report, t: &T) {
    let _ = write!(
        h,
        "<section class=\"long\"><h2>{}</h2>",
        t.s(
            "隔離された PC（感染の疑い）",
            "Quarantined PCs (suspected infections)"
        )
    );
    if r.incidents.is_empty() {
        none(h, t);
    } else {
        table_head(
            h,
            &[
                (t.s("日時", "When"), false),
                (t.s("PC 名", "Host name"), false),
                ("MAC", false),
                ("IP", false),
                (t.s("C&C 通信", "C&C callbacks"), true),
                (t.s("状態", "State"), false),
            ],
        );
        for i in &r.incidents {
            let state = match &i.released {
                Some((ts, who)) => {
                    format!("{} {} ({})", t.s("解除", "released"), when(*ts), esc(who))
                }
                None => t
                    .s(
                        "隔離のまま（月末時点）",
                        "still quarantined at the month's end",
                    )
                    .to_string(),
            };
            let _ = write!(
                h,
                "<tr><td>{}</td><td class=\"wrap\">{}</td><td>{}</td><td>{}</td><td class=\"n\">{}</td><td>{state}</td></tr>",
                when(i.ts),
                i.hostname.as_deref().map_or_else(|| "—".to_string(), esc),
                i.mac.as_deref().map_or_else(|| "—".to_string(), esc),
                i.ip.as_deref().map_or_else(|| "—".to_string(), esc),
                i.callbacks.map_or_else(|| "—".to_string(), num)
            );
        }
        h.push_str("</table>");
    }
    h.push_str("</section>\n");
}

#[cfg(test)]
mod tests;
