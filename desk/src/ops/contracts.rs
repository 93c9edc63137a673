//! Contracts at the desk: opened, changed, switched and cancelled by the rules of the
//! `mimamori-contracts` crate, each step answering what it charges and why; monthly
//! statements per customer. The box row follows the contract (plan, option, licence end),
//! and the box learns it at its next heartbeat.

use super::{Actor, Refusal, Result, audit, now};
use crate::params;
use crate::store::{Conn, RowExt};
use mimamori_contracts::date::{format_date, parse_date, parse_year_month};
use mimamori_contracts::{
    ChargeLine, Contract, ContractKind, ContractRecord, Event, NewContract, Plan, Work,
};
use serde::Deserialize;
use serde_json::{Value, json};
use time::Date;

/// The terms a new contract opens with (the customer and box come from the box).
#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Terms {
    pub kind: ContractKind,
    pub plan: Plan,
    #[serde(default)]
    pub repair_24h: bool,
    /// `YYYY-MM-DD`
    pub start: String,
    pub work: Work,
}

/// A change on a date: `{"date": "2027-03-01", "event": "plan-change", "to": "professional", "work": …}`,
/// `option-change`, `cancellation`, `licence-end`.
// No `deny_unknown_fields`: serde cannot combine it with `flatten`.
#[derive(Clone, Debug, Deserialize)]
pub struct ChangeAsk {
    pub date: String,
    #[serde(flatten)]
    pub event: Event,
}

#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SwitchAsk {
    pub date: String,
    pub new: Terms,
}

fn date(field: &str, text: &str) -> Result<Date> {
    parse_date(text)
        .ok_or_else(|| Refusal::BadInput(format!("{field}: {text:?} is not a YYYY-MM-DD date")))
}

fn refused(e: mimamori_contracts::Refusal) -> Refusal {
    Refusal::Conflict(format!("refused: {e}"))
}

fn box_customer(c: &mut dyn Conn, actor: &Actor, box_id: &str) -> Result<String> {
    let customer = c
        .one("SELECT customer_id FROM box WHERE id = ?", params![box_id])?
        .map(|r| r.text(0))
        .transpose()?
        .ok_or_else(|| Refusal::NotFound(format!("box {box_id}: no such box")))?;
    if actor.customer().is_some_and(|cu| cu != customer) {
        return Err(Refusal::NotFound(format!("box {box_id}: no such box")));
    }
    Ok(customer)
}

/// The box's active contract: (row id, contract).
fn active(c: &mut dyn Conn, box_id: &str) -> Result<Option<(i64, Contract)>> {
    match c.one(
        "SELECT id, record FROM contract WHERE box_id = ? AND active = 1",
        params![box_id],
    )? {
        None => Ok(None),
        Some(r) => {
            let rec: ContractRecord = serde_json::from_str(&r.text(1)?).map_err(|e| {
                Refusal::Conflict(format!("box {box_id}: stored contract unreadable: {e}"))
            })?;
            let contract = Contract::try_from(rec).map_err(|e| {
                Refusal::Conflict(format!("box {box_id}: stored contract invalid: {e}"))
            })?;
            Ok(Some((r.int(0)?, contract)))
        }
    }
}

fn record_text(contract: &Contract) -> Result<String> {
    serde_json::to_string(contract).map_err(|e| Refusal::Conflict(format!("contract: {e}")))
}

fn charge(
    c: &mut dyn Conn,
    actor: &Actor,
    id: i64,
    contract: &Contract,
    on: Date,
    event: &str,
    lines: &[ChargeLine],
) -> Result<()> {
    c.exec(
        "INSERT INTO charge (contract_id, box_id, customer_id, date, event, lines, actor, created) VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
        params![id, contract.box_id(), contract.customer(), format_date(on), event, serde_json::to_string(lines).unwrap_or_default(), actor.name(), now()],
    )?;
    Ok(())
}

/// The box row follows the contract as it stands on `on`.
fn follow(c: &mut dyn Conn, contract: &Contract, on: Date) -> Result<()> {
    let kind = match contract.kind() {
        ContractKind::Rental => "rental",
        ContractKind::Purchase => "purchase",
    };
    c.exec(
        "UPDATE box SET plan = ?, kind = ?, repair_24h = ?, licence_end = ? WHERE id = ?",
        params![
            contract.plan_on(on).as_str(),
            kind,
            contract.repair_24h_on(on),
            contract.licence_end().map(format_date),
            contract.box_id()
        ],
    )?;
    Ok(())
}

