//! The desk console (issue 17): server-rendered pages on the operators' API server, for
//! desk staff (box health, incident queue and detail with its life-cycle steps, tickets,
//! on-site quota) and for customers (their own boxes, incidents and reports only). The
//! login form takes an operator-API token and keeps it in an HttpOnly, SameSite=Strict
//! cookie; forms POST a CSRF token derived from it. Every page reads through `ops` with the
//! token's actor, so a customer sees exactly what the API would show them.

mod pages;

use crate::api::{ApiError, App, auth};
use crate::incident::state::{Action, IncidentState, next};
use crate::ops::{self, Actor, Refusal, boxes, incidents, tickets, visits};
use crate::store::Conn;
use axum::Router;
use axum::extract::rejection::FormRejection;
use axum::extract::{Form, Path, State};
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Redirect, Response};
use axum::routing::{get, post};
use serde::Deserialize;
use sha2::{Digest, Sha256};

pub fn routes() -> Router<App> {
    Router::new()
        .route("/console", get(home))
        .route("/console/login", get(login_page).post(login))
        .route("/console/logout", post(logout))
        .route("/console/boxes/{id}", get(box_page))
        .route(
            "/console/boxes/{id}/reports/{month}/{lang}/{format}",
            get(report_file),
        )
        .route(
            "/console/customers/{id}/months/{month}",
            get(customer_month),
        )
        .route("/console/incidents/{id}", get(incident_page))
        .route("/console/incidents/{id}/act", post(act))
}

const TOKEN_COOKIE: &str = "mmd_token";

