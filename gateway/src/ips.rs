//! Signature inspection of forwarded traffic, shared by `replay --rules` and the live
//! data path (one [`Inspector`] per worker, the compiled rules shared).
//!
//! TCP is inspected as the receiving host sees it: each direction is reassembled
//! ([`mimamori_pipelines::stream`]) and the current *message* (a request, a response, a
//! ClientHello, however many segments it took) is inspected each time it grows, with its
//! HTTP or TLS fields parsed from the whole message. A rule alerts at most once per
//! message. IP fragments are joined first ([`mimamori_pipelines::defrag`]) and the whole
//! datagram is inspected at its last fragment.
//!
//! In IPS mode `drop` drops the packet and the rest of its flow, `reject` also sends a RST
//! both ways (or ICMP unreachable to the sender). `pass` lets the packet go without the
//! alerts of `alert` rules (drop and reject rules are applied before it). In IDS mode every
//! match only alerts.

use mimamori_pipelines::app::{self, AppProto, http, tls};
use mimamori_pipelines::defrag::{DefragStats, Defragmenter};
use mimamori_pipelines::event::{EventKind, EventRecord};
use mimamori_pipelines::firewall::{Cidr, CidrSet};
use mimamori_pipelines::flow::{FlowKey, Side};
use mimamori_pipelines::packet::{PacketMeta, V4_MAPPED, to_ip};
use mimamori_pipelines::policy::{IpsConfig, IpsMode};
use mimamori_pipelines::reject::{self, InjectQueue};
use mimamori_pipelines::stream::{HalfStream, LOOKBACK, Memcap, StreamLimits, StreamStats};
use mimamori_pipelines::web::answer;
use mimamori_pipelines::web::names::{self, NAME_MAX};
use mimamori_pipelines::wire::{ip_proto, tcp::flags};
use mimamori_pipelines::{Classifier, DropReason, Verdict};
use mimamori_signatures::engine::{
    CompiledRule, Engine, EngineReport, FlowBits, Inspection, Rate, RateTable, Scratch,
};
use mimamori_signatures::rule::options::Track;
use mimamori_signatures::rule::{Action, Buffer, LoadReport, Vars, load_files};
use serde::Serialize;
use std::collections::HashMap;
use std::io::Write;
use std::path::Path;
use std::sync::Arc;

/// Decoded HTTP bodies are inspected up to this size.
const BODY_LIMIT: usize = 64 * 1024;
/// Distinct rules remembered per message for "alert once"; past it a rule may repeat.
const ALERTED_PER_MESSAGE: usize = 32;
/// Most buffers one inspection fills.
const MAX_BUFFERS: usize = 40;
/// Idle flows are forgotten after this long.
const IDLE_NS: u64 = 300 * 1_000_000_000;

/// Bits of [`IpsFlow::app`]: an app-layer message's head and body are each inspected
/// once, the head again with the body when that completes later.
mod app_seen {
    pub const HEAD: u8 = 1;
    pub const BODY: u8 = 2;
    pub const COUNTED: u8 = 4;
}

/// Whether the app-layer fields are due for inspection now: `Some(body_too)`.
fn due(seen: &mut u8, body_complete: bool) -> Option<bool> {
    let head = *seen & app_seen::HEAD == 0;
    let body = body_complete && *seen & app_seen::BODY == 0;
    if !head && !body {
        return None;
    }
    *seen |= app_seen::HEAD | if body { app_seen::BODY } else { 0 };
    Some(body)
}

/// The body after `head` is all there (by Content-Length or the last chunk; a message with
/// neither has no body unless it is a response, which the caller handles).
fn body_complete(head: &http::Head<'_>, rest: &[u8]) -> bool {
    if head.chunked {
        rest.ends_with(b"0\r\n\r\n")
    } else {
        head.content_length.is_none_or(|cl| rest.len() as u64 >= cl)
    }
}

