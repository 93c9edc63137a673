//! The stateful zone firewall, end to end through the classify stage.

use mimamori_pipelines::event::EventKind;
use mimamori_pipelines::flow::{EndReason, FlowVerdict};
use mimamori_pipelines::synth::{self, Endpoint};
use mimamori_pipelines::wire::emit::Transport;
use mimamori_pipelines::wire::emit::transport_checksum_ok;
use mimamori_pipelines::wire::tcp::flags::{ACK, FIN, RST, SYN};
use mimamori_pipelines::{Classifier, DropReason, ForwardReason, Policy, Side, Verdict, parse};
use std::sync::Arc;

const T0: u64 = 1_795_708_800_000_000_000;
const SEC: u64 = 1_000_000_000;

/// The embedded default policy (LAN→WAN allowed, telnet rejected, SMB denied and logged).
fn default_classifier() -> Classifier {
    Classifier::new(Arc::new(Policy::default()))
}

/// A policy made of the synthesizer's LAN prefixes plus `extra`.
fn classifier(extra: &str) -> Classifier {
    let text = format!("[sides]\nlan_subnets = [\"198.18.0.0/16\", \"2001:db8:1::/48\"]\n{extra}");
    Classifier::new(Arc::new(Policy::from_toml("test.toml", &text).unwrap()))
}

fn tcp(from: &Endpoint, to: &Endpoint, flags: u8, seq: u32, ack: u32, payload: &[u8]) -> Vec<u8> {
    synth::tcp_frame(from, to, flags, seq, ack, payload)
}

fn udp(from: &Endpoint, to: &Endpoint, payload: &[u8]) -> Vec<u8> {
    synth::udp_frame(from, to, payload)
}

const FWD: Verdict = Verdict::Forward(ForwardReason::Flow);
const DENY: Verdict = Verdict::Drop(DropReason::FirewallDeny);

#[test]
fn lan_opens_wan_replies_both_families() {
    for v6 in [false, true] {
        let mut c = classifier("");
        let pc = Endpoint::client(20, v6, 50000);
        let web = Endpoint::server(80, v6, 443);
        assert_eq!(
            c.process(&tcp(&pc, &web, SYN, 1, 0, b""), Side::Lan, T0),
            FWD
        );
        assert_eq!(
            c.process(&tcp(&web, &pc, SYN | ACK, 9, 2, b""), Side::Wan, T0 + 1),
            FWD
        );
        assert_eq!(
            c.process(&tcp(&pc, &web, ACK, 2, 10, b"hello"), Side::Lan, T0 + 2),
            FWD
        );
        assert_eq!(
            c.process(&tcp(&web, &pc, ACK, 10, 7, b"world"), Side::Wan, T0 + 3),
            FWD
        );
        assert_eq!(c.flows().len(), 1, "both directions share one flow");
        assert_eq!(c.stats.tcp_invalid, 0);
    }
}

#[test]
fn wan_cannot_open_unless_a_rule_allows() {
    let mut c = classifier("");
    let scanner = Endpoint::server(9, false, 61000);
    let pc = Endpoint::client(20, false, 22);
    assert_eq!(
        c.process(&tcp(&scanner, &pc, SYN, 1, 0, b""), Side::Wan, T0),
        DENY
    );
    assert_eq!(
        c.process(&tcp(&scanner, &pc, SYN, 1, 0, b""), Side::Wan, T0 + SEC),
        DENY,
        "cached in the flow"
    );
    assert_eq!(
        c.report().rule_hits.last().unwrap().1,
        1,
        "the WAN default decided once"
    );
    // A mid-stream ACK from the WAN is a new WAN flow too: denied.
    assert_eq!(
        c.process(
            &tcp(&scanner.with_port(61001), &pc, ACK, 1, 1, b""),
            Side::Wan,
            T0
        ),
        DENY
    );

    let mut c = classifier(
        r#"
[[firewall.rule]]
name = "publish the web server"
from = "wan"
dst = ["198.18.0.20/32"]
proto = "tcp"
dst_ports = ["80", "8000-8080"]
action = "allow"
"#,
    );
    let web = Endpoint::client(20, false, 8080);
    assert_eq!(
        c.process(&tcp(&scanner, &web, SYN, 1, 0, b""), Side::Wan, T0),
        FWD
    );
    assert_eq!(
        c.process(
            &tcp(&scanner, &web.with_port(22), SYN, 1, 0, b""),
            Side::Wan,
            T0
        ),
        DENY
    );
    let other = Endpoint::client(21, false, 8080);
    assert_eq!(
        c.process(&tcp(&scanner, &other, SYN, 1, 0, b""), Side::Wan, T0),
        DENY
    );
    let r = c.report();
    assert!(
        r.rule_hits
            .iter()
            .any(|(n, h)| n == "publish the web server" && *h == 1)
    );
}

