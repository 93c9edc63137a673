//! The Suricata rule language: `action proto src sport -> dst dport (options;)`.
//!
//! `parse_rule` turns one rule into a typed [`Rule`] or says precisely why it cannot:
//! malformed text is an error, a well-formed rule using something we do not support is
//! `Unsupported` with the keyword. `load` reads rule files and reports both.

pub mod content;
pub mod header;
pub mod load;
pub mod options;
pub mod threshold_config;

pub use content::{Content, parse_content_pattern};
pub use header::{AddrSpec, Header, PortSpec, Vars};
pub use load::{Classifications, LoadReport, RuleSet, Skipped, load_files, load_texts};
pub use options::{Buffer, FlowOpt, Match, Meta, Pcre, Transform};
pub use threshold_config::ThresholdConfig;

use std::fmt;

#[derive(Clone, Copy, Debug, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Action {
    Alert,
    Drop,
    Reject,
    Pass,
}

/// A parsed rule.
#[derive(Clone, Debug, PartialEq)]
pub struct Rule {
    pub action: Action,
    pub header: Header,
    pub meta: Meta,
    /// Detection in rule order; sticky buffers appear as `Match::Buffer` switches.
    pub matches: Vec<Match>,
}

/// Why a rule was not loaded.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum RuleError {
    /// The text is not a valid rule.
    Malformed(String),
    /// Valid, but uses something this engine does not (yet) do.
    Unsupported(String),
}

impl fmt::Display for RuleError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            RuleError::Malformed(m) => write!(f, "malformed: {m}"),
            RuleError::Unsupported(m) => write!(f, "unsupported: {m}"),
        }
    }
}

impl std::error::Error for RuleError {}

pub(crate) fn malformed<T>(m: impl Into<String>) -> Result<T, RuleError> {
    Err(RuleError::Malformed(m.into()))
}
pub(crate) fn unsupported<T>(m: impl Into<String>) -> Result<T, RuleError> {
    Err(RuleError::Unsupported(m.into()))
}

/// Parses one rule (without the line continuation backslashes).
pub fn parse_rule(text: &str, vars: &Vars) -> Result<Rule, RuleError> {
    let text = text.trim();
    let open = text
        .find('(')
        .ok_or_else(|| RuleError::Malformed("no option list '('".into()))?;
    if !text.ends_with(')') {
        return malformed("the option list does not end with ')'");
    }
    let head = &text[..open];
    let body = &text[open + 1..text.len() - 1];
    let mut words = head.split_whitespace();
    let action = match words.next() {
        Some("alert") => Action::Alert,
        Some("drop") => Action::Drop,
        Some("reject") | Some("rejectsrc") | Some("rejectdst") | Some("rejectboth") => {
            Action::Reject
        }
        Some("pass") => Action::Pass,
        Some(other) => return malformed(format!("unknown action {other:?}")),
        None => return malformed("empty rule"),
    };
    let header = header::parse(
        head[head.find(char::is_whitespace).unwrap_or(head.len())..].trim(),
        vars,
    )?;
    let (meta, matches) = options::parse(body, &header)?;
    Ok(Rule {
        action,
        header,
        meta,
        matches,
    })
}