/// The buffers requests and responses share.
fn common_head<'a>(
    head: &http::Head<'a>,
    message: &'a [u8],
    names: &'a mut Vec<u8>,
    bufs: &mut Buffers<'a>,
) {
    names.clear();
    for n in &head.names[..head.n_names] {
        names.extend_from_slice(b"\r\n");
        names.extend_from_slice(n);
    }
    names.extend_from_slice(b"\r\n\r\n");
    bufs.push(Buffer::HttpHeaderNames, names);
    bufs.push(Buffer::HttpHeaderRaw, head.header_block);
    bufs.push(
        Buffer::HttpStart,
        &message[..head.head_len.min(message.len())],
    );
    for (b, v) in [
        (Buffer::HttpContentType, head.content_type),
        (Buffer::HttpContentLen, head.content_length_raw),
        (Buffer::HttpConnection, head.connection),
    ] {
        if let Some(v) = v {
            bufs.push(b, v);
        }
    }
}

/// Sizes of one inspector's tables.
#[derive(Clone, Copy, Debug)]
pub struct InspectorLimits {
    pub flows: usize,
    pub stream: StreamLimits,
    /// Reassembly window memory, all flows together.
    pub stream_memcap: usize,
    pub datagrams: usize,
    pub defrag_memcap: usize,
}

impl Default for InspectorLimits {
    fn default() -> Self {
        InspectorLimits {
            flows: 1 << 16,
            stream: StreamLimits::default(),
            stream_memcap: 256 << 20,
            datagrams: 4096,
            defrag_memcap: 32 << 20,
        }
    }
}

/// What happens to the packet, mildest first (several rules: the strictest wins).
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub enum IpsVerdict {
    Pass,
    Drop,
    /// Dropped, and answers were queued (RST both ways or ICMP unreachable).
    Reject,
}

/// One alert of the last inspection: the rule (index into [`Inspector::rule`]) and
/// whether the packet was blocked because of it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Alert {
    pub rule: u32,
    pub blocked: bool,
    /// The packet inspected was a datagram joined from fragments.
    pub defrag: bool,
}

#[derive(Default, Debug, Clone, Serialize)]
pub struct IdsStats {
    pub inspected: u64,
    pub alerts: u64,
    pub dropped: u64,
    pub rejected: u64,
    /// Later packets of flows a drop or reject rule ended.
    pub flow_dropped: u64,
    /// Packets a pass rule matched (their alerts suppressed).
    pub passed: u64,
    pub http_requests: u64,
    pub http_responses: u64,
    pub tls_hellos: u64,
    /// Server certificate chains read (TLS 1.2 and earlier).
    pub tls_certificates: u64,
    pub dns_messages: u64,
    /// TCP payloads the reassembler could not hold (memcap, window): inspected alone.
    pub stream_unheld: u64,
    pub flows_evicted: u64,
    pub flows_expired: u64,
    pub stream: StreamStats,
    pub defrag: DefragStats,
}

#[derive(Default)]
struct IpsFlow {
    initiator_is_lo: bool,
    replied: bool,
    dropped: bool,
    bits: FlowBits,
    /// [to_server, to_client].
    half: [HalfStream; 2],
    alerted: [Vec<u32>; 2],
    /// In-order TCP payload bytes each side has sent ([client, server]).
    sent: [u64; 2],
    /// What of the current message's app layer was inspected ([`app_seen`] bits).
    app: [u8; 2],
    last_ns: u64,
}

/// Buffers computed from a message rather than borrowed from it, reused across packets.
struct Work {
    uri: Vec<u8>,
    stat: Vec<u8>,
    body: Vec<u8>,
    dechunked: Vec<u8>,
    datagram: Vec<u8>,
    qname: Box<[u8; NAME_MAX]>,
    /// `http.header_names`: "\r\nName\r\nName\r\n\r\n".
    names: Vec<u8>,
    /// A server flight's handshake messages, joined across records.
    handshake: Vec<u8>,
    leaf: tls::CertFields,
    /// JA3 / JA3S string and hash, and the extension types behind them.
    ja3: String,
    ja3_hash: [u8; 32],
    ext_types: Vec<u8>,
}

