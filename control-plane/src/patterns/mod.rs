//! Pattern bundles on the box (issue 14): import a signed bundle, keep the current and the
//! last-known-good per kind, roll back, and say when the patterns are stale.
//!
//! A bundle is verified against the desk keys given to `serve --trust-key` (at most two:
//! rotation), must be newer than the installed one of its kind unless the operator forces
//! a rollback, and is then written whole into the patterns folder (temporary file, fsync,
//! rename, fsync of the folder) before the database records it. The files are named by
//! version and hash (`<kind>/<version>-<sha256 prefix>.mmb`); the database says which one
//! is current and which is the last-known-good, so a crash between the two steps leaves
//! an unreferenced file (removed at the next import), never a half-installed set.
//!
//! A verified set is handed to the running gateway ([`Patterns::hand_over`]) by the path
//! of the stored file and its SHA-256 (a rule set does not cross the socket; the gateway
//! checks the hash): the gateway compiles it off the data path and swaps it in between
//! bursts. A set the gateway refuses (it does not compile there) is not installed: the
//! file is removed, the refusal is audited (`patterns.refused`) and answered, and the
//! gateway keeps running its set. With the gateway down, the set is installed and the
//! gateway loads it at its next start (it asks the gateway socket for `patterns`).

mod update;

use crate::api::{ApiError, App, Caller, err, internal, with_db};
use crate::db;
use crate::gwlink::{GatewayLink, GwError, PatternFiles};
use axum::body::Bytes;
use axum::extract::{DefaultBodyLimit, Path, Query, State};
use axum::http::StatusCode;
use axum::routing::{get, post};
use axum::{Json, Router};
use mimamori_proto::PatternFile;
use mimamori_signatures::bundle::{self, Kind, Limits, Refused, TrustedKeys, Verifier};
use rusqlite::{Connection, OptionalExtension, params};
use serde::Deserialize;
use serde_json::{Value, json};
use sha2::{Digest, Sha256};
use std::path::{Path as FsPath, PathBuf};
use std::sync::Arc;

/// How the box handles pattern bundles.
#[derive(Clone, Debug)]
pub struct Config {
    /// The patterns folder (one sub-folder per kind).
    pub dir: PathBuf,
    /// The desk's public keys.
    pub trust: TrustedKeys,
    /// A bundle older than this is stale (default 7 days).
    pub max_age_secs: u64,
    /// This long without a successful check is stale (default 24 h).
    pub max_unchecked_secs: u64,
}

impl Config {
    pub fn new(dir: PathBuf, trust: TrustedKeys) -> Config {
        Config {
            dir,
            trust,
            max_age_secs: 7 * 86_400,
            max_unchecked_secs: 86_400,
        }
    }
}

/// The active version of a kind and its verified parts (name, bytes) in manifest order.
pub type ActiveSet = (u64, Vec<(String, Vec<u8>)>);

pub struct Patterns {
    pub cfg: Config,
    verifier: Verifier,
    /// One import or rollback at a time.
    changes: tokio::sync::Mutex<()>,
    /// The running gateway's control socket (none in tools and tests).
    gateway: Option<GatewayLink>,
    /// The current bundle of each kind, for the gateway's start.
    pub files: PatternFiles,
    /// Where refusals become events (set by `serve`; none in tools and tests).
    events: std::sync::OnceLock<Arc<crate::events::EventStore>>,
}

