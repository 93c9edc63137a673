//! The incident life cycle as an explicit state machine, with an audit entry per step.
//!
//! ```text
//! New ──Triage──▶ Triage ──NotifyCustomer──▶ CustomerNotified ──StartRemoteRemoval──▶ Remediation(Remote)
//!  └──────────NotifyCustomer──────────────────▲                                          │ EscalateOnSite
//!                                                                                       ▼
//!   Close(Remediated) from Remediation(*) ◀──────────────────────────────── Remediation(OnSite)
//!   Close(FalsePositive | Duplicate) from any open state;  Closed(*) ──Reopen──▶ Triage
//! ```
//!
//! Seed: 「不正通信の発生を検知した際には、…お客さまへご連絡し、電話などにより原因究明を行った上で、
//! ウイルス駆除や端末の復旧をサポートいたします。電話などによる対応が困難な状況においては、訪問による
//! サポートも実施いたします。」 — so remote removal comes after the customer is contacted, and an
//! on-site visit only after remote removal. `NotifyCustomer` is allowed straight from `New`
//! because the mail goes out 24/365 before anyone triages. A second mail about the same incident
//! (e.g. a severity raise) is not a transition: it does not step the machine.

use serde::{Deserialize, Serialize};
use std::fmt;
use std::str::FromStr;
use thiserror::Error;

const ACTOR_CHARS: usize = 80;
const NOTE_CHARS: usize = 2000;

/// How remediation goes.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum RemediationPath {
    /// Virus removal guided by phone / remote tools.
    RemoteRemoval,
    /// The on-site visit (OS recovery).
    OnSiteVisit,
}

/// How an incident ended.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Resolution {
    Remediated,
    FalsePositive,
    Duplicate,
}

impl Resolution {
    pub const ALL: [Resolution; 3] = [
        Resolution::Remediated,
        Resolution::FalsePositive,
        Resolution::Duplicate,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            Resolution::Remediated => "remediated",
            Resolution::FalsePositive => "false-positive",
            Resolution::Duplicate => "duplicate",
        }
    }
}

/// Where an incident stands.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(into = "String", try_from = "String")]
pub enum IncidentState {
    New,
    Triage,
    CustomerNotified,
    Remediation(RemediationPath),
    Closed(Resolution),
}

impl IncidentState {
    pub const ALL: [IncidentState; 8] = [
        IncidentState::New,
        IncidentState::Triage,
        IncidentState::CustomerNotified,
        IncidentState::Remediation(RemediationPath::RemoteRemoval),
        IncidentState::Remediation(RemediationPath::OnSiteVisit),
        IncidentState::Closed(Resolution::Remediated),
        IncidentState::Closed(Resolution::FalsePositive),
        IncidentState::Closed(Resolution::Duplicate),
    ];

    /// The stored form: `new`, `triage`, `customer-notified`, `remediation:remote`,
    /// `remediation:on-site`, `closed:remediated`, `closed:false-positive`, `closed:duplicate`.
    pub fn as_str(self) -> &'static str {
        use IncidentState::*;
        match self {
            New => "new",
            Triage => "triage",
            CustomerNotified => "customer-notified",
            Remediation(RemediationPath::RemoteRemoval) => "remediation:remote",
            Remediation(RemediationPath::OnSiteVisit) => "remediation:on-site",
            Closed(Resolution::Remediated) => "closed:remediated",
            Closed(Resolution::FalsePositive) => "closed:false-positive",
            Closed(Resolution::Duplicate) => "closed:duplicate",
        }
    }

    pub fn is_open(self) -> bool {
        !matches!(self, IncidentState::Closed(_))
    }
}

impl fmt::Display for IncidentState {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Error)]
#[error("unknown {what} {text:?}")]
pub struct UnknownName {
    pub what: &'static str,
    pub text: String,
}

fn unknown(what: &'static str, text: &str) -> UnknownName {
    UnknownName {
        what,
        text: text.chars().take(60).filter(|c| !c.is_control()).collect(),
    }
}

impl FromStr for IncidentState {
    type Err = UnknownName;
    fn from_str(text: &str) -> Result<IncidentState, UnknownName> {
        IncidentState::ALL
            .into_iter()
            .find(|s| s.as_str() == text.trim())
            .ok_or_else(|| unknown("incident state", text))
    }
}

