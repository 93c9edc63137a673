//! The detection engine: content semantics, buffers, headers, what it refuses.

use mimamori_signatures::engine::{Engine, Inspection, Scratch};
use mimamori_signatures::rule::load::Loaded;
use mimamori_signatures::rule::{Buffer, RuleSet, Vars, load_files, parse_rule};

fn engine(rules: &[&str]) -> (Engine, mimamori_signatures::engine::EngineReport) {
    let set = RuleSet {
        rules: rules
            .iter()
            .map(|r| Loaded {
                rule: parse_rule(r, &Vars::default()).unwrap(),
                file: "t".into(),
                line: 1,
            })
            .collect(),
    };
    Engine::build(&set)
}

const LAN: u128 = 0xffff_0000_0000 | 0xc0a8_0105; // 192.168.1.5 (in HOME_NET)
const WAN: u128 = 0xffff_0000_0000 | 0xc613_0050; // 198.19.0.80

/// The flow's protocol the test buffers imply: TLS for TLS fields, else HTTP (port 80).
fn app_of(bufs: &[(Buffer, &[u8])]) -> &'static str {
    let tls = |b: &Buffer| {
        let n = format!("{b:?}");
        n.starts_with("Tls") || n.starts_with("Ja3")
    };
    if bufs.iter().any(|(b, _)| tls(b)) {
        "tls"
    } else {
        "http"
    }
}

fn sids(e: &Engine, bufs: &[(Buffer, &[u8])], to_server: bool) -> Vec<u32> {
    sids_on(e, bufs, to_server, Some(app_of(bufs)))
}

fn sids_on(
    e: &Engine,
    bufs: &[(Buffer, &[u8])],
    to_server: bool,
    app_proto: Option<&'static str>,
) -> Vec<u32> {
    let (src, dst, sp, dp) = if to_server {
        (LAN, WAN, 40000, 80)
    } else {
        (WAN, LAN, 80, 40000)
    };
    let p = Inspection {
        proto: 6,
        src,
        src_port: sp,
        dst,
        dst_port: dp,
        to_server,
        established: true,
        payload_len: bufs.first().map_or(0, |b| b.1.len()),
        tcp_flags: 0x18,
        icmp: None,
        stream_bytes: (0, 0),
        app_proto,
        buffers: bufs,
    };
    let mut out = Vec::new();
    e.inspect(&p, &mut Scratch::default(), &mut out);
    let mut s: Vec<u32> = out.iter().map(|&i| e.rules[i as usize].meta.sid).collect();
    s.sort();
    s
}

#[test]
fn relative_matches_backtrack() {
    let (e, _) = engine(&[
        r#"alert tcp any any -> any any (content:"a"; content:"b"; distance:0; within:2; sid:1;)"#,
    ]);
    assert_eq!(
        sids(&e, &[(Buffer::Packet, b"a....ab")], true),
        [1],
        "the second 'a' satisfies within"
    );
    assert!(sids(&e, &[(Buffer::Packet, b"a....a..b")], true).is_empty());
    assert!(
        sids(&e, &[(Buffer::Packet, b"ba")], true).is_empty(),
        "order matters"
    );
}

#[test]
fn modifiers() {
    let (e, _) = engine(&[
        r#"alert tcp any any -> any any (content:"GET"; depth:3; content:"admin"; nocase; sid:1;)"#,
        r#"alert tcp any any -> any any (content:"xyz"; offset:4; sid:2;)"#,
        r#"alert tcp any any -> any any (content:"abc"; startswith; content:"end"; endswith; sid:3;)"#,
        r#"alert tcp any any -> any any (content:"abc"; content:!"evil"; sid:4;)"#,
        r#"alert tcp any any -> any any (content:"abc"; isdataat:2,relative; sid:5;)"#,
        r#"alert tcp any any -> any any (content:"abc"; dsize:>10; sid:6;)"#,
    ]);
    assert_eq!(sids(&e, &[(Buffer::Packet, b"GET /ADMIN")], true), [1]);
    assert!(
        sids(&e, &[(Buffer::Packet, b" GET /admin")], true).is_empty(),
        "depth 3"
    );
    assert_eq!(
        sids(&e, &[(Buffer::Packet, b"...xyz")], true),
        Vec::<u32>::new(),
        "offset 4 starts after it"
    );
    assert_eq!(sids(&e, &[(Buffer::Packet, b"....xyz")], true), [2]);
    assert_eq!(sids(&e, &[(Buffer::Packet, b"abc..end")], true), [3, 4, 5]);
    assert_eq!(
        sids(&e, &[(Buffer::Packet, b"abc evil end!")], true),
        [5, 6]
    );
}

