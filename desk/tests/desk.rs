//! The desk end to end in one process: a SQLite store, the CA, both listeners; boxes
//! enrol, send batches and heartbeats over real mutual TLS. The PostgreSQL run of the same
//! paths is `scripts/e2e-desk`.

mod common;

use common::*;
use mimamori_desk::ca;
use mimamori_proto::desk::{EventAck, Heartbeat};
use serde_json::{Value, json};

#[test]
fn events_are_stored_once_and_become_incidents_and_mail() {
    let d = start("flow", 300);
    setup_customer(&d, "c-one", &["box-1", "box-2"]);
    let (cert, key) = enrol(&d, "box-1");
    let agent = as_box(&d, &cert, &key);
    let b = batch(
        "box-1",
        1,
        vec![
            quarantine("02:00:5e:00:00:01", "keiri-pc"),
            quarantine("02:00:5e:00:00:01", "keiri-pc"),
        ],
    );
    let (code, v) = send(&agent, &d, &b);
    assert_eq!(code, 200, "{v}");
    let ack: EventAck = serde_json::from_value(v).unwrap();
    assert_eq!((ack.acked, ack.stored, ack.duplicates), (2, 2, 0));
    // The same batch again (a resend after a lost answer): nothing new.
    let ack: EventAck = serde_json::from_value(send(&agent, &d, &b).1).unwrap();
    assert_eq!((ack.acked, ack.stored, ack.duplicates), (2, 0, 2));
    // Overlapping: only the new number is stored.
    let b2 = batch(
        "box-1",
        2,
        vec![
            quarantine("02:00:5e:00:00:01", "keiri-pc"),
            json!({"no": "type"}),
        ],
    );
    let ack: EventAck = serde_json::from_value(send(&agent, &d, &b2).1).unwrap();
    assert_eq!(
        (ack.acked, ack.stored, ack.duplicates, ack.rejected),
        (3, 0, 1, 1)
    );
    // Two detections of one PC fold into one high incident, mailed to the contact.
    let incidents = admin(&d, "GET", "/api/v1/incidents?box_id=box-1", None);
    let list = incidents.as_array().unwrap();
    assert_eq!(list.len(), 1, "{incidents}");
    assert_eq!(list[0]["count"], 2);
    assert_eq!(list[0]["severity"], "high");
    let id = list[0]["id"].as_i64().unwrap();
    let detail = admin(&d, "GET", &format!("/api/v1/incidents/{id}"), None);
    let mails = detail["notifications"].as_array().unwrap();
    assert_eq!(mails.len(), 1, "{detail}");
    assert_eq!(mails[0]["to"], "it@c-one.test");
    // A high incident is a phone follow-up too (offered only in the desk's hours).
    let calls = admin(&d, "GET", "/api/v1/calls", None);
    assert_eq!(calls["waiting"], 1, "{calls}");
    // The life cycle is enforced and audited.
    let (code, v) = call(
        &d,
        &d.token,
        "POST",
        &format!("/api/v1/incidents/{id}/actions"),
        Some(json!({"action": "escalate-on-site"})),
    );
    assert_eq!(code, 409, "{v}");
    for a in [
        "triage",
        "notify-customer",
        "start-remote-removal",
        "escalate-on-site",
        "close:remediated",
    ] {
        let (code, v) = call(
            &d,
            &d.token,
            "POST",
            &format!("/api/v1/incidents/{id}/actions"),
            Some(json!({"action": a, "note": "n"})),
        );
        assert_eq!(code, 200, "{a}: {v}");
    }
    let detail = admin(&d, "GET", &format!("/api/v1/incidents/{id}"), None);
    assert_eq!(detail["state"], "closed:remediated");
    assert!(detail["audit"].as_array().unwrap().len() >= 6, "{detail}");

    // A batch for another box with this certificate: refused, nothing stored.
    let (code, v) = send(
        &agent,
        &d,
        &batch("box-2", 1, vec![quarantine("02:00:5e:00:00:02", "x")]),
    );
    assert_eq!(code, 403, "{v}");
    assert!(
        v["error"]
            .as_str()
            .unwrap()
            .contains("certificate of box box-1"),
        "{v}"
    );
    assert_eq!(
        admin(&d, "GET", "/api/v1/boxes/box-2", None)["acked_seq"],
        0
    );
    // Numbers that do not increase: refused whole.
    let mut bad = batch(
        "box-1",
        10,
        vec![
            quarantine("02:00:5e:00:00:01", "a"),
            quarantine("02:00:5e:00:00:01", "b"),
        ],
    );
    bad.events[1].seq = 9;
    assert_eq!(send(&agent, &d, &bad).0, 422);
    assert_eq!(
        admin(&d, "GET", "/api/v1/boxes/box-1", None)["acked_seq"],
        3
    );
    // No certificate: refused.
    let (code, _) = answer(
        anonymous(&d)
            .post(&format!("{}/v1/events", d.uplink))
            .send_json(&b),
    );
    assert_eq!(code, 403);
    // Revoked: refused.
    admin(&d, "POST", "/api/v1/boxes/box-1/revoke", None);
    let (code, v) = send(
        &agent,
        &d,
        &batch("box-1", 4, vec![quarantine("02:00:5e:00:00:01", "a")]),
    );
    assert_eq!(code, 403);
    assert!(v["error"].as_str().unwrap().contains("revoked"), "{v}");
}

