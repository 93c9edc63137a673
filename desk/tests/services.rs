//! The desk's contracts, pattern bundles, monthly reports and hourly counts, end to end in
//! one process like `tests/desk.rs`.

mod common;

use common::*;
use mimamori_proto::desk::Heartbeat;
use serde_json::json;

#[test]
fn contracts_answer_their_charges_and_drive_the_box() {
    let d = start("contracts", 300);
    setup_customer(&d, "c-k", &["box-r", "box-p"]);
    let work = json!({"installer": "provider", "job": "J-1"});
    let v = admin(
        &d,
        "POST",
        "/api/v1/boxes/box-r/contract",
        Some(json!({"kind": "rental", "plan": "standard", "start": "2026-04-01", "work": work})),
    );
    assert!(!v["lines"].as_array().unwrap().is_empty(), "{v}");
    assert!(v["lines"].to_string().contains("clause"), "{v}");
    let (code, v) = call(
        &d,
        &d.token,
        "POST",
        "/api/v1/boxes/box-r/contract",
        Some(json!({"kind": "rental", "plan": "light", "start": "2026-04-01", "work": work})),
    );
    assert_eq!(code, 409, "a second contract: {v}");
    // An upgrade within 24 months: allowed, the initial fees again, the box follows.
    let v = admin(
        &d,
        "POST",
        "/api/v1/boxes/box-r/contract/changes",
        Some(
            json!({"date": "2026-09-10", "event": "plan-change", "to": "professional", "work": {"installer": "provider", "job": "J-2"}}),
        ),
    );
    assert!(v["total"].as_u64().unwrap() > 0, "{v}");
    assert_eq!(
        admin(&d, "GET", "/api/v1/boxes/box-r", None)["plan"],
        "professional"
    );
    // Dates out of order are refused, naming why.
    let (code, v) = call(
        &d,
        &d.token,
        "POST",
        "/api/v1/boxes/box-r/contract/changes",
        Some(json!({"date": "2026-05-01", "event": "cancellation"})),
    );
    assert_eq!(code, 409, "{v}");
    // A purchased box cannot change plan: the clause is named.
    admin(
        &d,
        "POST",
        "/api/v1/boxes/box-p/contract",
        Some(
            json!({"kind": "purchase", "plan": "light", "repair_24h": true, "start": "2026-04-01", "work": work}),
        ),
    );
    let (code, v) = call(
        &d,
        &d.token,
        "POST",
        "/api/v1/boxes/box-p/contract/changes",
        Some(json!({"date": "2026-06-01", "event": "plan-change", "to": "standard", "work": work})),
    );
    assert_eq!(code, 409, "{v}");
    assert!(
        v["error"]
            .as_str()
            .unwrap()
            .contains("purchased box cannot change plan"),
        "{v}"
    );
    let c = admin(&d, "GET", "/api/v1/boxes/box-p/contract", None);
    // 60 months counted from the start month: the licence ends as April 2031 begins.
    assert_eq!(c["licence_end"], "2031-04-01", "{c}");
    // The month's statement over both boxes.
    let s = admin(
        &d,
        "GET",
        "/api/v1/customers/c-k/statement?month=2026-10",
        None,
    );
    assert!(s["total"].as_u64().unwrap() > 0, "{s}");
    assert!(
        s["lines"]
            .as_array()
            .unwrap()
            .iter()
            .any(|l| l["box_id"] == "box-r"),
        "{s}"
    );
    let (code, _) = call(
        &d,
        &d.token,
        "GET",
        "/api/v1/customers/c-k/statement?month=2026-13",
        None,
    );
    assert_eq!(code, 422);
    // The box learns its plan at its heartbeat.
    let (cert, key) = enrol(&d, "box-r");
    let hb = Heartbeat {
        box_id: "box-r".into(),
        ..Heartbeat::default()
    };
    let (_, v) = answer(
        as_box(&d, &cert, &key)
            .post(&format!("{}/v1/heartbeat", d.uplink))
            .send_json(&hb),
    );
    assert_eq!(v["tier"], "professional", "{v}");
}

