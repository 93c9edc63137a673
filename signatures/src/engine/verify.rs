//! Verification of one candidate rule against the buffers of an inspection.

use super::{CompiledRule, Inspection, header_admits};
use crate::rule::content::Value;
use crate::rule::options::SizeCmp;
use crate::rule::{Buffer, Content, Pcre, Transform};

/// Most content placements tried per rule and buffer before giving up (bounds the
/// backtracking of relative matches on hostile payloads).
const MAX_TRIES: u32 = 4096;

// Steps are built once per rule and only borrowed on the data path; boxing the content
// variant would add an indirection to every check for no saving that matters.
#[allow(clippy::large_enum_variant)]
pub enum Step {
    /// A content, for exact-case patterns its searcher built once at compile time, and the
    /// byte_extract variables its modifiers read.
    Content(
        Content,
        Option<memchr::memmem::Finder<'static>>,
        ContentVars,
    ),
    Pcre {
        re: Pattern,
        negated: bool,
        relative: bool,
    },
    IsDataAt {
        offset: usize,
        relative: bool,
        negated: bool,
    },
    Bsize(SizeCmp),
    Transform(Transform),
    ByteTest(ByteTest),
    ByteJump(ByteJump),
    ByteExtract(ByteExtract),
    /// base64_decode: the steps after it match the decoded bytes.
    Base64 {
        bytes: Option<usize>,
        offset: usize,
        relative: bool,
    },
}

/// Most decoded bytes base64_decode produces.
const BASE64_MAX: usize = 64 * 1024;

/// Decodes base64 from the start of `src` until the first byte outside the alphabet
/// (padding and line ends end it too), as Suricata's base64_decode does by default.
fn base64_decode(src: &[u8], out: &mut Vec<u8>) {
    let value = |c: u8| match c {
        b'A'..=b'Z' => Some(c - b'A'),
        b'a'..=b'z' => Some(c - b'a' + 26),
        b'0'..=b'9' => Some(c - b'0' + 52),
        b'+' => Some(62),
        b'/' => Some(63),
        _ => None,
    };
    let (mut acc, mut bits) = (0u32, 0);
    for v in src.iter().map_while(|&c| value(c)) {
        acc = acc << 6 | u32::from(v);
        bits += 6;
        if bits >= 8 {
            bits -= 8;
            out.push((acc >> bits) as u8);
            if out.len() == BASE64_MAX {
                return;
            }
        }
    }
}

/// byte_extract variables one rule may define.
pub const MAX_VARS: usize = 4;
/// Their values while one rule is verified.
type Vars = [u64; MAX_VARS];

/// For `depth`, `offset`, `distance`, `within`: the variable slot each one reads, if any.
pub type ContentVars = [Option<u8>; 4];

/// The variables of a rule being compiled, in order of definition.
#[derive(Default)]
pub(crate) struct VarNames(Vec<String>);

impl VarNames {
    pub(crate) fn slot(&self, name: &str) -> Result<u8, String> {
        self.0
            .iter()
            .position(|n| n == name)
            .map(|i| i as u8)
            .ok_or_else(|| format!("unknown byte_extract variable {name:?}"))
    }
    fn define(&mut self, name: &str) -> Result<u8, String> {
        if let Ok(s) = self.slot(name) {
            return Ok(s);
        }
        if self.0.len() == MAX_VARS {
            return Err(format!("more than {MAX_VARS} byte_extract variables"));
        }
        self.0.push(name.to_string());
        Ok((self.0.len() - 1) as u8)
    }
}

#[derive(Clone, Copy, Debug)]
pub struct ByteExtract {
    read: ByteRead,
    slot: u8,
    multiplier: u64,
    align: u64,
}

/// A number or a variable, as `byte_test` and `byte_jump` take them.
fn operand(s: &str, what: &str, names: &VarNames) -> Result<(i64, Option<u8>), String> {
    match int(s, what) {
        Ok(n) => Ok((n, None)),
        Err(e) if e.starts_with("byte_extract variable") => Ok((0, Some(names.slot(s.trim())?))),
        Err(e) => Err(e),
    }
}

/// How a number is read out of the buffer (byte_test, byte_jump).
#[derive(Clone, Copy, Debug)]
pub struct ByteRead {
    bytes: usize,
    offset: i64,
    /// The offset comes from this variable.
    offset_var: Option<u8>,
    relative: bool,
    little: bool,
    /// `Some(base)` for `string, dec|hex|oct`.
    string: Option<u32>,
    bitmask: Option<u64>,
}