#[test]
fn reject_answers_tcp_with_rst_and_udp_with_unreachable() {
    let mut c = default_classifier();
    let pc = Endpoint::client(20, false, 50001);
    let telnet = Endpoint::server(5, false, 23);
    let syn = tcp(&pc, &telnet, SYN, 1000, 0, b"");
    assert_eq!(
        c.process(&syn, Side::Lan, T0),
        Verdict::Drop(DropReason::FirewallReject)
    );
    let (rst, side) = c.injects.iter().next().expect("an answer");
    assert_eq!(
        side,
        Side::Lan,
        "sent back out of the port the packet came in on"
    );
    let m = parse(rst).unwrap();
    assert_eq!(
        (m.src, m.dst, m.src_port, m.dst_port),
        (telnet.ip, pc.ip, 23, 50001)
    );
    assert_eq!((m.tcp_flags, m.tcp_ack, m.tcp_seq), (RST | ACK, 1001, 0));
    assert!(transport_checksum_ok(rst, &m));
    c.injects.clear();

    // A RST is never answered.
    assert_eq!(
        c.process(&tcp(&pc, &telnet, RST, 1, 0, b""), Side::Lan, T0),
        Verdict::Drop(DropReason::FirewallReject)
    );
    assert!(c.injects.is_empty());

    let mut c = classifier(
        r#"
[[firewall.rule]]
name = "no outbound syslog"
from = "lan"
proto = "udp"
dst_ports = [514]
action = "reject"
"#,
    );
    for v6 in [false, true] {
        c.injects.clear();
        let host = Endpoint::client(30, v6, 40000);
        let syslog = Endpoint::server(6, v6, 514);
        let dgram = udp(&host, &syslog, b"<13>hello");
        assert_eq!(
            c.process(&dgram, Side::Lan, T0),
            Verdict::Drop(DropReason::FirewallReject)
        );
        let (icmp, _) = c.injects.iter().next().expect("an unreachable");
        let m = parse(icmp).unwrap();
        assert_eq!((m.src, m.dst), (syslog.ip, host.ip));
        if v6 {
            assert_eq!((m.proto, m.icmp_type, m.icmp_code), (58, 1, 4));
        } else {
            assert_eq!((m.proto, m.icmp_type, m.icmp_code), (1, 3, 3));
        }
        assert!(transport_checksum_ok(icmp, &m));
        let quoted =
            mimamori_pipelines::packet::parse_quoted(&icmp[usize::from(m.payload_offset)..], v6)
                .unwrap();
        assert_eq!(
            (quoted.src, quoted.dst_port),
            (host.ip, 514),
            "quotes the offending packet"
        );
    }
}