impl From<IncidentState> for String {
    fn from(state: IncidentState) -> String {
        state.as_str().to_string()
    }
}

impl TryFrom<String> for IncidentState {
    type Error = UnknownName;
    fn try_from(text: String) -> Result<IncidentState, UnknownName> {
        text.parse()
    }
}

/// What a desk operator (or the desk itself) does to an incident.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(into = "String", try_from = "String")]
pub enum Action {
    Triage,
    NotifyCustomer,
    StartRemoteRemoval,
    EscalateOnSite,
    Close(Resolution),
    Reopen,
}

impl Action {
    pub const ALL: [Action; 8] = [
        Action::Triage,
        Action::NotifyCustomer,
        Action::StartRemoteRemoval,
        Action::EscalateOnSite,
        Action::Close(Resolution::Remediated),
        Action::Close(Resolution::FalsePositive),
        Action::Close(Resolution::Duplicate),
        Action::Reopen,
    ];

    /// `triage`, `notify-customer`, `start-remote-removal`, `escalate-on-site`,
    /// `close:remediated`, `close:false-positive`, `close:duplicate`, `reopen`.
    pub fn as_str(self) -> &'static str {
        match self {
            Action::Triage => "triage",
            Action::NotifyCustomer => "notify-customer",
            Action::StartRemoteRemoval => "start-remote-removal",
            Action::EscalateOnSite => "escalate-on-site",
            Action::Close(Resolution::Remediated) => "close:remediated",
            Action::Close(Resolution::FalsePositive) => "close:false-positive",
            Action::Close(Resolution::Duplicate) => "close:duplicate",
            Action::Reopen => "reopen",
        }
    }
}

impl fmt::Display for Action {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for Action {
    type Err = UnknownName;
    fn from_str(text: &str) -> Result<Action, UnknownName> {
        Action::ALL
            .into_iter()
            .find(|a| a.as_str() == text.trim())
            .ok_or_else(|| unknown("action", text))
    }
}

impl From<Action> for String {
    fn from(action: Action) -> String {
        action.as_str().to_string()
    }
}

impl TryFrom<String> for Action {
    type Error = UnknownName;
    fn try_from(text: String) -> Result<Action, UnknownName> {
        text.parse()
    }
}

/// Why a transition is refused.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum RefusalReason {
    /// The incident is closed: only `reopen` applies.
    Closed,
    /// `reopen` needs a closed incident.
    NotClosed,
    /// The action belongs to an earlier stage than the incident's.
    AlreadyPast,
    /// Remote removal starts once the customer has been contacted.
    NotifyFirst,
    /// On-site only after remote removal (「電話などによる対応が困難な状況においては、訪問による
    /// サポートも実施いたします」).
    RemoteFirst,
    /// Closing as remediated needs remediation under way.
    NotRemediating,
}

impl RefusalReason {
    pub fn explain(self) -> &'static str {
        match self {
            RefusalReason::Closed => "the incident is closed; reopen it first",
            RefusalReason::NotClosed => "only a closed incident can be reopened",
            RefusalReason::AlreadyPast => "the incident is already past that stage",
            RefusalReason::NotifyFirst => "remote removal starts after the customer is contacted",
            RefusalReason::RemoteFirst => {
                "an on-site visit follows remote removal (「電話などによる対応が困難な状況においては、訪問によるサポートも実施いたします」)"
            }
            RefusalReason::NotRemediating => "closing as remediated needs remediation under way",
        }
    }
}

/// A refused step.
#[derive(Clone, Debug, PartialEq, Eq, Error)]
pub enum TransitionRefusal {
    #[error("cannot {action} an incident in state {from}: {}", reason.explain())]
    NotAllowed {
        from: IncidentState,
        action: Action,
        reason: RefusalReason,
    },
    #[error("an audit entry needs an actor (field `actor` is empty)")]
    NoActor,
}