#[derive(Clone, Copy, Debug)]
pub struct ByteTest {
    read: ByteRead,
    op: u8,
    negated: bool,
    value: u64,
    value_var: Option<u8>,
}

#[derive(Clone, Copy, Debug)]
pub struct ByteJump {
    read: ByteRead,
    multiplier: u64,
    align: bool,
    from_beginning: bool,
    from_end: bool,
    post_offset: i64,
}

fn int(s: &str, what: &str) -> Result<i64, String> {
    let t = s.trim();
    let v = if let Some(h) = t.strip_prefix("0x").or(t.strip_prefix("0X")) {
        i64::from_str_radix(h, 16)
    } else {
        t.parse::<i64>()
    };
    v.map_err(|_| {
        if t.chars()
            .next()
            .is_some_and(|c| c.is_ascii_alphabetic() || c == '_')
        {
            format!("byte_extract variable {t:?} as the {what}")
        } else {
            format!("{what} {t:?} is not a number")
        }
    })
}

/// Reads the common options; returns the read and the options it did not know.
fn byte_read(
    bytes: &str,
    offset: &str,
    opts: &[String],
    names: &VarNames,
) -> Result<(ByteRead, Vec<String>), String> {
    let n = int(bytes, "byte count")?;
    let (offset, offset_var) = operand(offset, "offset", names)?;
    let mut r = ByteRead {
        bytes: usize::try_from(n).map_err(|_| "byte count must be positive".to_string())?,
        offset,
        offset_var,
        relative: false,
        little: false,
        string: None,
        bitmask: None,
    };
    let mut rest = Vec::new();
    let mut it = opts.iter().map(|o| o.trim()).peekable();
    while let Some(o) = it.next() {
        match o {
            "relative" => r.relative = true,
            "little" => r.little = true,
            "big" => r.little = false,
            "string" => {
                r.string = Some(match it.next() {
                    Some("hex") => 16,
                    Some("oct") => 8,
                    Some("dec") | None => 10,
                    Some(b) => return Err(format!("string base {b:?}")),
                })
            }
            "dce" => return Err("dce (DCERPC byte order)".into()),
            o if o.starts_with("bitmask") => {
                r.bitmask = Some(int(o.trim_start_matches("bitmask"), "bitmask")? as u64)
            }
            o => rest.push(o.to_string()),
        }
    }
    // With `string`, 0 bytes means the rest of the buffer (Suricata 7; used on
    // `http.content_len`).
    let max = if r.string.is_some() { 20 } else { 8 };
    if (r.bytes == 0 && r.string.is_none()) || r.bytes > max {
        return Err(format!("byte count {} (1 to {max})", r.bytes));
    }
    Ok((r, rest))
}

pub(crate) fn compile_byte_test(args: &[String], names: &VarNames) -> Result<Step, String> {
    let [bytes, op, value, offset, opts @ ..] = args else {
        return Err("byte_test needs bytes, operator, value, offset".into());
    };
    let (read, rest) = byte_read(bytes, offset, opts, names)?;
    if let Some(o) = rest.first() {
        return Err(format!("byte_test option {o:?}"));
    }
    let op = op.trim();
    let (negated, op) = match op.strip_prefix('!') {
        Some(o) => (true, o.trim()),
        None => (false, op),
    };
    let op = match op {
        "<" => b'<',
        ">" => b'>',
        "=" | "" => b'=',
        "<=" => b'l',
        ">=" => b'g',
        "&" => b'&',
        "^" => b'^',
        o => return Err(format!("byte_test operator {o:?}")),
    };
    let (value, value_var) = operand(value, "value", names)?;
    Ok(Step::ByteTest(ByteTest {
        read,
        op,
        negated,
        value: value as u64,
        value_var,
    }))
}

pub(crate) fn compile_byte_jump(args: &[String], names: &VarNames) -> Result<Step, String> {
    let [bytes, offset, opts @ ..] = args else {
        return Err("byte_jump needs bytes and offset".into());
    };
    let (read, rest) = byte_read(bytes, offset, opts, names)?;
    let mut j = ByteJump {
        read,
        multiplier: 1,
        align: false,
        from_beginning: false,
        from_end: false,
        post_offset: 0,
    };
    for o in rest {
        match o.as_str() {
            "align" => j.align = true,
            "from_beginning" => j.from_beginning = true,
            "from_end" => j.from_end = true,
            o if o.starts_with("multiplier") => {
                j.multiplier = int(o.trim_start_matches("multiplier"), "multiplier")? as u64
            }
            o if o.starts_with("post_offset") => {
                j.post_offset = int(o.trim_start_matches("post_offset"), "post_offset")?
            }
            o => return Err(format!("byte_jump option {o:?}")),
        }
    }
    Ok(Step::ByteJump(j))
}

