//! `threshold.config` beside the rules (suppress, rate_filter, event_filter) and the drop
//! of a rule on packet properties alone, which drops the packet, not the flow.

use mimamori_pipelines::firewall::CidrSet;
use mimamori_pipelines::inspect::RuleBook;
use mimamori_pipelines::policy::IpsMode;
use mimamori_pipelines::wire::tcp::flags::ACK;
use std::sync::Arc;

mod ips_common;
use ips_common::*;

/// A rules folder with its `threshold.config`.
fn book_with(rules: &str, thresholds: &str) -> Arc<RuleBook> {
    static N: std::sync::atomic::AtomicU32 = std::sync::atomic::AtomicU32::new(0);
    let dir = std::env::temp_dir().join(format!(
        "mimamori-thresholds-{}-{}",
        std::process::id(),
        N.fetch_add(1, std::sync::atomic::Ordering::Relaxed)
    ));
    std::fs::create_dir_all(&dir).unwrap();
    std::fs::write(dir.join("test.rules"), rules).unwrap();
    std::fs::write(dir.join("threshold.config"), thresholds).unwrap();
    let b = RuleBook::load(&dir, &CidrSet::default());
    let _ = std::fs::remove_dir_all(&dir);
    Arc::new(b.unwrap())
}

const EMPTY_ACK: &str =
    "drop tcp any any -> any any (msg:\"empty segment\"; dsize:0; sid:1000001; rev:1;)\n";

/// A connection with `n` empty ACKs from the client after the handshake.
fn empty_acks(n: usize) -> Vec<(Vec<u8>, mimamori_pipelines::Side)> {
    let mut c = Conn::new(false);
    let mut f = c.handshake();
    for _ in 0..n {
        f.push((
            c.frame(true, ACK, c.cseq, b""),
            mimamori_pipelines::Side::Lan,
        ));
    }
    f
}

#[test]
fn a_packet_rule_drops_each_packet_and_the_flow_goes_on() {
    let mut ips = ips_with(book_with(EMPTY_ACK, ""), IpsMode::Ips);
    let (verdicts, sids) = run(&mut ips, &empty_acks(4));
    // The handshake's SYN, SYN-ACK and ACK carry no data either: every one matches.
    assert_eq!(sids.len(), 7, "{sids:?}");
    assert!(verdicts.iter().all(|v| *v == DROP), "{verdicts:?}");
}

#[test]
fn a_suppressed_rule_still_drops_without_alerting() {
    let client = "198.18.0.7"; // Endpoint::client(7, ..)
    let t = format!("suppress gen_id 1, sig_id 1000001, track by_src, ip {client}\n");
    let mut ips = ips_with(book_with(EMPTY_ACK, &t), IpsMode::Ips);
    let (verdicts, sids) = run(&mut ips, &empty_acks(4));
    // Only the server's SYN-ACK alerts; every packet is still dropped.
    assert_eq!(sids, vec![1000001], "{sids:?}");
    assert!(verdicts.iter().all(|v| *v == DROP), "{verdicts:?}");
    // Without track: no alert at all.
    let mut ips = ips_with(
        book_with(EMPTY_ACK, "suppress gen_id 1, sig_id 1000001\n"),
        IpsMode::Ips,
    );
    let (_, sids) = run(&mut ips, &empty_acks(2));
    assert!(sids.is_empty(), "{sids:?}");
}

#[test]
fn a_rate_filter_changes_the_action_past_its_count() {
    let t = "rate_filter gen_id 1, sig_id 1000001, track by_src, count 1, seconds 60, new_action alert, timeout 1000\n";
    let mut ips = ips_with(book_with(EMPTY_ACK, t), IpsMode::Ips);
    let (verdicts, sids) = run(&mut ips, &empty_acks(3));
    assert_eq!(sids.len(), 6, "every match alerts");
    // The first match from each side drops; after that the rule only alerts.
    let drops: Vec<usize> = (0..verdicts.len())
        .filter(|&i| verdicts[i] == DROP)
        .collect();
    assert_eq!(drops, vec![0, 1], "{verdicts:?}");
}

#[test]
fn an_event_filter_limits_alerts_and_a_bad_file_names_its_line() {
    let t = "event_filter gen_id 1, sig_id 0, type limit, track by_rule, count 2, seconds 600\n";
    let mut ips = ips_with(book_with(EMPTY_ACK, t), IpsMode::Ids);
    let (_, sids) = run(&mut ips, &empty_acks(5));
    assert_eq!(sids.len(), 2, "{sids:?}");
    let dir = std::env::temp_dir().join(format!("mimamori-thresholds-bad-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    std::fs::write(dir.join("a.rules"), EMPTY_ACK).unwrap();
    std::fs::write(
        dir.join("threshold.config"),
        "\nsuppress gen_id 1, sig_id one\n",
    )
    .unwrap();
    let err = RuleBook::load(&dir, &CidrSet::default()).err().unwrap();
    let _ = std::fs::remove_dir_all(&dir);
    assert!(err.contains("threshold.config: line 2: sig_id"), "{err}");
}

#[test]
fn a_rule_of_the_header_alone_still_drops_the_flow() {
    let rules = "drop tcp any any -> any any (msg:\"all tcp\"; sid:5; rev:1;)\n";
    let mut ips = ips_with(book_with(rules, ""), IpsMode::Ips);
    let (verdicts, sids) = run(&mut ips, &empty_acks(3));
    assert_eq!(sids, vec![5], "one alert, then the flow is blocked");
    assert!(verdicts.iter().all(|v| *v == DROP), "{verdicts:?}");
}