#[test]
fn non_ip_and_neighbour_discovery_pass() {
    let mut c = classifier("");
    let mut arp = vec![0xff; 6];
    arp.extend_from_slice(&[2, 0, 0, 0, 0, 1, 0x08, 0x06, 0, 1, 8, 0, 6, 4, 0, 1]);
    arp.extend_from_slice(&[0; 20]);
    assert_eq!(
        c.process(&arp, Side::Wan, T0),
        Verdict::Forward(ForwardReason::NonIp)
    );
    let router = Endpoint::server(1, true, 0);
    let pc = Endpoint::client(20, true, 0);
    let ns = synth::frame(
        &router,
        &pc,
        0,
        &Transport::Icmp {
            icmp_type: 135,
            code: 0,
            rest: [0; 4],
        },
        &[0; 16],
    );
    assert_eq!(
        c.process(&ns, Side::Wan, T0),
        Verdict::Forward(ForwardReason::LinkLocal)
    );
    assert_eq!(c.flows().len(), 0);
}

#[test]
fn icmp_errors_follow_their_flow() {
    let mut c = classifier("");
    let pc = Endpoint::client(20, false, 50002);
    let web = Endpoint::server(80, false, 443);
    let syn = tcp(&pc, &web, SYN, 1, 0, &[0; 1400]);
    assert_eq!(c.process(&syn, Side::Lan, T0), FWD);
    // A router on the path says the packet was too big: quotes our SYN's IP header + 8 bytes.
    let router = Endpoint::server(2, false, 0);
    let quote = &syn[14..14 + 28];
    let frag_needed = synth::frame(
        &router,
        &pc,
        0,
        &Transport::Icmp {
            icmp_type: 3,
            code: 4,
            rest: [0, 0, 0x05, 0x78],
        },
        quote,
    );
    assert_eq!(
        c.process(&frag_needed, Side::Wan, T0 + 1),
        Verdict::Forward(ForwardReason::Related)
    );
    // The same error about a flow that does not exist is a new WAN flow: denied.
    let mut fake = syn.clone();
    fake[14 + 20..14 + 22].copy_from_slice(&1234u16.to_be_bytes());
    let unrelated = synth::frame(
        &router,
        &pc,
        0,
        &Transport::Icmp {
            icmp_type: 3,
            code: 4,
            rest: [0; 4],
        },
        &fake[14..14 + 28],
    );
    assert_eq!(c.process(&unrelated, Side::Wan, T0 + 1), DENY);

    // Echo request and reply are one flow.
    let ping = |from: &Endpoint, to: &Endpoint, t: u8| {
        synth::frame(
            from,
            to,
            0,
            &Transport::Icmp {
                icmp_type: t,
                code: 0,
                rest: [0x12, 0x34, 0, 1],
            },
            b"ping",
        )
    };
    let mut c = classifier("");
    assert_eq!(c.process(&ping(&pc, &web, 8), Side::Lan, T0), FWD);
    assert_eq!(c.process(&ping(&web, &pc, 0), Side::Wan, T0), FWD);
    assert_eq!(
        c.process(&ping(&web, &pc, 8), Side::Wan, T0),
        DENY,
        "a ping from outside is not a reply"
    );
}

#[test]
fn tcp_states_close_and_time_out() {
    let text =
        "[flows.timeouts]\ntcp_time_wait = 2\ntcp_established = 100\n[events]\nflow = \"all\"\n";
    let mut c = classifier(text);
    let pc = Endpoint::client(20, false, 50003);
    let web = Endpoint::server(80, false, 80);
    let steps: &[(bool, u8)] = &[
        (true, SYN),
        (false, SYN | ACK),
        (true, ACK),
        (true, FIN | ACK),
        (false, FIN | ACK),
        (true, ACK),
    ];
    for (i, &(from_pc, flags)) in steps.iter().enumerate() {
        let (a, b, side) = if from_pc {
            (&pc, &web, Side::Lan)
        } else {
            (&web, &pc, Side::Wan)
        };
        assert_eq!(
            c.process(&tcp(a, b, flags, 1, 1, b""), side, T0 + i as u64),
            FWD
        );
    }
    assert_eq!(c.stats.tcp_invalid, 0);
    // TIME_WAIT lasts 2 s: still there after 1 s, gone after 3 s.
    for _ in 0..10 {
        c.tick(T0 + SEC);
    }
    assert_eq!(c.flows().len(), 1);
    for _ in 0..10 {
        c.tick(T0 + 3 * SEC);
    }
    assert_eq!(c.flows().len(), 0);
    let ends: Vec<_> = c
        .events
        .drain()
        .filter_map(|e| match e.kind {
            EventKind::FlowEnd { reason } => Some((reason, e.pkts, e.tcp)),
            _ => None,
        })
        .collect();
    assert_eq!(ends.len(), 1);
    assert_eq!(ends[0].0, EndReason::Timeout);
    assert_eq!(ends[0].1, [4, 2], "to server / to client packet counts");
}

