//! The desk console over plain HTTP (the browser flows are scripts/e2e-console): login
//! cookie, an incident walked through a step with the CSRF token, a customer kept to their
//! own boxes, incidents and reports, names with markup shown as text, hostile input.

mod common;

use common::*;
use mimamori_desk::console::csrf_of;
use serde_json::json;

/// Status, Location (or Set-Cookie), body.
fn page(r: Result<ureq::Response, ureq::Error>, header: &str) -> (u16, String, String) {
    match r {
        Ok(a) | Err(ureq::Error::Status(_, a)) => {
            let h = a.all(header).join("\n");
            (a.status(), h, a.into_string().unwrap_or_default())
        }
        Err(e) => panic!("{e}"),
    }
}

fn no_redirects() -> ureq::Agent {
    ureq::AgentBuilder::new().redirects(0).build()
}

fn get(d: &Desk, token: &str, path: &str) -> (u16, String, String) {
    page(
        no_redirects()
            .get(&format!("{}{path}", d.api))
            .set("Cookie", &format!("mmd_token={token}"))
            .call(),
        "location",
    )
}

fn post(d: &Desk, token: &str, path: &str, form: &[(&str, &str)]) -> (u16, String, String) {
    page(
        no_redirects()
            .post(&format!("{}{path}", d.api))
            .set("Cookie", &format!("mmd_token={token}"))
            .send_form(form),
        "location",
    )
}

fn token(d: &Desk, body: serde_json::Value) -> String {
    admin(d, "POST", "/api/v1/tokens", Some(body))["token"]
        .as_str()
        .unwrap()
        .to_string()
}

#[test]
fn an_operator_walks_an_incident_and_a_customer_sees_only_their_own() {
    let d = start("console", 300);
    setup_customer(&d, "c-one", &["box-1"]);
    setup_customer(&d, "c-two", &[]);
    let evil = "<script>alert('box')</script><img src=x onerror=alert(2)>";
    admin(
        &d,
        "POST",
        "/api/v1/boxes",
        Some(
            json!({"id": "box-2", "customer_id": "c-two", "site_id": "c-two-site", "name": evil, "plan": "light", "kind": "rental"}),
        ),
    );
    let (cert, key) = enrol(&d, "box-1");
    let agent = as_box(&d, &cert, &key);
    assert_eq!(
        send(
            &agent,
            &d,
            &batch(
                "box-1",
                1,
                vec![quarantine("02:00:00:00:00:0a", "<b>keiri</b>-pc")]
            )
        )
        .0,
        200
    );
    assert_eq!(
        answer(
            agent
                .post(&format!("{}/v1/reports/2026-11/ja/html", d.uplink))
                .send_bytes("<html>11月の報告</html>".as_bytes())
        )
        .0,
        200
    );
    let inc = admin(&d, "GET", "/api/v1/incidents?box_id=box-1", None)[0]["id"]
        .as_i64()
        .unwrap();
    let op = token(&d, json!({"name": "sato", "role": "desk-operator"}));
    let one = token(
        &d,
        json!({"name": "one", "role": "customer", "customer_id": "c-one"}),
    );
    let two = token(
        &d,
        json!({"name": "two", "role": "customer", "customer_id": "c-two"}),
    );

    // Login: the cookie's flags; an unknown token is refused; no cookie goes to the login page.
    let (code, cookie, _) = page(
        no_redirects()
            .post(&format!("{}/console/login", d.api))
            .send_form(&[("token", &op)]),
        "set-cookie",
    );
    assert_eq!(code, 303);
    assert!(
        cookie.contains("HttpOnly") && cookie.contains("SameSite=Strict"),
        "{cookie}"
    );
    let (code, _, _) = page(
        no_redirects()
            .post(&format!("{}/console/login", d.api))
            .send_form(&[("token", "mmd_nope")]),
        "x",
    );
    assert_eq!(code, 401);
    assert_eq!(
        page(
            no_redirects().get(&format!("{}/console", d.api)).call(),
            "location"
        )
        .1,
        "/console/login"
    );
    assert_eq!(get(&d, "mmd_nope", "/console").0, 303);

    // The operator: every box, names escaped, the incident in the queue.
    let (code, _, home) = get(&d, &op, "/console");
    assert_eq!(code, 200);
    assert!(home.contains("data-box=\"box-1\"") && home.contains("data-box=\"box-2\""));
    assert!(home.contains(&format!("data-incident=\"{inc}\"")));
    assert!(
        home.contains(
            "&lt;script&gt;alert('box')&lt;/script&gt;&lt;img src=x onerror=alert(2)&gt;"
        ),
        "{home}"
    );
    assert!(!home.contains("<script>alert") && !home.contains("<img src=x"));
    let (_, _, detail) = get(&d, &op, &format!("/console/incidents/{inc}"));
    assert!(
        detail.contains("&lt;b&gt;keiri&lt;/b&gt;-pc") && !detail.contains("<b>keiri"),
        "{detail}"
    );
    assert!(detail.contains("value=\"triage\"") && detail.contains("value=\"notify-customer\""));

    // A step needs the page's CSRF token; with it the state moves and the audit says who.
    let path = format!("/console/incidents/{inc}/act");
    assert_eq!(
        post(&d, &op, &path, &[("csrf", "bad"), ("action", "triage")]).0,
        403
    );
    assert_eq!(
        post(
            &d,
            &op,
            &path,
            &[("csrf", &csrf_of(&one)), ("action", "triage")]
        )
        .0,
        403,
        "another session's token"
    );
    assert_eq!(
        admin(&d, "GET", &format!("/api/v1/incidents/{inc}"), None)["state"],
        "new"
    );
    let ok = csrf_of(&op);
    assert_eq!(
        post(&d, &op, &path, &[("csrf", &ok), ("action", "reopen")]).0,
        409,
        "not a step from new"
    );
    assert_eq!(
        post(&d, &op, &path, &[("csrf", &ok), ("action", "explode")]).0,
        422
    );
    assert_eq!(
        post(
            &d,
            &op,
            "/console/incidents/abc/act",
            &[("csrf", &ok), ("action", "triage")]
        )
        .0,
        422
    );
    let (code, location, _) = post(
        &d,
        &op,
        &path,
        &[("csrf", &ok), ("action", "triage"), ("note", "called")],
    );
    assert_eq!(
        (code, location.as_str()),
        (303, path.trim_end_matches("/act"))
    );
    let v = admin(&d, "GET", &format!("/api/v1/incidents/{inc}"), None);
    assert_eq!(v["state"], "triage");
    assert_eq!(
        v["audit"].as_array().unwrap().last().unwrap()["actor"],
        "operator:sato"
    );

    // Customers: their own boxes, incidents and reports; another's is "no such".
    let (_, _, mine) = get(&d, &one, "/console");
    assert!(mine.contains("data-box=\"box-1\"") && !mine.contains("data-box=\"box-2\""));
    let report = "/console/boxes/box-1/reports/2026-11/ja/html";
    let (code, _, body) = get(&d, &one, report);
    assert_eq!(code, 200);
    assert!(body.contains("11月の報告"));
    let (code, _, refused) = get(&d, &two, report);
    assert_eq!(code, 404);
    assert!(refused.contains("no such box") && !refused.contains("11月の報告"));
    assert_eq!(get(&d, &two, "/console/boxes/box-1").0, 404);
    assert_eq!(get(&d, &two, &format!("/console/incidents/{inc}")).0, 404);
    let (_, _, theirs) = get(&d, &two, "/console");
    assert!(
        !theirs.contains("data-box=\"box-1\"")
            && !theirs.contains(&format!("data-incident=\"{inc}\""))
    );
    // A customer may look but not work incidents, even their own.
    assert_eq!(
        post(
            &d,
            &one,
            &path,
            &[("csrf", &csrf_of(&one)), ("action", "notify-customer")]
        )
        .0,
        403
    );
    let (_, _, box_page) = get(&d, &one, "/console/boxes/box-1");
    assert!(box_page.contains("0 of 1 free visits used"), "{box_page}");
}