impl Default for Work {
    fn default() -> Self {
        Work {
            uri: Vec::new(),
            stat: Vec::new(),
            body: Vec::new(),
            dechunked: Vec::new(),
            datagram: Vec::new(),
            qname: Box::new([0; NAME_MAX]),
            names: Vec::new(),
            handshake: Vec::new(),
            leaf: tls::CertFields::default(),
            ja3: String::new(),
            ja3_hash: [0; 32],
            ext_types: Vec::new(),
        }
    }
}

type FlowMap = hashbrown::HashMap<FlowKey, IpsFlow, foldhash::fast::RandomState>;

fn cidr_text(c: &Cidr) -> String {
    let v4 = c.net >> 32 == V4_MAPPED >> 32;
    let len = c.mask.count_ones() - if v4 { 96 } else { 0 };
    format!("{}/{len}", to_ip(c.net, v4))
}

/// The buffers of one inspection, on the stack.
struct Buffers<'a> {
    items: [(Buffer, &'a [u8]); MAX_BUFFERS],
    n: usize,
}

impl Default for Buffers<'_> {
    fn default() -> Self {
        Buffers {
            items: [(Buffer::Packet, &[]); MAX_BUFFERS],
            n: 0,
        }
    }
}

impl<'a> Buffers<'a> {
    fn push(&mut self, b: Buffer, v: &'a [u8]) {
        if self.n < MAX_BUFFERS {
            self.items[self.n] = (b, v);
            self.n += 1;
        }
    }
    fn as_slice(&self) -> &[(Buffer, &'a [u8])] {
        &self.items[..self.n]
    }
}

/// Rules loaded from a file and compiled, shared by every inspector.
pub struct RuleBook {
    pub engine: Engine,
    pub load: LoadReport,
    pub build: EngineReport,
}

impl RuleBook {
    /// Loads rules with `$HOME_NET` set to the policy's LAN subnets (when it has any).
    pub fn load(path: &Path, lan: &CidrSet) -> Result<RuleBook, String> {
        let mut vars = Vars::default();
        if !lan.0.is_empty() {
            let nets: Vec<String> = lan.0.iter().map(cidr_text).collect();
            vars.addr
                .insert("HOME_NET".into(), format!("[{}]", nets.join(",")));
        }
        let (set, load) = load_files(&[path], &vars)?;
        let (engine, build) = Engine::build_owned(set);
        Ok(RuleBook {
            engine,
            load,
            build,
        })
    }
}

/// The policy's `[ips]` section, resolved against the rules.
struct Settings {
    mode: IpsMode,
    disabled: Vec<bool>,
    /// Per rule: a rate the policy set for its sid.
    rate: HashMap<u32, Rate>,
}

impl Settings {
    fn new(book: &RuleBook, cfg: &IpsConfig) -> Self {
        let rules = &book.engine.rules;
        let disabled = rules
            .iter()
            .map(|r| {
                cfg.disabled_sids.contains(&r.meta.sid)
                    || r.meta
                        .classtype
                        .as_ref()
                        .is_some_and(|c| cfg.disabled_classtypes.contains(c))
            })
            .collect();
        let rate = rules
            .iter()
            .enumerate()
            .filter_map(|(i, r)| {
                let t = cfg.thresholds.iter().find(|t| t.sid == r.meta.sid)?;
                Some((
                    i as u32,
                    Rate {
                        kind: Some(mimamori_signatures::rule::options::ThresholdKind::Limit),
                        track: Track::Src,
                        count: t.count,
                        seconds: t.seconds,
                    },
                ))
            })
            .collect();
        Settings {
            mode: cfg.mode,
            disabled,
            rate,
        }
    }
}

pub struct Inspector {
    book: Arc<RuleBook>,
    settings: Settings,
    limits: InspectorLimits,
    scratch: Scratch,
    flows: FlowMap,
    mem: Memcap,
    defrag: Defragmenter,
    rates: RateTable,
    policy_rates: RateTable,
    hits: Vec<u32>,
    work: Work,
    next_sweep_ns: u64,
    /// Alerts of the last inspection.
    pub alerts: Vec<Alert>,
    pub stats: IdsStats,
}

impl Inspector {
    pub fn new(book: Arc<RuleBook>, cfg: &IpsConfig, limits: InspectorLimits) -> Self {
        Inspector {
            settings: Settings::new(&book, cfg),
            book,
            limits,
            scratch: Scratch::default(),
            flows: FlowMap::with_capacity_and_hasher(limits.flows.min(4096), Default::default()),
            mem: Memcap::new(limits.stream_memcap),
            defrag: Defragmenter::new(limits.datagrams, 30, limits.defrag_memcap),
            rates: RateTable::new(1 << 16),
            policy_rates: RateTable::new(1 << 16),
            hits: Vec::new(),
            work: Work::default(),
            next_sweep_ns: 0,
            alerts: Vec::new(),
            stats: IdsStats::default(),
        }
    }

