//! The embedded default policy's web section against the real lists in
//! `../shared/data/categories` (UT1 + URLhaus), through a memory-mapped database file and the
//! classifier. Skips with a message when the data is absent.

use mimamori_gateway::webfilter::{WebSetup, open_db};
use mimamori_pipelines::Policy;
use mimamori_pipelines::classify::{Classifier, DropReason, Verdict};
use mimamori_pipelines::flow::Side;
use mimamori_pipelines::synth::{self, Endpoint};
use mimamori_pipelines::wire::tcp::flags::{ACK, PSH, SYN};
use mimamori_signatures::category::Builder;
use std::path::PathBuf;
use std::sync::Arc;

fn data_dir() -> PathBuf {
    std::env::var_os("MIMAMORI_DATA")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from(concat!(env!("CARGO_MANIFEST_DIR"), "/../../shared/data")))
}

fn get(cls: &mut Classifier, client_port: u16, host: &str) -> Verdict {
    let c = Endpoint::client(10, false, client_port);
    let s = Endpoint::server(80, false, 80);
    let seg = synth::tcp_frame;
    cls.process(&seg(&c, &s, SYN, 1, 0, &[]), Side::Lan, 1);
    cls.process(&seg(&s, &c, SYN | ACK, 9, 2, &[]), Side::Wan, 1);
    let req = format!("GET / HTTP/1.1\r\nHost: {host}\r\n\r\n");
    cls.process(&seg(&c, &s, ACK | PSH, 2, 10, req.as_bytes()), Side::Lan, 1)
}

#[test]
fn default_policy_blocks_real_list_names() {
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
    let (bytes, _) = b.finish(0);
    let dir = std::env::temp_dir().join(format!("mimamori-web-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let path = dir.join("real.mmcat");
    std::fs::write(&path, &bytes).unwrap();

    let policy = Arc::new(Policy::default());
    let web = WebSetup::load(&policy, "<embedded default>", &path).unwrap();
    assert!(web.rules.db().len() > 500_000, "{:?}", web.rules.db());
    let mut cls = Classifier::with_web(policy, Some(web.filter()));
    assert_eq!(
        get(&mut cls, 40000, "www.000-online-casino.com"),
        Verdict::Drop(DropReason::WebBlock)
    );
    assert_eq!(
        get(&mut cls, 40001, "05webinvite.com"),
        Verdict::Drop(DropReason::WebBlock)
    );
    assert!(get(&mut cls, 40002, "web.test").is_forward());

    // A damaged file is refused with its reason; the loaded filter is untouched.
    let mut bad = bytes.clone();
    bad[bytes.len() / 2] ^= 0xff;
    let broken = dir.join("broken.mmcat");
    std::fs::write(&broken, &bad).unwrap();
    let e = open_db(&broken).unwrap_err().to_string();
    assert!(e.contains("checksum") && e.contains("broken.mmcat"), "{e}");
    assert_eq!(
        get(&mut cls, 40003, "0-casino.info"),
        Verdict::Drop(DropReason::WebBlock)
    );
    std::fs::remove_dir_all(&dir).unwrap();
}
