//! Pattern bundles on the box: import, refusals that leave nothing behind, rollback,
//! staleness, and the same through the HTTP API.

mod common;

use ed25519_dalek::SigningKey;
use mimamori_control_plane::patterns::{Config, Patterns, PatternsError};
use mimamori_control_plane::{db, server};
use mimamori_signatures::bundle::{self, BuildSpec, BundleError, GatewayVersion, Kind, Limits};
use mimamori_signatures::bundle::{TrustedKeys, keys};
use serde_json::Value;
use std::path::{Path, PathBuf};
use std::time::Duration;

fn key(seed: u8) -> SigningKey {
    SigningKey::from_bytes(&[seed; 32])
}

fn dir(name: &str) -> PathBuf {
    let d = std::env::temp_dir().join(format!("mimamori-patterns-{}-{name}", std::process::id()));
    let _ = std::fs::remove_dir_all(&d);
    std::fs::create_dir_all(&d).unwrap();
    d
}

fn make(kind: Kind, version: u64, published: u64, k: &SigningKey) -> Vec<u8> {
    let spec = BuildSpec {
        kind,
        version,
        published,
        min_gateway: GatewayVersion(0, 1, 0),
    };
    let parts = vec![(
        "test.rules".to_string(),
        format!("alert tcp any any -> any any (msg:\"v{version}\"; sid:{version};)\n").into_bytes(),
    )];
    let b = bundle::build(&spec, &parts, &Limits::default()).unwrap();
    bundle::sign(&b, k, &Limits::default()).unwrap()
}

fn setup(name: &str, trusted: &[&SigningKey]) -> (PathBuf, rusqlite::Connection, Patterns) {
    let d = dir(name);
    let c = db::open(&d.join("cp.db")).unwrap();
    let trust = TrustedKeys::new(trusted.iter().map(|k| k.verifying_key()).collect()).unwrap();
    let p = Patterns::new(Config::new(d.join("patterns"), trust));
    (d, c, p)
}

fn files(d: &Path) -> Vec<String> {
    let mut v: Vec<String> = std::fs::read_dir(d.join("patterns/rules"))
        .map(|rd| {
            rd.flatten()
                .map(|e| e.file_name().to_string_lossy().into_owned())
                .collect()
        })
        .unwrap_or_default();
    v.sort();
    v
}

fn rows(c: &rusqlite::Connection) -> i64 {
    c.query_row("SELECT count(*) FROM pattern_bundle", [], |r| r.get(0))
        .unwrap()
}

fn refused(r: Result<impl std::fmt::Debug, PatternsError>) -> bundle::Refused {
    match r {
        Err(PatternsError::Refused(r)) => r,
        other => panic!("expected a refusal, got {other:?}"),
    }
}

#[test]
fn import_keeps_current_and_last_good_and_refuses_downgrades() {
    let k = key(1);
    let (d, mut c, p) = setup("import", &[&k]);
    let now = db::now() as u64;
    let v1 = make(Kind::Rules, 1, now, &k);
    let out = p.import(&mut c, "r1.mmb", &v1, "test", false).unwrap();
    assert_eq!((out.version, out.previous), (1, None));
    assert!(out.gateway.contains("next start"), "{}", out.gateway);
    let out = p
        .import(
            &mut c,
            "r2.mmb",
            &make(Kind::Rules, 2, now, &k),
            "test",
            false,
        )
        .unwrap();
    assert_eq!((out.version, out.previous), (2, Some(1)));
    assert_eq!(files(&d).len(), 2, "current and last-known-good");
    // The active parts come back verified, from the current file.
    let (ver, parts) = p.active_parts(&c, Kind::Rules).unwrap().unwrap();
    assert_eq!(ver, 2);
    assert_eq!(parts[0].0, "test.rules");
    assert!(String::from_utf8_lossy(&parts[0].1).contains("sid:2;"));

    // Equal and older versions are refused, and nothing changes.
    let before = (files(&d), rows(&c));
    for (v, label) in [(2, "again.mmb"), (1, "old.mmb")] {
        let r = refused(p.import(&mut c, label, &make(Kind::Rules, v, now, &k), "test", false));
        assert_eq!(
            r.error,
            BundleError::NotNewer {
                kind: Kind::Rules,
                current: 2,
                offered: v
            }
        );
        assert!(r.to_string().starts_with(&format!("bundle {label} (claims rules version {v}): refused: rules version {v} is not newer than the installed version 2")), "{r}");
    }
    assert_eq!((files(&d), rows(&c)), before);
    // Unless forced: then v1 is current and v2 the last-known-good.
    let out = p
        .import(
            &mut c,
            "old.mmb",
            &make(Kind::Rules, 1, now, &k),
            "test",
            true,
        )
        .unwrap();
    assert_eq!((out.version, out.previous), (1, Some(2)));
    let s = p.status(&c, db::now()).unwrap();
    assert_eq!(s["kinds"][0]["version"], 1);
    assert_eq!(s["kinds"][0]["last_good_version"], 2);
    // Each kind has its own versions.
    p.import(
        &mut c,
        "cats.mmb",
        &make(Kind::Categories, 1, now, &k),
        "test",
        false,
    )
    .unwrap();
    let s = p.status(&c, db::now()).unwrap();
    assert_eq!(s["kinds"].as_array().unwrap().len(), 2);
}