    /// Takes a new policy's `[ips]` section (flows and their state are kept).
    pub fn set_config(&mut self, cfg: &IpsConfig) {
        self.settings = Settings::new(&self.book, cfg);
    }

    pub fn mode(&self) -> IpsMode {
        self.settings.mode
    }

    pub fn rule(&self, i: u32) -> &CompiledRule {
        &self.book.engine.rules[i as usize]
    }

    pub fn book(&self) -> &Arc<RuleBook> {
        &self.book
    }

    /// Bytes held in reassembly windows.
    pub fn stream_memory(&self) -> usize {
        self.mem.used
    }

    /// Inspects one forwarded frame that arrived on `side`. Alerts are left in
    /// [`Inspector::alerts`]; reject answers are queued in `injects`.
    pub fn inspect(
        &mut self,
        frame: &[u8],
        m: &PacketMeta,
        side: Side,
        now_ns: u64,
        injects: &mut InjectQueue,
    ) -> IpsVerdict {
        self.alerts.clear();
        if !m.is_ip() {
            return IpsVerdict::Pass;
        }
        self.sweep(now_ns);
        if m.fragment.is_some() {
            let mut whole = std::mem::take(&mut self.work.datagram);
            let v = if self.defrag.add(frame, m, now_ns, &mut whole) {
                match mimamori_pipelines::parse(&whole) {
                    Ok(wm) if wm.has_l4() => {
                        self.inspect_packet(&whole, &wm, side, now_ns, injects)
                    }
                    _ => IpsVerdict::Pass,
                }
            } else {
                IpsVerdict::Pass
            };
            self.work.datagram = whole;
            self.stats.defrag = self.defrag.stats.clone();
            for a in &mut self.alerts {
                a.defrag = true;
            }
            return v;
        }
        if !m.has_l4() {
            return IpsVerdict::Pass;
        }
        self.inspect_packet(frame, m, side, now_ns, injects)
    }