#[test]
fn out_of_state_tcp_is_counted_and_optionally_dropped() {
    let pc = Endpoint::client(20, false, 50004);
    let web = Endpoint::server(80, false, 80);
    for drop in [false, true] {
        let mut c = classifier(&format!("[flows]\ntcp_drop_invalid = {drop}\n"));
        assert_eq!(
            c.process(&tcp(&pc, &web, SYN, 1, 0, b""), Side::Lan, T0),
            FWD
        );
        // Data from the server before its SYN-ACK.
        let v = c.process(&tcp(&web, &pc, ACK, 5, 2, b"early"), Side::Wan, T0 + 1);
        assert_eq!(c.stats.tcp_invalid, 1);
        assert_eq!(
            v,
            if drop {
                Verdict::Drop(DropReason::TcpInvalid)
            } else {
                FWD
            }
        );
    }
    // Without loose pickup, only a SYN opens a flow; a RST never does.
    let mut c = classifier("[flows]\ntcp_loose_pickup = false\n");
    assert_eq!(
        c.process(&tcp(&pc, &web, ACK, 1, 1, b""), Side::Lan, T0),
        Verdict::Drop(DropReason::TcpNoFlow)
    );
    assert_eq!(
        c.process(&tcp(&pc, &web, RST, 1, 1, b""), Side::Lan, T0),
        Verdict::Drop(DropReason::TcpNoFlow)
    );
}

#[test]
fn full_table_policies_are_counted() {
    let web = Endpoint::server(80, false, 80);
    let mut c = classifier("[flows]\ncapacity = 4\non_full = \"drop-new\"\n");
    for n in 0..6u16 {
        let pc = Endpoint::client(20, false, 40000 + n);
        let v = c.process(&tcp(&pc, &web, SYN, 1, 0, b""), Side::Lan, T0);
        assert_eq!(
            v,
            if n < 4 {
                FWD
            } else {
                Verdict::Drop(DropReason::FlowTableFull)
            }
        );
    }
    assert_eq!(c.report().flows.refused, 2);

    let mut c = classifier("[flows]\ncapacity = 4\non_full = \"evict-oldest\"\n");
    for n in 0..6u16 {
        let pc = Endpoint::client(20, false, 40000 + n);
        assert_eq!(
            c.process(
                &tcp(&pc, &web, SYN, 1, 0, b""),
                Side::Lan,
                T0 + u64::from(n)
            ),
            FWD
        );
    }
    let r = c.report();
    assert_eq!((r.flows.evicted, r.flows_live), (2, 4));
    let forced = c
        .events
        .drain()
        .filter(|e| {
            e.kind
                == EventKind::FlowEnd {
                    reason: EndReason::Forced,
                }
        })
        .count();
    assert_eq!(forced, 2, "evicted flows are logged as forced ends");
}

#[test]
fn vlans_separate_flows() {
    let mut c = classifier("");
    let pc = Endpoint::client(20, false, 50005);
    let web = Endpoint::server(80, false, 80);
    let syn = |vlan| {
        synth::frame(
            &pc,
            &web,
            vlan,
            &Transport::Tcp {
                src_port: pc.port,
                dst_port: 80,
                seq: 1,
                ack: 0,
                flags: SYN,
                window: 9,
                options: &[],
            },
            b"",
        )
    };
    let synack = |vlan| {
        synth::frame(
            &web,
            &pc,
            vlan,
            &Transport::Tcp {
                src_port: 80,
                dst_port: pc.port,
                seq: 1,
                ack: 2,
                flags: SYN | ACK,
                window: 9,
                options: &[],
            },
            b"",
        )
    };
    assert_eq!(c.process(&syn(10), Side::Lan, T0), FWD);
    assert_eq!(c.process(&synack(10), Side::Wan, T0), FWD);
    assert_eq!(
        c.process(&synack(20), Side::Wan, T0),
        DENY,
        "a reply on another VLAN is not a reply"
    );
}