#[test]
fn bad_bundles_are_refused_and_nothing_is_stored() {
    let (k, wrong) = (key(1), key(2));
    let (d, mut c, p) = setup("refusals", &[&k]);
    let now = db::now() as u64;
    p.import(
        &mut c,
        "r1.mmb",
        &make(Kind::Rules, 1, now, &k),
        "test",
        false,
    )
    .unwrap();
    let before = (files(&d), rows(&c));
    let good = make(Kind::Rules, 2, now, &k);
    let mut tampered = good.clone();
    let at = tampered.windows(6).position(|w| w == b"sid:2;").unwrap();
    tampered[at + 4] = b'3';
    let cases: Vec<(&str, Vec<u8>, &str)> = vec![
        ("tampered.mmb", tampered, "part test.rules: SHA-256"),
        (
            "wrong-key.mmb",
            make(Kind::Rules, 2, now, &wrong),
            "none of them trusted",
        ),
        (
            "truncated.mmb",
            good[..good.len() - 5].to_vec(),
            "the file ends inside part test.rules",
        ),
        ("empty.mmb", Vec::new(), "the file ends inside the magic"),
        (
            "junk.mmb",
            b"<html>404</html>".to_vec(),
            "not a mimamori bundle",
        ),
    ];
    for (label, bytes, why) in cases {
        let r = refused(p.import(&mut c, label, &bytes, "test", false));
        let msg = r.to_string();
        assert!(msg.starts_with(&format!("bundle {label}")), "{msg}");
        assert!(msg.contains(why), "{label}: {msg}");
    }
    assert_eq!((files(&d), rows(&c)), before, "nothing stored");
    assert_eq!(p.active_parts(&c, Kind::Rules).unwrap().unwrap().0, 1);
    // Each refusal is in the audit log.
    let audit = db::audit_log(&c, 100).unwrap();
    assert_eq!(
        audit
            .iter()
            .filter(|a| a.action == "patterns.refused")
            .count(),
        5
    );
}

#[test]
fn a_crash_leftover_is_ignored_and_pruned() {
    let k = key(1);
    let (d, mut c, p) = setup("leftover", &[&k]);
    let now = db::now() as u64;
    p.import(
        &mut c,
        "r1.mmb",
        &make(Kind::Rules, 1, now, &k),
        "test",
        false,
    )
    .unwrap();
    // A crash after the temp file was written, before the rename or the record.
    std::fs::write(d.join("patterns/rules/.9-abc.mmb.tmp"), b"half").unwrap();
    std::fs::write(
        d.join("patterns/rules/9-0000000000000000.mmb"),
        b"unrecorded",
    )
    .unwrap();
    assert_eq!(p.active_parts(&c, Kind::Rules).unwrap().unwrap().0, 1);
    p.import(
        &mut c,
        "r2.mmb",
        &make(Kind::Rules, 2, now, &k),
        "test",
        false,
    )
    .unwrap();
    assert_eq!(files(&d).len(), 2, "{:?}", files(&d));
}

#[test]
fn a_current_file_changed_on_disk_is_refused_when_read() {
    let k = key(1);
    let (d, mut c, p) = setup("disk", &[&k]);
    p.import(
        &mut c,
        "r1.mmb",
        &make(Kind::Rules, 1, db::now() as u64, &k),
        "test",
        false,
    )
    .unwrap();
    let f = d.join("patterns/rules").join(&files(&d)[0]);
    let mut b = std::fs::read(&f).unwrap();
    let n = b.len();
    b[n - 3] ^= 1;
    std::fs::write(&f, b).unwrap();
    let r = refused(p.active_parts(&c, Kind::Rules));
    assert!(matches!(r.error, BundleError::PartHash { .. }), "{r}");
}

