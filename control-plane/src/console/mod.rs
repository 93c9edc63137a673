//! The customer console (issue 17): server-rendered pages on the control plane's own
//! server, for the office that owns the box. Same tokens and roles as the API: the login
//! form takes an API token and keeps it in an HttpOnly, SameSite=Strict cookie; every
//! form POSTs a CSRF token derived from that cookie. Changes go through the API's own
//! functions (`api::change_section`, `api::release_host`), so a change made here is
//! checked, pushed to the gateway and audited exactly like one made over the API.

mod pages;
mod session;

pub use session::{Lang, csrf_of};

use crate::api::{self, ApiError, App, Caller, with_db};
use crate::db;
use crate::model::{Exception, PolicyDoc};
use axum::Router;
use axum::extract::rejection::{FormRejection, QueryRejection};
use axum::extract::{Form, Query, State};
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Redirect, Response};
use axum::routing::{get, post};
use serde::Deserialize;
use serde_json::json;
use session::Session;
use std::sync::Arc;

pub fn routes() -> Router<Arc<App>> {
    Router::new()
        .route("/console", get(dashboard))
        .route("/console/login", get(login_page).post(login))
        .route("/console/logout", post(logout))
        .route("/console/release", post(release))
        .route("/console/exceptions", post(add_exception))
        .route("/console/exceptions/remove", post(remove_exception))
        .route("/console/categories", post(set_category))
        .route("/console/report", get(report))
}

/// One blocked event as the console lists it.
pub struct Block {
    pub ts: i64,
    pub kind: BlockKind,
    /// The site, or the signature's message.
    pub what: String,
    pub category: String,
    pub src_ip: String,
    pub mac: String,
    /// The DHCP host name the gateway knows for `mac`, if any.
    pub host: String,
}

#[derive(Clone, Copy, PartialEq, Eq)]
pub enum BlockKind {
    ThreatSite,
    CategorySite,
    Firewall,
    Attack,
    Quarantined,
}

/// A quarantined PC, from the gateway's host table.
pub struct Quarantined {
    pub mac: String,
    pub ip: String,
    pub host: String,
}