fn answer(contract: &Contract, lines: &[ChargeLine]) -> Value {
    let total: u64 = lines
        .iter()
        .filter(|l| !l.is_waived())
        .map(|l| l.amount.0)
        .sum();
    json!({
        "contract": contract,
        "licence_end": contract.licence_end().map(format_date),
        "lines": lines.iter().map(|l| json!({
            "amount": l.amount, "amount_text": l.amount.to_string(), "waived": l.is_waived(), "tax": l.tax,
            "item": l.item.to_string(), "clause": l.clause.to_string(), "amount_from": l.amount_from.map(|c| c.to_string()),
        })).collect::<Vec<_>>(),
        "total": total,
    })
}

pub fn open(c: &mut dyn Conn, actor: &Actor, box_id: &str, t: &Terms) -> Result<Value> {
    actor.require_desk()?;
    let customer = box_customer(c, actor, box_id)?;
    if active(c, box_id)?.is_some() {
        return Err(Refusal::Conflict(format!(
            "box {box_id}: has a contract; change, switch or cancel it"
        )));
    }
    let start = date("start", &t.start)?;
    let contract = Contract::open(NewContract {
        customer,
        box_id: box_id.to_string(),
        kind: t.kind,
        plan: t.plan,
        repair_24h: t.repair_24h,
        start,
        work: t.work.clone(),
    });
    let lines = mimamori_contracts::fees(&contract, &Event::Start, start).map_err(refused)?;
    let id = c
        .one(
            "INSERT INTO contract (box_id, customer_id, record, active, updated) VALUES (?, ?, ?, 1, ?) RETURNING id",
            params![box_id, contract.customer(), record_text(&contract)?, now()],
        )?
        .ok_or_else(|| Refusal::Conflict("contract not stored".into()))?
        .int(0)?;
    charge(c, actor, id, &contract, start, "start", &lines)?;
    follow(c, &contract, start)?;
    audit(
        c,
        actor,
        "contract.open",
        box_id,
        &format!("{} {} from {}", t.plan.as_str(), format_date(start), box_id),
    )?;
    Ok(answer(&contract, &lines))
}

fn event_name(e: &Event) -> &'static str {
    match e {
        Event::Start => "start",
        Event::Month => "month",
        Event::PlanChange { .. } => "plan-change",
        Event::OptionChange { .. } => "option-change",
        Event::Cancellation => "cancellation",
        Event::LicenceEnd => "licence-end",
    }
}

/// A dated change; refused (with the clause) exactly when the terms refuse it, and then
/// nothing is stored.
pub fn change(c: &mut dyn Conn, actor: &Actor, box_id: &str, ask: &ChangeAsk) -> Result<Value> {
    actor.require_desk()?;
    box_customer(c, actor, box_id)?;
    let on = date("date", &ask.date)?;
    let (id, contract) = active(c, box_id)?
        .ok_or_else(|| Refusal::NotFound(format!("box {box_id}: no contract")))?;
    if matches!(ask.event, Event::Start) {
        return Err(Refusal::BadInput(
            "event: a contract starts by POST …/contract".into(),
        ));
    }
    let (next, lines) = mimamori_contracts::apply(&contract, &ask.event, on).map_err(refused)?;
    c.exec(
        "UPDATE contract SET record = ?, updated = ? WHERE id = ?",
        params![record_text(&next)?, now(), id],
    )?;
    charge(c, actor, id, &next, on, event_name(&ask.event), &lines)?;
    follow(c, &next, on)?;
    audit(
        c,
        actor,
        "contract.change",
        box_id,
        &format!("{} on {}", event_name(&ask.event), format_date(on)),
    )?;
    Ok(answer(&next, &lines))
}