#[test]
fn buffers_headers_and_flow() {
    let (e, _) = engine(&[
        r#"alert http $HOME_NET any -> $EXTERNAL_NET any (msg:"uri"; flow:established,to_server; http.uri; content:"/gate.php"; startswith; sid:10;)"#,
        r#"alert tcp any any -> any any (msg:"legacy"; content:"gate"; http_uri; sid:11;)"#,
        r#"alert tls any any -> any any (tls.sni; content:"evil.test"; endswith; sid:12;)"#,
        r#"alert http $EXTERNAL_NET any -> $HOME_NET any (flow:to_client; http.stat_code; content:"200"; sid:13;)"#,
        r#"alert tcp any any -> any any (http.host; dotprefix; content:".bad.test"; endswith; sid:14;)"#,
    ]);
    let req: &[(Buffer, &[u8])] = &[
        (Buffer::Packet, b"GET /gate.php HTTP/1.1"),
        (Buffer::HttpUri, b"/gate.php?id=1"),
        (Buffer::HttpHost, b"bad.test"),
    ];
    assert_eq!(sids(&e, req, true), [10, 11, 14]);
    assert!(
        sids(&e, &[(Buffer::Packet, b"/gate.php")], true).is_empty(),
        "no HTTP buffers, no match"
    );
    assert_eq!(sids(&e, &[(Buffer::TlsSni, b"www.evil.test")], true), [12]);
    assert_eq!(sids(&e, &[(Buffer::HttpStatCode, b"200")], false), [13]);
    assert!(
        sids(&e, &[(Buffer::HttpStatCode, b"200")], true).is_empty(),
        "direction and addresses"
    );
}

#[test]
fn pcre_relative_lookaround_and_backreferences() {
    let (e, rep) = engine(&[
        r#"alert tcp any any -> any any (content:"id="; pcre:"/^[0-9a-f]{8}/R"; sid:20;)"#,
        r#"alert tcp any any -> any any (pcre:"/user=(?!admin)[a-z]+/"; sid:21;)"#,
        r#"alert tcp any any -> any any (content:"a"; flowbits:isset,x; sid:22;)"#,
        r#"alert tcp any any -> any any (content:"a"; byte_test:1,>,2,0; sid:23;)"#,
        r#"alert tcp any any -> any any (content:"<"; pcre:"/<([a-z]+)>[^<]*<\/\1>/i"; sid:24;)"#,
        r#"alert tcp any any -> any any (pcre:"/(?<=x)(/"; sid:25;)"#,
    ]);
    assert_eq!(
        sids(&e, &[(Buffer::Packet, b"x id=deadbeef")], true),
        [20, 23],
        "byte_test: x > 2"
    );
    assert_eq!(
        sids(&e, &[(Buffer::Packet, b"x id= deadbeef")], true),
        [23],
        "the pcre needs hex right after id="
    );
    // Look-around and backreferences run on PCRE2, over raw bytes.
    assert_eq!(sids(&e, &[(Buffer::Packet, b"user=guest")], true), [21]);
    assert_eq!(
        sids(&e, &[(Buffer::Packet, b"user=admin")], true),
        [23],
        "23: byte_test"
    );
    assert_eq!(
        sids(&e, &[(Buffer::Packet, b"\xff<B>bold</b>\xfe")], true),
        [24]
    );
    assert!(sids(&e, &[(Buffer::Packet, b"<b>bold</i>")], true).is_empty());
    assert_eq!(rep.compiled, 5, "{:?}", rep.skipped_by_reason);
    assert!(
        rep.skipped_by_reason
            .keys()
            .any(|k| k.contains("PCRE2 cannot compile")),
        "{:?}",
        rep.skipped_by_reason
    );
}