#[test]
fn rollback_goes_back_to_the_last_known_good_once() {
    let k = key(1);
    let (d, mut c, p) = setup("rollback", &[&k]);
    let now = db::now() as u64;
    match p.rollback(&mut c, Kind::Rules, "test") {
        Err(PatternsError::Conflict(m)) => assert!(m.contains("none installed"), "{m}"),
        other => panic!("{other:?}"),
    }
    p.import(
        &mut c,
        "r1.mmb",
        &make(Kind::Rules, 1, now, &k),
        "test",
        false,
    )
    .unwrap();
    p.import(
        &mut c,
        "r2.mmb",
        &make(Kind::Rules, 2, now, &k),
        "test",
        false,
    )
    .unwrap();
    let out = p.rollback(&mut c, Kind::Rules, "test").unwrap();
    assert_eq!((out.version, out.previous), (1, Some(2)));
    assert_eq!(p.active_parts(&c, Kind::Rules).unwrap().unwrap().0, 1);
    assert_eq!(files(&d).len(), 1, "the set rolled back from is dropped");
    match p.rollback(&mut c, Kind::Rules, "test") {
        Err(PatternsError::Conflict(m)) => {
            assert!(m.contains("version 1 is the only one kept"), "{m}")
        }
        other => panic!("{other:?}"),
    }
    // A newer one is welcome again after a rollback.
    p.import(
        &mut c,
        "r3.mmb",
        &make(Kind::Rules, 3, now, &k),
        "test",
        false,
    )
    .unwrap();
}

#[test]
fn the_rotated_key_is_accepted() {
    let (old, new) = (key(1), key(2));
    let (_d, mut c, p) = setup("rotation", &[&old, &new]);
    let now = db::now() as u64;
    p.import(
        &mut c,
        "r1.mmb",
        &make(Kind::Rules, 1, now, &old),
        "test",
        false,
    )
    .unwrap();
    let out = p
        .import(
            &mut c,
            "r2.mmb",
            &make(Kind::Rules, 2, now, &new),
            "test",
            false,
        )
        .unwrap();
    assert_eq!(
        out.signer,
        bundle::KeyId::of(new.verifying_key().as_bytes()).to_string()
    );
}

#[test]
fn staleness_by_age_and_by_missed_checks() {
    let k = key(1);
    let (_d, mut c, p) = setup("stale", &[&k]);
    let now = db::now();
    // Published 8 days ago: stale by age even though just imported.
    p.import(
        &mut c,
        "old.mmb",
        &make(Kind::Rules, 1, (now - 8 * 86_400) as u64, &k),
        "test",
        false,
    )
    .unwrap();
    let s = p.status(&c, now).unwrap();
    assert_eq!(s["patterns_stale"], true);
    let r = &s["kinds"][0];
    assert_eq!(r["patterns_stale"], true);
    assert!(
        r["stale_reasons"][0]
            .as_str()
            .unwrap()
            .starts_with("published 8 days ago"),
        "{r}"
    );
    // A fresh one is not stale now, and is 25 h later without a check.
    p.import(
        &mut c,
        "new.mmb",
        &make(Kind::Rules, 2, now as u64, &k),
        "test",
        false,
    )
    .unwrap();
    assert_eq!(p.status(&c, now).unwrap()["patterns_stale"], false);
    // (+2 s: the import stamps its check a second after `now` when the clock ticks.)
    let later = p.status(&c, now + 25 * 3600 + 2).unwrap();
    assert_eq!(later["patterns_stale"], true);
    assert!(
        later["kinds"][0]["stale_reasons"][0]
            .as_str()
            .unwrap()
            .starts_with("no successful check for 25 h"),
        "{later}"
    );
}

