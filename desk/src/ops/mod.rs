//! The desk's operating logic over the store: one module per thing an operator handles.
//! Every function here runs inside one store transaction (`&mut dyn Conn`), so a refusal
//! half-way leaves nothing behind.

pub mod boxes;
pub mod contracts;
pub mod faults;
pub mod incidents;
pub mod ingest;
pub mod mailer;
pub mod patterns;
pub mod reports;
pub mod tickets;
pub mod visits;

use crate::store::{Conn, StoreError};
use thiserror::Error;

/// Why a request was not done; the API turns each into its status code.
#[derive(Debug, Error)]
pub enum Refusal {
    #[error("{0}")]
    BadInput(String),
    #[error("{0}")]
    NotFound(String),
    #[error("{0}")]
    Forbidden(String),
    #[error("{0}")]
    Conflict(String),
    #[error(transparent)]
    Store(#[from] StoreError),
}

pub type Result<T> = std::result::Result<T, Refusal>;

pub fn now() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs() as i64)
}

/// Who asks, as the API authenticated them.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Actor {
    DeskAdmin(String),
    DeskOperator(String),
    /// A customer's own user: sees and acts on their boxes only.
    Customer {
        name: String,
        customer: String,
    },
    /// A box, by its certificate.
    Box(String),
    /// The desk itself (rules, watchers).
    System,
}

impl Actor {
    pub fn name(&self) -> String {
        match self {
            Actor::DeskAdmin(n) => format!("admin:{n}"),
            Actor::DeskOperator(n) => format!("operator:{n}"),
            Actor::Customer { name, customer } => format!("customer:{customer}:{name}"),
            Actor::Box(b) => format!("box:{b}"),
            Actor::System => "desk".into(),
        }
    }

    pub fn is_desk(&self) -> bool {
        matches!(
            self,
            Actor::DeskAdmin(_) | Actor::DeskOperator(_) | Actor::System
        )
    }

    /// The customer whose data alone this actor may see, if restricted.
    pub fn customer(&self) -> Option<&str> {
        match self {
            Actor::Customer { customer, .. } => Some(customer),
            _ => None,
        }
    }

    pub fn require_desk(&self) -> Result<()> {
        if self.is_desk() {
            Ok(())
        } else {
            Err(Refusal::Forbidden("desk staff only".into()))
        }
    }

    pub fn require_admin(&self) -> Result<()> {
        if matches!(self, Actor::DeskAdmin(_) | Actor::System) {
            Ok(())
        } else {
            Err(Refusal::Forbidden("desk admins only".into()))
        }
    }
}

/// One line of the desk's own audit trail.
pub fn audit(
    c: &mut dyn Conn,
    actor: &Actor,
    action: &str,
    target: &str,
    detail: &str,
) -> Result<()> {
    c.exec(
        "INSERT INTO audit (at, actor, action, target, detail) VALUES (?, ?, ?, ?, ?)",
        crate::params![now(), actor.name(), action, target, detail],
    )?;
    Ok(())
}

/// Text fields from the API and the network: bounded, no control characters.
pub fn clean(field: &str, value: &str, max: usize) -> Result<String> {
    let v = value.trim();
    if v.is_empty() {
        return Err(Refusal::BadInput(format!("{field}: must not be empty")));
    }
    if v.chars().count() > max {
        return Err(Refusal::BadInput(format!(
            "{field}: longer than {max} characters"
        )));
    }
    if v.chars().any(|c| c.is_control() && c != '\n' && c != '\t') {
        return Err(Refusal::BadInput(format!(
            "{field}: holds control characters"
        )));
    }
    Ok(v.to_string())
}