#[test]
fn backtracking_is_bounded() {
    let (e, _) = engine(&[
        r#"alert tcp any any -> any any (content:"a"; content:"a"; distance:0; content:"a"; distance:0; content:"b"; distance:0; sid:30;)"#,
    ]);
    let hostile = vec![b'a'; 4000];
    assert!(sids(&e, &[(Buffer::Packet, &hostile)], true).is_empty());
}

#[test]
fn et_open_compiles() {
    let dir = std::env::var_os("MIMAMORI_DATA")
        .map(std::path::PathBuf::from)
        .unwrap_or_else(|| {
            std::path::PathBuf::from(concat!(env!("CARGO_MANIFEST_DIR"), "/../../shared/data"))
        })
        .join("rules-et-open");
    if !dir.is_dir() {
        eprintln!("skipped: {} not found", dir.display());
        return;
    }
    let (set, rep) = load_files(&[dir.as_path()], &Vars::default()).unwrap();
    let t = std::time::Instant::now();
    let (engine, er) = Engine::build(&set);
    eprintln!(
        "ET Open: {} parsed, {} compiled in {:.2} s; skipped {:?}",
        rep.loaded,
        er.compiled,
        t.elapsed().as_secs_f64(),
        er.skipped_by_reason
    );
    assert_eq!(engine.rules.len(), er.compiled);
    assert!(er.compiled > rep.loaded / 2);
}

#[test]
fn et_open_report_numbers() {
    let dir = std::path::PathBuf::from(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../../shared/data/rules-et-open"
    ));
    if !dir.is_dir() {
        return;
    }
    let (set, _) = load_files(&[dir.as_path()], &Vars::default()).unwrap();
    let (_, er) = Engine::build(&set);
    eprintln!(
        "always {} prefilter patterns {}",
        er.always_checked, er.prefilter_patterns
    );
}

fn stateful(
    e: &Engine,
    payload: &[u8],
    src: u128,
    bits: &mut mimamori_signatures::engine::FlowBits,
    rates: &mut mimamori_signatures::engine::RateTable,
    now_s: u64,
) -> Vec<u32> {
    let bufs = [(Buffer::Packet, payload)];
    let p = Inspection {
        proto: 6,
        src,
        src_port: 40000,
        dst: WAN,
        dst_port: 80,
        to_server: true,
        established: true,
        payload_len: payload.len(),
        tcp_flags: 0x18,
        icmp: None,
        stream_bytes: (0, 0),
        app_proto: None,
        buffers: &bufs,
    };
    let mut out = Vec::new();
    e.inspect_stateful(
        &p,
        &mut Scratch::default(),
        bits,
        rates,
        now_s * 1_000_000_000,
        &mut out,
    );
    out.iter().map(|&i| e.rules[i as usize].meta.sid).collect()
}