/// The same through `serve` and HTTP: import, status, refusals (422, 403), rollback.
#[test]
fn over_the_api() {
    let k = key(1);
    let d = dir("api");
    let kf = d.join("desk.pub");
    std::fs::write(&kf, keys::public_to_text(&k.verifying_key())).unwrap();
    let trust = TrustedKeys::from_texts_or_files(&[kf.display().to_string()]).unwrap();
    let opts = server::Options {
        db: d.join("cp.db"),
        listen: "127.0.0.1:0".parse().unwrap(),
        gateway_socket: d.join("gw.sock"),
        cp_socket: d.join("cp.sock"),
        retention_days: 36_500,
        event_queue: 1000,
        bootstrap_token_file: Some(d.join("admin.token")),
        categories: None,
        patterns: Some(Config::new(d.join("patterns"), trust)),
        desk: None,
        desk_patterns_every: std::time::Duration::from_secs(21_600),
    };
    let addr = common::serve(&opts);
    let base = format!("http://{addr}");
    let admin = std::fs::read_to_string(d.join("admin.token"))
        .unwrap()
        .trim()
        .to_string();
    let ro = db::create_token(
        &db::open(&d.join("cp.db")).unwrap(),
        "viewer",
        db::Role::ReadOnly,
    )
    .unwrap();
    let post = |token: &str, q: &str, body: &[u8]| -> (u16, Value) {
        let r = ureq::post(&format!("{base}/api/v1/patterns{q}"))
            .set("Authorization", &format!("Bearer {token}"))
            .set("Content-Type", "application/octet-stream")
            .send_bytes(body);
        match r {
            Ok(r) => (
                r.status(),
                serde_json::from_reader(r.into_reader()).unwrap(),
            ),
            Err(ureq::Error::Status(s, r)) => {
                (s, serde_json::from_reader(r.into_reader()).unwrap())
            }
            Err(e) => panic!("{e}"),
        }
    };
    let now = db::now() as u64;
    // Bigger than axum's default body limit (2 MB): the route takes whole bundles.
    let spec = BuildSpec {
        kind: Kind::Rules,
        version: 5,
        published: now,
        min_gateway: GatewayVersion(0, 1, 0),
    };
    let big = bundle::build(
        &spec,
        &[("et.rules".into(), vec![b'#'; 3 << 20])],
        &Limits::default(),
    )
    .unwrap();
    let big = bundle::sign(&big, &k, &Limits::default()).unwrap();
    let (s, v) = post(&admin, "?name=et-5.mmb", &big);
    assert_eq!(s, 200, "{v}");
    assert_eq!(v["version"], 5);
    let (s, v) = post(&admin, "?name=et-4.mmb", &make(Kind::Rules, 4, now, &k));
    assert_eq!(s, 422, "{v}");
    assert_eq!(v["bundle"], "et-4.mmb (claims rules version 4)");
    assert!(
        v["reason"]
            .as_str()
            .unwrap()
            .contains("not newer than the installed version 5"),
        "{v}"
    );
    let (s, _) = post(
        &admin,
        "?name=et-4.mmb&force_rollback=true",
        &make(Kind::Rules, 4, now, &k),
    );
    assert_eq!(s, 200);
    let (s, v) = post(&ro, "", &make(Kind::Rules, 6, now, &k));
    assert_eq!(s, 403, "{v}");
    let get: Value = serde_json::from_reader(
        ureq::get(&format!("{base}/api/v1/patterns"))
            .set("Authorization", &format!("Bearer {ro}"))
            .call()
            .unwrap()
            .into_reader(),
    )
    .unwrap();
    assert_eq!(get["kinds"][0]["kind"], "rules");
    assert_eq!(get["kinds"][0]["version"], 4);
    assert_eq!(get["kinds"][0]["last_good_version"], 5);
    assert_eq!(get["patterns_stale"], false);
    // Staleness also in the box's status and in /metrics.
    let status: Value = serde_json::from_reader(
        ureq::get(&format!("{base}/api/v1/status"))
            .set("Authorization", &format!("Bearer {ro}"))
            .call()
            .unwrap()
            .into_reader(),
    )
    .unwrap();
    assert_eq!(status["patterns_stale"], false, "{status}");
    assert_eq!(status["patterns"]["kinds"][0]["version"], 4);
    let metrics = ureq::get(&format!("{base}/metrics"))
        .set("Authorization", &format!("Bearer {ro}"))
        .call()
        .unwrap()
        .into_string()
        .unwrap();
    assert!(
        metrics.contains("mimamori_patterns_stale{kind=\"rules\"} 0"),
        "{metrics}"
    );
    assert!(
        metrics.contains("mimamori_patterns_version{kind=\"rules\"} 4"),
        "{metrics}"
    );
    let r = ureq::post(&format!("{base}/api/v1/patterns/rules/rollback"))
        .set("Authorization", &format!("Bearer {admin}"))
        .call()
        .unwrap();
    let v: Value = serde_json::from_reader(r.into_reader()).unwrap();
    assert_eq!(v["version"], 5);
    match ureq::post(&format!("{base}/api/v1/patterns/firmware/rollback"))
        .set("Authorization", &format!("Bearer {admin}"))
        .call()
    {
        Err(ureq::Error::Status(404, _)) => {}
        other => panic!("{other:?}"),
    }
}

