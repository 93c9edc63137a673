//! Writing event records as EVE JSON lines.

use mimamori_pipelines::Policy;
use mimamori_pipelines::event::{EventQueue, EventRecord, WebNames};
use mimamori_pipelines::web::WebRules;
use std::fs::File;
use std::io::{BufWriter, Write};
use std::path::Path;
use std::sync::Arc;

pub struct EveWriter {
    w: BufWriter<File>,
    policy: Arc<Policy>,
    web: Option<Arc<WebRules>>,
    written: u64,
}

impl EveWriter {
    pub fn create(path: &Path, policy: Arc<Policy>) -> std::io::Result<Self> {
        Ok(Self {
            w: BufWriter::new(File::create(path)?),
            policy,
            web: None,
            written: 0,
        })
    }

    /// Names categories, lists and host groups in web events.
    pub fn with_web(mut self, web: Option<Arc<WebRules>>) -> Self {
        self.web = web;
        self
    }

    /// Drains the queue into the file.
    pub fn write_all(&mut self, q: &mut EventQueue) -> std::io::Result<()> {
        for rec in q.drain() {
            self.write_one(&rec)?;
        }
        Ok(())
    }

    pub fn write_one(&mut self, rec: &EventRecord) -> std::io::Result<()> {
        let rules = &self.policy.firewall.rules;
        let eve = rec.to_eve(
            |side| side.name().to_string(),
            |i| rules.get(i as usize).map(|r| r.name.clone()),
            self.web.as_deref().map(|w| w as &dyn WebNames),
        );
        serde_json::to_writer(&mut self.w, &eve)?;
        self.w.write_all(b"\n")?;
        self.written += 1;
        Ok(())
    }

    /// Writes a record built elsewhere (signature alerts from `ids`).
    pub fn write_eve(&mut self, eve: &mimamori_pipelines::event::Eve) -> std::io::Result<()> {
        serde_json::to_writer(&mut self.w, eve)?;
        self.w.write_all(b"\n")?;
        self.written += 1;
        Ok(())
    }

    pub fn flush(&mut self) -> std::io::Result<()> {
        self.w.flush()
    }

    /// Flushes and returns how many events were written.
    pub fn finish(mut self) -> std::io::Result<u64> {
        self.w.flush()?;
        Ok(self.written)
    }
}