#[test]
fn flowbits_set_test_and_noalert() {
    use mimamori_signatures::engine::{FlowBits, RateTable};
    let (e, report) = engine(&[
        r#"alert tcp any any -> any any (msg:"login"; content:"USER "; flowbits:set,logged_in; flowbits:noalert; sid:1;)"#,
        r#"alert tcp any any -> any any (msg:"cmd after login"; content:"RETR "; flowbits:isset,logged_in; sid:2;)"#,
        r#"alert tcp any any -> any any (msg:"cmd without login"; content:"RETR "; flowbits:isnotset,logged_in; sid:3;)"#,
        r#"alert tcp any any -> any any (msg:"logout"; content:"QUIT"; flowbits:unset,logged_in; sid:4;)"#,
        r#"alert tcp any any -> any any (msg:"either"; content:"LIST"; flowbits:isset,a|logged_in; sid:5;)"#,
        r#"alert tcp any any -> any any (msg:"both"; content:"LIST"; flowbits:isset,a&logged_in; sid:6;)"#,
    ]);
    assert_eq!(report.compiled, 6, "{:?}", report.skipped_by_reason);
    let (mut bits, mut rates) = (FlowBits::default(), RateTable::new(100));
    let mut run = |p: &[u8]| stateful(&e, p, LAN, &mut bits, &mut rates, 1);
    assert_eq!(run(b"RETR x"), [3], "not logged in yet");
    assert_eq!(
        run(b"USER bob"),
        Vec::<u32>::new(),
        "noalert sets the bit silently"
    );
    assert_eq!(run(b"RETR x"), [2]);
    assert_eq!(run(b"LIST"), [5], "OR of names; the AND needs bit a too");
    assert_eq!(run(b"QUIT"), [4]);
    assert_eq!(run(b"RETR x"), [3]);
    // Setter and tester in one packet: the setter runs first.
    let mut fresh = FlowBits::default();
    assert_eq!(
        stateful(&e, b"USER a RETR b", LAN, &mut fresh, &mut rates, 1),
        [2]
    );
}

#[test]
fn thresholds_and_detection_filter_count_per_window() {
    use mimamori_signatures::engine::{FlowBits, RateTable};
    let (e, report) = engine(&[
        r#"alert tcp any any -> any any (msg:"limit"; content:"AAA"; threshold:type limit, track by_src, count 2, seconds 60; sid:1;)"#,
        r#"alert tcp any any -> any any (msg:"every 3rd"; content:"BBB"; threshold:type threshold, track by_src, count 3, seconds 60; sid:2;)"#,
        r#"alert tcp any any -> any any (msg:"both"; content:"CCC"; threshold:type both, track by_dst, count 2, seconds 60; sid:3;)"#,
        r#"alert tcp any any -> any any (msg:"after 2"; content:"DDD"; detection_filter:track by_src, count 2, seconds 60; sid:4;)"#,
    ]);
    assert_eq!(report.compiled, 4, "{:?}", report.skipped_by_reason);
    let mut rates = RateTable::new(100);
    let mut bits = FlowBits::default();
    let mut count = |p: &[u8], src: u128, t: u64, n: usize| -> usize {
        (0..n)
            .filter(|_| !stateful(&e, p, src, &mut bits, &mut rates, t).is_empty())
            .count()
    };
    assert_eq!(
        count(b"AAA", LAN, 1, 5),
        2,
        "limit: the first 2 in the window"
    );
    assert_eq!(count(b"AAA", LAN + 1, 1, 5), 2, "tracked per source");
    assert_eq!(count(b"AAA", LAN, 100, 5), 2, "a new window");
    assert_eq!(count(b"BBB", LAN, 1, 9), 3, "threshold: every 3rd");
    assert_eq!(count(b"CCC", LAN, 1, 6), 1, "both: once when 2 is reached");
    assert_eq!(
        count(b"DDD", LAN, 1, 5),
        3,
        "detection_filter: after the first 2"
    );
}

