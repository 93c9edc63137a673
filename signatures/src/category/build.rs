//! Building the database from lists.

use super::db::{self, MatchKind};
use super::{name_hash, split_url, valid_name};
use serde::Serialize;
use std::collections::BTreeMap;
use std::path::Path;

#[derive(Default)]
pub struct Builder {
    sources: Vec<(String, String)>,
    categories: Vec<String>,
    entries: Vec<db::RawEntry>,
    pub report: BuildReport,
}

#[derive(Clone, Debug, Default, Serialize)]
pub struct BuildReport {
    pub domains: u64,
    pub urls: u64,
    /// Lines that are not valid names, per file (counted, never fatal).
    pub invalid: BTreeMap<String, u64>,
    pub duplicates: u64,
}

impl Builder {
    pub fn source(&mut self, name: &str, date: &str) -> u16 {
        if let Some(i) = self.sources.iter().position(|(n, _)| n == name) {
            return i as u16;
        }
        self.sources.push((name.to_string(), date.to_string()));
        (self.sources.len() - 1) as u16
    }

    pub fn category(&mut self, name: &str) -> u16 {
        if let Some(i) = self.categories.iter().position(|n| n == name) {
            return i as u16;
        }
        self.categories.push(name.to_string());
        (self.categories.len() - 1) as u16
    }

    /// A domain (and its subdomains), or an address (see [`super::address_name`]).
    pub fn add_domain(&mut self, name: &str, cat: u16, src: u16) -> bool {
        let mut n = name.trim().trim_end_matches('.').to_ascii_lowercase();
        if let Ok(a) = n.parse::<std::net::Ipv6Addr>() {
            let mut buf = [0u8; super::ADDRESS_NAME_MAX];
            n = super::address_name(a.into(), &mut buf).to_string();
        }
        if !valid_name(&n) {
            return false;
        }
        self.entries.push(db::RawEntry {
            hash: name_hash(MatchKind::Domain, n.as_bytes()),
            cat,
            src,
            kind: MatchKind::Domain,
        });
        self.report.domains += 1;
        true
    }

    /// A URL entry: `host/path` (scheme, www and port stripped; trailing `/` ignored).
    pub fn add_url(&mut self, url: &str, cat: u16, src: u16) -> bool {
        let (host, path) = split_url(url.trim());
        if !valid_name(&host.to_ascii_lowercase()) {
            return false;
        }
        let key = format!(
            "{}{}",
            host.to_ascii_lowercase(),
            path.trim_end_matches('/')
        );
        self.entries.push(db::RawEntry {
            hash: name_hash(MatchKind::Url, key.as_bytes()),
            cat,
            src,
            kind: MatchKind::Url,
        });
        self.report.urls += 1;
        true
    }

    fn count_invalid(&mut self, file: &Path) {
        *self
            .report
            .invalid
            .entry(file.display().to_string())
            .or_default() += 1;
    }

    /// A squidGuard/UT1 folder: `<category>/domains` and `<category>/urls`.
    pub fn add_squidguard_dir(
        &mut self,
        dir: &Path,
        source: &str,
        date: &str,
    ) -> Result<(), String> {
        let src = self.source(source, date);
        let mut cats: Vec<_> = std::fs::read_dir(dir)
            .map_err(|e| format!("{}: {e}", dir.display()))?
            .filter_map(|e| e.ok())
            .filter(|e| e.path().is_dir())
            .collect();
        cats.sort_by_key(|e| e.file_name());
        for c in cats {
            let name = c.file_name().to_string_lossy().to_string();
            let cat = self.category(&name);
            for (file, is_url) in [("domains", false), ("urls", true)] {
                let p = c.path().join(file);
                if !p.exists() {
                    continue;
                }
                let text = read_lossy(&p)?;
                for line in text
                    .lines()
                    .map(str::trim)
                    .filter(|l| !l.is_empty() && !l.starts_with('#'))
                {
                    let ok = if is_url {
                        self.add_url(line, cat, src)
                    } else {
                        self.add_domain(line, cat, src)
                    };
                    if !ok {
                        self.count_invalid(&p);
                    }
                }
            }
        }
        Ok(())
    }

    /// A hosts-format or plain list (`0.0.0.0 name`, `name`, `||name^`), all in `category`.
    pub fn add_hosts_file(
        &mut self,
        file: &Path,
        category: &str,
        source: &str,
        date: &str,
    ) -> Result<(), String> {
        let src = self.source(source, date);
        let cat = self.category(category);
        let text = read_lossy(file)?;
        for line in text
            .lines()
            .map(str::trim)
            .filter(|l| !l.is_empty() && !l.starts_with('#') && !l.starts_with('!'))
        {
            let mut words = line.split_whitespace();
            let first = words.next().unwrap_or("");
            // `0.0.0.0 name` is hosts format; a line that is only an address lists it.
            let name = match (words.next(), first.parse::<std::net::IpAddr>().is_ok()) {
                (Some(second), true) => second,
                (None, _) => first,
                (Some(_), false) => "", // two words but no address first: not a list line
            };
            let name = name.trim_start_matches("||").trim_end_matches('^');
            if name == "localhost" || name.ends_with(".localdomain") {
                continue;
            }
            if !self.add_domain(name, cat, src) {
                self.count_invalid(file);
            }
        }
        Ok(())
    }

    /// Sorts, removes exact duplicates and writes the file format (see `db`).
    pub fn finish(mut self, build_time: u64) -> (Vec<u8>, BuildReport) {
        self.entries
            .sort_unstable_by_key(|e| (e.hash, e.kind as u8, e.cat, e.src));
        let before = self.entries.len();
        self.entries
            .dedup_by_key(|e| (e.hash, e.kind as u8, e.cat, e.src));
        self.report.duplicates = (before - self.entries.len()) as u64;
        (
            db::encode(&self.sources, &self.categories, &self.entries, build_time),
            self.report,
        )
    }
}

fn read_lossy(p: &Path) -> Result<String, String> {
    std::fs::read(p)
        .map(|b| String::from_utf8_lossy(&b).into_owned())
        .map_err(|e| format!("{}: {e}", p.display()))
}
