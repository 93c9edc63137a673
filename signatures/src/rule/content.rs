//! `content:` patterns and their modifiers.

use super::options::Buffer;
use super::{RuleError, malformed};

/// A distance/within/offset/depth value: a number or a `byte_extract` variable.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Value {
    Num(i64),
    Var(String),
}

#[derive(Clone, Debug, PartialEq, Eq, Default)]
pub struct Content {
    pub pattern: Vec<u8>,
    pub negated: bool,
    pub nocase: bool,
    pub depth: Option<Value>,
    pub offset: Option<Value>,
    pub distance: Option<Value>,
    pub within: Option<Value>,
    pub fast_pattern: bool,
    pub startswith: bool,
    pub endswith: bool,
    pub buffer: Buffer,
}

/// Decodes a content string (quotes already removed): `|hex hex|` runs and `\"`, `\;`,
/// `\\`, `\:` escapes.
pub fn parse_content_pattern(s: &str) -> Result<Vec<u8>, RuleError> {
    let b = s.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        match b[i] {
            b'|' => {
                let end = s[i + 1..].find('|').map(|e| i + 1 + e).ok_or_else(|| {
                    RuleError::Malformed(format!("unterminated hex run in content {s:?}"))
                })?;
                let hex: String = s[i + 1..end]
                    .chars()
                    .filter(|c| !c.is_whitespace())
                    .collect();
                if !hex.len().is_multiple_of(2) {
                    return malformed(format!("odd number of hex digits in content {s:?}"));
                }
                for k in (0..hex.len()).step_by(2) {
                    let byte = u8::from_str_radix(&hex[k..k + 2], 16).map_err(|_| {
                        RuleError::Malformed(format!("bad hex {:?} in content", &hex[k..k + 2]))
                    })?;
                    out.push(byte);
                }
                i = end + 1;
            }
            b'\\' => {
                match b.get(i + 1) {
                    Some(&c @ (b'"' | b';' | b'\\' | b':' | b'|')) => out.push(c),
                    Some(c) => {
                        return malformed(format!("unknown escape '\\{}' in content", *c as char));
                    }
                    None => return malformed("content ends with a backslash"),
                }
                i += 2;
            }
            b'"' => return malformed("unescaped '\"' inside content"),
            c => {
                out.push(c);
                i += 1;
            }
        }
    }
    if out.is_empty() {
        return malformed("empty content");
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hex_and_escapes() {
        assert_eq!(
            parse_content_pattern("GET |20 2F|a\\;b\\\"c").unwrap(),
            b"GET  /a;b\"c".to_vec()
        );
        assert_eq!(parse_content_pattern("|0d0a|").unwrap(), b"\r\n".to_vec());
        assert!(parse_content_pattern("|0d0|").is_err());
        assert!(parse_content_pattern("|zz|").is_err());
        assert!(parse_content_pattern("abc|00").is_err());
        assert!(parse_content_pattern("a\\qb").is_err());
        assert!(parse_content_pattern("").is_err());
    }
}
