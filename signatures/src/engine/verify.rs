//! Verification of one candidate rule against the buffers of an inspection.

use super::{CompiledRule, Inspection, header_admits};
use crate::rule::content::Value;
use crate::rule::options::SizeCmp;
use crate::rule::{Buffer, Content, Pcre, Transform};

/// Most content placements tried per rule and buffer before giving up (bounds the
/// backtracking of relative matches on hostile payloads).
const MAX_TRIES: u32 = 4096;

pub enum Step {
    /// A content and, for exact-case patterns, its searcher built once at compile time.
    Content(Content, Option<memchr::memmem::Finder<'static>>),
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
                .all(|s| matches!(s, Step::Content(c, _) if c.negated)),
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
fn matches_from(steps: &[Step], buf: &[u8], prev: usize, tries: &mut u32) -> bool {
    let Some((step, rest)) = steps.split_first() else {
        return true;
    };
    *tries += 1;
    if *tries > MAX_TRIES {
        return false;
    }
    match step {
        Step::Content(c, finder) => {
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
            let fits_end = |at: usize| !c.endswith || at + len == buf.len();
            if c.negated {
                let present = each_match(region, c, finder.as_ref(), |i| fits_end(lo + i));
                return !present && matches_from(rest, buf, prev, tries);
            }
            // Stop at the first placement that lets the rest match, or when the budget is spent.
            each_match(region, c, finder.as_ref(), |i| {
                let at = lo + i;
                fits_end(at) && (matches_from(rest, buf, at + len, tries) || *tries > MAX_TRIES)
            }) && *tries <= MAX_TRIES
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