/// Why an import or a rollback did not happen.
#[derive(Debug, thiserror::Error)]
pub enum PatternsError {
    /// The bundle itself is refused (signature, hashes, bounds, version): 422.
    #[error(transparent)]
    Refused(#[from] Refused),
    /// Nothing to roll back to: 409.
    #[error("{0}")]
    Conflict(String),
    /// The box could not store it (disk, database): 500. Nothing was changed.
    #[error("{0}")]
    Store(String),
    /// The bundle verified, but the running gateway refused it (it does not compile
    /// there): 422. Nothing was installed; the gateway runs its set.
    #[error("bundle {bundle}: refused by the gateway (its running set stays): {reason}")]
    GatewayRefused { bundle: String, reason: String },
    /// A purchased box past its licence end takes no updates: 403.
    #[error("{0}")]
    LicenceEnded(String),
}

/// What an import or a rollback changed.
#[derive(Debug, serde::Serialize)]
pub struct Outcome {
    pub kind: Kind,
    pub version: u64,
    pub previous: Option<u64>,
    pub signer: String,
    pub file: String,
    /// What happened to the running gateway (see [`Patterns::hand_over`]).
    pub gateway: String,
}

/// A stored bundle as the database records it.
#[derive(Clone, Debug)]
struct Row {
    id: i64,
    version: u64,
    published: u64,
    file: String,
    signer: String,
    sha256: String,
    imported: i64,
}

fn row_by_id(c: &Connection, id: i64) -> rusqlite::Result<Option<Row>> {
    c.query_row(
        "SELECT id, version, published, file, signer, sha256, imported FROM pattern_bundle WHERE id = ?1",
        params![id],
        |r| {
            Ok(Row {
                id: r.get(0)?,
                // Stored as the same 64 bits: SQLite integers are signed.
                version: r.get::<_, i64>(1)? as u64,
                published: r.get::<_, i64>(2)? as u64,
                file: r.get(3)?,
                signer: r.get(4)?,
                sha256: r.get(5)?,
                imported: r.get(6)?,
            })
        },
    )
    .optional()
}

#[derive(Clone, Debug, Default)]
struct KindState {
    current: Option<i64>,
    last_good: Option<i64>,
    last_check: Option<i64>,
}

fn state(c: &Connection, kind: Kind) -> rusqlite::Result<KindState> {
    Ok(c.query_row(
        "SELECT current, last_good, last_check FROM pattern_state WHERE kind = ?1",
        params![kind.as_str()],
        |r| {
            Ok(KindState {
                current: r.get(0)?,
                last_good: r.get(1)?,
                last_check: r.get(2)?,
            })
        },
    )
    .optional()?
    .unwrap_or_default())
}

fn store_err(e: impl std::fmt::Display) -> PatternsError {
    PatternsError::Store(e.to_string())
}

/// Writes `bytes` to `dir/name` through a temporary file: written, synced, renamed, and
/// the folder synced, so after a crash the file is either whole or absent.
fn write_durably(dir: &FsPath, name: &str, bytes: &[u8]) -> std::io::Result<()> {
    use std::io::Write;
    std::fs::create_dir_all(dir)?;
    let tmp = dir.join(format!(".{name}.tmp"));
    let res = (|| {
        let mut f = std::fs::File::create(&tmp)?;
        f.write_all(bytes)?;
        f.sync_all()?;
        std::fs::rename(&tmp, dir.join(name))?;
        std::fs::File::open(dir)?.sync_all()
    })();
    if res.is_err() {
        let _ = std::fs::remove_file(&tmp);
    }
    res
}

impl Patterns {
    pub fn new(cfg: Config) -> Patterns {
        let verifier = Verifier::new(cfg.trust.clone());
        Patterns {
            cfg,
            verifier,
            changes: tokio::sync::Mutex::new(()),
            gateway: None,
            files: PatternFiles::default(),
            events: std::sync::OnceLock::new(),
        }
    }

    /// As [`Patterns::new`], handing each new set to the gateway behind `gateway`.
    pub fn with_gateway(cfg: Config, gateway: GatewayLink) -> Patterns {
        Patterns {
            gateway: Some(gateway),
            ..Patterns::new(cfg)
        }
    }

    /// Re-reads the current bundle of each kind into [`Patterns::files`] (at start and
    /// after every change). Errors leave the list as it was.
    pub fn refresh_files(&self, c: &Connection) {
        let mut files = Vec::new();
        for kind in Kind::ALL {
            let Ok(st) = state(c, kind) else { return };
            let Some(row) = st.current.and_then(|id| row_by_id(c, id).ok().flatten()) else {
                continue;
            };
            files.push(PatternFile {
                kind: kind.as_str().to_string(),
                version: row.version,
                sha256: row.sha256,
                path: absolute(&self.kind_dir(kind).join(&row.file))
                    .display()
                    .to_string(),
            });
        }
        *self.files.lock().unwrap_or_else(|e| e.into_inner()) = files;
    }

    pub fn limits(&self) -> &Limits {
        &self.verifier.limits
    }

    fn kind_dir(&self, kind: Kind) -> PathBuf {
        self.cfg.dir.join(kind.as_str())
    }

