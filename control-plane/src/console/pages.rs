//! The customer console's pages (maud: every interpolated value is HTML-escaped).

use super::session::{Lang, Session};
use super::{Block, BlockKind, BoxState, Dashboard};
use maud::{DOCTYPE, Markup, html};

pub fn t(lang: Lang, ja: &'static str, en: &'static str) -> &'static str {
    match lang {
        Lang::Ja => ja,
        Lang::En => en,
    }
}

const STYLE: &str = "body{font-family:'Noto Sans CJK JP','Noto Sans',sans-serif;margin:0;background:#f4f6f8;color:#1b2430}\
header{background:#1f3a5f;color:#fff;padding:.6em 1em;display:flex;gap:1em;align-items:center}\
header h1{font-size:1.1em;margin:0;flex:1}header a{color:#fff}header button{color:#1b2430}\
main{max-width:1100px;margin:1em auto;padding:0 1em}\
section{background:#fff;border-radius:6px;padding:1em;margin-bottom:1em;box-shadow:0 1px 2px #0002}\
h2{font-size:1em;margin-top:0}table{border-collapse:collapse;width:100%}\
td,th{border-bottom:1px solid #e3e7ec;padding:.3em .5em;text-align:left;font-size:.9em;vertical-align:top}\
.state{font-size:1.3em;font-weight:bold;padding:.5em 1em;border-radius:6px}\
.protected{background:#e3f6e8;color:#17612e}.stale{background:#fff4d6;color:#7a5200}.fault{background:#fde4e4;color:#8a1c1c}\
.note{background:#e8f0fb;padding:.5em 1em;border-radius:6px}.err{background:#fde4e4;padding:.5em 1em;border-radius:6px}\
form.inline{display:inline}input,select,button{font-size:.9em}";

fn page(lang: Lang, title: &str, session: Option<&Session>, body: Markup) -> Markup {
    html! {
        (DOCTYPE)
        html lang=(lang.code()) {
            head {
                meta charset="utf-8";
                meta name="viewport" content="width=device-width, initial-scale=1";
                title { (title) " — mimamori" }
                style { (maud::PreEscaped(STYLE)) }
            }
            body {
                header {
                    h1 { "mimamori " (t(lang, "見守りコンソール", "console")) }
                    a href="?lang=ja" { "日本語" }
                    a href="?lang=en" { "English" }
                    @if let Some(s) = session {
                        span #who { (s.caller.name) " (" (s.caller.role.name()) ")" }
                        form.inline method="post" action="/console/logout" {
                            input type="hidden" name="csrf" value=(s.csrf);
                            button #logout type="submit" { (t(lang, "ログアウト", "Log out")) }
                        }
                    }
                }
                main { (body) }
            }
        }
    }
}

#[derive(Clone, Copy)]
pub enum LoginError {
    Empty,
    Unknown,
}

pub fn login(lang: Lang, e: Option<LoginError>) -> Markup {
    let body = html! {
        section {
            h2 { (t(lang, "ログイン", "Log in")) }
            @match e {
                Some(LoginError::Empty) => p.err { (t(lang, "トークンを入力してください。", "Enter your token.")) },
                Some(LoginError::Unknown) => p.err #login-error { (t(lang, "このトークンは使えません。", "This token is not known.")) },
                None => {},
            }
            p { (t(lang, "ボックスの API トークン（設置時にお渡ししたもの）を入力してください。", "Enter the box's API token (the one given at installation).")) }
            form method="post" action="/console/login" {
                input #token type="password" name="token" autocomplete="current-password" size="50" required;
                " "
                button #login type="submit" { (t(lang, "ログイン", "Log in")) }
            }
        }
    };
    page(lang, t(lang, "ログイン", "Log in"), None, body)
}

pub fn failure(lang: Lang, message: &str) -> Markup {
    let body = html! {
        section {
            h2 { (t(lang, "できませんでした", "That did not work")) }
            p.err #error { (message) }
            p { a href="/console" { (t(lang, "コンソールに戻る", "Back to the console")) } }
        }
    };
    page(lang, t(lang, "エラー", "Error"), None, body)
}