/// `byte_extract:bytes,offset,name[,relative][,multiplier N][,align N][,endian][,string,base]`.
pub(crate) fn compile_byte_extract(args: &[String], names: &mut VarNames) -> Result<Step, String> {
    let [bytes, offset, name, opts @ ..] = args else {
        return Err("byte_extract needs bytes, offset and a name".into());
    };
    let (read, rest) = byte_read(bytes, offset, opts, names)?;
    let mut e = ByteExtract {
        read,
        slot: names.define(name.trim())?,
        multiplier: 1,
        align: 0,
    };
    for o in rest {
        if let Some(m) = o.strip_prefix("multiplier") {
            e.multiplier = int(m, "multiplier")? as u64;
        } else if let Some(a) = o.strip_prefix("align") {
            e.align = match int(a, "align")? {
                a @ (2 | 4) => a as u64,
                a => return Err(format!("align {a} (2 or 4)")),
            };
        } else {
            return Err(format!("byte_extract option {o:?}"));
        }
    }
    Ok(Step::ByteExtract(e))
}

/// Reads the number; returns it and the position just past it.
fn read_value(r: &ByteRead, buf: &[u8], prev: usize, vars: &Vars) -> Option<(u64, usize)> {
    let offset = match r.offset_var {
        Some(v) => i64::try_from(vars[usize::from(v)]).ok()?,
        None => r.offset,
    };
    let at = if r.relative {
        prev as i64 + offset
    } else {
        offset
    };
    let at = usize::try_from(at).ok()?;
    let n = if r.bytes == 0 {
        buf.len()
            .checked_sub(at)
            .filter(|&n| (1..=20).contains(&n))?
    } else {
        r.bytes
    };
    let raw = buf.get(at..at.checked_add(n)?)?;
    let mut v = match r.string {
        Some(base) => u64::from_str_radix(std::str::from_utf8(raw).ok()?.trim(), base).ok()?,
        None if r.little => raw.iter().rev().fold(0u64, |a, &b| (a << 8) | u64::from(b)),
        None => raw.iter().fold(0u64, |a, &b| (a << 8) | u64::from(b)),
    };
    if let Some(m) = r.bitmask.filter(|&m| m != 0) {
        v = (v & m) >> m.trailing_zeros();
    }
    Some((v, at + n))
}

/// A compiled pcre: the `regex` crate (linear time) where it can; PCRE2 itself for what
/// only PCRE has (backreferences, look-around), as Suricata runs them.
pub enum Pattern {
    Linear(regex::bytes::Regex),
    Pcre2(pcre2::bytes::Regex),
}

impl Pattern {
    /// End of the first match in `hay`. A PCRE2 run that hits its match limit counts as
    /// no match.
    fn find_end(&self, hay: &[u8]) -> Option<usize> {
        match self {
            Pattern::Linear(re) => re.find(hay).map(|m| m.end()),
            Pattern::Pcre2(re) => re.find(hay).ok().flatten().map(|m| m.end()),
        }
    }
}

/// PCRE2 for a pattern the `regex` crate refused.
fn compile_pcre2(p: &Pcre) -> Result<pcre2::bytes::Regex, String> {
    let mut b = pcre2::bytes::RegexBuilder::new();
    b.caseless(p.flags.contains('i'))
        .dotall(p.flags.contains('s'))
        .multi_line(p.flags.contains('m'))
        .extended(p.flags.contains('x'))
        .jit_if_available(true);
    b.build(&p.pattern)
        .map_err(|e| format!("pcre PCRE2 cannot compile: {e}"))
}

pub(crate) fn compile_pcre(p: &Pcre) -> Result<Step, String> {
    // The rule's modifiers switched on, then Unicode off (bytes, like PCRE without UTF
    // mode): `(?is-u)`. Everything after a `-` is switched off.
    let on: String = p.flags.chars().filter(|f| "ismx".contains(*f)).collect();
    let re = match regex::bytes::RegexBuilder::new(&format!("(?{on}-u){}", p.pattern))
        .size_limit(1 << 20)
        .dfa_size_limit(1 << 20)
        .build()
    {
        Ok(re) => Pattern::Linear(re),
        Err(_) => Pattern::Pcre2(compile_pcre2(p)?),
    };
    Ok(Step::Pcre {
        re,
        negated: p.negated,
        relative: p.relative,
    })
}