    /// Hands the verified bundle stored at `path` (SHA-256 `sha256`) to the running
    /// gateway, which compiles it and swaps it in. `Ok` says what happened (running, or
    /// the gateway is offline and loads it at its next start); `Err` is the gateway's
    /// refusal (it does not compile there): the caller must not install the set.
    pub fn hand_over(&self, kind: Kind, path: &FsPath, sha256: &str) -> Result<String, String> {
        let Some(gw) = &self.gateway else {
            return Ok("no gateway link: the gateway loads it at its next start".into());
        };
        if !matches!(kind, Kind::Rules | Kind::Categories) {
            return Ok(format!(
                "kept: the gateway does not take {kind} bundles yet"
            ));
        }
        match gw.patterns(kind.as_str(), sha256, &absolute(path)) {
            Ok((version, micros, summary)) => Ok(format!(
                "running on the gateway: {kind} version {version} ({summary}), active on every stage {:.1} ms after it was handed over",
                micros as f64 / 1000.0
            )),
            Err(GwError::Unreachable(why)) => {
                Ok(format!("gateway offline: will load at next start ({why})"))
            }
            Err(GwError::Refused(reason)) => Err(reason),
        }
    }

    /// The verified parts of the active set of `kind`, read back from the patterns folder
    /// and checked again (a file changed on disk is refused like any other bundle).
    pub fn active_parts(
        &self,
        c: &Connection,
        kind: Kind,
    ) -> Result<Option<ActiveSet>, PatternsError> {
        let st = state(c, kind).map_err(store_err)?;
        let Some(row) = st
            .current
            .map(|id| row_by_id(c, id))
            .transpose()
            .map_err(store_err)?
            .flatten()
        else {
            return Ok(None);
        };
        let path = self.kind_dir(kind).join(&row.file);
        let bytes = std::fs::read(&path)
            .map_err(|e| PatternsError::Store(format!("{}: cannot read: {e}", path.display())))?;
        let v = self.verifier.check(&path.display().to_string(), &bytes)?;
        let parts = v
            .parts
            .iter()
            .map(|(n, d)| (n.to_string(), d.to_vec()))
            .collect();
        Ok(Some((row.version, parts)))
    }

    /// Events for refusals from now on (`serve` gives its event store).
    pub fn report_to(&self, store: Arc<crate::events::EventStore>) {
        let _ = self.events.set(store);
    }

    /// A refusal: in the audit log, and an event (`patterns`, state `refused`) that the
    /// desk uplink carries.
    fn refused(&self, c: &Connection, actor: &str, label: &str, why: &str) {
        let _ = db::audit(c, actor, "patterns.refused", label, "", why);
        if let Some(store) = self.events.get() {
            let now = db::now().max(0) as u64;
            let e = json!({
                "timestamp": mimamori_pipelines::event::eve_time(now * 1_000_000_000),
                "event_type": "patterns",
                "patterns": {"state": "refused", "bundle": label, "reason": why, "by": actor},
            });
            store.put(&e.to_string());
        }
    }

