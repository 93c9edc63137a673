//! The console's login state: the API token in an HttpOnly cookie, the CSRF token derived
//! from it, and the page language.

use crate::api::{App, Caller};
use axum::http::{HeaderMap, header};
use sha2::{Digest, Sha256};
use std::sync::Arc;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Lang {
    Ja,
    En,
}

impl Lang {
    pub fn parse(s: &str) -> Option<Lang> {
        match s {
            "ja" => Some(Lang::Ja),
            "en" => Some(Lang::En),
            _ => None,
        }
    }
    pub fn code(self) -> &'static str {
        match self {
            Lang::Ja => "ja",
            Lang::En => "en",
        }
    }
}

pub struct Session {
    pub caller: Caller,
    pub csrf: String,
    pub lang: Lang,
}

/// A cookie's value from the request, if sent.
pub fn cookie(headers: &HeaderMap, name: &str) -> Option<String> {
    headers
        .get_all(header::COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .filter_map(|kv| kv.trim().split_once('='))
        .find(|(k, _)| *k == name)
        .map(|(_, v)| v.to_string())
}

/// The CSRF token of a session: a hash of its secret, so a page of another site (which
/// cannot read the HttpOnly cookie) cannot know it, and no server state is needed.
pub fn csrf_of(token: &str) -> String {
    let h = Sha256::digest(format!("mimamori-console-csrf\0{token}").as_bytes());
    h.iter().take(16).map(|b| format!("{b:02x}")).collect()
}

/// Compares without stopping at the first difference.
pub fn same(a: &str, b: &str) -> bool {
    a.len() == b.len()
        && a.bytes()
            .zip(b.bytes())
            .fold(0u8, |acc, (x, y)| acc | (x ^ y))
            == 0
}

impl Session {
    /// The logged-in session of a request, or none (no cookie, or a token no longer known).
    pub async fn of(app: &Arc<App>, headers: &HeaderMap) -> Option<Session> {
        let lang = cookie(headers, "mm_lang")
            .and_then(|v| Lang::parse(&v))
            .unwrap_or(Lang::Ja);
        let token = cookie(headers, "mm_token").filter(|t| !t.is_empty())?;
        let mut s = Session::check(app, &token).await?;
        s.lang = lang;
        Some(s)
    }

    pub async fn check(app: &Arc<App>, token: &str) -> Option<Session> {
        use std::sync::atomic::Ordering::Relaxed;
        app.counters.requests.fetch_add(1, Relaxed);
        match super::caller_of(app, token.to_string()).await {
            Some(caller) => Some(Session {
                caller,
                csrf: csrf_of(token),
                lang: Lang::Ja,
            }),
            None => {
                app.counters.denied.fetch_add(1, Relaxed);
                None
            }
        }
    }
}