fn cmp(c: SizeCmp, n: usize) -> bool {
    let n = n as u64;
    match c {
        SizeCmp::Eq(x) => n == x,
        SizeCmp::Lt(x) => n < x,
        SizeCmp::Gt(x) => n > x,
        SizeCmp::Between(a, b) => n > a && n < b,
    }
}

pub(crate) fn rule_matches(r: &CompiledRule, p: &Inspection<'_>) -> bool {
    if !header_admits(r, p) {
        return false;
    }
    if r.direction.is_some_and(|d| d != p.to_server)
        || r.established.is_some_and(|e| e != p.established)
    {
        return false;
    }
    if r.dsize.is_some_and(|c| !cmp(c, p.payload_len))
        || r.flags
            .is_some_and(|f| p.proto != 6 || !f.matches(p.tcp_flags))
        || r.stream_size
            .is_some_and(|s| p.proto != 6 || !s.matches(p.stream_bytes.0, p.stream_bytes.1))
    {
        return false;
    }
    if let Some((negated, protos)) = &r.app_layer {
        let listed = protos.contains(&p.app_proto);
        // A negated list needs a protocol that is known (and not listed).
        if if *negated {
            listed || p.app_proto.is_none()
        } else {
            !listed
        } {
            return false;
        }
    }
    if r.itype.is_some() || r.icode.is_some() {
        let Some((t, c)) = p.icmp else { return false };
        if r.itype.is_some_and(|x| !cmp(x, usize::from(t)))
            || r.icode.is_some_and(|x| !cmp(x, usize::from(c)))
        {
            return false;
        }
    }
    // A buffer may come more than once (one per certificate): any instance may match.
    r.groups.iter().all(|(b, steps)| {
        let mut of_kind = p.buffers.iter().filter(|(pb, _)| pb == b).peekable();
        if of_kind.peek().is_none() {
            return steps
                .iter()
                .all(|s| matches!(s, Step::Content(c, ..) if c.negated));
        }
        of_kind.any(|(_, data)| group_matches(steps, data, *b))
    })
}

fn group_matches(steps: &[Step], data: &[u8], _b: Buffer) -> bool {
    let mut owned: Option<Vec<u8>> = None;
    let mut start = 0;
    for s in steps {
        match s {
            Step::Transform(Transform::ToLowercase) => {
                owned = Some(owned.as_deref().unwrap_or(data).to_ascii_lowercase())
            }
            Step::Transform(Transform::DotPrefix) => {
                let mut v = Vec::with_capacity(data.len() + 1);
                v.push(b'.');
                v.extend_from_slice(owned.as_deref().unwrap_or(data));
                owned = Some(v);
            }
            _ => break,
        }
        start += 1;
    }
    let buf = owned.as_deref().unwrap_or(data);
    let mut tries = 0;
    matches_from(&steps[start..], buf, 0, &mut tries, &mut [0; MAX_VARS])
}

/// A modifier's value: its number, or the variable it names.
fn num(v: &Option<Value>, var: Option<u8>, vars: &Vars) -> Option<i64> {
    match (v, var) {
        (Some(_), Some(slot)) => i64::try_from(vars[usize::from(slot)]).ok(),
        (Some(Value::Num(n)), None) => Some(*n),
        _ => None,
    }
}

/// Calls `f` with every start position of the content in `hay`, in order, until it returns
/// true; returns whether it did. No allocation: exact case uses the prebuilt memmem
/// finder, nocase scans on the first byte's two cases.
fn each_match(
    hay: &[u8],
    c: &Content,
    finder: Option<&memchr::memmem::Finder<'static>>,
    mut f: impl FnMut(usize) -> bool,
) -> bool {
    let needle = &c.pattern[..];
    if needle.is_empty() || needle.len() > hay.len() {
        return false;
    }
    if let Some(fd) = finder {
        return fd.find_iter(hay).any(&mut f);
    }
    let (lo, up) = (
        needle[0].to_ascii_lowercase(),
        needle[0].to_ascii_uppercase(),
    );
    let last = hay.len() - needle.len();
    memchr::memchr2_iter(lo, up, &hay[..=last])
        .filter(|&i| hay[i..i + needle.len()].eq_ignore_ascii_case(needle))
        .any(f)
}

