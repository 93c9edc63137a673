//! Loading rule files: line continuations, comments, disabled rules, duplicate sids, and a
//! report of what was loaded and what was skipped (file, line, sid, reason).

use super::{Rule, RuleError, Vars, parse_rule};
use serde::Serialize;
use std::collections::{BTreeMap, HashMap, HashSet};
use std::path::Path;

/// `classification.config`: classtype → (description, priority).
#[derive(Clone, Debug, Default)]
pub struct Classifications(pub HashMap<String, (String, u8)>);

impl Classifications {
    /// Parses `config classification: name,description,priority` lines; a bad line is an
    /// error naming the file and line.
    pub fn load(path: &Path) -> Result<Self, String> {
        let text = std::fs::read_to_string(path).map_err(|e| format!("{}: {e}", path.display()))?;
        let mut map = HashMap::new();
        for (i, line) in text.lines().enumerate() {
            let line = line.trim();
            let Some(rest) = line.strip_prefix("config classification:") else {
                continue;
            };
            let parts: Vec<&str> = rest.split(',').map(str::trim).collect();
            let prio = parts.get(2).and_then(|p| p.parse::<u8>().ok());
            match (parts.first(), parts.get(1), prio) {
                (Some(name), Some(desc), Some(p)) if parts.len() == 3 && !name.is_empty() => {
                    map.insert(name.to_string(), (desc.to_string(), p));
                }
                _ => {
                    return Err(format!(
                        "{}:{}: expected 'config classification: name,description,priority'",
                        path.display(),
                        i + 1
                    ));
                }
            }
        }
        Ok(Classifications(map))
    }

    /// The priority a rule alerts with: its own `priority`, else its classtype's, else 3.
    pub fn priority(&self, r: &Rule) -> u8 {
        r.meta
            .priority
            .or_else(|| {
                r.meta
                    .classtype
                    .as_ref()
                    .and_then(|c| self.0.get(c))
                    .map(|(_, p)| *p)
            })
            .unwrap_or(3)
    }
}

/// A loaded rule and where it came from.
#[derive(Clone, Debug)]
pub struct Loaded {
    pub rule: Rule,
    pub file: String,
    pub line: usize,
}

#[derive(Clone, Debug, Default)]
pub struct RuleSet {
    pub rules: Vec<Loaded>,
}

#[derive(Clone, Debug, Serialize)]
pub struct Skipped {
    pub file: String,
    pub line: usize,
    pub sid: Option<u32>,
    pub reason: String,
}

#[derive(Clone, Debug, Default, Serialize)]
pub struct LoadReport {
    pub files: usize,
    /// Rule lines that are not commented out.
    pub enabled: usize,
    pub loaded: usize,
    /// Commented-out rules (`# alert …`), not counted as enabled.
    pub disabled: usize,
    /// Skipped rules by reason, most common first in `top_reasons`.
    pub skipped_by_reason: BTreeMap<String, usize>,
    pub skipped: Vec<Skipped>,
}

impl LoadReport {
    pub fn loaded_share(&self) -> f64 {
        self.loaded as f64 / self.enabled.max(1) as f64
    }
    pub fn top_reasons(&self, n: usize) -> Vec<(&str, usize)> {
        let mut v: Vec<_> = self
            .skipped_by_reason
            .iter()
            .map(|(k, &c)| (k.as_str(), c))
            .collect();
        v.sort_by(|a, b| b.1.cmp(&a.1).then(a.0.cmp(b.0)));
        v.truncate(n);
        v
    }
}

/// Groups messages so the report counts kinds of problems, not individual values.
fn reason_class(e: &RuleError) -> String {
    match e {
        RuleError::Unsupported(m) => format!("unsupported {m}"),
        RuleError::Malformed(m) => {
            let cut = m.find(['"', ':', '/']).unwrap_or(m.len());
            format!("malformed: {}", m[..cut].trim())
        }
    }
}

fn sid_of(text: &str) -> Option<u32> {
    let at = text.find("sid:")?;
    let rest = text[at + 4..].trim_start();
    let end = rest
        .find(|c: char| !c.is_ascii_digit())
        .unwrap_or(rest.len());
    rest[..end].parse().ok()
}

fn looks_like_rule(s: &str) -> bool {
    [
        "alert ",
        "drop ",
        "reject ",
        "pass ",
        "rejectsrc ",
        "rejectdst ",
        "rejectboth ",
    ]
    .iter()
    .any(|a| s.starts_with(a))
}