/// The state after `action`, or why not. The whole table is here.
pub fn next(state: IncidentState, action: Action) -> Result<IncidentState, TransitionRefusal> {
    use IncidentState as S;
    use RemediationPath::*;
    let refuse = |reason| {
        Err(TransitionRefusal::NotAllowed {
            from: state,
            action,
            reason,
        })
    };
    match (state, action) {
        (S::Closed(_), Action::Reopen) => Ok(S::Triage),
        (S::Closed(_), _) => refuse(RefusalReason::Closed),
        (_, Action::Reopen) => refuse(RefusalReason::NotClosed),
        // Any open state may be closed as a mistake or a duplicate.
        (_, Action::Close(r @ (Resolution::FalsePositive | Resolution::Duplicate))) => {
            Ok(S::Closed(r))
        }
        (S::Remediation(_), Action::Close(Resolution::Remediated)) => {
            Ok(S::Closed(Resolution::Remediated))
        }
        (_, Action::Close(Resolution::Remediated)) => refuse(RefusalReason::NotRemediating),
        (S::New, Action::Triage) => Ok(S::Triage),
        (_, Action::Triage) => refuse(RefusalReason::AlreadyPast),
        (S::New | S::Triage, Action::NotifyCustomer) => Ok(S::CustomerNotified),
        (_, Action::NotifyCustomer) => refuse(RefusalReason::AlreadyPast),
        (S::CustomerNotified, Action::StartRemoteRemoval) => Ok(S::Remediation(RemoteRemoval)),
        (S::New | S::Triage, Action::StartRemoteRemoval) => refuse(RefusalReason::NotifyFirst),
        (S::Remediation(_), Action::StartRemoteRemoval) => refuse(RefusalReason::AlreadyPast),
        (S::Remediation(RemoteRemoval), Action::EscalateOnSite) => Ok(S::Remediation(OnSiteVisit)),
        (S::Remediation(OnSiteVisit), Action::EscalateOnSite) => refuse(RefusalReason::AlreadyPast),
        (S::New | S::Triage | S::CustomerNotified, Action::EscalateOnSite) => {
            refuse(RefusalReason::RemoteFirst)
        }
    }
}

/// One step of an incident's history.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct AuditEntry {
    /// Unix seconds.
    pub at: i64,
    /// Who did it (an operator's name, or `desk` for automatic steps); cleaned, ≤ 80 characters.
    pub actor: String,
    pub from: IncidentState,
    pub to: IncidentState,
    /// Free text, control characters other than line breaks removed, ≤ 2000 characters.
    pub note: String,
}

/// [`next`], with the audit entry recording it.
pub fn step(
    state: IncidentState,
    action: Action,
    actor: &str,
    at: i64,
    note: &str,
) -> Result<(IncidentState, AuditEntry), TransitionRefusal> {
    let actor = super::clean_text(actor, ACTOR_CHARS);
    if actor.is_empty() {
        return Err(TransitionRefusal::NoActor);
    }
    let to = next(state, action)?;
    let note: String = note
        .chars()
        .filter(|c| *c == '\n' || !c.is_control())
        .take(NOTE_CHARS)
        .collect();
    Ok((
        to,
        AuditEntry {
            at,
            actor,
            from: state,
            to,
            note,
        },
    ))
}

#[cfg(test)]
mod tests {
    use super::*;
    use IncidentState as S;
    use RemediationPath::*;

    /// Every allowed (state, action) → state. Every pair not listed must be refused.
    fn allowed() -> Vec<(IncidentState, Action, IncidentState)> {
        let mut table = vec![
            (S::New, Action::Triage, S::Triage),
            (S::New, Action::NotifyCustomer, S::CustomerNotified),
            (S::Triage, Action::NotifyCustomer, S::CustomerNotified),
            (
                S::CustomerNotified,
                Action::StartRemoteRemoval,
                S::Remediation(RemoteRemoval),
            ),
            (
                S::Remediation(RemoteRemoval),
                Action::EscalateOnSite,
                S::Remediation(OnSiteVisit),
            ),
            (
                S::Remediation(RemoteRemoval),
                Action::Close(Resolution::Remediated),
                S::Closed(Resolution::Remediated),
            ),
            (
                S::Remediation(OnSiteVisit),
                Action::Close(Resolution::Remediated),
                S::Closed(Resolution::Remediated),
            ),
        ];
        for state in IncidentState::ALL {
            if state.is_open() {
                for r in [Resolution::FalsePositive, Resolution::Duplicate] {
                    table.push((state, Action::Close(r), S::Closed(r)));
                }
            } else {
                table.push((state, Action::Reopen, S::Triage));
            }
        }
        table
    }