    fn inspect_packet(
        &mut self,
        frame: &[u8],
        m: &PacketMeta,
        side: Side,
        now_ns: u64,
        injects: &mut InjectQueue,
    ) -> IpsVerdict {
        let (key, src_is_lo) = FlowKey::from_meta(m);
        let tcp = m.proto == ip_proto::TCP;
        let syn_ack = tcp && m.tcp_flags & (flags::SYN | flags::ACK) == (flags::SYN | flags::ACK);
        if !self.flows.contains_key(&key) && self.flows.len() >= self.limits.flows {
            self.evict_one();
        }
        let Inspector {
            book,
            settings,
            limits,
            scratch,
            flows,
            mem,
            rates,
            policy_rates,
            hits,
            work,
            alerts,
            stats,
            ..
        } = self;
        let flow = flows.entry(key).or_insert_with(|| IpsFlow {
            initiator_is_lo: src_is_lo != syn_ack,
            ..Default::default()
        });
        flow.last_ns = now_ns;
        let to_server = flow.initiator_is_lo == src_is_lo;
        if !to_server {
            flow.replied = true;
        }
        if flow.dropped && settings.mode == IpsMode::Ips {
            stats.flow_dropped += 1;
            return IpsVerdict::Drop;
        }
        let start = usize::from(m.payload_offset);
        let payload = frame
            .get(start..start + usize::from(m.payload_len))
            .unwrap_or(&[]);
        let d = usize::from(!to_server);
        let closing = tcp && m.tcp_flags & (flags::RST | flags::FIN) != 0;
        // What to inspect: for TCP the message as reassembled so far, else the payload.
        let mut message: Option<(usize, bool)> = None; // (window start, whole message)
        if tcp {
            if m.tcp_flags & flags::SYN != 0 {
                flow.half[d].syn(m.tcp_seq);
            }
            if !payload.is_empty() {
                let other = &mut flow.half[1 - d];
                if !other.contiguous().is_empty() || other.inspected > 0 {
                    other.next_message();
                    flow.alerted[1 - d].clear();
                    flow.app[1 - d] = 0;
                }
                let before = stats.stream.memcap_refused + stats.stream.beyond_window;
                // Data on a SYN (TCP Fast Open) follows the SYN's own sequence number.
                let seq = m
                    .tcp_seq
                    .wrapping_add(u32::from(m.tcp_flags & flags::SYN != 0));
                let grew = flow.half[d].add(seq, payload, limits.stream, mem, &mut stats.stream);
                let h = &flow.half[d];
                if grew {
                    flow.sent[d] += payload.len() as u64;
                    message = Some((h.inspected.saturating_sub(LOOKBACK), !h.truncated));
                } else if stats.stream.memcap_refused + stats.stream.beyond_window != before {
                    stats.stream_unheld += 1;
                }
            }
            if m.tcp_flags & flags::FIN != 0 {
                flow.half[d].fin = true;
                // A message waiting for its end (a body without length) is complete now.
                let h = &flow.half[d];
                if message.is_none() && payload.is_empty() && !h.contiguous().is_empty() {
                    message = Some((h.inspected.saturating_sub(LOOKBACK), !h.truncated));
                }
            }
        }

        stats.inspected += 1;
        let data: &[u8] = match message {
            Some(_) => flow.half[d].contiguous(),
            None => payload,
        };
        let mut bufs = Buffers::default();
        // TCP data in order: the new bytes and a lookback before them, as the receiver
        // will see them. Otherwise (out of order, retransmitted, not TCP): the payload.
        bufs.push(
            Buffer::Packet,
            match message {
                Some((from, _)) => &data[from..],
                None => payload,
            },
        );
        // App-layer fields come from the whole message (TCP) or the datagram.
        let app_data = match message {
            Some((_, true)) => data,
            None if !tcp => payload,
            _ => &[][..],
        };
        // What of the current message was inspected already (TCP); a datagram is new.
        let mut no_state = 0u8;
        let seen = if tcp { &mut flow.app[d] } else { &mut no_state };
        let udp = m.proto == ip_proto::UDP;
        let fin = flow.half[d].fin;
        let Work {
            uri,
            stat,
            body,
            dechunked,
            qname,
            names,
            handshake,
            leaf,
            ja3,
            ja3_hash,
            ext_types,
            ..
        } = work;
        match app::recognise(app_data, udp) {
            AppProto::Http if to_server => {
                if let Ok(req) = http::parse_request(app_data)
                    && let rest = &app_data[req.head.head_len.min(app_data.len())..]
                    && let Some(body_done) = due(seen, fin || body_complete(&req.head, rest))
                {
                    stats.http_requests += u64::from(*seen & app_seen::COUNTED == 0);
                    *seen |= app_seen::COUNTED;
                    http::normalize_uri_into(req.uri, uri);
                    bufs.push(Buffer::HttpUri, uri);
                    bufs.push(Buffer::HttpUriRaw, req.uri.as_bytes());
                    bufs.push(Buffer::HttpMethod, req.method.as_bytes());
                    bufs.push(Buffer::HttpHeader, req.head.header_block);
                    if let Some(h) = req.head.host {
                        let host = h.split(|&c| c == b':').next().unwrap_or(h);
                        bufs.push(Buffer::HttpHost, host);
                    }
                    for (b, v) in [
                        (Buffer::HttpUserAgent, req.head.user_agent),
                        (Buffer::HttpCookie, req.head.cookie),
                        (Buffer::HttpReferer, req.head.referer),
                        (Buffer::HttpAccept, req.head.accept),
                        (Buffer::HttpAcceptEnc, req.head.accept_encoding),
                        (Buffer::HttpAcceptLang, req.head.accept_language),
                        (Buffer::HttpRequestLine, Some(req.head.first_line)),
                        (
                            Buffer::HttpProtocol,
                            req.head.first_line.rsplit(|&c| c == b' ').next(),
                        ),
                    ] {
                        if let Some(v) = v {
                            bufs.push(b, v);
                        }
                    }
                    common_head(&req.head, app_data, names, &mut bufs);
                    if body_done && !rest.is_empty() {
                        bufs.push(Buffer::HttpRequestBody, rest);
                    }
                }
            }
            AppProto::Http => {
                if let Ok(resp) = http::parse_response(app_data)
                    && let rest = &app_data[resp.head.head_len.min(app_data.len())..]
                    // A body without length or chunking ends with the connection.
                    && let Some(body_done) = due(
                        seen,
                        fin || app_data.len() >= limits.stream.depth
                            || (body_complete(&resp.head, rest)
                                && (resp.head.chunked || resp.head.content_length.is_some())),
                    )
                {
                    stats.http_responses += u64::from(*seen & app_seen::COUNTED == 0);
                    *seen |= app_seen::COUNTED;
                    stat.clear();
                    let _ = write!(stat, "{}", resp.status);
                    bufs.push(Buffer::HttpStatCode, stat);
                    bufs.push(Buffer::HttpHeader, resp.head.header_block);
                    let line = resp.head.first_line;
                    let mut parts = line.splitn(3, |&c| c == b' ');
                    bufs.push(Buffer::HttpResponseLine, line);
                    if let Some(p) = parts.next() {
                        bufs.push(Buffer::HttpProtocol, p);
                    }
                    if let Some(msg) = parts.nth(1) {
                        bufs.push(Buffer::HttpStatMsg, msg);
                    }
                    for (b, v) in [
                        (Buffer::HttpLocation, resp.head.location),
                        (Buffer::HttpServer, resp.head.server),
                    ] {
                        if let Some(v) = v {
                            bufs.push(b, v);
                        }
                    }
                    common_head(&resp.head, app_data, names, &mut bufs);
                    // The body is decoded once, when it is complete (or the window is full).
                    if body_done && !rest.is_empty() {
                        let wire: &[u8] = if resp.head.chunked
                            && http::dechunk(rest, BODY_LIMIT, dechunked).is_ok()
                        {
                            dechunked
                        } else {
                            rest
                        };
                        // Allocates once per response body (not per packet).
                        *body = http::decode(resp.head.encoding, wire, BODY_LIMIT)
                            .unwrap_or_else(|_| wire[..wire.len().min(BODY_LIMIT)].to_vec());
                        bufs.push(Buffer::HttpResponseBody, body);
                        bufs.push(Buffer::FileData, body);
                    }
                }
            }
            AppProto::Tls if !to_server => {
                // The ServerHello is inspected (JA3S) once it is in; the certificates
                // (TLS 1.2 and earlier) once they are all in.
                tls::handshake_bytes(app_data, handshake, BODY_LIMIT);
                let certs = tls::server_certificates(handshake);
                if let Some(sh) = tls::server_hello(handshake)
                    && let Some(with_certs) = due(seen, certs.is_some())
                {
                    tls::ja3s_string(&sh, ja3, ext_types);
                    *ja3_hash = tls::fingerprint_hash(ja3);
                    bufs.push(Buffer::Ja3sString, ja3.as_bytes());
                    bufs.push(Buffer::Ja3sHash, ja3_hash);
                    if let (true, Some((certs, n))) = (with_certs, certs) {
                        stats.tls_certificates += 1;
                        for c in &certs[..n] {
                            bufs.push(Buffer::TlsCerts, c);
                        }
                        // Allocates the three strings once per TLS connection.
                        if let Some(f) = certs.first().and_then(|c| tls::cert_fields(c)) {
                            *leaf = f;
                            bufs.push(Buffer::TlsCertSubject, leaf.subject.as_bytes());
                            bufs.push(Buffer::TlsCertIssuer, leaf.issuer.as_bytes());
                            bufs.push(Buffer::TlsCertSerial, leaf.serial.as_bytes());
                        }
                    }
                }
            }
            AppProto::Tls => {
                if let Ok(hello) = tls::parse_client_hello(app_data)
                    && due(seen, true).is_some()
                {
                    stats.tls_hellos += 1;
                    if let Some(sni) = hello.sni {
                        bufs.push(Buffer::TlsSni, sni.as_bytes());
                    }
                    tls::ja3_string(&hello, ja3, ext_types);
                    *ja3_hash = tls::fingerprint_hash(ja3);
                    bufs.push(Buffer::Ja3String, ja3.as_bytes());
                    bufs.push(Buffer::Ja3Hash, ja3_hash);
                }
            }
            _ => {}
        }
        if udp
            && (m.src_port == 53 || m.dst_port == 53)
            && let Some(q) = names::dns_question(payload, qname)
        {
            stats.dns_messages += 1;
            bufs.push(Buffer::DnsQuery, &qname[..q.len]);
        }
        let p = Inspection {
            proto: m.proto,
            src: m.src,
            src_port: m.src_port,
            dst: m.dst,
            dst_port: m.dst_port,
            to_server,
            established: flow.replied,
            payload_len: payload.len(),
            tcp_flags: if tcp { m.tcp_flags } else { 0 },
            icmp: matches!(m.proto, ip_proto::ICMP | ip_proto::ICMPV6)
                .then_some((m.icmp_type, m.icmp_code)),
            stream_bytes: (flow.sent[0], flow.sent[1]),
            buffers: bufs.as_slice(),
        };
        hits.clear();
        book.engine
            .inspect_stateful(&p, scratch, &mut flow.bits, rates, now_ns, hits);
        // Rules the policy switched off take no part, pass rules included.
        hits.retain(|&i| !settings.disabled[i as usize]);
        let rules = &book.engine.rules;
        if message.is_some() {
            flow.half[d].inspected = flow.half[d].contiguous().len();
        }
        // Action order: drop and reject first, then pass (which ends this packet's
        // inspection, its alerts included), then alert.
        let blocking = |i: &u32| matches!(rules[*i as usize].action, Action::Drop | Action::Reject);
        if !hits.iter().any(blocking)
            && hits
                .iter()
                .any(|&i| rules[i as usize].action == Action::Pass)
        {
            stats.passed += 1;
            forget_if_closed(flows, key, closing, m, mem);
            return IpsVerdict::Pass;
        }
        let ips = settings.mode == IpsMode::Ips;
        let mut verdict = IpsVerdict::Pass;
        for &i in hits.iter() {
            // Reassembled data: a rule alerts once per message.
            let alerted = &mut flow.alerted[d];
            if message.is_some() {
                if alerted.contains(&i) {
                    continue;
                }
                if alerted.len() < ALERTED_PER_MESSAGE {
                    alerted.push(i);
                }
            }
            if let Some(rate) = settings.rate.get(&i)
                && !policy_rates.permits(i, rate, m.src, m.dst, now_ns)
            {
                continue;
            }
            let act = rules[i as usize].action;
            let blocked = ips && matches!(act, Action::Drop | Action::Reject);
            if blocked {
                flow.dropped = true;
                verdict = verdict.max(if act == Action::Reject {
                    IpsVerdict::Reject
                } else {
                    IpsVerdict::Drop
                });
            }
            alerts.push(Alert {
                rule: i,
                blocked,
                defrag: false,
            });
        }
        stats.alerts += alerts.len() as u64;
        match verdict {
            IpsVerdict::Drop => stats.dropped += 1,
            IpsVerdict::Reject => {
                stats.rejected += 1;
                injects.push_with(side, |out| reject::build(frame, m, out));
                if tcp {
                    injects.push_with(side.other(), |out| answer::rst_to_server(m, out));
                }
            }
            IpsVerdict::Pass => {}
        }
        forget_if_closed(flows, key, closing, m, mem);
        verdict
    }