    /// Verifies and installs a bundle. `label` names it in refusals (a file name, "upload").
    pub fn import(
        &self,
        c: &mut Connection,
        label: &str,
        bytes: &[u8],
        actor: &str,
        force_rollback: bool,
    ) -> Result<Outcome, PatternsError> {
        if let (Some(end), true) = crate::desk::licence(c, db::now()) {
            let why = format!(
                "bundle {label}: the box's licence ended on {end} (契約満了): no more pattern updates; filtering goes on with the installed set"
            );
            self.refused(c, actor, label, &why);
            return Err(PatternsError::LicenceEnded(why));
        }
        let v = match self.verifier.check(label, bytes) {
            Ok(v) => v,
            Err(r) => {
                self.refused(c, actor, label, &r.to_string());
                return Err(r.into());
            }
        };
        let m = &v.manifest;
        let kind = m.kind;
        let st = state(c, kind).map_err(store_err)?;
        let cur = st
            .current
            .map(|id| row_by_id(c, id))
            .transpose()
            .map_err(store_err)?
            .flatten();
        if let Err(error) = bundle::admit(
            kind,
            cur.as_ref().map(|r| r.version),
            m.version,
            force_rollback,
        ) {
            let r = Refused {
                bundle: bundle::describe(label, bytes, self.limits()),
                error,
            };
            self.refused(c, actor, label, &r.to_string());
            return Err(r.into());
        }
        let sha = bundle::hex(&Sha256::digest(bytes));
        let file = format!("{}-{}.mmb", m.version, &sha[..16]);
        let dir = self.kind_dir(kind);
        let path = dir.join(&file);
        // The same name is the same version and hash: the file is already there whole.
        let created = !path.exists();
        if created {
            write_durably(&dir, &file, bytes).map_err(|e| {
                PatternsError::Store(format!("{}: cannot write: {e}", path.display()))
            })?;
        }
        let gateway = match self.hand_over(kind, &path, &sha) {
            Ok(g) => g,
            Err(reason) => {
                if created {
                    let _ = std::fs::remove_file(&path);
                }
                let e = PatternsError::GatewayRefused {
                    bundle: bundle::describe(label, bytes, self.limits()),
                    reason,
                };
                self.refused(c, actor, label, &e.to_string());
                return Err(e);
            }
        };
        let now = db::now();
        let parts = serde_json::to_string(&m.parts).map_err(store_err)?;
        let recorded = (|| -> rusqlite::Result<()> {
            let tx = c.transaction()?;
            tx.execute(
                "INSERT INTO pattern_bundle (kind, version, published, min_gateway, sha256, size, signer, parts, file, imported, actor)
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11)",
                params![kind.as_str(), m.version as i64, m.published as i64, m.min_gateway.to_string(), sha,
                        bytes.len() as i64, v.signer.to_string(), parts, file, now, actor],
            )?;
            let id = tx.last_insert_rowid();
            // The previous current becomes the last-known-good; an import of the very same
            // file (forced) keeps the last-known-good it had.
            let last_good = match &cur {
                Some(r) if r.file != file => Some(r.id),
                _ => st.last_good,
            };
            tx.execute(
                "INSERT INTO pattern_state (kind, current, last_good, last_check) VALUES (?1, ?2, ?3, ?4)
                 ON CONFLICT(kind) DO UPDATE SET current = ?2, last_good = ?3, last_check = ?4",
                params![kind.as_str(), id, last_good, now],
            )?;
            db::audit(
                &tx,
                actor,
                if force_rollback { "patterns.import-forced" } else { "patterns.import" },
                kind.as_str(),
                &json!({"version": cur.as_ref().map(|r| r.version)}).to_string(),
                &json!({"version": m.version, "sha256": sha, "signer": v.signer.to_string(), "bundle": label}).to_string(),
            )?;
            tx.commit()
        })();
        if let Err(e) = recorded {
            if created {
                let _ = std::fs::remove_file(&path);
            }
            return Err(store_err(format!(
                "recording {kind} version {} ({gateway}): {e}",
                m.version
            )));
        }
        self.prune(c, kind);
        self.refresh_files(c);
        Ok(Outcome {
            kind,
            version: m.version,
            previous: cur.map(|r| r.version),
            signer: v.signer.to_string(),
            gateway,
            file: path.display().to_string(),
        })
    }

    /// Makes the last-known-good of `kind` current again (after checking it once more);
    /// the set rolled back from is dropped.
    pub fn rollback(
        &self,
        c: &mut Connection,
        kind: Kind,
        actor: &str,
    ) -> Result<Outcome, PatternsError> {
        let st = state(c, kind).map_err(store_err)?;
        let get = |id: Option<i64>| {
            id.map(|id| row_by_id(c, id))
                .transpose()
                .map(Option::flatten)
        };
        let cur = get(st.current).map_err(store_err)?;
        let Some(good) = get(st.last_good).map_err(store_err)? else {
            return Err(PatternsError::Conflict(format!(
                "no last-known-good {kind} bundle to roll back to{}",
                cur.as_ref()
                    .map_or(String::from(" (none installed)"), |r| format!(
                        " (version {} is the only one kept)",
                        r.version
                    ))
            )));
        };
        let path = self.kind_dir(kind).join(&good.file);
        let bytes = std::fs::read(&path)
            .map_err(|e| PatternsError::Store(format!("{}: cannot read: {e}", path.display())))?;
        let v = self.verifier.check(&path.display().to_string(), &bytes)?;
        if v.manifest.kind != kind || v.manifest.version != good.version {
            return Err(PatternsError::Store(format!(
                "{}: holds {} version {}, the record says {kind} version {}",
                path.display(),
                v.manifest.kind,
                v.manifest.version,
                good.version
            )));
        }
        let gateway = self
            .hand_over(kind, &path, &good.sha256)
            .map_err(|reason| {
                let e = PatternsError::GatewayRefused {
                    bundle: bundle::describe(&path.display().to_string(), &bytes, self.limits()),
                    reason,
                };
                self.refused(c, actor, kind.as_str(), &e.to_string());
                e
            })?;
        (|| -> rusqlite::Result<()> {
            let tx = c.transaction()?;
            tx.execute(
                "UPDATE pattern_state SET current = ?2, last_good = NULL WHERE kind = ?1",
                params![kind.as_str(), good.id],
            )?;
            db::audit(
                &tx,
                actor,
                "patterns.rollback",
                kind.as_str(),
                &json!({"version": cur.as_ref().map(|r| r.version)}).to_string(),
                &json!({"version": good.version}).to_string(),
            )?;
            tx.commit()
        })()
        .map_err(store_err)?;
        self.prune(c, kind);
        self.refresh_files(c);
        Ok(Outcome {
            kind,
            version: good.version,
            previous: cur.map(|r| r.version),
            signer: v.signer.to_string(),
            gateway,
            file: path.display().to_string(),
        })
    }