#[test]
fn published_bundles_are_listed_and_fetched_by_enrolled_boxes_only() {
    let d = start("patterns", 300);
    setup_customer(&d, "c-p", &["box-p1"]);
    let bytes = b"MMBUNDLE-not-checked-by-the-desk".to_vec();
    let post = |version: u64, body: &[u8], token: &str| {
        answer(
            ureq::post(&format!(
                "{}/api/v1/patterns/rules?version={version}",
                d.api
            ))
            .set("Authorization", &format!("Bearer {token}"))
            .send_bytes(body),
        )
    };
    assert_eq!(post(5, &bytes, &d.token).0, 200);
    assert_eq!(post(5, &bytes, &d.token).0, 409, "same version again");
    assert_eq!(post(4, &bytes, &d.token).0, 409, "older version");
    assert_eq!(post(6, b"", &d.token).0, 422, "empty bundle");
    let op = admin(
        &d,
        "POST",
        "/api/v1/tokens",
        Some(json!({"name": "op", "role": "desk-operator"})),
    )["token"]
        .as_str()
        .unwrap()
        .to_string();
    assert_eq!(post(6, &bytes, &op).0, 403, "operators do not publish");
    let (cert, key) = enrol(&d, "box-p1");
    let agent = as_box(&d, &cert, &key);
    let (code, list) = answer(agent.get(&format!("{}/v1/patterns", d.uplink)).call());
    assert_eq!(code, 200);
    assert_eq!(list[0]["version"], 5, "{list}");
    let got = agent
        .get(&format!("{}/v1/patterns/rules/5", d.uplink))
        .call()
        .unwrap();
    let mut body = Vec::new();
    std::io::Read::read_to_end(&mut got.into_reader(), &mut body).unwrap();
    assert_eq!(body, bytes);
    assert_eq!(
        answer(
            agent
                .get(&format!("{}/v1/patterns/rules/9", d.uplink))
                .call()
        )
        .0,
        404
    );
    assert_eq!(
        answer(
            anonymous(&d)
                .get(&format!("{}/v1/patterns", d.uplink))
                .call()
        )
        .0,
        403
    );
}

#[test]
fn a_boxs_monthly_report_is_kept_and_mailed_once_per_language() {
    let d = start("reports", 300);
    setup_customer(&d, "c-r", &["box-r1"]);
    admin(
        &d,
        "POST",
        "/api/v1/customers/c-r/contacts",
        Some(json!({"name": "Ann", "email": "ann@c-r.test", "lang": "en"})),
    );
    let (cert, key) = enrol(&d, "box-r1");
    let agent = as_box(&d, &cert, &key);
    let up = |path: &str, body: &[u8]| {
        answer(agent.post(&format!("{}{path}", d.uplink)).send_bytes(body))
    };
    assert_eq!(
        up(
            "/v1/reports/2026-11/ja/html",
            "<html>11月</html>".as_bytes()
        )
        .0,
        200
    );
    assert_eq!(up("/v1/reports/2026-11/ja/pdf", b"not a pdf").0, 422);
    assert_eq!(up("/v1/reports/2026-13/ja/html", b"x").0, 422);
    assert_eq!(up("/v1/reports/2026-11/fr/html", b"x").0, 422);
    let (code, v) = up("/v1/reports/2026-11/ja/done", b"");
    assert_eq!((code, v["mails"].as_u64()), (200, Some(1)), "{v}");
    assert_eq!(
        up("/v1/reports/2026-11/ja/done", b"").1["mails"],
        0,
        "mailed once"
    );
    assert_eq!(
        up("/v1/reports/2026-11/en/done", b"").0,
        404,
        "no English rendering yet"
    );
    let mails = admin(&d, "GET", "/api/v1/notifications", None);
    let report: Vec<_> = mails
        .as_array()
        .unwrap()
        .iter()
        .filter(|m| m["kind"] == "report")
        .collect();
    assert_eq!(report.len(), 1, "{mails}");
    assert_eq!(report[0]["to"], "it@c-r.test");
    assert!(
        report[0]["subject"]
            .as_str()
            .unwrap()
            .contains("2026年11月"),
        "{mails}"
    );
    let kept = admin(&d, "GET", "/api/v1/boxes/box-r1/reports", None);
    assert_eq!(kept.as_array().unwrap().len(), 1, "{kept}");
    let html = ureq::get(&format!(
        "{}/api/v1/boxes/box-r1/reports/2026-11/ja/html",
        d.api
    ))
    .set("Authorization", &format!("Bearer {}", d.token))
    .call()
    .unwrap()
    .into_string()
    .unwrap();
    assert!(html.contains("11月"));
}

#[test]
fn hourly_counts_are_replaced_when_sent_again() {
    let d = start("hourly", 300);
    setup_customer(&d, "c-h", &["box-h1", "box-h2"]);
    let (cert, key) = enrol(&d, "box-h1");
    let agent = as_box(&d, &cert, &key);
    let send = |box_id: &str, hour: i64, count: i64| {
        answer(agent.post(&format!("{}/v1/hourly", d.uplink)).send_json(json!({
            "box_id": box_id,
            "hours": [{"hour": hour, "event_type": "flow", "action": "allow", "count": count},
                      {"hour": hour, "event_type": "alert", "action": null, "count": 2}],
        })))
    };
    let hour = 1_796_000_400; // an hour start
    assert_eq!(send("box-h1", hour, 10).0, 200);
    assert_eq!(send("box-h1", hour, 15).0, 200);
    assert_eq!(send("box-h2", hour, 1).0, 403, "another box's counts");
    assert_eq!(send("box-h1", hour + 5, 1).0, 422, "not an hour start");
    let v = admin(
        &d,
        "GET",
        &format!("/api/v1/boxes/box-h1/hourly?from={hour}&to={}", hour + 3600),
        None,
    );
    let flows: Vec<_> = v
        .as_array()
        .unwrap()
        .iter()
        .filter(|r| r["event_type"] == "flow")
        .collect();
    assert_eq!(flows.len(), 1, "{v}");
    assert_eq!(flows[0]["count"], 15);
}