fn done_note(lang: Lang, done: &str) -> Option<&'static str> {
    Some(match done {
        "released" => t(
            lang,
            "PC の隔離を解除しました。",
            "The PC is out of quarantine.",
        ),
        "exception-saved" => t(
            lang,
            "例外を保存し、ボックスに反映しました。",
            "The exception is saved and running on the box.",
        ),
        "exception-removed" => t(
            lang,
            "例外を削除し、ボックスに反映しました。",
            "The exception is removed on the box.",
        ),
        "category-saved" => t(
            lang,
            "カテゴリの設定を保存し、ボックスに反映しました。",
            "The category setting is saved and running on the box.",
        ),
        "exception-saved-pending" | "exception-removed-pending" | "category-saved-pending" => t(
            lang,
            "保存しました。ボックスが応答しないため、次回の起動時に反映されます。",
            "Saved. The box did not answer; it takes the change when it starts.",
        ),
        _ => return None,
    })
}

/// What a block was, in words a customer reads.
fn reason(lang: Lang, b: &Block) -> String {
    let what = if b.what.is_empty() { "-" } else { &b.what };
    match (b.kind, lang) {
        (BlockKind::ThreatSite, Lang::Ja) => format!(
            "危険なサイト（{}）へのアクセスを止めました: {what}",
            b.category
        ),
        (BlockKind::ThreatSite, Lang::En) => format!(
            "Stopped a visit to a dangerous site ({}): {what}",
            b.category
        ),
        (BlockKind::CategorySite, Lang::Ja) => format!(
            "閲覧を制限しているカテゴリ（{}）のサイトです: {what}",
            b.category
        ),
        (BlockKind::CategorySite, Lang::En) => {
            format!("A site in a category you restrict ({}): {what}", b.category)
        }
        (BlockKind::Firewall, Lang::Ja) => {
            "許可していない通信をファイアウォールが止めました".into()
        }
        (BlockKind::Firewall, Lang::En) => {
            "The firewall stopped traffic that is not allowed".into()
        }
        (BlockKind::Attack, Lang::Ja) => format!("攻撃とみられる通信を止めました: {what}"),
        (BlockKind::Attack, Lang::En) => format!("Stopped what looks like an attack: {what}"),
        (BlockKind::Quarantined, Lang::Ja) => {
            "ウイルス感染の疑いがあるため PC を隔離しました".into()
        }
        (BlockKind::Quarantined, Lang::En) => "The PC was quarantined: it looks infected".into(),
    }
}

/// Japan time, as the report uses.
fn when(ts: i64) -> String {
    let (y, mo, d, h, mi) = crate::report::aggregate::jst(ts);
    format!("{y:04}-{mo:02}-{d:02} {h:02}:{mi:02}")
}

fn action_name(lang: Lang, a: &str) -> &'static str {
    match a {
        "allow" => t(lang, "許可", "allow"),
        "block" => t(lang, "遮断", "block"),
        "monitor" => t(lang, "記録のみ", "monitor"),
        _ => "?",
    }
}

