//! `mimamori-cp serve`: wires the database, the event store, the gateway sockets and the
//! API together.

use crate::api::{self, ApiCounters, App};
use crate::db;
use crate::events::{self, EventStore};
use crate::gwlink::{self, GatewayLink};
use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::{Arc, Mutex};
use std::time::Duration;

#[derive(Clone, Debug)]
pub struct Options {
    pub db: PathBuf,
    pub listen: SocketAddr,
    /// The gateway's control socket (`mimamori-gw run --stats-socket`).
    pub gateway_socket: PathBuf,
    /// Ours, for the gateway (`mimamori-gw run --control-plane`).
    pub cp_socket: PathBuf,
    pub retention_days: u32,
    /// Events held between the gateway socket and the database writer.
    pub event_queue: usize,
    /// Write a customer-admin token here when the database has no token yet.
    pub bootstrap_token_file: Option<PathBuf>,
    /// The category database the gateway loads: policies are checked against it, so a
    /// version the gateway could not compile is refused even while the gateway is down.
    pub categories: Option<PathBuf>,
    /// Pattern bundles: the folder, the desk's keys, the staleness thresholds.
    pub patterns: Option<crate::patterns::Config>,
    /// The desk uplink: the folder `mimamori-cp desk enrol` filled, and the heartbeat
    /// interval (default: what the desk said at enrolment).
    pub desk: Option<(PathBuf, Option<Duration>)>,
    /// How often the uplink asks the desk for newer pattern bundles.
    pub desk_patterns_every: Duration,
}

pub struct Running {
    pub addr: SocketAddr,
    pub app: Arc<App>,
    pub store: Arc<EventStore>,
}