/// A gateway control socket that answers every `patterns` request with `answer` and
/// reports each request it read.
fn fake_gateway(
    sock: &Path,
    answer: &'static str,
) -> std::sync::mpsc::Receiver<mimamori_proto::Request> {
    use std::io::Write;
    let listener = std::os::unix::net::UnixListener::bind(sock).unwrap();
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        for conn in listener.incoming() {
            let Ok(mut conn) = conn else { continue };
            let mut r = std::io::BufReader::new(conn.try_clone().unwrap());
            if let Ok(req) = mimamori_proto::Request::decode(&mut r) {
                let _ = tx.send(req);
            }
            let _ = conn.write_all(answer.as_bytes());
        }
    });
    rx
}

fn with_gateway(
    name: &str,
    k: &SigningKey,
    answer: &'static str,
) -> (
    PathBuf,
    rusqlite::Connection,
    Patterns,
    std::sync::mpsc::Receiver<mimamori_proto::Request>,
) {
    let d = dir(name);
    let c = db::open(&d.join("cp.db")).unwrap();
    let trust = TrustedKeys::new(vec![k.verifying_key()]).unwrap();
    let sock = d.join("gw.sock");
    let rx = fake_gateway(&sock, answer);
    let link = mimamori_control_plane::gwlink::GatewayLink { socket: sock };
    let p = Patterns::with_gateway(Config::new(d.join("patterns"), trust), link);
    (d, c, p, rx)
}

#[test]
fn a_set_the_gateway_takes_is_handed_over_by_path_and_hash() {
    let k = key(1);
    let (d, mut c, p, rx) = with_gateway(
        "handover",
        &k,
        "ok 1 2500 1 of 1 enabled rules compiled from 1 parts\n",
    );
    let v1 = make(Kind::Rules, 1, db::now() as u64, &k);
    let out = p.import(&mut c, "r1.mmb", &v1, "test", false).unwrap();
    assert!(
        out.gateway
            .starts_with("running on the gateway: rules version 1"),
        "{}",
        out.gateway
    );
    let req = rx.recv_timeout(Duration::from_secs(5)).unwrap();
    let mimamori_proto::Request::Patterns { kind, sha256, path } = req else {
        panic!("{req:?}")
    };
    assert_eq!(kind, "rules");
    assert!(Path::new(&path).is_absolute(), "{path}");
    assert_eq!(std::fs::read(&path).unwrap(), v1);
    assert_eq!(
        sha256,
        bundle::hex(&<sha2::Sha256 as sha2::Digest>::digest(&v1))
    );
    // The gateway's start gets the same file.
    let files = p.files.lock().unwrap().clone();
    assert_eq!(files.len(), 1);
    assert_eq!(
        (files[0].path.as_str(), files[0].version),
        (path.as_str(), 1)
    );
    let _ = std::fs::remove_dir_all(&d);
}

#[test]
fn a_set_the_gateway_refuses_is_not_installed_and_the_refusal_is_audited() {
    let k = key(1);
    let (d, mut c, p, _rx) = with_gateway(
        "gwrefuses",
        &k,
        "error r2.mmb (rules version 2): no rule compiled\n",
    );
    let v2 = make(Kind::Rules, 2, db::now() as u64, &k);
    match p.import(&mut c, "r2.mmb", &v2, "test", false) {
        Err(PatternsError::GatewayRefused { bundle, reason }) => {
            assert!(bundle.contains("r2.mmb"), "{bundle}");
            assert!(reason.contains("no rule compiled"), "{reason}");
        }
        other => panic!("expected the gateway's refusal, got {other:?}"),
    }
    assert_eq!(rows(&c), 0);
    assert!(files(&d).is_empty(), "{:?}", files(&d));
    assert!(p.files.lock().unwrap().is_empty());
    let audited: String = c
        .query_row(
            "SELECT after FROM audit WHERE action = 'patterns.refused' ORDER BY id DESC LIMIT 1",
            [],
            |r| r.get(0),
        )
        .unwrap();
    assert!(audited.contains("refused by the gateway"), "{audited}");
    let _ = std::fs::remove_dir_all(&d);
}

