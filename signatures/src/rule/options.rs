//! The option list: metadata, detection keywords and their modifiers, sticky buffers.

use super::content::{Content, Value, parse_content_pattern};
use super::header::{Header, Proto};
use super::{RuleError, malformed, unsupported};

/// Where content and pcre look. Sticky buffers (`http.uri;`) switch it for what follows;
/// legacy modifiers (`http_uri;`) set it on the content before them.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash, serde::Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Buffer {
    /// The packet payload or the reassembled stream.
    #[default]
    Packet,
    HttpUri,
    HttpUriRaw,
    HttpMethod,
    HttpHost,
    HttpUserAgent,
    HttpHeader,
    HttpCookie,
    HttpRequestBody,
    HttpStatCode,
    HttpResponseBody,
    FileData,
    TlsSni,
    DnsQuery,
    HttpHeaderNames,
    HttpHeaderRaw,
    HttpContentType,
    HttpContentLen,
    HttpReferer,
    HttpLocation,
    HttpServer,
    HttpAccept,
    HttpAcceptEnc,
    HttpAcceptLang,
    HttpConnection,
    HttpRequestLine,
    HttpResponseLine,
    HttpStart,
    HttpProtocol,
    HttpStatMsg,
    /// Each certificate of the server's chain (DER), one buffer per certificate.
    TlsCerts,
    TlsCertSubject,
    TlsCertIssuer,
    TlsCertSerial,
    Ja3Hash,
    Ja3String,
    Ja3sHash,
    Ja3sString,
}

