//! The category database: squidGuard semantics, corrupt files refused, hostile bytes.

use mimamori_signatures::category::{Builder, CategoryDb, DbError, MatchKind, split_url};
use proptest::prelude::*;
use std::path::PathBuf;

fn sample() -> (CategoryDb, Vec<u8>) {
    static IMAGE: std::sync::OnceLock<Vec<u8>> = std::sync::OnceLock::new();
    let bytes = IMAGE.get_or_init(build_sample).clone();
    (CategoryDb::from_bytes(bytes.clone()).unwrap(), bytes)
}

fn build_sample() -> Vec<u8> {
    let dir = std::env::temp_dir().join(format!("mm-cat-{}", std::process::id()));
    for (cat, domains, urls) in [
        ("bank", "amex.test\nbank.example.test\n", ""),
        (
            "phishing",
            "login-amex.test\nevil.example.test\n",
            "files.example.test/phish/kit\n",
        ),
        ("malware", "evil.example.test\n", ""),
    ] {
        std::fs::create_dir_all(dir.join(cat)).unwrap();
        std::fs::write(dir.join(cat).join("domains"), domains).unwrap();
        std::fs::write(dir.join(cat).join("urls"), urls).unwrap();
    }
    std::fs::write(
        dir.join("hosts.txt"),
        "# comment\n0.0.0.0 tracker.ads.test\n127.0.0.1 localhost\nnot a name!\n198.19.7.7\n",
    )
    .unwrap();
    let mut b = Builder::default();
    b.add_squidguard_dir(&dir, "sample", "2026-11-01").unwrap();
    b.add_hosts_file(&dir.join("hosts.txt"), "ads", "hostlist", "2026-11-02")
        .unwrap();
    assert_eq!(
        b.report.invalid.values().sum::<u64>(),
        1,
        "one bad line, counted"
    );
    b.finish(1_795_000_000).0
}

fn cats(db: &CategoryDb, host: &str) -> Vec<String> {
    let mut out = Vec::new();
    db.lookup_host(host, &mut out);
    let mut v: Vec<String> = out
        .iter()
        .map(|m| db.categories[usize::from(m.category)].clone())
        .collect();
    v.sort();
    v
}

#[test]
fn domains_match_themselves_and_subdomains_only() {
    let (db, _) = sample();
    assert_eq!(cats(&db, "amex.test"), ["bank"]);
    assert_eq!(cats(&db, "www.amex.test"), ["bank"]);
    assert_eq!(
        cats(&db, "WWW.Amex.Test."),
        ["bank"],
        "case and a trailing dot do not matter"
    );
    assert!(cats(&db, "aamex.test").is_empty(), "not a label boundary");
    assert_eq!(cats(&db, "login-amex.test"), ["phishing"]);
    assert_eq!(
        cats(&db, "a.evil.example.test"),
        ["malware", "phishing"],
        "a name in two categories"
    );
    assert_eq!(cats(&db, "tracker.ads.test"), ["ads"]);
    assert_eq!(
        cats(&db, "198.19.7.7"),
        ["ads"],
        "a bare address line is listed"
    );
    assert!(cats(&db, "localhost").is_empty());
    assert!(cats(&db, "example.test").is_empty());
}

#[test]
fn most_specific_wins_and_sources_are_named() {
    let (db, _) = sample();
    let mut out = Vec::new();
    assert!(db.lookup_host("x.bank.example.test", &mut out));
    assert_eq!(out.len(), 1);
    assert_eq!(db.sources[usize::from(out[0].source)].0, "sample");
    assert_eq!(db.sources[usize::from(out[0].source)].1, "2026-11-01");
}

