//! The gateway's event spool: every event it sends to the control plane is first written
//! here with a sequence number, and stays until the control plane says it committed it.
//! A restart of either side, or a cut socket, resumes from the control plane's last
//! committed number, so nothing is lost and (the receiver skipping numbers it has)
//! nothing is stored twice.
//!
//! On disk: a folder of segment files named by their first sequence number, each line
//! `<seq> <event JSON>`. Appends go through one buffered writer flushed after every batch
//! (a killed process loses nothing written; a power cut may lose the last second, which
//! the periodic `sync` bounds). A torn last line (the process died mid-write) is cut off
//! at start. The folder is bounded: past `max_bytes` the oldest segment goes, counted in
//! `dropped` — the one way events can be lost, and it is said.

use anyhow::Context;
use std::fs::{File, OpenOptions};
use std::io::{BufRead, BufReader, BufWriter, Seek, SeekFrom, Write};
use std::path::{Path, PathBuf};

/// A segment is closed and a new one begun past this size.
pub const SEGMENT_BYTES: u64 = 8 << 20;

#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, serde::Serialize)]
pub struct SpoolStats {
    /// The last sequence number written.
    pub written: u64,
    /// The control plane's last committed number.
    pub acked: u64,
    /// Events dropped because the spool was full (oldest first).
    pub dropped: u64,
    pub bytes: u64,
}

struct Segment {
    first: u64,
    path: PathBuf,
    bytes: u64,
}

pub struct Spool {
    dir: PathBuf,
    max_bytes: u64,
    segments: Vec<Segment>,
    out: Option<BufWriter<File>>,
    /// Where the sender reads next.
    cursor: Option<Cursor>,
    /// Where the sender restarts when its cursor must be opened again.
    pending_from: Option<u64>,
    line: Vec<u8>,
    read: Vec<u8>,
    pub stats: SpoolStats,
}

struct Cursor {
    segment: u64,
    reader: BufReader<File>,
    /// The next sequence number the sender wants.
    want: u64,
}

fn segment_name(first: u64) -> String {
    format!("{first:020}.log")
}

/// The sequence number at the start of a spool line.
fn seq_of(line: &[u8]) -> Option<u64> {
    let sp = line.iter().position(|&b| b == b' ')?;
    std::str::from_utf8(&line[..sp]).ok()?.parse().ok()
}

impl Spool {
    /// Opens (or creates) the spool in `dir`, bounded to `max_bytes`.
    pub fn open(dir: &Path, max_bytes: u64) -> anyhow::Result<Spool> {
        std::fs::create_dir_all(dir)
            .with_context(|| format!("{}: cannot create", dir.display()))?;
        let mut segments = Vec::new();
        for e in
            std::fs::read_dir(dir).with_context(|| format!("{}: cannot read", dir.display()))?
        {
            let e = e?;
            let name = e.file_name();
            let Some(first) = name
                .to_str()
                .and_then(|n| n.strip_suffix(".log"))
                .and_then(|n| n.parse::<u64>().ok())
            else {
                continue;
            };
            segments.push(Segment {
                first,
                path: e.path(),
                bytes: e.metadata()?.len(),
            });
        }
        segments.sort_by_key(|s| s.first);
        let mut spool = Spool {
            dir: dir.to_path_buf(),
            max_bytes,
            segments,
            out: None,
            cursor: None,
            pending_from: None,
            line: Vec::with_capacity(1024),
            read: Vec::with_capacity(1024),
            stats: SpoolStats::default(),
        };
        spool.stats.written = spool.recover_last()?;
        spool.stats.acked = spool
            .segments
            .first()
            .map_or(0, |s| s.first.saturating_sub(1));
        spool.stats.bytes = spool.segments.iter().map(|s| s.bytes).sum();
        Ok(spool)
    }

    /// The last whole line's number in the newest segment; a torn tail is cut off.
    fn recover_last(&mut self) -> anyhow::Result<u64> {
        while let Some(seg) = self.segments.last_mut() {
            let f = File::open(&seg.path)
                .with_context(|| format!("{}: cannot open", seg.path.display()))?;
            let mut r = BufReader::new(f);
            let (mut good, mut last, mut line) = (0u64, None, Vec::new());
            loop {
                line.clear();
                let n = r.read_until(b'\n', &mut line)?;
                if n == 0 || line.last() != Some(&b'\n') {
                    break;
                }
                match seq_of(&line) {
                    Some(s) => last = Some(s),
                    None => break,
                }
                good += n as u64;
            }
            if good != seg.bytes {
                OpenOptions::new()
                    .write(true)
                    .open(&seg.path)?
                    .set_len(good)
                    .with_context(|| format!("{}: cannot cut a torn line", seg.path.display()))?;
                seg.bytes = good;
            }
            match last {
                Some(s) => return Ok(s),
                None => {
                    // Nothing whole in it: it began at `first`, so the last number is one less.
                    let first = seg.first;
                    let _ = std::fs::remove_file(&seg.path);
                    self.segments.pop();
                    if self.segments.is_empty() {
                        return Ok(first.saturating_sub(1));
                    }
                }
            }
        }
        Ok(0)
    }