#[test]
fn byte_test_and_byte_jump() {
    let (e, rep) = engine(&[
        // A 2-byte big-endian length after "LEN" larger than 1000.
        r#"alert tcp any any -> any any (content:"LEN"; byte_test:2,>,1000,0,relative; sid:30;)"#,
        // Little-endian, bitmask, negated equality.
        r#"alert tcp any any -> any any (content:"F"; byte_test:2,!=,0x0001,0,relative,little,bitmask 0x00ff; sid:31;)"#,
        // ASCII decimal.
        r#"alert tcp any any -> any any (content:"n="; byte_test:3,>=,500,0,relative,string,dec; sid:32;)"#,
        // Jump over a length-prefixed field, then a content right after it.
        r#"alert tcp any any -> any any (content:"TLV"; byte_jump:1,0,relative; content:"END"; within:3; sid:33;)"#,
        r#"alert tcp any any -> any any (content:"X"; byte_extract:1,0,len,relative; sid:34;)"#,
        r#"alert tcp any any -> any any (content:"X"; byte_test:1,>,2,0,dce; sid:35;)"#,
    ]);
    assert_eq!(rep.compiled, 5, "{:?}", rep.skipped_by_reason);
    let s = |p: &[u8]| sids(&e, &[(Buffer::Packet, p)], true);
    assert_eq!(s(b"LEN\x04\x00"), [30]);
    assert!(s(b"LEN\x03\xe8").is_empty(), "1000 is not > 1000");
    assert!(
        s(b"LEN\x04").is_empty(),
        "reading past the end fails the test"
    );
    assert_eq!(s(b"F\x02\x00"), [31]);
    assert!(s(b"F\x01\xff").is_empty(), "masked to 1");
    assert_eq!(s(b"n=734;"), [32]);
    assert!(s(b"n=4x4;").is_empty(), "not a number");
    assert_eq!(s(b"TLV\x03abcEND"), [33]);
    assert!(
        s(b"TLV\x02abcEND").is_empty(),
        "END is not right after the field"
    );
    assert!(s(b"TLV\xffEND").is_empty(), "a jump past the end fails");

    // byte_extract: a length used as a distance, a value compared by byte_test, a jump.
    let (e, rep) = engine(&[
        r#"alert tcp any any -> any any (content:"L"; byte_extract:1,0,n,relative; content:"END"; distance:n; within:3; sid:50;)"#,
        r#"alert tcp any any -> any any (content:"M"; byte_extract:1,0,max,relative; byte_test:1,>,max,0,relative; sid:51;)"#,
        r#"alert tcp any any -> any any (content:"S"; byte_extract:2,0,sz,relative,string,dec,multiplier 2; content:"!"; offset:sz; sid:52;)"#,
        r#"alert tcp any any -> any any (content:"Q"; content:"x"; distance:undefined; sid:53;)"#,
    ]);
    assert_eq!(rep.compiled, 3, "{:?}", rep.skipped_by_reason);
    let s = |p: &[u8]| sids(&e, &[(Buffer::Packet, p)], true);
    assert_eq!(s(b"L\x02abEND"), [50]);
    assert!(s(b"L\x01abEND").is_empty(), "END is not 1 byte on");
    assert_eq!(s(b"M\x05\x09"), [51]);
    assert!(s(b"M\x05\x05").is_empty(), "5 is not > 5");
    // "S05": sz = 5 * 2 = 10; "!" at offset >= 10.
    assert_eq!(s(b"S05xxxxxxx!"), [52]);
    assert!(s(b"S05xxxx!").is_empty());

    // 0 bytes with `string`: the whole buffer (Content-Length: 0).
    let (e, rep) = engine(&[
        r#"alert http any any -> any any (http.content_len; byte_test:0,=,0,0,string,dec; sid:40;)"#,
    ]);
    assert_eq!(rep.compiled, 1, "{:?}", rep.skipped_by_reason);
    let s = |p: &[u8]| sids(&e, &[(Buffer::HttpContentLen, p)], true);
    assert_eq!(s(b"0"), [40]);
    assert!(s(b"10").is_empty());
}