/// Tries steps[0..] with the previous match ending at `prev`; backtracks over content
/// placements so that a later relative match can still succeed.
fn matches_from(steps: &[Step], buf: &[u8], prev: usize, tries: &mut u32, vars: &mut Vars) -> bool {
    let Some((step, rest)) = steps.split_first() else {
        return true;
    };
    *tries += 1;
    if *tries > MAX_TRIES {
        return false;
    }
    match step {
        Step::Content(c, finder, cv) => {
            let len = c.pattern.len();
            let relative = c.distance.is_some() || c.within.is_some();
            let (lo, hi) = if relative {
                let lo = prev as i64 + num(&c.distance, cv[2], vars).unwrap_or(0);
                let hi = num(&c.within, cv[3], vars).map_or(buf.len() as i64, |w| lo + w);
                (lo, hi)
            } else {
                let lo = if c.startswith {
                    0
                } else {
                    num(&c.offset, cv[1], vars).unwrap_or(0)
                };
                let hi = if c.startswith {
                    len as i64
                } else {
                    num(&c.depth, cv[0], vars).map_or(buf.len() as i64, |d| lo + d)
                };
                (lo, hi)
            };
            let lo = lo.clamp(0, buf.len() as i64) as usize;
            let hi = hi.clamp(0, buf.len() as i64) as usize;
            let region = if lo <= hi { &buf[lo..hi] } else { &buf[0..0] };
            let fits_end = |at: usize| !c.endswith || at + len == buf.len();
            if c.negated {
                let present = each_match(region, c, finder.as_ref(), |i| fits_end(lo + i));
                return !present && matches_from(rest, buf, prev, tries, vars);
            }
            // Stop at the first placement that lets the rest match, or when the budget is spent.
            each_match(region, c, finder.as_ref(), |i| {
                let at = lo + i;
                fits_end(at)
                    && (matches_from(rest, buf, at + len, tries, vars) || *tries > MAX_TRIES)
            }) && *tries <= MAX_TRIES
        }
        Step::Pcre {
            re,
            negated,
            relative,
        } => {
            let from = if *relative { prev.min(buf.len()) } else { 0 };
            match (re.find_end(&buf[from..]), negated) {
                (Some(end), false) => matches_from(rest, buf, from + end, tries, vars),
                (None, true) => matches_from(rest, buf, prev, tries, vars),
                _ => false,
            }
        }
        Step::IsDataAt {
            offset,
            relative,
            negated,
        } => {
            let at = if *relative { prev + offset } else { *offset };
            (at < buf.len()) != *negated && matches_from(rest, buf, prev, tries, vars)
        }
        Step::Bsize(c) => cmp(*c, buf.len()) && matches_from(rest, buf, prev, tries, vars),
        Step::ByteTest(t) => {
            let Some((v, _)) = read_value(&t.read, buf, prev, vars) else {
                return false;
            };
            let want = t.value_var.map_or(t.value, |x| vars[usize::from(x)]);
            let ok = match t.op {
                b'<' => v < want,
                b'>' => v > want,
                b'=' => v == want,
                b'l' => v <= want,
                b'g' => v >= want,
                b'&' => v & want != 0,
                _ => v ^ want != 0,
            };
            ok != t.negated && matches_from(rest, buf, prev, tries, vars)
        }
        Step::ByteJump(j) => {
            let Some((v, after)) = read_value(&j.read, buf, prev, vars) else {
                return false;
            };
            let mut jump = v.saturating_mul(j.multiplier);
            if j.align {
                jump = jump.saturating_add(3) & !3;
            }
            let base = if j.from_end {
                buf.len() as i64
            } else if j.from_beginning {
                0
            } else {
                after as i64
            };
            let to = base
                .saturating_add(i64::try_from(jump).unwrap_or(i64::MAX))
                .saturating_add(j.post_offset);
            match usize::try_from(to) {
                Ok(to) if to <= buf.len() => matches_from(rest, buf, to, tries, vars),
                _ => false,
            }
        }
        Step::Transform(_) => matches_from(rest, buf, prev, tries, vars),
        Step::Base64 {
            bytes,
            offset,
            relative,
        } => {
            let start = if *relative { prev + offset } else { *offset };
            let Some(src) = buf.get(start..) else {
                return false;
            };
            let src = &src[..bytes.map_or(src.len(), |b| b.min(src.len()))];
            // Allocates: only a candidate that got this far decodes, once per check.
            let mut decoded = Vec::new();
            base64_decode(src, &mut decoded);
            !decoded.is_empty() && matches_from(rest, &decoded, 0, tries, vars)
        }
        Step::ByteExtract(e) => {
            let Some((v, after)) = read_value(&e.read, buf, prev, vars) else {
                return false;
            };
            let mut v = v.saturating_mul(e.multiplier);
            if e.align > 0 {
                v = v.div_ceil(e.align) * e.align;
            }
            vars[usize::from(e.slot)] = v;
            matches_from(rest, buf, after, tries, vars)
        }
    }
}