#[test]
fn a_customers_month_adds_up_its_boxes_and_shows_what_the_desk_did() {
    let d = start("console-month", 300);
    setup_customer(&d, "c-m", &["box-m1", "box-m2"]);
    setup_customer(&d, "c-other", &[]);
    let (cert, key) = enrol(&d, "box-m1");
    let agent = as_box(&d, &cert, &key);
    let hour = 1_796_000_400; // 2026-11-30 10:00 JST
    let (status, _) = answer(agent.post(&format!("{}/v1/hourly", d.uplink)).send_json(json!({
        "box_id": "box-m1",
        "hours": [{"hour": hour, "event_type": "web", "action": "blocked", "count": 7},
                  {"hour": hour + 3600, "event_type": "web", "action": "sinkholed", "count": 2},
                  {"hour": hour, "event_type": "alert", "action": "blocked", "count": 3},
                  {"hour": hour, "event_type": "flow", "action": "allow", "count": 100},
                  // December in Japan time: not November's.
                  {"hour": hour + 15 * 3600, "event_type": "web", "action": "blocked", "count": 50}],
    })));
    assert_eq!(status, 200);
    let op = token(&d, json!({"name": "tanaka", "role": "desk-operator"}));
    let (status, _, body) = get(&d, &op, "/console/customers/c-m/months/2026-11");
    assert_eq!(status, 200, "{body}");
    let row = body.split("<tr class=\"box\">").nth(1).unwrap_or_default();
    assert!(row.contains("box-m1"), "{row}");
    assert!(
        row.contains("<td class=\"web\">9</td>"),
        "web blocks 7 + 2: {row}"
    );
    assert!(row.contains("<td class=\"drops\">3</td>"), "{row}");
    assert!(row.contains("<td class=\"total\">112</td>"), "{row}");
    assert!(row.contains("<td class=\"hours\">2</td>"), "{row}");
    assert!(
        body.contains("box-m2"),
        "every box of the customer is listed"
    );
    assert!(body.contains("No incident opened this month."));
    // The customer sees their own month; another customer, or a bad month, does not.
    let mine = token(
        &d,
        json!({"name": "c-m-admin", "role": "customer", "customer_id": "c-m"}),
    );
    assert_eq!(
        get(&d, &mine, "/console/customers/c-m/months/2026-11").0,
        200
    );
    let other = token(
        &d,
        json!({"name": "other", "role": "customer", "customer_id": "c-other"}),
    );
    assert_eq!(
        get(&d, &other, "/console/customers/c-m/months/2026-11").0,
        404
    );
    assert_eq!(get(&d, &op, "/console/customers/c-m/months/2026-13").0, 422);
    assert_eq!(
        get(&d, &op, "/console/customers/nobody/months/2026-11").0,
        404
    );
}