    /// The step after the classifier, shared by the live stages and replay: inspects a
    /// frame the classifier forwarded, queues its alerts as events (with `pcap_cnt`, 0 on
    /// the live path) and reject answers in the classifier's queues, and overrules the
    /// verdict when IPS mode blocks it.
    pub fn after_classifier(
        &mut self,
        cls: &mut Classifier,
        frame: &[u8],
        side_of: impl FnOnce(&PacketMeta) -> Side,
        now_ns: u64,
        pcap_cnt: u64,
        verdict: &mut Verdict,
    ) {
        if !verdict.is_forward() {
            return;
        }
        let Ok(m) = mimamori_pipelines::parse(frame) else {
            return;
        };
        let side = side_of(&m);
        let v = self.inspect(frame, &m, side, now_ns, &mut cls.injects);
        for a in &self.alerts {
            let kind = EventKind::Signature {
                rule: a.rule,
                blocked: a.blocked,
                defrag: a.defrag,
            };
            let mut rec = EventRecord::from_packet(&m, side, cls.flow_id(&m), kind, now_ns);
            rec.pcap_cnt = pcap_cnt;
            cls.events.push(rec);
        }
        if v != IpsVerdict::Pass {
            cls.overrule(verdict, DropReason::Signature);
        }
    }

    /// Makes room for a new flow: forgets one (a table of live flows has no better
    /// candidate without a per-packet LRU list).
    fn evict_one(&mut self) {
        if let Some(k) = self.flows.keys().next().copied()
            && let Some(mut f) = self.flows.remove(&k)
        {
            release(&mut f, &mut self.mem);
            self.stats.flows_evicted += 1;
        }
    }