    /// Removes the files of `kind` that are neither current nor last-known-good (leftovers
    /// of a crash, replaced sets). Errors are ignored: a leftover file harms nothing.
    fn prune(&self, c: &Connection, kind: Kind) {
        let Ok(st) = state(c, kind) else { return };
        let keep: Vec<String> = [st.current, st.last_good]
            .into_iter()
            .flatten()
            .filter_map(|id| row_by_id(c, id).ok().flatten())
            .map(|r| r.file)
            .collect();
        let Ok(rd) = std::fs::read_dir(self.kind_dir(kind)) else {
            return;
        };
        for e in rd.flatten() {
            let name = e.file_name().to_string_lossy().into_owned();
            if !keep.contains(&name) {
                let _ = std::fs::remove_file(e.path());
            }
        }
    }

    /// Per kind: the active version, its age, the last successful check, and staleness.
    pub fn status(&self, c: &Connection, now: i64) -> rusqlite::Result<Value> {
        let mut kinds = Vec::new();
        let mut any_stale = false;
        for kind in Kind::ALL {
            let st = state(c, kind)?;
            let Some(cur) = st.current.map(|id| row_by_id(c, id)).transpose()?.flatten() else {
                continue;
            };
            let good = st
                .last_good
                .map(|id| row_by_id(c, id))
                .transpose()?
                .flatten();
            let age = (now.max(0) as u64).saturating_sub(cur.published);
            let since_check = st.last_check.map(|t| (now - t).max(0) as u64);
            let mut reasons = Vec::new();
            if age > self.cfg.max_age_secs {
                reasons.push(format!(
                    "published {} ago, more than {}",
                    span(age),
                    span(self.cfg.max_age_secs)
                ));
            }
            match since_check {
                Some(s) if s <= self.cfg.max_unchecked_secs => {}
                Some(s) => reasons.push(format!(
                    "no successful check for {}, more than {}",
                    span(s),
                    span(self.cfg.max_unchecked_secs)
                )),
                None => reasons.push("never checked".into()),
            }
            let stale = !reasons.is_empty();
            any_stale |= stale;
            kinds.push(json!({
                "kind": kind.as_str(),
                "version": cur.version,
                "published": cur.published,
                "published_utc": bundle::utc(cur.published),
                "age_secs": age,
                "imported": cur.imported,
                "signer": cur.signer,
                "sha256": cur.sha256,
                "last_check": st.last_check,
                "since_check_secs": since_check,
                "last_good_version": good.map(|g| g.version),
                "patterns_stale": stale,
                "stale_reasons": reasons,
            }));
        }
        let (licence_end, licence_expired) = crate::desk::licence(c, now);
        Ok(json!({
            "licence_end": licence_end,
            "licence_expired": licence_expired,
            "patterns_stale": any_stale,
            "kinds": kinds,
            "trusted_keys": self.cfg.trust.ids().iter().map(|k| k.to_string()).collect::<Vec<_>>(),
            "max_age_secs": self.cfg.max_age_secs,
            "max_unchecked_secs": self.cfg.max_unchecked_secs,
            "gateway": "each new set is handed to the running gateway (compiled there, swapped between bursts; refused sets are not installed); a gateway that was down loads the current sets at its next start",
        }))
    }
}

/// `p` from the root: the gateway runs in another working directory.
fn absolute(p: &FsPath) -> PathBuf {
    std::fs::canonicalize(p).unwrap_or_else(|_| {
        std::env::current_dir()
            .map(|d| d.join(p))
            .unwrap_or_else(|_| p.to_path_buf())
    })
}