pub fn dashboard(lang: Lang, s: &Session, d: &Dashboard, done: Option<&str>) -> Markup {
    let csrf = s.csrf.as_str();
    let body = html! {
        @if let Some(n) = done.and_then(|x| done_note(lang, x)) { p.note #done { (n) } }
        section #status {
            h2 { (t(lang, "状態", "Status")) }
            @match &d.state {
                BoxState::Protected => p.state.protected #state data-state="protected" { (t(lang, "保護されています", "Protected")) },
                BoxState::PatternsStale(kinds) => p.state.stale #state data-state="stale" {
                    (t(lang, "パターンファイルが古くなっています", "Pattern files are out of date"))
                    @if !kinds.is_empty() { " (" (kinds.join(", ")) ")" }
                },
                BoxState::Fault(why) => p.state.fault #state data-state="fault" {
                    (t(lang, "異常があります — サポートデスクが確認します", "Fault — the support desk is looking into it"))
                    br; small { (why) }
                },
            }
            p {
                (t(lang, "ポリシー版数", "Policy version")) ": "
                span #stored-version { (d.stored_version) }
                " / " (t(lang, "ボックスで動作中", "running on the box")) ": "
                span #gateway-version { @match d.gateway_version { Some(v) => (v), None => "-" } }
            }
        }
        section #blocks {
            h2 { (t(lang, "最近ブロックしたもの", "Recent blocks")) }
            @if d.blocks.is_empty() {
                p { (t(lang, "まだありません。", "None yet.")) }
            } @else {
                table {
                    tr { th { (t(lang, "日時", "When")) } th { "PC" } th { (t(lang, "理由", "Why")) } }
                    @for b in &d.blocks {
                        tr.block {
                            td { (when(b.ts)) }
                            td { @if !b.host.is_empty() { (b.host) br; } small { (b.src_ip) " " (b.mac) } }
                            td.reason { (reason(lang, b)) }
                        }
                    }
                }
            }
        }
        section #quarantine {
            h2 { (t(lang, "隔離中の PC", "Quarantined PCs")) }
            p { small { (t(lang, "感染の疑いがある PC はインターネットに出られません。駆除が終わったら解除してください。", "A PC that looks infected cannot reach the internet. Release it once it has been cleaned.")) } }
            @match &d.quarantined {
                None => p.err { (t(lang, "ボックスに問い合わせできませんでした。", "The box could not be asked.")) },
                Some(q) if q.is_empty() => p #no-quarantine { (t(lang, "ありません。", "None.")) },
                Some(q) => table {
                    tr { th { "PC" } th { "IP" } th { "MAC" } th {} }
                    @for h in q {
                        tr.quarantined data-mac=(h.mac) {
                            td { (h.host) } td { (h.ip) } td { (h.mac) }
                            td { form.inline method="post" action="/console/release" {
                                input type="hidden" name="csrf" value=(csrf);
                                input type="hidden" name="mac" value=(h.mac);
                                button.release type="submit" { (t(lang, "隔離を解除", "Release")) }
                            } }
                        }
                    }
                },
            }
        }
        section #exceptions {
            h2 { (t(lang, "サイトの例外（許可・遮断）", "Site exceptions (allow / block)")) }
            @if d.doc.exceptions.is_empty() { p { (t(lang, "ありません。", "None.")) } }
            @else {
                table {
                    @for e in &d.doc.exceptions {
                        tr.exception data-entry=(e.entry) {
                            td.entry { (e.entry) } td { (action_name(lang, &e.action)) }
                            td { form.inline method="post" action="/console/exceptions/remove" {
                                input type="hidden" name="csrf" value=(csrf);
                                input type="hidden" name="entry" value=(e.entry);
                                button type="submit" { (t(lang, "削除", "Remove")) }
                            } }
                        }
                    }
                }
            }
            form #add-exception method="post" action="/console/exceptions" {
                input type="hidden" name="csrf" value=(csrf);
                input #exception-entry name="entry" placeholder="example.com" required maxlength="253";
                " "
                select #exception-action name="action" {
                    option value="allow" { (action_name(lang, "allow")) }
                    option value="block" { (action_name(lang, "block")) }
                }
                " "
                button #exception-add type="submit" { (t(lang, "追加", "Add")) }
            }
        }
        section #categories {
            h2 { (t(lang, "カテゴリごとの動作", "What to do per category")) }
            table {
                @for (name, action) in &d.doc.categories {
                    tr.category { td { (name) } td { (action_name(lang, action)) } }
                }
            }
            form #set-category method="post" action="/console/categories" {
                input type="hidden" name="csrf" value=(csrf);
                input name="category" placeholder="gambling" required maxlength="64";
                " "
                select name="action" {
                    option value="block" { (action_name(lang, "block")) }
                    option value="monitor" { (action_name(lang, "monitor")) }
                    option value="allow" { (action_name(lang, "allow")) }
                    option value="default" { (t(lang, "標準に戻す", "back to default")) }
                }
                " "
                button type="submit" { (t(lang, "設定", "Set")) }
            }
        }
        section #reports {
            h2 { (t(lang, "月次レポート", "Monthly reports")) }
            ul {
                li { a #report-last href={ "/console/report?lang=" (lang.code()) } { (t(lang, "先月のレポート (HTML)", "Last month's report (HTML)")) }
                     " · " a href={ "/console/report?format=pdf&lang=" (lang.code()) } { "PDF" } }
                @for m in &d.months {
                    li { a href={ "/console/report?month=" (m) "&lang=" (lang.code()) } { (m) } " · "
                         a href={ "/console/report?format=pdf&month=" (m) "&lang=" (lang.code()) } { "PDF" } }
                }
            }
        }
    };
    page(lang, t(lang, "コンソール", "Console"), Some(s), body)
}