impl Buffer {
    /// Sticky buffer keywords: the dotted names, plus the older sticky spellings.
    fn sticky(name: &str) -> Option<Buffer> {
        Some(match name {
            "pkt_data" => Buffer::Packet,
            "http.uri" => Buffer::HttpUri,
            "http.uri.raw" => Buffer::HttpUriRaw,
            "http.method" => Buffer::HttpMethod,
            "http.host" => Buffer::HttpHost,
            "http.user_agent" => Buffer::HttpUserAgent,
            "http.header" => Buffer::HttpHeader,
            "http.cookie" => Buffer::HttpCookie,
            "http.request_body" => Buffer::HttpRequestBody,
            "http.stat_code" => Buffer::HttpStatCode,
            "http.response_body" => Buffer::HttpResponseBody,
            "file.data" | "file_data" => Buffer::FileData,
            "tls.sni" | "tls_sni" => Buffer::TlsSni,
            "dns.query" | "dns_query" => Buffer::DnsQuery,
            "http.header_names" => Buffer::HttpHeaderNames,
            "http.header.raw" => Buffer::HttpHeaderRaw,
            "http.content_type" | "http_content_type" => Buffer::HttpContentType,
            "http.content_len" => Buffer::HttpContentLen,
            "http.referer" => Buffer::HttpReferer,
            "http.location" => Buffer::HttpLocation,
            "http.server" => Buffer::HttpServer,
            "http.accept" => Buffer::HttpAccept,
            "http.accept_enc" => Buffer::HttpAcceptEnc,
            "http.accept_lang" => Buffer::HttpAcceptLang,
            "http.connection" => Buffer::HttpConnection,
            "http.request_line" | "http_request_line" => Buffer::HttpRequestLine,
            "http.response_line" | "http_response_line" => Buffer::HttpResponseLine,
            "http.start" => Buffer::HttpStart,
            "http.protocol" => Buffer::HttpProtocol,
            "http.stat_msg" => Buffer::HttpStatMsg,
            "tls.certs" => Buffer::TlsCerts,
            "tls.cert_subject" | "tls_cert_subject" => Buffer::TlsCertSubject,
            "tls.cert_issuer" | "tls_cert_issuer" => Buffer::TlsCertIssuer,
            "tls.cert_serial" | "tls_cert_serial" => Buffer::TlsCertSerial,
            "ja3.hash" | "ja3_hash" => Buffer::Ja3Hash,
            "ja3.string" => Buffer::Ja3String,
            "ja3s.hash" => Buffer::Ja3sHash,
            "ja3s.string" => Buffer::Ja3sString,
            _ => return None,
        })
    }
    /// Legacy content modifiers (`content:"x"; http_uri;`) that move the content before
    /// them into a buffer.
    fn modifier(name: &str) -> Option<Buffer> {
        Some(match name {
            "http_uri" => Buffer::HttpUri,
            "http_raw_uri" => Buffer::HttpUriRaw,
            "http_method" => Buffer::HttpMethod,
            "http_host" => Buffer::HttpHost,
            "http_user_agent" => Buffer::HttpUserAgent,
            "http_header" => Buffer::HttpHeader,
            "http_cookie" => Buffer::HttpCookie,
            "http_client_body" => Buffer::HttpRequestBody,
            "http_stat_code" => Buffer::HttpStatCode,
            "http_server_body" => Buffer::HttpResponseBody,
            "http_raw_header" => Buffer::HttpHeaderRaw,
            "http_stat_msg" => Buffer::HttpStatMsg,
            _ => return None,
        })
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Transform {
    DotPrefix,
    ToLowercase,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Pcre {
    pub pattern: String,
    pub negated: bool,
    /// Flags as written (i, s, m, x, R, U and the HTTP buffer letters).
    pub flags: String,
    pub relative: bool,
    pub buffer: Buffer,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum FlowOpt {
    Established,
    NotEstablished,
    Stateless,
    ToServer,
    ToClient,
    OnlyStream,
    NoStream,
    OnlyFrag,
    NoFrag,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum FlowbitsCmd {
    Set,
    Unset,
    Isset,
    Isnotset,
    Toggle,
    Noalert,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Track {
    Src,
    Dst,
    Rule,
    Both,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ThresholdKind {
    Limit,
    Threshold,
    Both,
}

/// `flags:[+*!]FSRPAUCE0[,mask]`: without a modifier exactly these flags (outside the
/// mask), `+` at least these, `*` any of these, `!` none of these.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct TcpFlags {
    pub want: u8,
    pub modifier: Option<char>,
    pub ignore: u8,
}

impl TcpFlags {
    pub fn matches(&self, flags: u8) -> bool {
        let f = flags & !self.ignore;
        match self.modifier {
            None => f == self.want,
            Some('+') => f & self.want == self.want,
            Some('*') => f & self.want != 0,
            _ => f & self.want == 0,
        }
    }
}

fn tcp_flags(v: Option<&str>) -> Result<TcpFlags, RuleError> {
    let v = v.unwrap_or("").trim();
    let (flags, mask) = v.split_once(',').unwrap_or((v, ""));
    let bits = |s: &str| -> Result<u8, RuleError> {
        let mut b = 0u8;
        for c in s.trim().chars() {
            b |= match c.to_ascii_uppercase() {
                'F' => 0x01,
                'S' => 0x02,
                'R' => 0x04,
                'P' => 0x08,
                'A' => 0x10,
                'U' => 0x20,
                'E' => 0x40,
                'C' => 0x80,
                // The reserved bits' old names, and "no flags".
                '1' | '2' | '0' => 0,
                _ => return malformed(format!("flags: {c:?} is not one of FSRPAUCE0")),
            };
        }
        Ok(b)
    };
    let flags = flags.trim();
    let modifier = flags.chars().next().filter(|c| "+*!".contains(*c));
    let letters = if modifier.is_some() {
        &flags[1..]
    } else {
        flags
    };
    Ok(TcpFlags {
        want: bits(letters)?,
        modifier,
        ignore: bits(mask)?,
    })
}

/// `stream_size:<client|server|both|either>,<op>,<n>`: bytes a TCP direction has sent.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct StreamSize {
    /// 0 client, 1 server, 2 both, 3 either.
    pub side: u8,
    /// One of `<`, `>`, `=`, `!`, `l` (<=), `g` (>=).
    pub op: u8,
    pub value: u64,
}

impl StreamSize {
    pub fn matches(&self, client: u64, server: u64) -> bool {
        let test = |n: u64| match self.op {
            b'<' => n < self.value,
            b'>' => n > self.value,
            b'=' => n == self.value,
            b'!' => n != self.value,
            b'l' => n <= self.value,
            _ => n >= self.value,
        };
        match self.side {
            0 => test(client),
            1 => test(server),
            2 => test(client) && test(server),
            _ => test(client) || test(server),
        }
    }
}

/// `app-layer-protocol:[!]proto[|proto…][,mode]`. The modes (`either`, `final`,
/// `original`, `exact`, `to_server`, `to_client`, `direction`) all read the one protocol
/// the inspector recognises per flow.
fn app_layer_protocol(v: Option<&str>) -> Result<Match, RuleError> {
    let v = v.unwrap_or("").trim();
    let (list, mode) = v.split_once(',').unwrap_or((v, ""));
    if !matches!(
        mode.trim(),
        "" | "either" | "final" | "original" | "exact" | "to_server" | "to_client" | "direction"
    ) {
        return unsupported(format!("app-layer-protocol mode {}", mode.trim()));
    }
    let (negated, list) = match list.trim().strip_prefix('!') {
        Some(l) => (true, l),
        None => (false, list.trim()),
    };
    let mut protos = Vec::new();
    for p in list.split('|').map(|p| p.trim().to_ascii_lowercase()) {
        match p.as_str() {
            "unknown" | "failed" => protos.push(None),
            "" => return malformed("app-layer-protocol needs a protocol"),
            name => match crate::rule::header::app_proto_name(name) {
                Some(a) => protos.push(Some(a)),
                // A protocol nothing here recognises: no flow is it, every known flow is not.
                None if negated => {}
                None => return unsupported(format!("protocol {name}")),
            },
        }
    }
    Ok(Match::AppLayerProtocol { negated, protos })
}

fn stream_size(v: Option<&str>) -> Result<StreamSize, RuleError> {
    let v = v.unwrap_or("");
    let parts: Vec<&str> = v.split(',').map(str::trim).collect();
    let [side, op, n] = parts[..] else {
        return malformed(format!("stream_size {v:?}: want side,operator,number"));
    };
    let side = match side {
        "client" => 0,
        "server" => 1,
        "both" => 2,
        "either" => 3,
        s => return malformed(format!("stream_size side {s:?}")),
    };
    let op = match op {
        "<" => b'<',
        ">" => b'>',
        "=" => b'=',
        "!=" => b'!',
        "<=" => b'l',
        ">=" => b'g',
        o => return malformed(format!("stream_size operator {o:?}")),
    };
    let value = n
        .parse()
        .map_err(|_| RuleError::Malformed(format!("stream_size number {n:?}")))?;
    Ok(StreamSize { side, op, value })
}

/// A size comparison (`bsize`, `dsize`): `N`, `<N`, `>N`, `N<>M`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum SizeCmp {
    Eq(u64),
    Lt(u64),
    Gt(u64),
    Between(u64, u64),
}

/// One detection element, in rule order.
#[derive(Clone, Debug, PartialEq)]
pub enum Match {
    /// A sticky buffer: the following content/pcre look here.
    Buffer(Buffer),
    Transform(Buffer, Transform),
    Content(Content),
    Pcre(Pcre),
    ByteTest(Vec<String>, Buffer),
    ByteJump(Vec<String>, Buffer),
    ByteExtract(Vec<String>, Buffer),
    IsDataAt {
        offset: u64,
        relative: bool,
        negated: bool,
        buffer: Buffer,
    },
    Bsize(SizeCmp, Buffer),
    Dsize(SizeCmp),
    /// TCP flags: the flags, how they are compared, and flags to ignore.
    Flags(TcpFlags),
    StreamSize(StreamSize),
    /// Decode base64 from the current position; the matches after `base64_data` look at
    /// the decoded bytes.
    Base64Decode {
        bytes: Option<u32>,
        offset: u32,
        relative: bool,
        buffer: Buffer,
    },
    Itype(SizeCmp),
    Icode(SizeCmp),
    /// `app-layer-protocol`: the flow's protocol is (or, negated, is known and is not) one
    /// of these; `None` in the list stands for `unknown` / `failed` (none recognised).
    AppLayerProtocol {
        negated: bool,
        protos: Vec<Option<&'static str>>,
    },
    Flow(Vec<FlowOpt>),
    /// Command, names, and whether a condition needs all names (`a&b`) or any (`a|b`).
    Flowbits(FlowbitsCmd, Vec<String>, bool),
    /// `xbits`: a bit kept per host (`Track::Src`/`Dst`) or host pair (`Track::Both`),
    /// with an expiry in seconds (0: none).
    Xbits {
        cmd: FlowbitsCmd,
        name: String,
        track: Track,
        expire: u32,
    },
    Threshold {
        kind: ThresholdKind,
        track: Track,
        count: u32,
        seconds: u32,
    },
    DetectionFilter {
        track: Track,
        count: u32,
        seconds: u32,
    },
}

/// What the rule says about itself.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Meta {
    pub msg: String,
    pub sid: u32,
    pub rev: u32,
    pub gid: u32,
    pub classtype: Option<String>,
    pub priority: Option<u8>,
    pub metadata: Vec<(String, String)>,
    pub references: Vec<String>,
    pub target: Option<String>,
    pub noalert: bool,
}

/// Splits `a; b:"x\;y"; c` into options at every `;` not escaped by a backslash (as
/// Suricata does: quotes do not protect a `;`, so `pcre:"/["']/"` needs no escaping).
fn split_options(body: &str) -> Result<Vec<(String, Option<String>)>, RuleError> {
    let mut out = Vec::new();
    let mut cur = String::new();
    let mut escaped = false;
    for c in body.chars() {
        if escaped {
            cur.push(c);
            escaped = false;
            continue;
        }
        match c {
            '\\' => {
                cur.push(c);
                escaped = true;
            }
            ';' => {
                let opt = cur.trim();
                if !opt.is_empty() {
                    out.push(match opt.split_once(':') {
                        Some((k, v)) => (k.trim().to_string(), Some(v.trim().to_string())),
                        None => (opt.to_string(), None),
                    });
                }
                cur.clear();
            }
            _ => cur.push(c),
        }
    }
    if !cur.trim().is_empty() {
        return malformed(format!("option {:?} is not terminated by ';'", cur.trim()));
    }
    Ok(out)
}

fn unquote(v: &str) -> Result<&str, RuleError> {
    v.strip_prefix('"')
        .and_then(|x| x.strip_suffix('"'))
        .ok_or_else(|| RuleError::Malformed(format!("expected a quoted string, got {v:?}")))
}

fn num<T: std::str::FromStr>(key: &str, v: Option<&str>) -> Result<T, RuleError> {
    let v = v.ok_or_else(|| RuleError::Malformed(format!("{key} needs a value")))?;
    v.trim()
        .parse()
        .map_err(|_| RuleError::Malformed(format!("{key}: {v:?} is not a valid number")))
}

fn value(key: &str, v: Option<&str>) -> Result<Value, RuleError> {
    let v = v
        .ok_or_else(|| RuleError::Malformed(format!("{key} needs a value")))?
        .trim();
    match v.parse::<i64>() {
        Ok(n) => Ok(Value::Num(n)),
        Err(_) if v.chars().all(|c| c.is_ascii_alphanumeric() || c == '_') && !v.is_empty() => {
            Ok(Value::Var(v.to_string()))
        }
        Err(_) => malformed(format!(
            "{key}: {v:?} is not a number or a byte_extract variable"
        )),
    }
}

fn size_cmp(key: &str, v: Option<&str>) -> Result<SizeCmp, RuleError> {
    let v = v
        .ok_or_else(|| RuleError::Malformed(format!("{key} needs a value")))?
        .trim();
    let n = |s: &str| {
        s.trim()
            .parse::<u64>()
            .map_err(|_| RuleError::Malformed(format!("{key}: {v:?} is not N, <N, >N or N<>M")))
    };
    Ok(if let Some((a, b)) = v.split_once("<>") {
        SizeCmp::Between(n(a)?, n(b)?)
    } else if let Some(x) = v.strip_prefix('<') {
        SizeCmp::Lt(n(x)?)
    } else if let Some(x) = v.strip_prefix('>') {
        SizeCmp::Gt(n(x)?)
    } else {
        SizeCmp::Eq(n(v.trim_start_matches('='))?)
    })
}

fn track(v: &str) -> Result<Track, RuleError> {
    Ok(match v {
        "by_src" => Track::Src,
        "by_dst" => Track::Dst,
        "by_rule" => Track::Rule,
        "by_both" => Track::Both,
        t => {
            return malformed(format!(
                "track {t:?} is not by_src, by_dst, by_rule or by_both"
            ));
        }
    })
}

/// `key value, key value` lists (threshold, detection_filter).
fn kv_list(key: &str, v: Option<&str>) -> Result<Vec<(String, String)>, RuleError> {
    let v = v.ok_or_else(|| RuleError::Malformed(format!("{key} needs a value")))?;
    v.split(',')
        .map(|p| {
            let mut w = p.split_whitespace();
            match (w.next(), w.next(), w.next()) {
                (Some(k), Some(val), None) => Ok((k.to_string(), val.to_string())),
                _ => malformed(format!("{key}: {p:?} is not 'name value'")),
            }
        })
        .collect()
}

fn last_content<'a>(matches: &'a mut [Match], key: &str) -> Result<&'a mut Content, RuleError> {
    match matches
        .iter_mut()
        .rev()
        .find(|m| matches!(m, Match::Content(_) | Match::Pcre(_)))
    {
        Some(Match::Content(c)) => Ok(c),
        _ => malformed(format!("{key} without a preceding content")),
    }
}

/// Parses the option list (between the parentheses).
pub fn parse(body: &str, header: &Header) -> Result<(Meta, Vec<Match>), RuleError> {
    let mut meta = Meta {
        gid: 1,
        ..Meta::default()
    };
    let mut matches: Vec<Match> = Vec::new();
    let mut buffer = Buffer::Packet;
    let mut saw_sid = false;
    for (key, val) in split_options(body)? {
        let v = val.as_deref();
        match key.as_str() {
            "msg" => {
                meta.msg = unquote(v.unwrap_or(""))?
                    .replace("\\;", ";")
                    .replace("\\\"", "\"")
            }
            "sid" => {
                meta.sid = num("sid", v)?;
                saw_sid = true;
            }
            "rev" => meta.rev = num("rev", v)?,
            "gid" => meta.gid = num("gid", v)?,
            "classtype" => meta.classtype = v.map(|s| s.trim().to_string()),
            "priority" => meta.priority = Some(num("priority", v)?),
            "reference" => meta.references.push(v.unwrap_or("").to_string()),
            "target" => match v.map(str::trim) {
                Some(t @ ("src_ip" | "dest_ip")) => meta.target = Some(t.to_string()),
                t => return malformed(format!("target {t:?} is not src_ip or dest_ip")),
            },
            "metadata" => {
                for item in v.unwrap_or("").split(',') {
                    let mut w = item.trim().splitn(2, ' ');
                    if let Some(k) = w.next().filter(|k| !k.is_empty()) {
                        meta.metadata
                            .push((k.to_string(), w.next().unwrap_or("").trim().to_string()));
                    }
                }
            }
            "noalert" => meta.noalert = true,
            "content" => {
                let raw = v.ok_or_else(|| RuleError::Malformed("content needs a value".into()))?;
                let (negated, raw) = match raw.strip_prefix('!') {
                    Some(r) => (true, r.trim()),
                    None => (false, raw),
                };
                let pattern = parse_content_pattern(unquote(raw)?)?;
                matches.push(Match::Content(Content {
                    pattern,
                    negated,
                    buffer,
                    ..Content::default()
                }));
            }
            "nocase" => last_content(&mut matches, "nocase")?.nocase = true,
            "depth" => last_content(&mut matches, "depth")?.depth = Some(value("depth", v)?),
            "offset" => last_content(&mut matches, "offset")?.offset = Some(value("offset", v)?),
            "distance" => {
                last_content(&mut matches, "distance")?.distance = Some(value("distance", v)?)
            }
            "within" => last_content(&mut matches, "within")?.within = Some(value("within", v)?),
            "startswith" => last_content(&mut matches, "startswith")?.startswith = true,
            "endswith" => last_content(&mut matches, "endswith")?.endswith = true,
            "fast_pattern" => {
                if v.is_some_and(|x| x.contains(',')) {
                    return unsupported("fast_pattern with an offset,length (chop)");
                }
                last_content(&mut matches, "fast_pattern")?.fast_pattern = true;
            }
            "rawbytes" => {
                last_content(&mut matches, "rawbytes")?;
            }
            k if Buffer::modifier(k).is_some() => {
                let b = Buffer::modifier(k).unwrap_or_default();
                last_content(&mut matches, k)?.buffer = b;
            }
            k if Buffer::sticky(k).is_some() => {
                buffer = Buffer::sticky(k).unwrap_or_default();
                matches.push(Match::Buffer(buffer));
            }
            "dotprefix" | "to_lowercase" => {
                if buffer == Buffer::Packet {
                    return malformed(format!("{key} outside a sticky buffer"));
                }
                let t = if key == "dotprefix" {
                    Transform::DotPrefix
                } else {
                    Transform::ToLowercase
                };
                matches.push(Match::Transform(buffer, t));
            }
            "pcre" => matches.push(Match::Pcre(pcre(v, buffer)?)),
            "byte_test" | "byte_jump" | "byte_extract" => {
                let args: Vec<String> = v
                    .unwrap_or("")
                    .split(',')
                    .map(|s| s.trim().to_string())
                    .collect();
                let min = if key == "byte_jump" { 2 } else { 3 };
                if args.len() < min || args.iter().take(min).any(|a| a.is_empty()) {
                    return malformed(format!("{key} needs at least {min} arguments"));
                }
                matches.push(match key.as_str() {
                    "byte_test" => Match::ByteTest(args, buffer),
                    "byte_jump" => Match::ByteJump(args, buffer),
                    _ => Match::ByteExtract(args, buffer),
                });
            }
            "base64_decode" => {
                let (mut bytes, mut offset, mut relative) = (None, 0, false);
                for o in v
                    .unwrap_or("")
                    .split(',')
                    .map(str::trim)
                    .filter(|o| !o.is_empty())
                {
                    let (k, n) = o.split_once(' ').unwrap_or((o, ""));
                    match k {
                        "relative" => relative = true,
                        "bytes" => bytes = Some(num::<u32>("base64_decode bytes", Some(n))?),
                        "offset" => offset = num::<u32>("base64_decode offset", Some(n))?,
                        _ => return malformed(format!("base64_decode option {o:?}")),
                    }
                }
                matches.push(Match::Base64Decode {
                    bytes,
                    offset,
                    relative,
                    buffer,
                });
            }
            // The content after it reads what base64_decode produced (in the same group).
            "base64_data" => {
                if !matches
                    .iter()
                    .any(|m| matches!(m, Match::Base64Decode { .. }))
                {
                    return malformed("base64_data without a base64_decode before it");
                }
            }
            "isdataat" => {
                let raw = v.ok_or_else(|| RuleError::Malformed("isdataat needs a value".into()))?;
                let (negated, raw) = match raw.trim().strip_prefix('!') {
                    Some(r) => (true, r),
                    None => (false, raw.trim()),
                };
                let mut parts = raw.split(',').map(str::trim);
                let offset = num("isdataat", parts.next())?;
                let relative = parts.any(|p| p == "relative");
                matches.push(Match::IsDataAt {
                    offset,
                    relative,
                    negated,
                    buffer,
                });
            }
            "bsize" => matches.push(Match::Bsize(size_cmp("bsize", v)?, buffer)),
            "dsize" => matches.push(Match::Dsize(size_cmp("dsize", v)?)),
            "flags" => matches.push(Match::Flags(tcp_flags(v)?)),
            "stream_size" => matches.push(Match::StreamSize(stream_size(v)?)),
            "itype" => matches.push(Match::Itype(size_cmp("itype", v)?)),
            "icode" => matches.push(Match::Icode(size_cmp("icode", v)?)),
            "app-layer-protocol" => matches.push(app_layer_protocol(v)?),
            // The length of the normalised (or, with `raw`, the raw) URI.
            "urilen" => {
                let raw = v.unwrap_or("");
                let (cmp, kind) = raw.split_once(',').unwrap_or((raw, "norm"));
                let b = match kind.trim() {
                    "raw" => Buffer::HttpUriRaw,
                    "norm" => Buffer::HttpUri,
                    k => return malformed(format!("urilen: {k:?} is not raw or norm")),
                };
                matches.push(Match::Bsize(size_cmp("urilen", Some(cmp))?, b));
            }
            "flow" => {
                let mut opts = Vec::new();
                for o in v.unwrap_or("").split(',').map(str::trim) {
                    opts.push(match o {
                        "established" => FlowOpt::Established,
                        "not_established" => FlowOpt::NotEstablished,
                        "stateless" => FlowOpt::Stateless,
                        "to_server" | "from_client" => FlowOpt::ToServer,
                        "to_client" | "from_server" => FlowOpt::ToClient,
                        "only_stream" => FlowOpt::OnlyStream,
                        "no_stream" => FlowOpt::NoStream,
                        "only_frag" => FlowOpt::OnlyFrag,
                        "no_frag" => FlowOpt::NoFrag,
                        o => return malformed(format!("flow option {o:?}")),
                    });
                }
                matches.push(Match::Flow(opts));
            }
            "flowbits" => {
                let raw = v.ok_or_else(|| RuleError::Malformed("flowbits needs a value".into()))?;
                let (cmd, names) = match raw.split_once(',') {
                    Some((c, n)) => (c.trim(), n.trim()),
                    None => (raw.trim(), ""),
                };
                let cmd = match cmd {
                    "set" => FlowbitsCmd::Set,
                    "unset" => FlowbitsCmd::Unset,
                    "isset" => FlowbitsCmd::Isset,
                    "isnotset" => FlowbitsCmd::Isnotset,
                    "toggle" => FlowbitsCmd::Toggle,
                    "noalert" => FlowbitsCmd::Noalert,
                    c => return malformed(format!("flowbits command {c:?}")),
                };
                if cmd == FlowbitsCmd::Noalert {
                    meta.noalert = true;
                } else if names.is_empty() {
                    return malformed("flowbits needs a name");
                }
                matches.push(Match::Flowbits(
                    cmd,
                    names
                        .split(['|', '&'])
                        .map(|s| s.trim().to_string())
                        .filter(|s| !s.is_empty())
                        .collect(),
                    names.contains('&'),
                ));
            }
            "xbits" => {
                let raw = v.unwrap_or("");
                let parts: Vec<&str> = raw.split(',').map(str::trim).collect();
                let [cmd, name, rest @ ..] = &parts[..] else {
                    return malformed(format!("xbits {raw:?}: want command,name,track …"));
                };
                let cmd = match *cmd {
                    "set" => FlowbitsCmd::Set,
                    "unset" => FlowbitsCmd::Unset,
                    "isset" => FlowbitsCmd::Isset,
                    "isnotset" => FlowbitsCmd::Isnotset,
                    "toggle" => FlowbitsCmd::Toggle,
                    c => return malformed(format!("xbits command {c:?}")),
                };
                let (mut track, mut expire) = (None, 0);
                for o in rest {
                    match o
                        .split_once(char::is_whitespace)
                        .map(|(k, v)| (k, v.trim()))
                    {
                        Some(("track", "ip_src")) => track = Some(Track::Src),
                        Some(("track", "ip_dst")) => track = Some(Track::Dst),
                        Some(("track", "ip_pair")) => track = Some(Track::Both),
                        Some(("expire", n)) => expire = num::<u32>("xbits expire", Some(n))?,
                        _ => return malformed(format!("xbits option {o:?}")),
                    }
                }
                let Some(track) = track else {
                    return malformed("xbits needs track ip_src, ip_dst or ip_pair");
                };
                matches.push(Match::Xbits {
                    cmd,
                    name: name.to_string(),
                    track,
                    expire,
                });
            }
            "threshold" | "detection_filter" => {
                let (mut kind, mut tr, mut count, mut seconds) = (None, None, None, None);
                for (k, val) in kv_list(&key, v)? {
                    match k.as_str() {
                        "type" => {
                            kind = Some(match val.as_str() {
                                "limit" => ThresholdKind::Limit,
                                "threshold" => ThresholdKind::Threshold,
                                "both" => ThresholdKind::Both,
                                t => return malformed(format!("threshold type {t:?}")),
                            })
                        }
                        "track" => tr = Some(track(&val)?),
                        "count" => count = Some(num("count", Some(&val))?),
                        "seconds" => seconds = Some(num("seconds", Some(&val))?),
                        other => return malformed(format!("{key}: unknown field {other:?}")),
                    }
                }
                let (Some(track), Some(count), Some(seconds)) = (tr, count, seconds) else {
                    return malformed(format!("{key} needs track, count and seconds"));
                };
                matches.push(if key == "threshold" {
                    let Some(kind) = kind else {
                        return malformed("threshold needs a type");
                    };
                    Match::Threshold {
                        kind,
                        track,
                        count,
                        seconds,
                    }
                } else {
                    Match::DetectionFilter {
                        track,
                        count,
                        seconds,
                    }
                });
            }
            other => return unsupported(format!("keyword {other}")),
        }
    }
    if !saw_sid {
        return malformed("no sid");
    }
    if matches!(header.proto, Proto::Icmp | Proto::Icmpv6)
        && matches
            .iter()
            .any(|m| matches!(m, Match::Buffer(b) if *b != Buffer::Packet))
    {
        return malformed("an application buffer in an ICMP rule");
    }
    Ok((meta, matches))
}

fn pcre(v: Option<&str>, buffer: Buffer) -> Result<Pcre, RuleError> {
    let raw = v
        .ok_or_else(|| RuleError::Malformed("pcre needs a value".into()))?
        .trim();
    let (negated, raw) = match raw.strip_prefix('!') {
        Some(r) => (true, r.trim()),
        None => (false, raw),
    };
    let inner = unquote(raw)?;
    let body = inner
        .strip_prefix('/')
        .ok_or_else(|| RuleError::Malformed(format!("pcre {inner:?} does not start with '/'")))?;
    let end = body
        .rfind('/')
        .ok_or_else(|| RuleError::Malformed(format!("pcre {inner:?} has no closing '/'")))?;
    let (pattern, flags) = (&body[..end], &body[end + 1..]);
    let mut buf = buffer;
    for f in flags.chars() {
        let b = match f {
            'i' | 's' | 'm' | 'x' | 'R' | 'O' | 'B' | 'A' | 'E' | 'G' => None,
            'U' => Some(Buffer::HttpUri),
            'I' => Some(Buffer::HttpUriRaw),
            'P' => Some(Buffer::HttpRequestBody),
            'Q' => Some(Buffer::HttpResponseBody),
            'H' => Some(Buffer::HttpHeader),
            'M' => Some(Buffer::HttpMethod),
            'C' => Some(Buffer::HttpCookie),
            'S' => Some(Buffer::HttpStatCode),
            'V' => Some(Buffer::HttpUserAgent),
            'W' => Some(Buffer::HttpHost),
            'D' | 'Y' | 'Z' => {
                return unsupported(format!("pcre flag {f} (raw header / stat msg / raw host)"));
            }
            f => return malformed(format!("pcre flag {f:?}")),
        };
        if let Some(b) = b {
            buf = b;
        }
    }
    Ok(Pcre {
        pattern: pattern.to_string(),
        negated,
        flags: flags.to_string(),
        relative: flags.contains('R'),
        buffer: buf,
    })
}