    /// Appends one event; returns its sequence number.
    pub fn append(&mut self, json: &[u8]) -> anyhow::Result<u64> {
        let seq = self.stats.written + 1;
        let need_new = self
            .segments
            .last()
            .is_none_or(|s| s.bytes >= SEGMENT_BYTES);
        if need_new || self.out.is_none() {
            if need_new {
                self.flush()?;
                let path = self.dir.join(segment_name(seq));
                self.segments.push(Segment {
                    first: seq,
                    path,
                    bytes: 0,
                });
            }
            let seg = self.segments.last().expect("a segment");
            let f = OpenOptions::new()
                .create(true)
                .append(true)
                .open(&seg.path)
                .with_context(|| format!("{}: cannot open", seg.path.display()))?;
            self.out = Some(BufWriter::with_capacity(1 << 16, f));
        }
        self.line.clear();
        write!(self.line, "{seq} ")?;
        self.line.extend(json.iter().filter(|&&b| b != b'\n'));
        self.line.push(b'\n');
        if let Some(o) = self.out.as_mut() {
            o.write_all(&self.line)?;
        }
        let n = self.line.len() as u64;
        if let Some(s) = self.segments.last_mut() {
            s.bytes += n;
        }
        self.stats.bytes += n;
        self.stats.written = seq;
        self.enforce_bound()?;
        Ok(seq)
    }

    /// Writes what is buffered to the file (survives the process being killed).
    pub fn flush(&mut self) -> anyhow::Result<()> {
        if let Some(o) = self.out.as_mut() {
            o.flush().context("spool: cannot write")?;
        }
        Ok(())
    }

    /// Flushes and asks the disk to keep it (survives a power cut).
    pub fn sync(&mut self) -> anyhow::Result<()> {
        self.flush()?;
        if let Some(o) = self.out.as_mut() {
            o.get_ref().sync_data().context("spool: cannot sync")?;
        }
        Ok(())
    }

    /// Drops the oldest segments while over the bound (never the one being written).
    fn enforce_bound(&mut self) -> anyhow::Result<()> {
        while self.stats.bytes > self.max_bytes && self.segments.len() > 1 {
            let old = self.segments.remove(0);
            let next_first = self.segments[0].first;
            let lost = next_first.saturating_sub(old.first.max(self.stats.acked + 1));
            self.stats.dropped += lost;
            self.stats.acked = self.stats.acked.max(next_first - 1);
            self.stats.bytes -= old.bytes;
            let _ = std::fs::remove_file(&old.path);
            if self.cursor.as_ref().is_some_and(|c| c.segment == old.first) {
                self.cursor = None;
            }
        }
        Ok(())
    }

    /// The receiver committed everything up to `seq`: whole segments below it go.
    pub fn ack(&mut self, seq: u64) {
        if seq <= self.stats.acked {
            return;
        }
        self.stats.acked = seq.min(self.stats.written);
        while self.segments.len() > 1 && self.segments[1].first <= self.stats.acked + 1 {
            let old = self.segments.remove(0);
            self.stats.bytes -= old.bytes;
            let _ = std::fs::remove_file(&old.path);
            if self.cursor.as_ref().is_some_and(|c| c.segment == old.first) {
                self.cursor = None;
            }
        }
    }

    /// The receiver already has numbers up to `seq`, past what this spool wrote (the
    /// spool was lost or reset): everything here counts as delivered and numbering goes
    /// on after `seq`.
    pub fn renumber_after(&mut self, seq: u64) {
        if seq <= self.stats.written {
            return;
        }
        let _ = self.flush();
        self.out = None;
        self.cursor = None;
        for s in self.segments.drain(..) {
            let _ = std::fs::remove_file(&s.path);
        }
        self.stats.written = seq;
        self.stats.acked = seq;
        self.stats.bytes = 0;
    }

    /// Sends from `from` on: the sender restarts here after (re)connecting.
    pub fn rewind(&mut self, from: u64) {
        self.cursor = None;
        self.pending_from = Some(from);
    }