#[test]
fn certificates_from_elsewhere_or_expired_fail_the_handshake() {
    let d = start("certs", 300);
    setup_customer(&d, "c-two", &["box-9"]);
    // Signed by the desk's CA but expired yesterday.
    let ca = ca::Ca::load(&d.dir.join("ca")).unwrap();
    let (key, csr) = ca::key_and_request("box-9").unwrap();
    let now = mimamori_desk::ops::now();
    let old = ca
        .issue_box(&csr, "box-9", now - 3 * 86_400, now - 86_400)
        .unwrap();
    let (code, v) = answer(
        as_box(&d, &old.cert_pem, &key)
            .get(&format!("{}/v1/whoami", d.uplink))
            .call(),
    );
    assert_eq!(code, 0, "expired certificate accepted: {v}");
    // From another CA altogether.
    let other = temp("other-ca");
    let foreign = ca::Ca::init(&other.join("ca"), &["127.0.0.1".into()], now).unwrap();
    let forged = foreign
        .issue_box(&csr, "box-9", now - 60, now + 86_400)
        .unwrap();
    let (code, _) = answer(
        as_box(&d, &forged.cert_pem, &key)
            .get(&format!("{}/v1/whoami", d.uplink))
            .call(),
    );
    assert_eq!(code, 0, "a foreign CA's certificate was accepted");
    // A valid certificate the desk never recorded (not from an enrolment): refused.
    let stray = ca.issue_box(&csr, "box-9", now - 60, now + 86_400).unwrap();
    let (code, v) = answer(
        as_box(&d, &stray.cert_pem, &key)
            .get(&format!("{}/v1/whoami", d.uplink))
            .call(),
    );
    assert_eq!(code, 403, "{v}");
    // Enrolment codes: used once.
    let code_text = admin(&d, "POST", "/api/v1/boxes/box-9/enrol-code", None)["code"]
        .as_str()
        .unwrap()
        .to_string();
    let ask = json!({"code": code_text, "csr_pem": csr, "version": "t"});
    assert_eq!(
        answer(
            anonymous(&d)
                .post(&format!("{}/v1/enrol", d.uplink))
                .send_json(&ask)
        )
        .0,
        200
    );
    assert_eq!(
        answer(
            anonymous(&d)
                .post(&format!("{}/v1/enrol", d.uplink))
                .send_json(&ask)
        )
        .0,
        403
    );
    let (code, v) = answer(
        anonymous(&d)
            .post(&format!("{}/v1/enrol", d.uplink))
            .send_json(json!({"code": "X", "csr_pem": "junk", "version": "t"})),
    );
    assert_eq!(code, 403, "{v}");
}

#[test]
fn a_silent_box_becomes_a_fault_and_its_heartbeat_closes_it() {
    let d = start("fault", 10);
    setup_customer(&d, "c-three", &["box-f"]);
    let (cert, key) = enrol(&d, "box-f");
    let agent = as_box(&d, &cert, &key);
    let hb = Heartbeat {
        box_id: "box-f".into(),
        health: vec!["ok".into()],
        ..Heartbeat::default()
    };
    let (code, v) = answer(
        agent
            .post(&format!("{}/v1/heartbeat", d.uplink))
            .send_json(&hb),
    );
    assert_eq!(code, 200, "{v}");
    assert_eq!(v["tier"], "professional", "the plan drives the box: {v}");
    // Silent past the threshold (10 s; the watcher looks every second).
    let mut status = Value::Null;
    for _ in 0..150 {
        status = admin(&d, "GET", "/api/v1/boxes/box-f", None)["status"].clone();
        if status == "fault" {
            break;
        }
        std::thread::sleep(std::time::Duration::from_millis(100));
    }
    assert_eq!(status, "fault");
    let t = admin(&d, "GET", "/api/v1/tickets?kind=fault", None);
    assert_eq!(t.as_array().unwrap().len(), 1, "{t}");
    assert!(t[0]["dispatch_at"].as_i64().is_some(), "{t}");
    answer(
        agent
            .post(&format!("{}/v1/heartbeat", d.uplink))
            .send_json(&hb),
    );
    assert_eq!(
        admin(&d, "GET", "/api/v1/boxes/box-f", None)["status"],
        "connected"
    );
    let t = admin(&d, "GET", "/api/v1/tickets?kind=fault", None);
    assert_eq!(t[0]["state"], "closed", "{t}");
    let id = t[0]["id"].as_i64().unwrap();
    let detail = admin(&d, "GET", &format!("/api/v1/tickets/{id}"), None);
    assert!(
        detail["messages"].to_string().contains("Heartbeat resumed"),
        "{detail}"
    );
    let mails = admin(&d, "GET", "/api/v1/notifications", None);
    assert_eq!(
        mails.as_array().unwrap().len(),
        2,
        "fault and recovery mails: {mails}"
    );
}