#[test]
fn refused_flow_does_not_block_the_other_side() {
    let mut c = classifier("");
    let pc = Endpoint::client(20, false, 3478);
    let peer = Endpoint::server(99, false, 3478);
    assert_eq!(c.process(&udp(&peer, &pc, b"punch"), Side::Wan, T0), DENY);
    assert_eq!(
        c.process(&udp(&pc, &peer, b"punch"), Side::Lan, T0 + 1),
        FWD,
        "the LAN may open the same tuple"
    );
    assert_eq!(
        c.process(&udp(&peer, &pc, b"reply"), Side::Wan, T0 + 2),
        FWD
    );
}

#[test]
fn logged_rules_write_alerts_with_the_rule() {
    let mut c = default_classifier();
    let pc = Endpoint::client(20, false, 50006);
    let smb = Endpoint::server(5, false, 445);
    assert_eq!(
        c.process(&tcp(&pc, &smb, SYN, 1, 0, b""), Side::Lan, T0),
        DENY
    );
    let alerts: Vec<_> = c
        .events
        .drain()
        .filter(|e| matches!(e.kind, EventKind::Firewall { .. }))
        .collect();
    assert_eq!(alerts.len(), 1);
    let eve = alerts[0].to_eve(
        |s| s.name().into(),
        |i| {
            c.policy()
                .firewall
                .rules
                .get(i as usize)
                .map(|r| r.name.clone())
        },
        None,
    );
    let json = serde_json::to_value(&eve).unwrap();
    assert_eq!(json["event_type"], "alert");
    assert_eq!(json["alert"]["action"], "blocked");
    assert_eq!(json["alert"]["signature"], "firewall: deny outbound SMB");
    assert_eq!(json["alert"]["signature_id"], 2);
    assert_eq!(json["src_ip"], "198.18.0.20");
    assert_eq!(json["dest_port"], 445);
    assert_eq!(json["proto"], "TCP");
    assert_eq!(json["in_iface"], "lan");
    assert!(matches!(
        alerts[0].kind,
        EventKind::Firewall {
            verdict: FlowVerdict::Deny,
            rule: 1
        }
    ));
}

#[test]
fn dhcp_replies_from_the_router_pass() {
    let mut c = classifier("");
    let router = Endpoint::server(1, false, 67);
    let pc = Endpoint::client(20, false, 68);
    assert_eq!(c.process(&udp(&router, &pc, &[2; 240]), Side::Wan, T0), FWD);
    let mut c = classifier("[firewall]\nallow_dhcp = false\n");
    assert_eq!(
        c.process(&udp(&router, &pc, &[2; 240]), Side::Wan, T0),
        DENY
    );
}

#[test]
fn burst_and_single_packet_paths_agree() {
    let pkts = synth::generate(&synth::Config {
        sessions: 300,
        ..synth::Config::default()
    });
    let policy = Arc::new(Policy::default());
    let sides = policy.sides.clone();
    let mut one = Classifier::new(policy.clone());
    let singles: Vec<_> = pkts
        .iter()
        .map(|p| one.process_with(&p.frame, p.ts_ns, |m| sides.side_of(m)))
        .collect();
    let mut many = Classifier::new(policy);
    let mut bursts = Vec::new();
    for chunk in pkts.chunks(32) {
        let frames: Vec<&[u8]> = chunk.iter().map(|p| p.frame.as_slice()).collect();
        let mut v = vec![Verdict::Forward(ForwardReason::NonIp); frames.len()];
        many.process_burst(&frames, chunk[0].ts_ns, |_, m| sides.side_of(m), &mut v);
        bursts.extend(v);
    }
    assert_eq!(singles, bursts);
    assert!(
        singles.iter().any(|v| !v.is_forward()),
        "the mix has blocked probes"
    );
    assert_eq!(one.report().flows.created, many.report().flows.created);
}