#[test]
fn with_the_gateway_offline_the_set_is_installed_for_its_next_start() {
    let k = key(1);
    let d = dir("offline");
    let mut c = db::open(&d.join("cp.db")).unwrap();
    let trust = TrustedKeys::new(vec![k.verifying_key()]).unwrap();
    let link = mimamori_control_plane::gwlink::GatewayLink {
        socket: d.join("no-gateway.sock"),
    };
    let p = Patterns::with_gateway(Config::new(d.join("patterns"), trust), link);
    let v1 = make(Kind::Rules, 1, db::now() as u64, &k);
    let out = p.import(&mut c, "r1.mmb", &v1, "test", false).unwrap();
    assert!(
        out.gateway
            .starts_with("gateway offline: will load at next start"),
        "{}",
        out.gateway
    );
    assert_eq!(p.files.lock().unwrap().len(), 1);
    let _ = std::fs::remove_dir_all(&d);
}

#[test]
fn a_box_past_its_licence_end_takes_no_updates_and_says_so() {
    let k = key(7);
    let (_d, mut c, p) = setup("licence", &[&k]);
    let now = db::now() as u64;
    p.import(
        &mut c,
        "r1.mmb",
        &make(Kind::Rules, 1, now, &k),
        "test",
        false,
    )
    .unwrap();
    // The desk's contract said the licence ended yesterday.
    c.execute(
        "UPDATE desk_uplink SET licence_end = '2020-01-01' WHERE id = 1",
        [],
    )
    .unwrap();
    let r = p.import(
        &mut c,
        "r2.mmb",
        &make(Kind::Rules, 2, now, &k),
        "test",
        false,
    );
    match r {
        Err(PatternsError::LicenceEnded(why)) => assert!(why.contains("2020-01-01"), "{why}"),
        other => panic!("expected a licence refusal, got {other:?}"),
    }
    let st = p.status(&c, now as i64).unwrap();
    assert_eq!(st["licence_expired"], true, "{st}");
    assert_eq!(
        st["kinds"][0]["version"], 1,
        "the installed set stays: {st}"
    );
}

#[test]
fn a_kind_turning_stale_is_an_event() {
    let k = key(8);
    let (d, mut c, p) = setup("stale-event", &[&k]);
    let now = db::now();
    p.import(
        &mut c,
        "old.mmb",
        &make(Kind::Rules, 1, (now - 8 * 86_400) as u64, &k),
        "test",
        false,
    )
    .unwrap();
    let (store, _writer) =
        mimamori_control_plane::events::EventStore::start(&d.join("cp.db"), 1024).unwrap();
    let p = std::sync::Arc::new(p);
    p.spawn_stale_watch(d.join("cp.db"), std::sync::Arc::new(store));
    let raw = first_patterns_event(&c);
    let v: Value = serde_json::from_str(&raw.expect("no patterns event")).unwrap();
    assert_eq!(v["patterns"]["state"], "stale", "{v}");
    assert_eq!(v["patterns"]["kind"], "rules", "{v}");
}

#[test]
fn a_refused_bundle_is_an_event() {
    let k = key(9);
    let stranger = key(10);
    let (d, mut c, p) = setup("refused-event", &[&k]);
    let (store, _writer) =
        mimamori_control_plane::events::EventStore::start(&d.join("cp.db"), 1024).unwrap();
    p.report_to(std::sync::Arc::new(store));
    let now = db::now() as u64;
    assert!(
        p.import(
            &mut c,
            "x.mmb",
            &make(Kind::Rules, 1, now, &stranger),
            "test",
            false
        )
        .is_err()
    );
    let raw = first_patterns_event(&c);
    let v: Value = serde_json::from_str(&raw.expect("no refusal event")).unwrap();
    assert_eq!(v["patterns"]["state"], "refused", "{v}");
    assert_eq!(v["patterns"]["bundle"], "x.mmb", "{v}");
}

/// The first `patterns` event the store holds, waiting up to 5 s for the writer.
fn first_patterns_event(c: &rusqlite::Connection) -> Option<String> {
    for _ in 0..100 {
        let raw = c
            .query_row(
                "SELECT raw FROM event WHERE event_type = 'patterns'",
                [],
                |r| r.get::<_, String>(0),
            )
            .ok();
        if raw.is_some() {
            return raw;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    None
}