/// Loads every rule in `paths` (files, or directories of `*.rules`). An unreadable file
/// is an error; a rule that cannot be used is skipped and reported, never fatal.
pub fn load_files(paths: &[&Path], vars: &Vars) -> Result<(RuleSet, LoadReport), String> {
    let mut files = Vec::new();
    for p in paths {
        if p.is_dir() {
            let mut entries: Vec<_> = std::fs::read_dir(p)
                .map_err(|e| format!("{}: {e}", p.display()))?
                .filter_map(|e| e.ok().map(|e| e.path()))
                .filter(|f| f.extension().is_some_and(|x| x == "rules"))
                .collect();
            entries.sort();
            files.extend(entries);
        } else {
            files.push(p.to_path_buf());
        }
    }
    let mut texts = Vec::with_capacity(files.len());
    for f in &files {
        let bytes = std::fs::read(f).map_err(|e| format!("{}: {e}", f.display()))?;
        texts.push((f.display().to_string(), bytes));
    }
    let named: Vec<(&str, &[u8])> = texts
        .iter()
        .map(|(n, b)| (n.as_str(), b.as_slice()))
        .collect();
    Ok(load_texts(&named, vars))
}

/// Loads every rule in `texts` (a name for messages, the file's bytes), as [`load_files`]
/// does with files: the parts of a pattern bundle are loaded this way.
pub fn load_texts(texts: &[(&str, &[u8])], vars: &Vars) -> (RuleSet, LoadReport) {
    let mut set = RuleSet::default();
    let mut report = LoadReport {
        files: texts.len(),
        ..LoadReport::default()
    };
    let mut seen: HashSet<(u32, u32)> = HashSet::new();
    for (name, bytes) in texts {
        let text = String::from_utf8_lossy(bytes);
        let name = name.to_string();
        let mut pending = String::new();
        let mut start = 0;
        for (i, raw) in text.lines().enumerate() {
            if pending.is_empty() {
                start = i + 1;
            }
            let line = raw.trim_end();
            if let Some(cont) = line.strip_suffix('\\') {
                pending.push_str(cont);
                continue;
            }
            pending.push_str(line);
            let full = std::mem::take(&mut pending);
            let t = full.trim();
            if t.is_empty() {
                continue;
            }
            if let Some(c) = t.strip_prefix('#') {
                if looks_like_rule(c.trim_start()) {
                    report.disabled += 1;
                }
                continue;
            }
            report.enabled += 1;
            let skip = |reason: String, report: &mut LoadReport| {
                let class = reason.clone();
                *report.skipped_by_reason.entry(class).or_default() += 1;
                report.skipped.push(Skipped {
                    file: name.clone(),
                    line: start,
                    sid: sid_of(t),
                    reason,
                });
            };
            match parse_rule(t, vars) {
                Ok(rule) => {
                    if !seen.insert((rule.meta.gid, rule.meta.sid)) {
                        skip(
                            format!("duplicate sid {}:{}", rule.meta.gid, rule.meta.sid),
                            &mut report,
                        );
                        continue;
                    }
                    report.loaded += 1;
                    set.rules.push(super::load::Loaded {
                        rule,
                        file: name.clone(),
                        line: start,
                    });
                }
                Err(e) => {
                    let class = reason_class(&e);
                    *report.skipped_by_reason.entry(class).or_default() += 1;
                    report.skipped.push(Skipped {
                        file: name.clone(),
                        line: start,
                        sid: sid_of(t),
                        reason: e.to_string(),
                    });
                }
            }
        }
        if !pending.trim().is_empty() {
            report.enabled += 1;
            *report
                .skipped_by_reason
                .entry("malformed: file ends inside a continued line".into())
                .or_default() += 1;
            report.skipped.push(Skipped {
                file: name.clone(),
                line: start,
                sid: sid_of(&pending),
                reason: "malformed: file ends inside a continued line".into(),
            });
        }
    }
    // Duplicate-sid reasons carry the sid; fold them into one class for the summary.
    let dups: usize = report
        .skipped_by_reason
        .iter()
        .filter(|(k, _)| k.starts_with("duplicate sid"))
        .map(|(_, v)| v)
        .sum();
    report
        .skipped_by_reason
        .retain(|k, _| !k.starts_with("duplicate sid"));
    if dups > 0 {
        report
            .skipped_by_reason
            .insert("duplicate sid".into(), dups);
    }
    (set, report)
}
