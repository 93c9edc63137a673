//! Bearer tokens for the operator API: each token has a role (desk admin, desk operator,
//! customer — the last bound to one customer). Stored hashed.

use super::ApiError;
use crate::ops::{Actor, Refusal, Result, audit, boxes::hash_code, now};
use crate::params;
use crate::store::{Conn, RowExt};
use axum::http::HeaderMap;

pub const ROLES: [&str; 3] = ["desk-admin", "desk-operator", "customer"];

/// Creates a token; the text is shown once.
pub fn create(
    c: &mut dyn Conn,
    actor: &Actor,
    name: &str,
    role: &str,
    customer: Option<&str>,
) -> Result<String> {
    actor.require_admin()?;
    let name = crate::ops::clean("name", name, 80)?;
    if !ROLES.contains(&role) {
        return Err(Refusal::BadInput(format!(
            "role: {role:?} — use one of {}",
            ROLES.join(", ")
        )));
    }
    match (role, customer) {
        ("customer", None) => {
            return Err(Refusal::BadInput(
                "customer_id: required for a customer token".into(),
            ));
        }
        ("customer", Some(cu))
            if c.one("SELECT 1 FROM customer WHERE id = ?", params![cu])?
                .is_none() =>
        {
            return Err(Refusal::NotFound(format!(
                "customer {cu}: no such customer"
            )));
        }
        ("customer", Some(_)) => {}
        (_, Some(_)) => {
            return Err(Refusal::BadInput(
                "customer_id: only customer tokens have one".into(),
            ));
        }
        _ => {}
    }
    let mut raw = [0u8; 24];
    getrandom::fill(&mut raw).map_err(|e| Refusal::Conflict(format!("no randomness: {e}")))?;
    let token: String = format!(
        "mmd_{}",
        raw.iter().map(|b| format!("{b:02x}")).collect::<String>()
    );
    c.exec(
        "INSERT INTO token (hash, name, role, customer_id, created) VALUES (?, ?, ?, ?, ?)",
        params![hash_code(&token), &name, role, customer, now()],
    )?;
    audit(c, actor, "token.create", &name, role)?;
    Ok(token)
}

pub fn count(c: &mut dyn Conn) -> Result<i64> {
    Ok(c.one("SELECT COUNT(*) FROM token", &[])?
        .map(|r| r.int(0))
        .transpose()?
        .unwrap_or(0))
}

/// Who a request comes from; no or an unknown token is refused.
pub fn actor_of(c: &mut dyn Conn, headers: &HeaderMap) -> std::result::Result<Actor, ApiError> {
    let token = headers
        .get("authorization")
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer "))
        .ok_or_else(|| {
            ApiError(Refusal::Forbidden(
                "authorization: a bearer token is required".into(),
            ))
        })?;
    actor_of_token(c, token)
}

/// Who a token is (the console's login cookie carries the same tokens).
pub fn actor_of_token(c: &mut dyn Conn, token: &str) -> std::result::Result<Actor, ApiError> {
    let row = c
        .one(
            "SELECT name, role, customer_id FROM token WHERE hash = ?",
            params![hash_code(token)],
        )
        .map_err(|e| ApiError(e.into()))?
        .ok_or_else(|| ApiError(Refusal::Forbidden("authorization: unknown token".into())))?;
    let name = row.text(0).map_err(|e| ApiError(e.into()))?;
    Ok(
        match row.text(1).map_err(|e| ApiError(e.into()))?.as_str() {
            "desk-admin" => Actor::DeskAdmin(name),
            "desk-operator" => Actor::DeskOperator(name),
            _ => Actor::Customer {
                name,
                customer: row
                    .opt_text(2)
                    .map_err(|e| ApiError(e.into()))?
                    .unwrap_or_default(),
            },
        },
    )
}