/// Opens everything and starts serving; returns once the API listens.
pub async fn start(
    o: &Options,
) -> anyhow::Result<(
    Running,
    impl std::future::Future<Output = std::io::Result<()>>,
)> {
    // Before the database or any socket: one control plane per --cp-socket, held while
    // it serves (a second `serve` fails here and touches nothing of the first's).
    let instance = mimamori_proto::instance::InstanceLock::acquire(&o.cp_socket, "control plane")
        .map_err(anyhow::Error::msg)?;
    let categories = match &o.categories {
        Some(p) => {
            let bytes = std::fs::read(p)
                .map_err(|e| anyhow::anyhow!("{}: cannot read: {e}", p.display()))?;
            let db = mimamori_signatures::category::CategoryDb::from_bytes(bytes)
                .map_err(|e| anyhow::anyhow!("{}: {e}", p.display()))?;
            Some(Arc::new(db))
        }
        None => None,
    };
    let mut conn = db::open(&o.db)?;
    let cur = db::current_policy(&conn)?;
    if cur.version == 0 {
        // A new box: the sample policy becomes version 1, for the gateway to ask for.
        let doc = cur.doc.clone();
        doc.validate()
            .map_err(|i| anyhow::anyhow!("sample policy: {}: {}", i.field, i.reason))?;
        db::store_policy(
            &mut conn,
            1,
            "mimamori-cp",
            &doc,
            false,
            "the sample policy",
            "initial policy",
            "all",
            &serde_json::Value::Null,
            &serde_json::to_value(&doc)?,
        )?;
    }
    if let Some(f) = &o.bootstrap_token_file
        && db::token_count(&conn)? == 0
    {
        let t = db::create_token(&conn, "bootstrap-admin", db::Role::CustomerAdmin)?;
        write_secret(f, &t)?;
        eprintln!(
            "mimamori-cp: created token \"bootstrap-admin\" (customer-admin), written to {}",
            f.display()
        );
    }
    let cur = db::current_policy(&conn)?;
    let current = Arc::new(Mutex::new(Some((cur.version, cur.doc.to_toml()?))));
    let (store, _writer) = EventStore::start(&o.db, o.event_queue)?;
    let store = Arc::new(store);
    events::spawn_retention(
        o.db.clone(),
        o.retention_days,
        Duration::from_secs(600),
        store.counters.clone(),
    );
    // The TCP port first: a second `serve` that cannot have it must fail before it
    // touches the gateway socket a running control plane serves.
    let listener = tokio::net::TcpListener::bind(o.listen)
        .await
        .map_err(|e| anyhow::anyhow!("{}: cannot listen: {e}", o.listen))?;
    let gateway = GatewayLink {
        socket: o.gateway_socket.clone(),
    };
    let patterns = o
        .patterns
        .clone()
        .map(|c| Arc::new(crate::patterns::Patterns::with_gateway(c, gateway.clone())));
    let files = match &patterns {
        Some(p) => {
            p.refresh_files(&conn);
            p.files.clone()
        }
        None => gwlink::PatternFiles::default(),
    };
    gwlink::spawn_gateway_socket_with(&o.cp_socket, current.clone(), store.clone(), files)?;
    let desk_link = match &o.desk {
        Some((dir, _)) => Some(Arc::new(crate::desk::Link::new(
            &crate::desk::Identity::load(dir)?,
        ))),
        None => None,
    };
    let app = Arc::new(App {
        db: Mutex::new(conn),
        gateway,
        current,
        intake: store.counters.clone(),
        changes: tokio::sync::Mutex::new(()),
        counters: ApiCounters::default(),
        categories,
        db_path: o.db.clone(),
        reports: tokio::sync::Mutex::new(()),
        patterns,
        desk: desk_link.clone(),
    });
    if let Some(p) = &app.patterns {
        p.report_to(store.clone());
        p.spawn_stale_watch(o.db.clone(), store.clone());
    }
    gwlink::spawn_refusal_watch(app.gateway.clone(), store.clone(), Duration::from_secs(5));
    if let (Some((dir, every)), Some(link)) = (&o.desk, &desk_link) {
        let id = crate::desk::Identity::load(dir)?;
        {
            let c = app
                .db
                .lock()
                .map_err(|_| anyhow::anyhow!("database lock"))?;
            crate::desk::enable(&c)?;
        }
        let every = every.unwrap_or(Duration::from_secs(id.cfg.heartbeat_secs));
        eprintln!(
            "mimamori-cp: desk uplink to {} as box {}, heartbeat every {} s",
            id.cfg.url,
            id.cfg.box_id,
            every.as_secs()
        );
        let source = crate::desk::HeartbeatSource {
            gateway: GatewayLink {
                socket: o.gateway_socket.clone(),
            },
            patterns: app.patterns.clone(),
            started: std::time::Instant::now(),
            patterns_every: o.desk_patterns_every,
            link: link.clone(),
        };
        let db = o.db.clone();
        let counters = Arc::new(crate::desk::UplinkCounters::default());
        std::thread::Builder::new()
            .name("desk-uplink".into())
            .spawn(move || crate::desk::run(db, id, source, counters, every))?;
    }
    let addr = listener.local_addr()?;
    let serve = axum::serve(listener, api::router(app.clone())).with_graceful_shutdown(async {
        let mut term = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()).ok();
        tokio::select! {
            _ = tokio::signal::ctrl_c() => {}
            _ = async { match term.as_mut() { Some(t) => { t.recv().await; } None => std::future::pending().await } } => {}
        }
    });
    let serve = async move {
        let _instance = instance;
        serve.await
    };
    Ok((Running { addr, app, store }, serve))
}

fn write_secret(path: &std::path::Path, secret: &str) -> anyhow::Result<()> {
    use std::io::Write;
    use std::os::unix::fs::OpenOptionsExt;
    let mut f = std::fs::OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(true)
        .mode(0o600)
        .open(path)
        .map_err(|e| anyhow::anyhow!("{}: {e}", path.display()))?;
    writeln!(f, "{secret}")?;
    Ok(())
}