    #[test]
    fn every_pair_follows_the_table() {
        let table = allowed();
        let mut refused = 0;
        for state in IncidentState::ALL {
            for action in Action::ALL {
                let expected = table
                    .iter()
                    .find(|(s, a, _)| *s == state && *a == action)
                    .map(|(_, _, to)| *to);
                match (next(state, action), expected) {
                    (Ok(to), Some(want)) => assert_eq!(to, want, "{state} + {action}"),
                    (Err(_), None) => refused += 1,
                    (got, want) => panic!("{state} + {action}: got {got:?}, table says {want:?}"),
                }
            }
        }
        assert_eq!(refused, 64 - table.len());
    }

    #[test]
    fn refusals_say_why() {
        let reason = |s, a| match next(s, a) {
            Err(TransitionRefusal::NotAllowed { reason, .. }) => reason,
            other => panic!("{other:?}"),
        };
        // 「電話などによる対応が困難な状況においては、訪問によるサポートも実施いたします」
        assert_eq!(
            reason(S::CustomerNotified, Action::EscalateOnSite),
            RefusalReason::RemoteFirst
        );
        assert_eq!(
            reason(S::Triage, Action::StartRemoteRemoval),
            RefusalReason::NotifyFirst
        );
        assert_eq!(
            reason(S::Closed(Resolution::Duplicate), Action::Triage),
            RefusalReason::Closed
        );
        assert_eq!(reason(S::Triage, Action::Reopen), RefusalReason::NotClosed);
        assert_eq!(
            reason(S::CustomerNotified, Action::Close(Resolution::Remediated)),
            RefusalReason::NotRemediating
        );
        let text = next(S::New, Action::EscalateOnSite)
            .unwrap_err()
            .to_string();
        assert!(text.contains("escalate-on-site") && text.contains("new") && text.contains("訪問"));
    }

    #[test]
    fn string_forms_round_trip() {
        let names: Vec<_> = IncidentState::ALL.iter().map(|s| s.as_str()).collect();
        assert_eq!(
            names,
            [
                "new",
                "triage",
                "customer-notified",
                "remediation:remote",
                "remediation:on-site",
                "closed:remediated",
                "closed:false-positive",
                "closed:duplicate"
            ]
        );
        for state in IncidentState::ALL {
            assert_eq!(state.to_string().parse::<IncidentState>(), Ok(state));
            let json = serde_json::to_string(&state).unwrap();
            assert_eq!(json, format!("\"{state}\""));
            assert_eq!(serde_json::from_str::<IncidentState>(&json).unwrap(), state);
        }
        for action in Action::ALL {
            assert_eq!(action.to_string().parse::<Action>(), Ok(action));
            let json = serde_json::to_string(&action).unwrap();
            assert_eq!(serde_json::from_str::<Action>(&json).unwrap(), action);
        }
        assert!("closed".parse::<IncidentState>().is_err());
        assert!(serde_json::from_str::<IncidentState>("\"remediation\"").is_err());
        assert!("close:fixed".parse::<Action>().is_err());
    }

    #[test]
    fn a_whole_life_with_its_audit_trail() {
        let steps = [
            (Action::NotifyCustomer, S::CustomerNotified),
            (Action::StartRemoteRemoval, S::Remediation(RemoteRemoval)),
            (Action::EscalateOnSite, S::Remediation(OnSiteVisit)),
            (
                Action::Close(Resolution::Remediated),
                S::Closed(Resolution::Remediated),
            ),
            (Action::Reopen, S::Triage),
        ];
        let mut state = S::New;
        for (i, (action, want)) in steps.into_iter().enumerate() {
            let (to, entry) = step(state, action, "sato", 1_000 + i as i64, "ok").unwrap();
            assert_eq!(to, want);
            assert_eq!(
                (entry.from, entry.to, entry.at),
                (state, to, 1_000 + i as i64)
            );
            state = to;
        }
    }

    #[test]
    fn audit_inputs_are_cleaned() {
        assert_eq!(
            step(S::New, Action::Triage, " \r\n ", 0, ""),
            Err(TransitionRefusal::NoActor)
        );
        let (_, entry) = step(
            S::New,
            Action::Triage,
            "sato\r\nX-Evil: 1",
            5,
            "line1\nline2\u{7}",
        )
        .unwrap();
        assert_eq!(entry.actor, "sato X-Evil: 1");
        assert_eq!(entry.note, "line1\nline2");
        // A refused step writes no entry.
        assert!(step(S::New, Action::Reopen, "sato", 5, "").is_err());
    }
}