/// Everything the dashboard shows, read in one go.
pub struct Dashboard {
    pub state: BoxState,
    pub stored_version: u64,
    pub gateway_version: Option<u64>,
    pub blocks: Vec<Block>,
    /// None when the gateway could not be asked.
    pub quarantined: Option<Vec<Quarantined>>,
    pub doc: PolicyDoc,
    pub months: Vec<String>,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub enum BoxState {
    Protected,
    PatternsStale(Vec<String>),
    Fault(String),
}

const RECENT_BLOCKS: i64 = 50;

/// The newest blocks. One indexed query (`event_ts` read backwards), however big the month.
fn recent_blocks(c: &rusqlite::Connection, limit: i64) -> rusqlite::Result<Vec<Block>> {
    let mut s = c.prepare_cached(
        "SELECT ts, event_type, action, coalesce(name, ''), coalesce(category, ''),
                coalesce(src_ip, ''), coalesce(mac, ''), gid, threat, raw
         FROM event
         WHERE event_type IN ('web', 'alert', 'host') AND action IN ('blocked', 'sinkholed', 'quarantined')
         ORDER BY ts DESC, id DESC LIMIT ?1",
    )?;
    let rows = s.query_map([limit], |r| {
        let kind: String = r.get(1)?;
        let action: String = r.get(2)?;
        let gid: Option<i64> = r.get(7)?;
        let threat: Option<i64> = r.get(8)?;
        let raw: String = r.get(9)?;
        let kind = match (kind.as_str(), action.as_str()) {
            (_, "quarantined") => BlockKind::Quarantined,
            ("web", _) if threat == Some(1) => BlockKind::ThreatSite,
            ("web", _) => BlockKind::CategorySite,
            _ if gid == Some(9) => BlockKind::Firewall,
            _ => BlockKind::Attack,
        };
        let mut what: String = r.get(3)?;
        if matches!(kind, BlockKind::Attack | BlockKind::Firewall) {
            what = serde_json::from_str::<serde_json::Value>(&raw)
                .ok()
                .and_then(|v| {
                    v.pointer("/alert/signature")
                        .and_then(|s| s.as_str())
                        .map(String::from)
                })
                .unwrap_or_default();
        }
        Ok(Block {
            ts: r.get(0)?,
            kind,
            what,
            category: r.get(4)?,
            src_ip: r.get(5)?,
            mac: r.get(6)?,
            host: String::new(),
        })
    })?;
    rows.collect()
}

async fn read_dashboard(app: &Arc<App>) -> Result<Dashboard, ApiError> {
    let patterns = app.patterns.clone();
    let (cur, mut blocks, months, stale) = with_db(app, move |c| {
        let cur = db::current_policy(c)?;
        let blocks = recent_blocks(c, RECENT_BLOCKS)?;
        // Kept per language; the page lists each month once.
        let mut months: Vec<String> = crate::report::kept(c)?
            .into_iter()
            .map(|(m, ..)| m)
            .collect();
        months.dedup();
        let stale = match patterns {
            Some(p) => Some(p.status(c, db::now())?),
            None => None,
        };
        Ok((cur, blocks, months, stale))
    })
    .await?;
    let gw = app.gateway.clone();
    let (stats, hosts) = tokio::task::spawn_blocking(move || (gw.stats(), gw.hosts()))
        .await
        .map_err(api::internal)?;
    // One host table for every row's name: no lookup per block.
    let mut names = std::collections::HashMap::new();
    let quarantined = hosts.as_ref().ok().map(|h| {
        let mut q = Vec::new();
        for x in h["hosts"].as_array().into_iter().flatten() {
            let f = |k: &str| x[k].as_str().unwrap_or("").to_string();
            names.insert(f("mac"), f("hostname"));
            if x["quarantined"] == json!(true) {
                q.push(Quarantined {
                    mac: f("mac"),
                    ip: f("ipv4"),
                    host: f("hostname"),
                });
            }
        }
        q
    });
    for b in &mut blocks {
        if let Some(n) = names.get(&b.mac) {
            b.host = n.clone();
        }
    }
    let gateway_version = stats
        .as_ref()
        .ok()
        .and_then(|s| s["policy_version"].as_u64());
    let state = match (&stats, &stale) {
        (Err(e), _) => BoxState::Fault(e.to_string()),
        (Ok(s), _) if s["policy_refused"].as_u64().is_some_and(|v| v > 0) => {
            BoxState::Fault(format!("policy_refused {}", s["policy_refused"]))
        }
        (Ok(_), Some(p)) if p["patterns_stale"] == json!(true) => BoxState::PatternsStale(
            p["kinds"]
                .as_array()
                .into_iter()
                .flatten()
                .filter(|s| s["patterns_stale"] == json!(true))
                .filter_map(|s| s["kind"].as_str().map(String::from))
                .collect(),
        ),
        _ => BoxState::Protected,
    };
    Ok(Dashboard {
        state,
        stored_version: cur.version,
        gateway_version,
        blocks,
        quarantined,
        doc: cur.doc,
        months,
    })
}

#[derive(Deserialize)]
struct LangQuery {
    lang: Option<String>,
    done: Option<String>,
}

/// `?lang=` wins and is remembered in a cookie; else the cookie; else Japanese.
fn lang_of(q: &Result<Query<LangQuery>, QueryRejection>, headers: &HeaderMap) -> (Lang, bool) {
    let asked = q
        .as_ref()
        .ok()
        .and_then(|q| q.lang.as_deref())
        .and_then(Lang::parse);
    match asked {
        Some(l) => (l, true),
        None => (
            session::cookie(headers, "mm_lang")
                .and_then(|v| Lang::parse(&v))
                .unwrap_or(Lang::Ja),
            false,
        ),
    }
}

fn html(status: StatusCode, body: maud::Markup) -> Response {
    (
        status,
        [
            (header::CONTENT_TYPE, "text/html; charset=utf-8"),
            (header::CACHE_CONTROL, "no-store"),
        ],
        body.into_string(),
    )
        .into_response()
}

fn with_lang_cookie(mut r: Response, lang: Lang, set: bool) -> Response {
    if set
        && let Ok(v) = format!(
            "mm_lang={}; Path=/console; SameSite=Strict; Max-Age=31536000",
            lang.code()
        )
        .parse()
    {
        r.headers_mut().append(header::SET_COOKIE, v);
    }
    r
}

async fn dashboard(
    State(app): State<Arc<App>>,
    headers: HeaderMap,
    q: Result<Query<LangQuery>, QueryRejection>,
) -> Response {
    let (lang, set) = lang_of(&q, &headers);
    let Some(s) = Session::of(&app, &headers).await else {
        return with_lang_cookie(Redirect::to("/console/login").into_response(), lang, set);
    };
    let done = q.as_ref().ok().and_then(|q| q.done.clone());
    let r = match read_dashboard(&app).await {
        Ok(d) => html(
            StatusCode::OK,
            pages::dashboard(lang, &s, &d, done.as_deref()),
        ),
        Err(e) => html(e.status(), pages::failure(lang, &e.message())),
    };
    with_lang_cookie(r, lang, set)
}

async fn login_page(headers: HeaderMap, q: Result<Query<LangQuery>, QueryRejection>) -> Response {
    let (lang, set) = lang_of(&q, &headers);
    with_lang_cookie(html(StatusCode::OK, pages::login(lang, None)), lang, set)
}

#[derive(Deserialize)]
struct LoginForm {
    token: String,
}

async fn login(
    State(app): State<Arc<App>>,
    headers: HeaderMap,
    form: Result<Form<LoginForm>, FormRejection>,
) -> Response {
    let lang = session::cookie(&headers, "mm_lang")
        .and_then(|v| Lang::parse(&v))
        .unwrap_or(Lang::Ja);
    let token = match form {
        Ok(Form(f)) => f.token.trim().to_string(),
        Err(_) => String::new(),
    };
    if token.is_empty() || token.len() > 200 || !token.bytes().all(|b| b.is_ascii_graphic()) {
        return html(
            StatusCode::BAD_REQUEST,
            pages::login(lang, Some(pages::LoginError::Empty)),
        );
    }
    match Session::check(&app, &token).await {
        Some(_) => {
            let mut r = Redirect::to("/console").into_response();
            if let Ok(v) =
                format!("mm_token={token}; Path=/console; HttpOnly; SameSite=Strict").parse()
            {
                r.headers_mut().append(header::SET_COOKIE, v);
            }
            r
        }
        None => html(
            StatusCode::UNAUTHORIZED,
            pages::login(lang, Some(pages::LoginError::Unknown)),
        ),
    }
}

/// Every change form carries `csrf`; the fields after it are the change's own.
#[derive(Deserialize)]
struct Csrf {
    csrf: String,
}

async fn logout(
    State(app): State<Arc<App>>,
    headers: HeaderMap,
    form: Result<Form<Csrf>, FormRejection>,
) -> Response {
    // A logout needs the CSRF token too: a foreign page must not sign the customer out.
    if let Err(r) = change_form(&app, &headers, form).await {
        return r;
    }
    let mut r = Redirect::to("/console/login").into_response();
    if let Ok(v) = "mm_token=; Path=/console; HttpOnly; SameSite=Strict; Max-Age=0".parse() {
        r.headers_mut().append(header::SET_COOKIE, v);
    }
    r
}

/// A form that changes something: it carries the session's CSRF token.
trait ChangeForm {
    fn csrf(&self) -> &str;
}

macro_rules! change_forms {
    ($($t:ty),*) => { $(impl ChangeForm for $t { fn csrf(&self) -> &str { &self.csrf } })* };
}
change_forms!(Csrf, ReleaseForm, ExceptionForm, RemoveForm, CategoryForm);

/// The session and the form of a change, or the page that refuses it: the login page, a
/// CSRF mismatch (403), or a form that does not parse (400).
async fn change_form<F: ChangeForm>(
    app: &Arc<App>,
    headers: &HeaderMap,
    form: Result<Form<F>, FormRejection>,
) -> Result<(Session, F), Response> {
    let s = changing(app, headers, form.as_ref().ok().map(|f| f.csrf())).await?;
    match form {
        Ok(Form(f)) => Ok((s, f)),
        Err(e) => Err(bad_form(s.lang, &e)),
    }
}

/// The session behind a change: logged in and the form's CSRF token matches.
async fn changing(
    app: &Arc<App>,
    headers: &HeaderMap,
    csrf: Option<&str>,
) -> Result<Session, Response> {
    let lang = session::cookie(headers, "mm_lang")
        .and_then(|v| Lang::parse(&v))
        .unwrap_or(Lang::Ja);
    let Some(s) = Session::of(app, headers).await else {
        return Err(Redirect::to("/console/login").into_response());
    };
    if !csrf.is_some_and(|c| session::same(c, &s.csrf)) {
        return Err(html(
            StatusCode::FORBIDDEN,
            pages::failure(
                lang,
                pages::t(
                    lang,
                    "フォームの有効期限が切れました。ページを開き直してください（CSRF トークンが一致しません）。",
                    "This form is out of date: reload the page and try again (the CSRF token does not match).",
                ),
            ),
        ));
    }
    Ok(s)
}

fn done(what: &str) -> Response {
    Redirect::to(&format!("/console?done={what}")).into_response()
}

fn refused(lang: Lang, e: &ApiError) -> Response {
    html(e.status(), pages::failure(lang, &e.message()))
}

fn bad_form(lang: Lang, e: &FormRejection) -> Response {
    html(
        StatusCode::BAD_REQUEST,
        pages::failure(
            lang,
            &format!(
                "{}: {}",
                pages::t(
                    lang,
                    "フォームの内容が正しくありません",
                    "The form is not valid"
                ),
                e.body_text()
            ),
        ),
    )
}

#[derive(Deserialize)]
struct ReleaseForm {
    csrf: String,
    mac: String,
}

async fn release(
    State(app): State<Arc<App>>,
    headers: HeaderMap,
    form: Result<Form<ReleaseForm>, FormRejection>,
) -> Response {
    let (s, f) = match change_form(&app, &headers, form).await {
        Ok(x) => x,
        Err(r) => return r,
    };
    match api::release_host(&app, &s.caller, f.mac.trim()).await {
        Ok(_) => done("released"),
        Err(e) => refused(s.lang, &e),
    }
}

#[derive(Deserialize)]
struct ExceptionForm {
    csrf: String,
    entry: String,
    action: String,
}

async fn add_exception(
    State(app): State<Arc<App>>,
    headers: HeaderMap,
    form: Result<Form<ExceptionForm>, FormRejection>,
) -> Response {
    let (s, f) = match change_form(&app, &headers, form).await {
        Ok(x) => x,
        Err(r) => return r,
    };
    let entry = f.entry.trim().to_ascii_lowercase();
    let change = move |list: &mut Vec<Exception>| {
        // The same site given again replaces its old action rather than doubling it.
        list.retain(|e| e.entry != entry);
        list.push(Exception {
            entry,
            action: f.action.trim().to_string(),
        });
    };
    change_exceptions(&app, &s, change, "exception-saved").await
}

#[derive(Deserialize)]
struct RemoveForm {
    csrf: String,
    entry: String,
}

async fn remove_exception(
    State(app): State<Arc<App>>,
    headers: HeaderMap,
    form: Result<Form<RemoveForm>, FormRejection>,
) -> Response {
    let (s, f) = match change_form(&app, &headers, form).await {
        Ok(x) => x,
        Err(r) => return r,
    };
    change_exceptions(
        &app,
        &s,
        move |l: &mut Vec<Exception>| l.retain(|e| e.entry != f.entry),
        "exception-removed",
    )
    .await
}

async fn change_exceptions(
    app: &Arc<App>,
    s: &Session,
    change: impl FnOnce(&mut Vec<Exception>),
    what: &str,
) -> Response {
    let cur = match with_db(app, |c| db::current_policy(c)).await {
        Ok(c) => c,
        Err(e) => return refused(s.lang, &e),
    };
    let mut list = cur.doc.exceptions.clone();
    change(&mut list);
    put(app, s, "exceptions", &json!(list), what).await
}

/// A section through the API's own change path; what the gateway said decides the page.
async fn put(
    app: &Arc<App>,
    s: &Session,
    section: &str,
    value: &serde_json::Value,
    what: &str,
) -> Response {
    match api::change_section(app, &s.caller, section, value.to_string().as_bytes()).await {
        Ok((StatusCode::OK, _)) => done(what),
        Ok(_) => done(&format!("{what}-pending")),
        Err(e) => refused(s.lang, &e),
    }
}

#[derive(Deserialize)]
struct CategoryForm {
    csrf: String,
    category: String,
    /// allow, monitor, block, or "default" to drop the box's own setting.
    action: String,
}

async fn set_category(
    State(app): State<Arc<App>>,
    headers: HeaderMap,
    form: Result<Form<CategoryForm>, FormRejection>,
) -> Response {
    let (s, f) = match change_form(&app, &headers, form).await {
        Ok(x) => x,
        Err(r) => return r,
    };
    let cur = match with_db(&app, |c| db::current_policy(c)).await {
        Ok(c) => c,
        Err(e) => return refused(s.lang, &e),
    };
    let mut cats = cur.doc.categories.clone();
    let name = f.category.trim().to_string();
    if f.action == "default" {
        cats.remove(&name);
    } else {
        cats.insert(name, f.action.trim().to_string());
    }
    put(&app, &s, "categories", &json!(cats), "category-saved").await
}

#[derive(Deserialize)]
struct ReportQuery {
    month: Option<String>,
    lang: Option<String>,
    format: Option<String>,
}

async fn report(
    State(app): State<Arc<App>>,
    headers: HeaderMap,
    q: Result<Query<ReportQuery>, QueryRejection>,
) -> Response {
    let lang = session::cookie(&headers, "mm_lang")
        .and_then(|v| Lang::parse(&v))
        .unwrap_or(Lang::Ja);
    if Session::of(&app, &headers).await.is_none() {
        return Redirect::to("/console/login").into_response();
    }
    let q = match q {
        Ok(Query(q)) => q,
        Err(e) => {
            return html(
                StatusCode::BAD_REQUEST,
                pages::failure(lang, &e.body_text()),
            );
        }
    };
    let rlang = q.lang.as_deref().unwrap_or(lang.code()).to_string();
    let page = match api::report_html(&app, q.month.as_deref(), &rlang).await {
        Ok(h) => h,
        Err(e) => return refused(lang, &e),
    };
    if q.format.as_deref() != Some("pdf") {
        return ([(header::CONTENT_TYPE, "text/html; charset=utf-8")], page).into_response();
    }
    // The PDF is the same HTML printed by headless Chromium, as `ctl report` does.
    let month = q
        .month
        .unwrap_or_else(|| crate::report::Month::of(db::now()).prev().to_string());
    let made = tokio::task::spawn_blocking(move || -> anyhow::Result<Vec<u8>> {
        let dir = std::env::temp_dir().join(format!("mimamori-console-pdf-{}", std::process::id()));
        std::fs::create_dir_all(&dir)?;
        let out = dir.join(format!("report-{}.pdf", rand_suffix()));
        crate::report::pdf::html_to_pdf(&page, &out)?;
        let bytes = std::fs::read(&out)?;
        let _ = std::fs::remove_file(&out);
        Ok(bytes)
    })
    .await;
    match made {
        Ok(Ok(pdf)) => (
            [
                (header::CONTENT_TYPE, "application/pdf".to_string()),
                (
                    header::CONTENT_DISPOSITION,
                    format!("attachment; filename=\"mimamori-report-{month}.pdf\""),
                ),
            ],
            pdf,
        )
            .into_response(),
        Ok(Err(e)) => html(
            StatusCode::SERVICE_UNAVAILABLE,
            pages::failure(lang, &format!("PDF: {e}")),
        ),
        Err(e) => html(
            StatusCode::INTERNAL_SERVER_ERROR,
            pages::failure(lang, &e.to_string()),
        ),
    }
}

fn rand_suffix() -> String {
    let mut b = [0u8; 8];
    let _ = getrandom::fill(&mut b);
    b.iter().map(|x| format!("{x:02x}")).collect()
}

/// Read by the session: who a token is, as the API's own extractor decides.
pub(crate) async fn caller_of(app: &Arc<App>, token: String) -> Option<Caller> {
    let found = with_db(app, move |c| Ok(db::check_token(c, &token)?))
        .await
        .ok()??;
    Some(Caller {
        name: found.0,
        role: found.1,
    })
}
