//! `mimamori-desk serve`: the store, the CA, both listeners and the background work
//! (mail outbox, fault watcher).

use crate::api::{self, Desk};
use crate::ops::incidents::Ctx;
use crate::ops::mailer::{self, MailConfig, MailCounters};
use crate::store::Store;
use crate::tls::{self, TlsCounters};
use anyhow::Context;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

/// `mimamori-desk serve`'s options (the flags are these fields).
#[derive(Clone, Debug, clap::Args)]
pub struct Options {
    /// `sqlite:PATH`, a path, or `postgres://user:pass@host/db`.
    #[arg(
        long,
        env = "MIMAMORI_DESK_STORE",
        default_value = "/var/lib/mimamori-desk/desk.db"
    )]
    pub store: String,
    #[arg(long, default_value = "/var/lib/mimamori-desk/ca")]
    pub ca_dir: PathBuf,
    #[arg(long, default_value = "0.0.0.0:8443")]
    pub uplink: SocketAddr,
    #[arg(long, default_value = "127.0.0.1:8450")]
    pub api: SocketAddr,
    /// Incident rules (TOML); the embedded default otherwise.
    #[arg(long)]
    pub rules: Option<PathBuf>,
    /// SMTP relay `host:port` for notifications; without it mail waits in the outbox.
    #[arg(long)]
    pub smtp: Option<String>,
    #[arg(long, default_value = "mimamori desk <desk@desk.test>")]
    pub mail_from: String,
    /// A box silent this long is in fault.
    #[arg(long, default_value_t = 300)]
    pub fault_after_secs: i64,
    #[arg(long, default_value_t = 15)]
    pub watch_secs: u64,
    /// How often boxes are told to send a heartbeat.
    #[arg(long, default_value_t = 60)]
    pub heartbeat_secs: u64,
    #[arg(long, default_value = "0120-000-000")]
    pub desk_phone: String,
    /// Write a desk-admin token here when the store has none yet.
    #[arg(long)]
    pub bootstrap_token_file: Option<PathBuf>,
    /// SQLite only: the most the file may grow to (MB); past it batches are refused
    /// whole (507) and the boxes keep them until there is room.
    #[arg(long)]
    pub store_max_mb: Option<u64>,
    /// Where published pattern bundles are kept (default: `patterns` beside --ca-dir).
    #[arg(long)]
    pub patterns_dir: Option<PathBuf>,
}

pub struct Running {
    pub uplink: SocketAddr,
    pub api: SocketAddr,
    pub app: api::App,
}

pub async fn start(
    o: &Options,
) -> anyhow::Result<(
    Running,
    impl std::future::Future<Output = anyhow::Result<()>> + use<>,
)> {
    let store_at = o.store.clone();
    let cap = o.store_max_mb;
    let store = tokio::task::spawn_blocking(move || Store::open_capped(&store_at, cap))
        .await?
        .with_context(|| format!("store {}", crate::store::Store::describe(&o.store)))?;
    let ca = crate::ca::Ca::load(&o.ca_dir)?;
    let config = tls::server_config(&ca)?;
    let rules = match &o.rules {
        Some(p) => {
            let text = std::fs::read_to_string(p)
                .with_context(|| format!("{}: cannot read", p.display()))?;
            crate::incident::rules::RuleSet::parse(&text, &p.display().to_string())?
        }
        None => crate::incident::rules::RuleSet::embedded(),
    };
    let ctx = Arc::new(Ctx {
        rules,
        counters: Default::default(),
        desk_phone: o.desk_phone.clone(),
        desk_hours: "9:00～21:00".into(),
        fault_after: o.fault_after_secs,
    });
    if let Some(path) = &o.bootstrap_token_file {
        let path = path.clone();
        store
            .run(move |c| -> Result<(), crate::ops::Refusal> {
                if crate::api::auth::count(c)? == 0 {
                    let t = crate::api::auth::create(
                        c,
                        &crate::ops::Actor::System,
                        "bootstrap",
                        "desk-admin",
                        None,
                    )?;
                    write_token(&path, &t)
                        .map_err(|e| crate::ops::Refusal::Conflict(format!("{e:#}")))?;
                }
                Ok(())
            })
            .await
            .map_err(|e| anyhow::anyhow!("bootstrap token: {e}"))?;
    }
    let tls_counters = Arc::new(TlsCounters::default());
    let mail = Arc::new(MailCounters::default());
    let app: api::App = Arc::new(Desk {
        store: store.clone(),
        ctx: ctx.clone(),
        ca,
        heartbeat_secs: o.heartbeat_secs,
        tls: tls_counters.clone(),
        mail: mail.clone(),
        patterns_dir: o
            .patterns_dir
            .clone()
            .unwrap_or_else(|| o.ca_dir.with_file_name("patterns")),
        reports_dir: o.ca_dir.with_file_name("reports"),
    });
    let uplink = tokio::net::TcpListener::bind(o.uplink)
        .await
        .with_context(|| format!("uplink listener {}", o.uplink))?;
    let api_listener = tokio::net::TcpListener::bind(o.api)
        .await
        .with_context(|| format!("API listener {}", o.api))?;
    let running = Running {
        uplink: uplink.local_addr()?,
        api: api_listener.local_addr()?,
        app: app.clone(),
    };
    if let Some(relay) = &o.smtp {
        tokio::spawn(mailer::run(
            store.clone(),
            MailConfig {
                relay: relay.clone(),
                from: o.mail_from.clone(),
            },
            mail,
        ));
    }
    tokio::spawn(watch_faults(
        store.clone(),
        ctx.clone(),
        Duration::from_secs(o.watch_secs.max(1)),
    ));
    let up = tls::serve(
        uplink,
        config,
        api::uplink::router(app.clone()),
        tls_counters,
    );
    let ops = axum::serve(api_listener, api::operator::router(app));
    let both = async move {
        tokio::select! {
            r = up => r.context("uplink listener"),
            r = ops.into_future() => r.context("API listener"),
        }
    };
    Ok((running, both))
}

use std::future::IntoFuture;

async fn watch_faults(store: Store, ctx: Arc<Ctx>, every: Duration) {
    loop {
        tokio::time::sleep(every).await;
        let c2 = ctx.clone();
        match store
            .run(move |c| crate::ops::faults::sweep(c, &c2, crate::ops::now()))
            .await
        {
            Ok(v) if !v.is_empty() => {
                eprintln!("mimamori-desk: fault: no heartbeat from {}", v.join(", "))
            }
            Ok(_) => {}
            Err(e) => eprintln!("mimamori-desk: fault watcher: {e}"),
        }
    }
}

fn write_token(path: &std::path::Path, token: &str) -> anyhow::Result<()> {
    use std::io::Write;
    use std::os::unix::fs::OpenOptionsExt;
    let mut f = std::fs::OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(true)
        .mode(0o600)
        .open(path)
        .with_context(|| format!("{}: cannot write the token", path.display()))?;
    f.write_all(format!("{token}\n").as_bytes())?;
    Ok(())
}