    /// The next line to send (`seq json\n`), if one is written; `None` when caught up.
    pub fn next_line(&mut self) -> anyhow::Result<Option<&[u8]>> {
        self.flush()?;
        loop {
            if self.cursor.is_none() && !self.open_cursor()? {
                return Ok(None);
            }
            let c = self.cursor.as_mut().expect("cursor");
            self.read.clear();
            let n = c.reader.read_until(b'\n', &mut self.read)?;
            if n == 0 || self.read.last() != Some(&b'\n') {
                // The end of this segment: a later one, or caught up.
                let seg = c.segment;
                let pos = c.reader.stream_position()? - n as u64;
                let later = self.segments.iter().any(|s| s.first > seg);
                if later {
                    let want = c.want;
                    self.cursor = None;
                    self.pending_from = Some(want);
                    continue;
                }
                c.reader.seek(SeekFrom::Start(pos))?;
                return Ok(None);
            }
            match seq_of(&self.read) {
                Some(s) if s >= c.want => {
                    c.want = s + 1;
                    return Ok(Some(&self.read));
                }
                Some(_) => continue,
                None => anyhow::bail!("spool: a line without a sequence number"),
            }
        }
    }

    fn open_cursor(&mut self) -> anyhow::Result<bool> {
        let want = self.pending_from.unwrap_or(self.stats.acked + 1);
        if want > self.stats.written {
            return Ok(false);
        }
        let Some(seg) = self
            .segments
            .iter()
            .rev()
            .find(|s| s.first <= want)
            .or(self.segments.first())
        else {
            return Ok(false);
        };
        let f = File::open(&seg.path)
            .with_context(|| format!("{}: cannot open", seg.path.display()))?;
        self.cursor = Some(Cursor {
            segment: seg.first,
            reader: BufReader::with_capacity(1 << 16, f),
            want,
        });
        self.pending_from = None;
        Ok(true)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn dir(name: &str) -> PathBuf {
        let d = std::env::temp_dir().join(format!("mm-spool-{}-{name}", std::process::id()));
        let _ = std::fs::remove_dir_all(&d);
        d
    }

    fn drain(s: &mut Spool) -> Vec<u64> {
        let mut v = Vec::new();
        while let Some(l) = s.next_line().unwrap() {
            v.push(seq_of(l).unwrap());
        }
        v
    }

    #[test]
    fn appends_are_sent_once_resumed_after_a_restart_and_trimmed_when_acked() {
        let d = dir("basic");
        let mut s = Spool::open(&d, 1 << 30).unwrap();
        for i in 0..5 {
            assert_eq!(
                s.append(format!("{{\"n\":{i}}}").as_bytes()).unwrap(),
                i + 1
            );
        }
        assert_eq!(drain(&mut s), [1, 2, 3, 4, 5]);
        assert!(drain(&mut s).is_empty(), "caught up");
        s.append(b"{}").unwrap();
        assert_eq!(drain(&mut s), [6]);
        s.ack(3);
        drop(s);
        // A restart: the numbers go on; the receiver says where to resume.
        let mut s = Spool::open(&d, 1 << 30).unwrap();
        assert_eq!(s.stats.written, 6);
        assert_eq!(s.append(b"{}").unwrap(), 7);
        s.rewind(4);
        assert_eq!(drain(&mut s), [4, 5, 6, 7]);
        let _ = std::fs::remove_dir_all(&d);
    }

    #[test]
    fn a_torn_line_is_cut_and_the_bound_drops_the_oldest_counted() {
        let d = dir("torn");
        let mut s = Spool::open(&d, 1 << 30).unwrap();
        s.append(b"{\"a\":1}").unwrap();
        s.append(b"{\"a\":2}").unwrap();
        s.flush().unwrap();
        drop(s);
        let seg = d.join(segment_name(1));
        let mut f = OpenOptions::new().append(true).open(&seg).unwrap();
        f.write_all(b"3 {\"a\":").unwrap();
        let mut s = Spool::open(&d, 1 << 30).unwrap();
        assert_eq!(s.stats.written, 2);
        assert_eq!(s.append(b"{}").unwrap(), 3);
        assert_eq!(drain(&mut s), [1, 2, 3]);
        let _ = std::fs::remove_dir_all(&d);
        // Bounded: segments of ~8 MiB, a 20 MiB bound, 40 MiB written.
        let d = dir("bound");
        let mut s = Spool::open(&d, 20 << 20).unwrap();
        let big = vec![b'x'; 4000];
        for _ in 0..10_000 {
            s.append(&big).unwrap();
        }
        assert!(s.stats.bytes <= 20 << 20, "{}", s.stats.bytes);
        assert!(s.stats.dropped > 0);
        let first = drain(&mut s)[0];
        assert_eq!(
            first,
            s.stats.dropped + 1,
            "what is left starts after what was dropped"
        );
        s.ack(s.stats.written);
        assert_eq!(s.segments.len(), 1);
        let _ = std::fs::remove_dir_all(&d);
    }
}