#[test]
fn a_flow_idle_through_many_policy_swaps_is_still_re_decided() {
    // 256 swaps would wrap an 8-bit generation back to the flow's own and skip it.
    let mut c = classifier("");
    let pc = Endpoint::client(20, false, 50000);
    let dns = Endpoint::server(53, false, 5353);
    assert_eq!(c.process(&udp(&pc, &dns, b"q"), Side::Lan, T0), FWD);
    let text = "[sides]\nlan_subnets = [\"198.18.0.0/16\"]\n[[firewall.rule]]\nname = \"no udp out\"\nfrom = \"lan\"\nproto = \"udp\"\naction = \"deny\"\n";
    let deny = Arc::new(Policy::from_toml("deny.toml", text).unwrap());
    for v in 1..=256 {
        c.set_policy(deny.clone(), None, None, v);
    }
    assert_eq!(c.process(&udp(&pc, &dns, b"q"), Side::Lan, T0 + SEC), DENY);
}

#[test]
fn a_connection_that_outlived_a_restart_is_picked_up_from_the_lan_side() {
    // The table is empty (the gateway restarted) while a download runs: the server's
    // segment comes first and is refused as unsolicited; the client's next ACK picks the
    // connection up as the LAN's, and the server's retransmission then passes.
    let mut c = classifier("");
    let pc = Endpoint::client(20, false, 50100);
    let web = Endpoint::server(80, false, 443);
    let data = tcp(&web, &pc, ACK, 70_000, 5_000, &[7u8; 1400]);
    assert_eq!(c.process(&data, Side::Wan, T0), DENY);
    assert_eq!(
        c.process(&tcp(&pc, &web, ACK, 5_000, 70_000, b""), Side::Lan, T0 + 1),
        FWD
    );
    assert_eq!(c.process(&data, Side::Wan, T0 + 2), FWD);
    assert_eq!(c.flows().len(), 1);
    // A RST from the LAN host (it knows no such connection) opens nothing.
    let mut c = classifier("");
    assert_eq!(c.process(&data, Side::Wan, T0), DENY);
    let rst = tcp(&pc, &web, RST, 5_000, 0, b"");
    assert!(!c.process(&rst, Side::Lan, T0 + 1).is_forward());
    assert_eq!(c.process(&data, Side::Wan, T0 + 2), DENY);
}

#[test]
fn a_syn_ack_picked_up_makes_its_receiver_the_initiator_only_where_both_ways_are_allowed() {
    let pc = Endpoint::client(20, false, 50200);
    let web = Endpoint::server(80, false, 443);
    let synack = tcp(&web, &pc, SYN | ACK, 9, 2, b"");
    let hello = tcp(&pc, &web, ACK, 2, 10, b"hello");
    // Default: WAN may not open, so the unsolicited SYN-ACK is refused.
    let mut c = classifier("");
    assert_eq!(c.process(&synack, Side::Wan, T0), DENY);
    // Both ways allowed: the flow is the LAN client's.
    let mut c = classifier("[firewall]\ndefault_wan_to_lan = \"allow\"\n");
    assert_eq!(c.process(&synack, Side::Wan, T0), FWD);
    assert_eq!(c.process(&hello, Side::Lan, T0 + 1), FWD);
    let (key, _) = mimamori_pipelines::flow::FlowKey::from_meta(&parse(&hello).unwrap());
    let t = c.flows();
    let f = t.get(t.find(&key, t.hash(&key)).unwrap());
    assert_eq!((f.initiator_side, f.pkts), (Side::Lan, [1, 1]));
}