#[test]
fn tcp_flags_and_icmp_type_code() {
    use mimamori_signatures::rule::Match;
    let flags = |text: &str| {
        let r = parse_rule(
            &format!("alert tcp any any -> any any (flags:{text}; sid:1;)"),
            &Vars::default(),
        )
        .unwrap();
        match r.matches[0] {
            Match::Flags(f) => f,
            ref m => panic!("{m:?}"),
        }
    };
    let (syn, synack, psh_ack, cwr_syn) = (0x02, 0x12, 0x18, 0x82);
    assert!(flags("S").matches(syn) && !flags("S").matches(synack));
    assert!(flags("S,CE").matches(cwr_syn), "CWR/ECE masked out");
    assert!(
        flags("S,12").matches(syn),
        "old reserved-bit names in the mask"
    );
    assert!(flags("+A").matches(psh_ack) && flags("+A").matches(synack));
    assert!(flags("*FR").matches(0x04) && !flags("*FR").matches(psh_ack));
    assert!(flags("!R").matches(psh_ack) && !flags("!R").matches(0x14));
    assert!(flags("0").matches(0) && !flags("0").matches(syn));
    assert!(
        parse_rule(
            "alert tcp any any -> any any (flags:SX; sid:1;)",
            &Vars::default()
        )
        .is_err()
    );

    let (e, _) = engine(&[
        "alert icmp any any -> any any (msg:\"echo\"; itype:8; icode:0; sid:1;)",
        "alert icmp any any -> any any (msg:\"unreach\"; itype:3; icode:>0; sid:2;)",
        "alert tcp any any -> any any (msg:\"syn\"; flags:S; sid:3;)",
    ]);
    let check = |proto: u8, tcp_flags: u8, icmp: Option<(u8, u8)>| {
        let bufs = [(Buffer::Packet, &b"x"[..])];
        let p = Inspection {
            proto,
            src: LAN,
            src_port: 0,
            dst: WAN,
            dst_port: 0,
            to_server: true,
            established: false,
            payload_len: 1,
            tcp_flags,
            icmp,
            stream_bytes: (0, 0),
            app_proto: None,
            buffers: &bufs,
        };
        let mut out = Vec::new();
        e.inspect(&p, &mut Scratch::default(), &mut out);
        let mut s: Vec<u32> = out.iter().map(|&i| e.rules[i as usize].meta.sid).collect();
        s.sort();
        s
    };
    assert_eq!(check(1, 0, Some((8, 0))), vec![1]);
    assert_eq!(check(1, 0, Some((3, 3))), vec![2]);
    assert_eq!(check(1, 0, Some((3, 0))), Vec::<u32>::new());
    assert_eq!(check(6, 0x02, None), vec![3]);
    assert_eq!(check(6, 0x12, None), Vec::<u32>::new());
}

#[test]
fn base64_decode_and_base64_data() {
    let (e, rep) = engine(&[
        // Base64 after "data=": decoded, then searched.
        r#"alert tcp any any -> any any (content:"data="; base64_decode:relative; base64_data; content:"whoami"; sid:60;)"#,
        // Only 8 base64 bytes are decoded ("cmd=wh"): SECRET is beyond them.
        r#"alert tcp any any -> any any (content:"data="; base64_decode:bytes 8,relative; base64_data; content:"SECRET"; sid:61;)"#,
    ]);
    assert_eq!(rep.compiled, 2, "{:?}", rep.skipped_by_reason);
    let s = |p: &[u8]| sids(&e, &[(Buffer::Packet, p)], true);
    // "cmd=whoami&key=SECRET" in base64.
    assert_eq!(s(b"GET /?data=Y21kPXdob2FtaSZrZXk9U0VDUkVU HTTP/1.1"), [60]);
    assert_eq!(
        s(b"GET /?data=Y21kPXdob2FtaQ%3D%3D"),
        [60],
        "decoding stops at '%'"
    );
    assert!(
        s(b"GET /?data=whoami").is_empty(),
        "not the base64 of whoami"
    );
    assert!(
        parse_rule(
            r#"alert tcp any any -> any any (content:"x"; base64_data; content:"y"; sid:62;)"#,
            &Vars::default()
        )
        .is_err(),
        "base64_data needs a base64_decode"
    );
}

