//! Signature inspection in `replay` (IDS mode: alerts only). Each forwarded packet is
//! inspected on its own — payload, plus the HTTP, TLS and DNS fields parsed from it. There
//! is no stream reassembly yet, so an HTTP head or ClientHello split over several segments
//! is seen only as packet payload.

use mimamori_pipelines::app::{self, AppProto, dns, http, tls};
use mimamori_pipelines::event::{Eve, EveAlert, eve_time, proto_name};
use mimamori_pipelines::firewall::{Cidr, CidrSet};
use mimamori_pipelines::flow::FlowKey;
use mimamori_pipelines::packet::V4_MAPPED;
use mimamori_pipelines::packet::{PacketMeta, to_ip};
use mimamori_pipelines::wire::{ip_proto, tcp::flags};
use mimamori_signatures::engine::{Engine, EngineReport, FlowBits, Inspection, RateTable, Scratch};
use mimamori_signatures::rule::{Buffer, LoadReport, Vars, load_files};
use serde::Serialize;
use std::collections::HashMap;
use std::path::Path;

/// Flows whose direction is remembered; beyond it the table is cleared (counted).
const MAX_FLOWS: usize = 1 << 16;
/// Decoded response bodies are inspected up to this size.
const BODY_LIMIT: usize = 64 * 1024;

#[derive(Clone)]
struct Dir {
    initiator_is_lo: bool,
    replied: bool,
    bits: FlowBits,
}

#[derive(Default, Debug, Serialize)]
pub struct IdsStats {
    pub inspected: u64,
    pub alerts: u64,
    pub http_requests: u64,
    pub http_responses: u64,
    pub tls_hellos: u64,
    pub dns_messages: u64,
    pub direction_table_resets: u64,
}

fn cidr_text(c: &Cidr) -> String {
    let v4 = c.net >> 32 == V4_MAPPED >> 32;
    let len = c.mask.count_ones() - if v4 { 96 } else { 0 };
    format!("{}/{len}", to_ip(c.net, v4))
}

pub struct Ids {
    engine: Engine,
    scratch: Scratch,
    dirs: HashMap<FlowKey, Dir>,
    rates: RateTable,
    hits: Vec<u32>,
    pub load: LoadReport,
    pub build: EngineReport,
    pub stats: IdsStats,
}

impl Ids {
    /// Loads rules with `$HOME_NET` set to the policy's LAN subnets (when it has any).
    pub fn load(path: &Path, lan: &CidrSet) -> Result<Ids, String> {
        let mut vars = Vars::default();
        if !lan.0.is_empty() {
            let nets: Vec<String> = lan.0.iter().map(cidr_text).collect();
            vars.addr
                .insert("HOME_NET".into(), format!("[{}]", nets.join(",")));
        }
        let (set, load) = load_files(&[path], &vars)?;
        let (engine, build) = Engine::build(&set);
        Ok(Ids {
            engine,
            scratch: Scratch::default(),
            dirs: HashMap::new(),
            rates: RateTable::new(1 << 16),
            hits: Vec::new(),
            load,
            build,
            stats: IdsStats::default(),
        })
    }