fn span(secs: u64) -> String {
    if secs >= 2 * 86_400 {
        format!("{} days", secs / 86_400)
    } else if secs >= 7200 {
        format!("{} h", secs / 3600)
    } else {
        format!("{} min", secs / 60)
    }
}

fn configured(app: &App) -> Result<Arc<Patterns>, ApiError> {
    app.patterns.clone().ok_or_else(|| {
        err(
            StatusCode::SERVICE_UNAVAILABLE,
            "pattern bundles are not enabled: start mimamori-cp serve with --trust-key (the desk's public key)",
        )
    })
}

fn answer(e: PatternsError) -> ApiError {
    match e {
        PatternsError::Refused(r) => ApiError::new(
            StatusCode::UNPROCESSABLE_ENTITY,
            json!({"error": r.to_string(), "bundle": r.bundle, "reason": r.error.to_string()}),
        ),
        PatternsError::Conflict(m) => err(StatusCode::CONFLICT, m),
        PatternsError::LicenceEnded(m) => err(StatusCode::FORBIDDEN, m),
        PatternsError::Store(m) => internal(m),
        PatternsError::GatewayRefused { bundle, reason } => ApiError::new(
            StatusCode::UNPROCESSABLE_ENTITY,
            json!({"error": format!("bundle {bundle}: refused by the gateway (its running set stays): {reason}"),
                   "bundle": bundle, "reason": format!("the gateway refused it: {reason}")}),
        ),
    }
}

/// `/api/v1/patterns` and its rollback.
pub fn routes(max_body: usize) -> Router<Arc<App>> {
    Router::new()
        .route(
            "/api/v1/patterns",
            get(list)
                .post(import)
                .layer(DefaultBodyLimit::max(max_body)),
        )
        .route("/api/v1/patterns/{kind}/rollback", post(rollback))
        .route("/api/v1/patterns/update", post(update))
}

async fn list(State(app): State<Arc<App>>, _c: Caller) -> Result<Json<Value>, ApiError> {
    let p = configured(&app)?;
    Ok(Json(
        with_db(&app, move |c| Ok(p.status(c, db::now())?)).await?,
    ))
}

#[derive(Deserialize)]
struct ImportQuery {
    #[serde(default)]
    force_rollback: bool,
    /// The file name the operator gave, for messages.
    name: Option<String>,
}

async fn import(
    State(app): State<Arc<App>>,
    caller: Caller,
    Query(q): Query<ImportQuery>,
    body: Bytes,
) -> Result<Json<Value>, ApiError> {
    caller.may_change()?;
    let p = configured(&app)?;
    let _one = p.changes.lock().await;
    let label: String = q
        .name
        .unwrap_or_else(|| "upload".into())
        .chars()
        .filter(|c| !c.is_control())
        .take(200)
        .collect();
    let p2 = p.clone();
    let res = with_db(&app, move |c| {
        Ok(p2.import(c, &label, &body, &caller.name, q.force_rollback))
    })
    .await?;
    Ok(Json(json!(res.map_err(answer)?)))
}

async fn rollback(
    State(app): State<Arc<App>>,
    caller: Caller,
    Path(kind): Path<String>,
) -> Result<Json<Value>, ApiError> {
    caller.may_change()?;
    let p = configured(&app)?;
    let kind: Kind = kind
        .parse()
        .map_err(|e: bundle::BundleError| err(StatusCode::NOT_FOUND, e.to_string()))?;
    let _one = p.changes.lock().await;
    let p2 = p.clone();
    let res = with_db(&app, move |c| Ok(p2.rollback(c, kind, &caller.name))).await?;
    Ok(Json(json!(res.map_err(answer)?)))
}

/// `ctl patterns update`: ask the desk now.
async fn update(State(app): State<Arc<App>>, caller: Caller) -> Result<Json<Value>, ApiError> {
    caller.may_change()?;
    let p = configured(&app)?;
    let link = app.desk.clone().ok_or_else(|| {
        err(
            StatusCode::CONFLICT,
            "this box has no desk uplink (serve --desk)",
        )
    })?;
    let res = with_db(&app, move |c| Ok(p.update_from(c, &link, crate::db::now()))).await?;
    Ok(Json(res.map_err(|e| {
        err(StatusCode::BAD_GATEWAY, format!("the desk: {e}"))
    })?))
}