/// Rental ↔ purchase: the old contract is cancelled, a new one opens.
pub fn switch(c: &mut dyn Conn, actor: &Actor, box_id: &str, ask: &SwitchAsk) -> Result<Value> {
    actor.require_desk()?;
    let customer = box_customer(c, actor, box_id)?;
    let on = date("date", &ask.date)?;
    let start = date("new.start", &ask.new.start)?;
    let (id, old) = active(c, box_id)?
        .ok_or_else(|| Refusal::NotFound(format!("box {box_id}: no contract")))?;
    let new_terms = NewContract {
        customer,
        box_id: box_id.to_string(),
        kind: ask.new.kind,
        plan: ask.new.plan,
        repair_24h: ask.new.repair_24h,
        start,
        work: ask.new.work.clone(),
    };
    let sw = old.switch(on, new_terms).map_err(refused)?;
    let lines = mimamori_contracts::switch_fees(&old, on, &sw.new).map_err(refused)?;
    c.exec(
        "UPDATE contract SET record = ?, active = 0, updated = ? WHERE id = ?",
        params![record_text(&sw.cancelled)?, now(), id],
    )?;
    let new_id = c
        .one(
            "INSERT INTO contract (box_id, customer_id, record, active, updated) VALUES (?, ?, ?, 1, ?) RETURNING id",
            params![box_id, sw.new.customer(), record_text(&sw.new)?, now()],
        )?
        .ok_or_else(|| Refusal::Conflict("contract not stored".into()))?
        .int(0)?;
    charge(c, actor, new_id, &sw.new, on, "switch", &lines)?;
    follow(c, &sw.new, start)?;
    audit(c, actor, "contract.switch", box_id, &sw.clause.to_string())?;
    let mut v = answer(&sw.new, &lines);
    v["clause"] = sw.clause.to_string().into();
    Ok(v)
}

pub fn get(c: &mut dyn Conn, actor: &Actor, box_id: &str) -> Result<Value> {
    box_customer(c, actor, box_id)?;
    let (_, contract) = active(c, box_id)?
        .ok_or_else(|| Refusal::NotFound(format!("box {box_id}: no contract")))?;
    let charges: Vec<Value> = c
        .query("SELECT date, event, lines, actor FROM charge WHERE box_id = ? ORDER BY id", params![box_id])?
        .iter()
        .map(|r| Ok(json!({"date": r.text(0)?, "event": r.text(1)?, "lines": serde_json::from_str::<Value>(&r.text(2)?).unwrap_or_default(), "by": r.text(3)?})))
        .collect::<Result<_>>()?;
    let mut v = json!({
        "contract": contract,
        "licence_end": contract.licence_end().map(format_date),
        "cancelled": contract.cancelled().map(format_date),
        "charges": charges,
    });
    if let Some(today) =
        mimamori_contracts::date::parse_date(&crate::clock::format_jst(now())[..10])
    {
        v["profile_today"] = serde_json::to_value(contract.box_profile(today)).unwrap_or_default();
    }
    Ok(v)
}

/// One customer's statement for `month` (`YYYY-MM`), over every contract they had.
pub fn statement(c: &mut dyn Conn, actor: &Actor, customer: &str, month: &str) -> Result<Value> {
    if actor.customer().is_some_and(|cu| cu != customer) {
        return Err(Refusal::NotFound(format!(
            "customer {customer}: no such customer"
        )));
    }
    let m = parse_year_month(month)
        .ok_or_else(|| Refusal::BadInput(format!("month: {month:?} is not YYYY-MM")))?;
    let mut contracts = Vec::new();
    for r in c.query(
        "SELECT record FROM contract WHERE customer_id = ? ORDER BY id",
        params![customer],
    )? {
        let rec: ContractRecord = serde_json::from_str(&r.text(0)?)
            .map_err(|e| Refusal::Conflict(format!("stored contract unreadable: {e}")))?;
        contracts.push(
            Contract::try_from(rec)
                .map_err(|e| Refusal::Conflict(format!("stored contract invalid: {e}")))?,
        );
    }
    let s = mimamori_contracts::statement(customer, &contracts, m).map_err(refused)?;
    Ok(json!({
        "customer": s.customer,
        "month": month,
        "total": s.total,
        "total_text": s.total.to_string(),
        "lines": s.lines.iter().map(|l| json!({
            "box_id": l.box_id, "date": format_date(l.date), "amount": l.charge.amount, "amount_text": l.charge.amount.to_string(),
            "waived": l.charge.is_waived(), "item": l.charge.item.to_string(), "clause": l.charge.clause.to_string(),
        })).collect::<Vec<_>>(),
    }))
}
