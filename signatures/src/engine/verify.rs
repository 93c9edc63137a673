//! Verification of one candidate rule against the buffers of an inspection.

use super::{CompiledRule, Inspection, header_admits};
use crate::rule::content::Value;
use crate::rule::options::SizeCmp;
use crate::rule::{Buffer, Content, Pcre, Transform};

/// Most content placements tried per rule and buffer before giving up (bounds the
/// backtracking of relative matches on hostile payloads).
const MAX_TRIES: u32 = 4096;

pub enum Step {
    Content(Content),
    Pcre {
        re: regex::bytes::Regex,
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
}

pub(crate) fn compile_pcre(p: &Pcre) -> Result<Step, String> {
    let mut flags = String::from("-u"); // bytes, like PCRE without UTF mode
    for f in p.flags.chars() {
        match f {
            'i' => flags.push('i'),
            's' => flags.push('s'),
            'm' => flags.push('m'),
            'x' => flags.push('x'),
            _ => {}
        }
    }
    let re = regex::bytes::RegexBuilder::new(&format!("(?{flags}){}", p.pattern))
        .size_limit(1 << 20)
        .dfa_size_limit(1 << 20)
        .build()
        .map_err(|e| {
            let first = e
                .to_string()
                .lines()
                .last()
                .unwrap_or("")
                .trim()
                .to_string();
            format!(
                "pcre the regex crate cannot compile ({})",
                if first.contains("look-around") {
                    "look-around"
                } else if first.contains("backreference") {
                    "backreference"
                } else {
                    "syntax"
                }
            )
        })?;
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
    if r.dsize.is_some_and(|c| !cmp(c, p.payload_len)) {
        return false;
    }
    r.groups.iter().all(
        |(b, steps)| match p.buffers.iter().find(|(pb, _)| pb == b) {
            Some((_, data)) => group_matches(steps, data, *b),
            None => steps
                .iter()
                .all(|s| matches!(s, Step::Content(c) if c.negated)),
        },
    )
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
    matches_from(&steps[start..], buf, 0, &mut tries)
}

fn num(v: &Option<Value>) -> Option<i64> {
    match v {
        Some(Value::Num(n)) => Some(*n),
        _ => None,
    }
}

/// Every start position of `needle` in `hay` (memchr's memmem for exact case; a scan on
/// the first byte's two cases for nocase).
fn find_all<'a>(
    hay: &'a [u8],
    needle: &'a [u8],
    nocase: bool,
) -> Box<dyn Iterator<Item = usize> + 'a> {
    if needle.is_empty() || needle.len() > hay.len() {
        return Box::new(std::iter::empty());
    }
    if !nocase {
        return Box::new(memchr::memmem::find_iter(hay, needle));
    }
    let (lo, up) = (
        needle[0].to_ascii_lowercase(),
        needle[0].to_ascii_uppercase(),
    );
    let last = hay.len() - needle.len();
    Box::new(
        memchr::memchr2_iter(lo, up, &hay[..=last])
            .filter(move |&i| hay[i..i + needle.len()].eq_ignore_ascii_case(needle)),
    )
}

/// Tries steps[0..] with the previous match ending at `prev`; backtracks over content
/// placements so that a later relative match can still succeed.
fn matches_from(steps: &[Step], buf: &[u8], prev: usize, tries: &mut u32) -> bool {
    let Some((step, rest)) = steps.split_first() else {
        return true;
    };
    *tries += 1;
    if *tries > MAX_TRIES {
        return false;
    }
    match step {
        Step::Content(c) => {
            let len = c.pattern.len();
            let relative = c.distance.is_some() || c.within.is_some();
            let (lo, hi) = if relative {
                let lo = prev as i64 + num(&c.distance).unwrap_or(0);
                let hi = num(&c.within).map_or(buf.len() as i64, |w| lo + w);
                (lo, hi)
            } else {
                let lo = if c.startswith {
                    0
                } else {
                    num(&c.offset).unwrap_or(0)
                };
                let hi = if c.startswith {
                    len as i64
                } else {
                    num(&c.depth).map_or(buf.len() as i64, |d| lo + d)
                };
                (lo, hi)
            };
            let lo = lo.clamp(0, buf.len() as i64) as usize;
            let hi = hi.clamp(0, buf.len() as i64) as usize;
            let region = if lo <= hi { &buf[lo..hi] } else { &buf[0..0] };
            let found = find_all(region, &c.pattern, c.nocase)
                .map(|i| lo + i)
                .filter(|&at| !c.endswith || at + len == buf.len());
            if c.negated {
                let mut any = found;
                return any.next().is_none() && matches_from(rest, buf, prev, tries);
            }
            for at in found {
                if matches_from(rest, buf, at + len, tries) {
                    return true;
                }
                if *tries > MAX_TRIES {
                    return false;
                }
            }
            false
        }
        Step::Pcre {
            re,
            negated,
            relative,
        } => {
            let from = if *relative { prev.min(buf.len()) } else { 0 };
            match (re.find(&buf[from..]), negated) {
                (Some(m), false) => matches_from(rest, buf, from + m.end(), tries),
                (None, true) => matches_from(rest, buf, prev, tries),
                _ => false,
            }
        }
        Step::IsDataAt {
            offset,
            relative,
            negated,
        } => {
            let at = if *relative { prev + offset } else { *offset };
            (at < buf.len()) != *negated && matches_from(rest, buf, prev, tries)
        }
        Step::Bsize(c) => cmp(*c, buf.len()) && matches_from(rest, buf, prev, tries),
        Step::Transform(_) => matches_from(rest, buf, prev, tries),
    }
}