#[test]
fn xbits_are_kept_per_host_across_flows_and_expire() {
    use mimamori_signatures::engine::{FlowBits, RateTable};
    let (e, rep) = engine(&[
        r#"alert tcp any any -> any any (msg:"login"; content:"login"; xbits:set,seen,track ip_src,expire 10; sid:70;)"#,
        r#"alert tcp any any -> any any (msg:"exfil after login"; content:"exfil"; xbits:isset,seen,track ip_src; sid:71;)"#,
        r#"alert tcp any any -> any any (msg:"logout"; content:"logout"; xbits:unset,seen,track ip_src; sid:72;)"#,
    ]);
    assert_eq!(rep.compiled, 3, "{:?}", rep.skipped_by_reason);
    let other = LAN + 1;
    let mut rates = RateTable::new(1024);
    // Each call is its own flow (fresh flow bits): the state is the host's.
    let mut run = |payload: &[u8], src: u128, t: u64| {
        stateful(&e, payload, src, &mut FlowBits::default(), &mut rates, t)
    };
    assert_eq!(run(b"exfil", LAN, 100), Vec::<u32>::new());
    assert_eq!(run(b"login", LAN, 101), [70]);
    assert_eq!(run(b"exfil", LAN, 102), [71]);
    assert_eq!(run(b"exfil", other, 102), Vec::<u32>::new(), "another host");
    assert_eq!(
        run(b"exfil", LAN, 112),
        Vec::<u32>::new(),
        "expired after 10 s"
    );
    run(b"login", LAN, 120);
    assert_eq!(run(b"logout", LAN, 121), [72]);
    assert_eq!(run(b"exfil", LAN, 122), Vec::<u32>::new(), "unset");
    assert!(
        parse_rule(
            r#"alert tcp any any -> any any (xbits:set,x; sid:1;)"#,
            &Vars::default()
        )
        .is_err(),
        "xbits needs a track"
    );
}

#[test]
fn pcre_modifiers_switch_their_behaviour_on() {
    let (e, _) = engine(&[
        r#"alert tcp any any -> any any (pcre:"/union/i"; sid:30;)"#,
        r#"alert tcp any any -> any any (pcre:"/a.b/s"; sid:31;)"#,
        r#"alert tcp any any -> any any (pcre:"/^cmd$/m"; sid:32;)"#,
        r#"alert tcp any any -> any any (pcre:"/s e l e c t/x"; sid:33;)"#,
        r#"alert tcp any any -> any any (pcre:"/union/"; sid:34;)"#,
    ]);
    assert_eq!(sids(&e, &[(Buffer::Packet, b"1 UNION SELECT")], true), [30]);
    assert_eq!(sids(&e, &[(Buffer::Packet, b"a\nb")], true), [31]);
    assert_eq!(sids(&e, &[(Buffer::Packet, b"x\ncmd\ny")], true), [32]);
    assert_eq!(sids(&e, &[(Buffer::Packet, b"select")], true), [33]);
    assert_eq!(sids(&e, &[(Buffer::Packet, b"union")], true), [30, 34]);
}

#[test]
fn an_app_protocol_in_the_header_admits_only_flows_recognised_as_it() {
    let (e, rep) = engine(&[
        r#"alert ftp any any -> any any (msg:"ftp"; content:"RCPT"; sid:1;)"#,
        r#"alert smtp any any -> any any (msg:"smtp"; content:"RCPT"; sid:2;)"#,
        r#"alert http any any -> any any (msg:"http, packet content"; content:"RCPT"; sid:3;)"#,
        r#"alert tcp any any -> any any (msg:"any tcp"; content:"RCPT"; sid:4;)"#,
        r#"alert ip any any -> any any (msg:"any ip"; content:"RCPT"; sid:5;)"#,
        r#"alert snmp any any -> any any (msg:"not recognised"; content:"RCPT"; sid:6;)"#,
    ]);
    assert_eq!(rep.compiled, 5);
    assert_eq!(rep.refused.len(), 1);
    assert_eq!(rep.refused[0].0, 6);
    assert!(rep.refused[0].1.contains("snmp"), "{:?}", rep.refused);
    let bufs: &[(Buffer, &[u8])] = &[(Buffer::Packet, b"RCPT TO:<a@b.test>")];
    assert_eq!(sids_on(&e, bufs, true, Some("smtp")), [2, 4, 5]);
    assert_eq!(sids_on(&e, bufs, true, Some("ftp")), [1, 4, 5]);
    assert_eq!(sids_on(&e, bufs, true, Some("http")), [3, 4, 5]);
    assert_eq!(
        sids_on(&e, bufs, true, None),
        [4, 5],
        "before (or without) detection, app-protocol rules do not match"
    );
}