#[test]
fn customers_see_only_their_own_and_operators_book_visits_in_quota() {
    let d = start("rbac", 300);
    setup_customer(&d, "c-a", &["box-a1"]);
    setup_customer(&d, "c-b", &["box-b1"]);
    let tok = admin(
        &d,
        "POST",
        "/api/v1/tokens",
        Some(json!({"name": "a-user", "role": "customer", "customer_id": "c-a"})),
    )["token"]
        .as_str()
        .unwrap()
        .to_string();
    let (code, v) = call(&d, &tok, "GET", "/api/v1/boxes", None);
    assert_eq!(code, 200);
    assert_eq!(v.as_array().unwrap().len(), 1, "{v}");
    assert_eq!(call(&d, &tok, "GET", "/api/v1/boxes/box-b1", None).0, 404);
    assert_eq!(
        call(&d, &tok, "POST", "/api/v1/boxes/box-a1/revoke", None).0,
        403
    );
    assert_eq!(
        call(
            &d,
            &tok,
            "POST",
            "/api/v1/customers",
            Some(json!({"id": "x", "name": "x"}))
        )
        .0,
        403
    );
    assert_eq!(call(&d, "nope", "GET", "/api/v1/boxes", None).0, 403);
    // A customer question, linked to the box.
    let (code, v) = call(
        &d,
        &tok,
        "POST",
        "/api/v1/tickets",
        Some(
            json!({"box_id": "box-a1", "subject": "感染したかもしれません", "body": "怪しいメールの添付を開きました"}),
        ),
    );
    assert_eq!(code, 200, "{v}");
    let (code, _) = call(
        &d,
        &tok,
        "POST",
        "/api/v1/tickets",
        Some(json!({"box_id": "box-b1", "subject": "x", "body": "y"})),
    );
    assert_eq!(code, 404, "another customer's box");
    // Visits: Professional, west area (Mon–Sat 9:00–17:00), 3 PCs a month.
    let monday_10 = mimamori_desk::clock::unix_of_jst(2027, 1, 18, 10, 0).unwrap();
    let (code, v) = call(
        &d,
        &d.token,
        "POST",
        "/api/v1/boxes/box-a1/visits",
        Some(json!({"start": monday_10, "pcs": 4})),
    );
    assert_eq!(code, 409, "{v}");
    let (code, v) = call(
        &d,
        &d.token,
        "POST",
        "/api/v1/boxes/box-a1/visits",
        Some(json!({"start": monday_10, "pcs": 3})),
    );
    assert_eq!(code, 200, "{v}");
    assert_eq!(v["free"], true);
    let (code, v) = call(
        &d,
        &d.token,
        "POST",
        "/api/v1/boxes/box-a1/visits",
        Some(json!({"start": monday_10 + 86_400, "pcs": 1})),
    );
    assert_eq!(code, 409, "second visit in a month: {v}");
    let sunday = mimamori_desk::clock::unix_of_jst(2027, 2, 21, 10, 0).unwrap();
    let (code, v) = call(
        &d,
        &d.token,
        "POST",
        "/api/v1/boxes/box-a1/visits",
        Some(json!({"start": sunday, "pcs": 1})),
    );
    assert_eq!(code, 409, "west area on a Sunday: {v}");
    // Bad bodies name the field.
    let (code, v) = call(
        &d,
        &d.token,
        "POST",
        "/api/v1/boxes",
        Some(
            json!({"id": "b", "customer_id": "c-a", "site_id": "c-a-site", "name": "n", "plan": "gold", "kind": "rental"}),
        ),
    );
    assert_eq!(code, 422, "{v}");
    assert!(v["error"].as_str().unwrap().contains("plan"), "{v}");
    let doc = admin(&d, "GET", "/api/v1/openapi.json", None);
    assert!(doc["paths"]["/v1/events"]["post"].is_object());
}

#[test]
fn a_full_store_refuses_the_batch_whole() {
    // A size cap on the SQLite file stands in for a full disk: the same error (SQLITE_FULL).
    let d = start_with("full", 300, Some(1));
    setup_customer(&d, "c-full", &["box-full"]);
    let (cert, key) = enrol(&d, "box-full");
    let agent = as_box(&d, &cert, &key);
    let big: Vec<Value> = (0..2000)
        .map(|i| json!({"timestamp": eve_now(), "event_type": "web", "pad": "x".repeat(2000), "i": i}))
        .collect();
    let (code, v) = send(&agent, &d, &batch("box-full", 1, big));
    assert_eq!(code, 507, "{v}");
    let b = admin(&d, "GET", "/api/v1/boxes/box-full", None);
    assert_eq!(b["acked_seq"], 0, "nothing of the batch was kept: {b}");
    // A small batch still fits: the desk keeps working.
    let (code, v) = send(
        &agent,
        &d,
        &batch("box-full", 1, vec![quarantine("02:00:5e:00:00:09", "pc")]),
    );
    assert_eq!(code, 200, "{v}");
}