#[test]
fn url_entries_are_path_prefixes_after_stripping() {
    let (db, _) = sample();
    let mut out = Vec::new();
    for url in [
        "http://www2.files.example.test:8080/phish/kit/index.php?a=1",
        "files.example.test/phish/kit",
        "https://files.example.test/phish/kit/",
    ] {
        let (h, p) = split_url(url);
        assert!(db.lookup_url(h, p, &mut out), "{url}");
        assert_eq!(
            (
                out[0].kind,
                db.categories[usize::from(out[0].category)].as_str()
            ),
            (MatchKind::Url, "phishing"),
            "{url}"
        );
    }
    let (h, p) = split_url("http://files.example.test/phish/kitten");
    assert!(
        !db.lookup_url(h, p, &mut out),
        "prefixes end at a '/' boundary"
    );
    let (h, p) = split_url("http://bank.example.test/login");
    assert!(db.lookup_url(h, p, &mut out));
    assert_eq!(
        out[0].kind,
        MatchKind::Domain,
        "falls back to the host's domain entries"
    );
}

#[test]
fn corrupt_truncated_and_wrong_version_files_are_refused() {
    let (_, bytes) = sample();
    let mut flipped = bytes.clone();
    let mid = flipped.len() / 2;
    flipped[mid] ^= 0x40;
    assert!(matches!(
        CategoryDb::from_bytes(flipped),
        Err(DbError::Checksum { .. })
    ));
    assert!(matches!(
        CategoryDb::from_bytes(bytes[..bytes.len() - 20].to_vec()),
        Err(DbError::Truncated(_)) | Err(DbError::Checksum { .. })
    ));
    let mut v2 = bytes.clone();
    v2[7] = 2;
    assert_eq!(CategoryDb::from_bytes(v2).unwrap_err(), DbError::Version(2));
    assert_eq!(
        CategoryDb::from_bytes(b"GIF89a".to_vec()).unwrap_err(),
        DbError::BadMagic
    );
    assert!(
        CategoryDb::open(&PathBuf::from("/nonexistent/cat.db"))
            .unwrap_err()
            .contains("/nonexistent/cat.db")
    );
}

fn data_dir() -> PathBuf {
    std::env::var_os("MIMAMORI_DATA")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from(concat!(env!("CARGO_MANIFEST_DIR"), "/../../shared/data")))
}

#[test]
fn ut1_and_urlhaus_build_and_answer() {
    let d = data_dir().join("categories");
    if !d.join("ut1").is_dir() {
        eprintln!("skipped: {} not found (set MIMAMORI_DATA)", d.display());
        return;
    }
    let mut b = Builder::default();
    b.add_squidguard_dir(&d.join("ut1"), "ut1", "2025").unwrap();
    b.add_hosts_file(
        &d.join("urlhaus/urlhaus-filter-domains.txt"),
        "malware",
        "urlhaus",
        "2025-07-19",
    )
    .unwrap();
    let (bytes, rep) = b.finish(0);
    let db = CategoryDb::from_bytes(bytes).unwrap();
    assert!(db.len() > 1_000_000);
    assert!(
        (db.memory_bytes() as f64) / ((rep.domains + rep.urls) as f64) <= 24.0,
        "<= 24 bytes per name"
    );
    assert!(rep.invalid.values().sum::<u64>() < 100, "{:?}", rep.invalid);
    let mut out = Vec::new();
    // Every domain line of one list is found again.
    let phishing = std::fs::read_to_string(d.join("ut1/phishing/domains")).unwrap();
    for name in phishing.lines().take(2000) {
        assert!(db.lookup_host(name, &mut out), "{name}");
        assert!(
            out.iter()
                .any(|m| db.categories[usize::from(m.category)] == "phishing"),
            "{name}"
        );
    }
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 500, ..ProptestConfig::default() })]

    #[test]
    fn hostile_images_never_panic(at in any::<prop::sample::Index>(), byte in any::<u8>(), cut in any::<prop::sample::Index>()) {
        let (_, mut bytes) = sample();
        let i = at.index(bytes.len());
        bytes[i] = byte;
        bytes.truncate(cut.index(bytes.len() + 1).max(bytes.len() / 2));
        if let Ok(db) = CategoryDb::from_bytes(bytes) {
            let mut out = Vec::new();
            db.lookup_host("www.amex.test", &mut out);
        }
    }

    #[test]
    fn lookups_never_panic(host in "\\PC{0,300}") {
        let (db, _) = sample();
        let mut out = Vec::new();
        db.lookup_host(&host, &mut out);
        let (h, p) = split_url(&host);
        db.lookup_url(h, p, &mut out);
    }
}