    /// Inspects one forwarded frame; returns EVE alerts for the rules that matched.
    pub fn inspect(&mut self, frame: &[u8], m: &PacketMeta, ts_ns: u64, iface: &str) -> Vec<Eve> {
        if !m.is_ip() || !m.has_l4() || m.fragment.is_some() {
            return Vec::new();
        }
        let (key, src_is_lo) = FlowKey::from_meta(m);
        if self.dirs.len() >= MAX_FLOWS && !self.dirs.contains_key(&key) {
            self.dirs.clear();
            self.stats.direction_table_resets += 1;
        }
        let syn_ack = m.proto == ip_proto::TCP
            && m.tcp_flags & (flags::SYN | flags::ACK) == (flags::SYN | flags::ACK);
        let dir = self.dirs.entry(key).or_insert(Dir {
            initiator_is_lo: src_is_lo != syn_ack,
            replied: false,
            bits: FlowBits::default(),
        });
        let to_server = dir.initiator_is_lo == src_is_lo;
        if !to_server {
            dir.replied = true;
        }
        let established = dir.replied;
        let start = usize::from(m.payload_offset);
        let payload = frame
            .get(start..start + usize::from(m.payload_len))
            .unwrap_or(&[]);
        if payload.is_empty() {
            return Vec::new();
        }
        self.stats.inspected += 1;

        let mut bufs: Vec<(Buffer, &[u8])> = vec![(Buffer::Packet, payload)];
        // Buffers that are computed here rather than borrowed from the frame.
        let (uri, stat);
        let mut body_buf: Vec<u8> = Vec::new();
        let udp = m.proto == ip_proto::UDP;
        match app::recognise(payload, udp) {
            AppProto::Http if to_server => {
                if let Ok(req) = http::parse_request(payload) {
                    self.stats.http_requests += 1;
                    uri = http::normalize_uri(req.uri);
                    bufs.push((Buffer::HttpUri, &uri));
                    bufs.push((Buffer::HttpUriRaw, req.uri.as_bytes()));
                    bufs.push((Buffer::HttpMethod, req.method.as_bytes()));
                    bufs.push((Buffer::HttpHeader, req.head.header_block));
                    if let Some(h) = req.head.host {
                        let host = h.split(|&c| c == b':').next().unwrap_or(h);
                        bufs.push((Buffer::HttpHost, host));
                    }
                    for (b, v) in [
                        (Buffer::HttpUserAgent, req.head.user_agent),
                        (Buffer::HttpCookie, req.head.cookie),
                    ] {
                        if let Some(v) = v {
                            bufs.push((b, v));
                        }
                    }
                    if let Some(rest) = payload.get(req.head.head_len..).filter(|r| !r.is_empty()) {
                        bufs.push((Buffer::HttpRequestBody, rest));
                    }
                }
            }
            AppProto::Http => {
                if let Ok(resp) = http::parse_response(payload) {
                    self.stats.http_responses += 1;
                    stat = resp.status.to_string();
                    bufs.push((Buffer::HttpStatCode, stat.as_bytes()));
                    bufs.push((Buffer::HttpHeader, resp.head.header_block));
                    let rest = payload.get(resp.head.head_len..).unwrap_or(&[]);
                    if !rest.is_empty() {
                        let mut raw = Vec::new();
                        let wire: &[u8] = if resp.head.chunked
                            && http::dechunk(rest, BODY_LIMIT, &mut raw).is_ok()
                        {
                            &raw
                        } else {
                            rest
                        };
                        body_buf = http::decode(resp.head.encoding, wire, BODY_LIMIT)
                            .unwrap_or_else(|_| wire.to_vec());
                    }
                }
            }
            AppProto::Tls if to_server => {
                if let Ok(hello) = tls::parse_client_hello(payload) {
                    self.stats.tls_hellos += 1;
                    if let Some(sni) = hello.sni {
                        bufs.push((Buffer::TlsSni, sni.as_bytes()));
                    }
                }
            }
            _ => {}
        }
        let qname;
        if udp
            && (m.src_port == 53 || m.dst_port == 53)
            && let Ok(msg) = dns::parse(payload)
        {
            self.stats.dns_messages += 1;
            qname = msg.qname;
            bufs.push((Buffer::DnsQuery, qname.as_bytes()));
        }
        if !body_buf.is_empty() {
            bufs.push((Buffer::HttpResponseBody, &body_buf));
            bufs.push((Buffer::FileData, &body_buf));
        }
        let p = Inspection {
            proto: m.proto,
            src: m.src,
            src_port: m.src_port,
            dst: m.dst,
            dst_port: m.dst_port,
            to_server,
            established,
            payload_len: payload.len(),
            buffers: &bufs,
        };
        self.hits.clear();
        let Some(dir) = self.dirs.get_mut(&key) else {
            return Vec::new(); // inserted above; unreachable
        };
        self.engine.inspect_stateful(
            &p,
            &mut self.scratch,
            &mut dir.bits,
            &mut self.rates,
            ts_ns,
            &mut self.hits,
        );
        self.stats.alerts += self.hits.len() as u64;
        self.hits
            .iter()
            .map(|&i| {
                let r = &self.engine.rules[i as usize];
                Eve {
                    web: None,
                    host: None,
                    timestamp: eve_time(ts_ns),
                    flow_id: 0,
                    in_iface: iface.to_string(),
                    event_type: "alert",
                    vlan: None,
                    src_ip: to_ip(m.src, m.is_v4()),
                    src_port: m.src_port,
                    dest_ip: to_ip(m.dst, m.is_v4()),
                    dest_port: m.dst_port,
                    proto: proto_name(m.proto),
                    alert: Some(EveAlert {
                        action: "allowed",
                        gid: r.meta.gid,
                        signature_id: r.meta.sid,
                        rev: r.meta.rev,
                        signature: r.meta.msg.clone(),
                        category: r.meta.classtype.clone().unwrap_or_default(),
                        severity: r.meta.priority.unwrap_or(3),
                    }),
                    flow: None,
                }
            })
            .collect()
    }
}