fn cookie(headers: &HeaderMap, name: &str) -> Option<String> {
    headers
        .get_all(header::COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .filter_map(|kv| kv.trim().split_once('='))
        .find(|(k, _)| *k == name)
        .map(|(_, v)| v.to_string())
}

/// The CSRF token of a session: a hash of its secret token, which a foreign page cannot
/// read from the HttpOnly cookie; no server state needed.
pub fn csrf_of(token: &str) -> String {
    let h = Sha256::digest(format!("mimamori-desk-console-csrf\0{token}").as_bytes());
    h.iter().take(16).map(|b| format!("{b:02x}")).collect()
}

fn same(a: &str, b: &str) -> bool {
    a.len() == b.len()
        && a.bytes()
            .zip(b.bytes())
            .fold(0u8, |acc, (x, y)| acc | (x ^ y))
            == 0
}

pub struct Session {
    pub actor: Actor,
    pub csrf: String,
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

/// A refusal as a page, with the status the API would answer.
fn refused(r: Refusal) -> Response {
    let message = r.to_string();
    let status = ApiError(r).into_response().status();
    html(status, pages::failure(&message))
}

/// Runs `work` for the cookie's actor in one store transaction; no or a stale cookie sends
/// the browser to the login page.
async fn as_session<T: Send + 'static>(
    app: &App,
    headers: &HeaderMap,
    work: impl FnOnce(&mut dyn Conn, &Session) -> ops::Result<T> + Send + 'static,
) -> Result<(Session, T), Response> {
    let Some(token) = cookie(headers, TOKEN_COOKIE).filter(|t| !t.is_empty()) else {
        return Err(Redirect::to("/console/login").into_response());
    };
    let r = app
        .store
        .run(
            move |c| -> Result<Result<(Session, T), Refusal>, ApiError> {
                let actor = match auth::actor_of_token(c, &token) {
                    Ok(a) => a,
                    Err(_) => return Ok(Err(Refusal::Forbidden("login".into()))),
                };
                let s = Session {
                    actor,
                    csrf: csrf_of(&token),
                };
                Ok(work(c, &s).map(|t| (s, t)))
            },
        )
        .await;
    match r {
        Ok(Ok(x)) => Ok(x),
        Ok(Err(Refusal::Forbidden(m))) if m == "login" => {
            Err(Redirect::to("/console/login").into_response())
        }
        Ok(Err(refusal)) => Err(refused(refusal)),
        Err(ApiError(refusal)) => Err(refused(refusal)),
    }
}

/// What the home page shows; a customer's is filtered to their own by `ops`.
pub struct Home {
    pub boxes: Vec<boxes::BoxView>,
    pub incidents: Vec<incidents::IncidentView>,
    pub tickets: Vec<serde_json::Value>,
}

async fn home(State(app): State<App>, headers: HeaderMap) -> Response {
    let fault_after = app.ctx.fault_after;
    match as_session(&app, &headers, move |c, s| {
        Ok(Home {
            boxes: boxes::list_boxes(c, &s.actor, fault_after)?,
            incidents: incidents::list(
                c,
                &s.actor,
                &incidents::Filter {
                    open: Some(true),
                    limit: Some(200),
                    ..Default::default()
                },
            )?,
            tickets: tickets::list(c, &s.actor, &tickets::Filter::default())?,
        })
    })
    .await
    {
        Ok((s, h)) => html(StatusCode::OK, pages::home(&s, &h)),
        Err(r) => r,
    }
}

async fn login_page() -> Response {
    html(StatusCode::OK, pages::login(None))
}

#[derive(Deserialize)]
struct LoginForm {
    token: String,
}

async fn login(State(app): State<App>, form: Result<Form<LoginForm>, FormRejection>) -> Response {
    let token = form
        .map(|Form(f)| f.token.trim().to_string())
        .unwrap_or_default();
    if token.is_empty() || token.len() > 200 || !token.bytes().all(|b| b.is_ascii_graphic()) {
        return html(
            StatusCode::BAD_REQUEST,
            pages::login(Some("Enter your token.")),
        );
    }
    let t = token.clone();
    let known = app
        .store
        .run(move |c| -> Result<bool, ApiError> { Ok(auth::actor_of_token(c, &t).is_ok()) })
        .await;
    match known {
        Ok(true) => {
            let mut r = Redirect::to("/console").into_response();
            if let Ok(v) =
                format!("{TOKEN_COOKIE}={token}; Path=/console; HttpOnly; SameSite=Strict").parse()
            {
                r.headers_mut().append(header::SET_COOKIE, v);
            }
            r
        }
        Ok(false) => html(
            StatusCode::UNAUTHORIZED,
            pages::login(Some("This token is not known.")),
        ),
        Err(ApiError(e)) => refused(e),
    }
}

#[derive(Deserialize)]
struct Csrf {
    csrf: String,
}

fn csrf_ok(s: &Session, given: Option<&str>) -> ops::Result<()> {
    if given.is_some_and(|g| same(g, &s.csrf)) {
        Ok(())
    } else {
        Err(Refusal::Forbidden(
            "this form is out of date (CSRF token does not match): reload the page".into(),
        ))
    }
}

async fn logout(
    State(app): State<App>,
    headers: HeaderMap,
    form: Result<Form<Csrf>, FormRejection>,
) -> Response {
    let given = form.ok().map(|Form(f)| f.csrf);
    if let Err(r) = as_session(&app, &headers, move |_, s| csrf_ok(s, given.as_deref())).await {
        return r;
    }
    let mut r = Redirect::to("/console/login").into_response();
    if let Ok(v) =
        format!("{TOKEN_COOKIE}=; Path=/console; HttpOnly; SameSite=Strict; Max-Age=0").parse()
    {
        r.headers_mut().append(header::SET_COOKIE, v);
    }
    r
}

/// A box's page: health, this month's on-site quota and visits, kept reports, incidents.
pub struct BoxPage {
    pub view: boxes::BoxView,
    pub quota: mimamori_contracts::OnSiteQuota,
    pub free_used_this_month: usize,
    pub visits: Vec<serde_json::Value>,
    pub reports: Vec<serde_json::Value>,
    pub incidents: Vec<incidents::IncidentView>,
}

async fn box_page(State(app): State<App>, headers: HeaderMap, Path(id): Path<String>) -> Response {
    let fault_after = app.ctx.fault_after;
    match as_session(&app, &headers, move |c, s| {
        // get_box answers "no such box" for another customer's: checked before anything else.
        let view = boxes::get_box(c, &s.actor, &id, fault_after)?;
        let plan: mimamori_contracts::Plan = view
            .plan
            .parse()
            .map_err(|e| Refusal::Conflict(format!("plan: {e}")))?;
        let quota = mimamori_contracts::profile(plan, false).on_site;
        let visits = visits::list(c, &s.actor, &id)?;
        let month = crate::clock::format_jst(ops::now())
            .get(..7)
            .unwrap_or("")
            .to_string();
        let free_used_this_month = visits
            .iter()
            .filter(|v| v["free"] == serde_json::json!(true))
            .filter(|v| {
                v["start_jst"]
                    .as_str()
                    .is_some_and(|t| t.starts_with(&month))
            })
            .count();
        Ok(BoxPage {
            reports: ops::reports::list(c, &s.actor, &id)?,
            incidents: incidents::list(
                c,
                &s.actor,
                &incidents::Filter {
                    box_id: Some(id.clone()),
                    limit: Some(50),
                    ..Default::default()
                },
            )?,
            view,
            quota,
            free_used_this_month,
            visits,
        })
    })
    .await
    {
        Ok((s, p)) => html(StatusCode::OK, pages::box_page(&s, &p)),
        Err(r) => r,
    }
}

async fn report_file(
    State(app): State<App>,
    headers: HeaderMap,
    Path((id, month, lang, format)): Path<(String, String, String, String)>,
) -> Response {
    let pdf = format == "pdf";
    let path = match as_session(&app, &headers, move |c, s| {
        ops::reports::file(c, &s.actor, &id, &month, &lang, &format)
    })
    .await
    {
        Ok((_, p)) => p,
        Err(r) => return r,
    };
    match tokio::task::spawn_blocking(move || std::fs::read(&path)).await {
        Ok(Ok(bytes)) => {
            let ct = if pdf {
                "application/pdf"
            } else {
                "text/html; charset=utf-8"
            };
            ([(header::CONTENT_TYPE, ct)], bytes).into_response()
        }
        _ => refused(Refusal::NotFound("the report file is missing".into())),
    }
}

/// A customer's month over all their boxes, with the desk's own records.
async fn customer_month(
    State(app): State<App>,
    headers: HeaderMap,
    Path((id, month)): Path<(String, String)>,
) -> Response {
    match as_session(&app, &headers, move |c, s| {
        ops::reports::customer_month(c, &s.actor, &id, &month)
    })
    .await
    {
        Ok((s, m)) => html(StatusCode::OK, pages::customer_month(&s, &m)),
        Err(r) => r,
    }
}

/// An incident with its box's latest events and the steps its state allows now.
pub struct IncidentPage {
    pub detail: incidents::IncidentDetail,
    pub events: Vec<serde_json::Value>,
    pub actions: Vec<Action>,
}

async fn incident_page(
    State(app): State<App>,
    headers: HeaderMap,
    Path(id): Path<String>,
) -> Response {
    let Ok(id) = id.parse::<i64>() else {
        return refused(Refusal::BadInput(format!(
            "incident id: {id:?} is not a number"
        )));
    };
    match as_session(&app, &headers, move |c, s| {
        let detail = incidents::get(c, &s.actor, id)?;
        let events = boxes::events(c, &detail.incident.box_id, None, 50)?;
        let actions = match (
            s.actor.is_desk(),
            detail.incident.state.parse::<IncidentState>(),
        ) {
            (true, Ok(st)) => Action::ALL
                .into_iter()
                .filter(|a| next(st, *a).is_ok())
                .collect(),
            _ => Vec::new(),
        };
        Ok(IncidentPage {
            detail,
            events,
            actions,
        })
    })
    .await
    {
        Ok((s, p)) => html(StatusCode::OK, pages::incident(&s, &p)),
        Err(r) => r,
    }
}

#[derive(Deserialize)]
struct ActForm {
    csrf: String,
    action: String,
    #[serde(default)]
    note: String,
}

async fn act(
    State(app): State<App>,
    headers: HeaderMap,
    Path(id): Path<String>,
    form: Result<Form<ActForm>, FormRejection>,
) -> Response {
    let Ok(id) = id.parse::<i64>() else {
        return refused(Refusal::BadInput(format!(
            "incident id: {id:?} is not a number"
        )));
    };
    let f = match form {
        Ok(Form(f)) => f,
        Err(e) => return refused(Refusal::BadInput(format!("form: {}", e.body_text()))),
    };
    let done = as_session(&app, &headers, move |c, s| {
        csrf_ok(s, Some(&f.csrf))?;
        let note = ops::clean(
            "note",
            if f.note.trim().is_empty() {
                "(console)"
            } else {
                &f.note
            },
            500,
        )?;
        incidents::act(c, &s.actor, id, &f.action, &note)
    })
    .await;
    match done {
        Ok(_) => Redirect::to(&format!("/console/incidents/{id}")).into_response(),
        Err(r) => r,
    }
}