    /// Forgets idle flows, at most once a second.
    fn sweep(&mut self, now_ns: u64) {
        if now_ns < self.next_sweep_ns {
            return;
        }
        self.next_sweep_ns = now_ns + 1_000_000_000;
        let before = self.flows.len();
        let mem = &mut self.mem;
        self.flows.retain(|_, f| {
            let keep = now_ns.saturating_sub(f.last_ns) < IDLE_NS;
            if !keep {
                release(f, mem);
            }
            keep
        });
        self.stats.flows_expired += (before - self.flows.len()) as u64;
    }
}

fn release(f: &mut IpsFlow, mem: &mut Memcap) {
    for h in &mut f.half {
        h.release(mem);
    }
}

/// A RST, or a FIN from both sides, ends the flow's inspection state (a flow a rule
/// dropped is kept, so its later packets stay dropped).
fn forget_if_closed(
    flows: &mut FlowMap,
    key: FlowKey,
    closing: bool,
    m: &PacketMeta,
    mem: &mut Memcap,
) {
    if !closing {
        return;
    }
    let done = flows.get(&key).is_some_and(|f| {
        !f.dropped && (m.tcp_flags & flags::RST != 0 || (f.half[0].fin && f.half[1].fin))
    });
    if done && let Some(mut f) = flows.remove(&key) {
        release(&mut f, mem);
    }
}
