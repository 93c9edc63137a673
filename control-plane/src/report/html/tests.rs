//! The rendering's tests: escaping, languages and sections, the health rows.
use super::super::aggregate::tests::{db, insert, sample, web};
use super::super::{Live, Month, aggregate};
use super::*;

#[test]
fn escaping() {
    assert_eq!(
        esc(r#"<script>alert("x&'y")</script>"#),
        "&lt;script&gt;alert(&quot;x&amp;&#39;y&quot;)&lt;/script&gt;"
    );
    assert_eq!(num(0), "0");
    assert_eq!(num(999), "999");
    assert_eq!(num(1000), "1,000");
    assert_eq!(num(12_345_678), "12,345,678");
}

#[test]
fn names_from_events_render_as_text() {
    let c = db();
    let mut lines = sample();
    lines.push(web(
        "2026-11-03T00:00:00+0000",
        "blocked",
        "<script>alert(1)</script>.test",
        "<img src=x onerror=alert(2)>",
        true,
        "198.18.0.12",
        "02:00:00:00:00:0c",
    ));
    insert(&c, &lines);
    let m = Month::parse("2026-11").unwrap();
    let r = aggregate(&c, m, m.end(), &Live::default()).unwrap();
    for lang in [Lang::Ja, Lang::En] {
        let page = render(&r, lang);
        let lower = page.to_ascii_lowercase();
        assert!(!lower.contains("<script"), "a raw <script> in the page");
        assert!(!lower.contains("<img"), "a raw <img> in the page");
        assert!(!lower.contains("<b>suzuki"), "a raw host name in the page");
        assert!(page.contains("&lt;script&gt;alert(1)&lt;/script&gt;.test"));
        assert!(page.contains("pc-&lt;b&gt;suzuki&lt;/b&gt;"));
        assert!(page.contains("ET EXPLOIT &lt;script&gt;x&lt;/script&gt;"));
    }
}

#[test]
fn exceptions_in_effect_and_pattern_updates() {
    let c = db();
    insert(&c, &sample());
    let m = Month::parse("2026-11").unwrap();
    let in_month = m.start() + 5 * 86_400;
    let mut doc = crate::db::current_policy(&c).unwrap().doc;
    for (entry, action) in [("intranet.test", "allow"), ("<i>bad</i>.test", "block")] {
        doc.exceptions.push(crate::model::Exception {
            entry: entry.into(),
            action: action.into(),
        });
    }
    c.execute(
        "INSERT INTO policy (version, created, actor, doc, applied, note) VALUES (7, ?1, 'admin', ?2, 1, '')",
        rusqlite::params![in_month, serde_json::to_string(&doc).unwrap()],
    )
    .unwrap();
    for (v, at) in [
        (3, m.start() - 86_400),
        (4, in_month),
        (5, in_month + 86_400),
    ] {
        c.execute(
            "INSERT INTO pattern_bundle (kind, version, published, min_gateway, sha256, size, signer, parts, file, imported, actor)
             VALUES ('rules', ?1, ?2, '0', 'x', 1, 'k', '[]', 'f', ?2, 'desk')",
            rusqlite::params![v, at],
        )
        .unwrap();
    }
    insert(
        &c,
        &[r#"{"timestamp":"2026-11-20T00:00:00+0000","event_type":"patterns","patterns":{"state":"stale","kind":"categories","version":1}}"#.to_string()],
    );
    let r = aggregate(&c, m, m.end(), &Live::default()).unwrap();
    assert_eq!(r.policy_version, Some(7));
    assert_eq!(r.exceptions.len(), 2);
    assert_eq!(
        r.patterns.updates.len(),
        2,
        "v4 and v5 in the month, not v3"
    );
    assert_eq!(
        r.patterns.newest,
        vec![("rules".to_string(), 5, in_month + 86_400)]
    );
    assert_eq!((r.patterns.stale_warnings, r.patterns.refused), (1, 0));
    let en = render(&r, Lang::En);
    assert!(en.contains("intranet.test · allowed"), "{en}");
    assert!(en.contains("&lt;i&gt;bad&lt;/i&gt;.test · blocked"));
    assert!(en.contains("Installed this month: 2") && en.contains("IPS signatures v5"));
    assert!(en.contains("Warnings that patterns were stale: 1"));
    assert!(render(&r, Lang::Ja).contains("侵入検知シグネチャ v5"));
    // A box that never installed a bundle says so.
    let none = aggregate(&db(), m, m.end(), &Live::default()).unwrap();
    assert!(render(&none, Lang::En).contains("no pattern bundle installed"));
}

#[test]
fn languages_and_sections() {
    let c = db();
    insert(&c, &sample());
    let m = Month::parse("2026-11").unwrap();
    let r = aggregate(&c, m, m.end(), &Live::default()).unwrap();
    let ja = render(&r, Lang::Ja);
    assert!(ja.contains("<html lang=\"ja\">"));
    assert!(ja.contains("2026年11月"));
    assert!(ja.contains("まだありません"));
    assert!(ja.contains("<svg"));
    assert!(!ja.contains("<script"));
    assert!(ja.contains("稼働時間"));
    let en = render(&r, Lang::En);
    assert!(en.contains("November 2026"));
    assert!(en.contains("No data yet"));
    assert!(en.contains("Mail malware"));
    assert!(en.contains("Not known"));
    // An empty month says so.
    let empty = aggregate(&db(), m, m.end(), &Live::default()).unwrap();
    let p = render(&empty, Lang::En);
    assert!(p.contains("The box recorded no events for this month."));
    assert!(render(&empty, Lang::Ja).contains("この月のイベントはボックスに記録されていません"));
}
