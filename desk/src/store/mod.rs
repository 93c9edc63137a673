//! The repository layer: one set of SQL statements over SQLite (the embedded default) or
//! PostgreSQL (production). Statements are written once with `?` placeholders and plain
//! types (TEXT, BIGINT); each backend turns them into its own dialect. Everything runs in
//! a transaction on a blocking thread (`Store::run`), so a refused request stores nothing.

mod postgres;
mod sqlite;

use std::sync::{Arc, Mutex};
use thiserror::Error;

/// A value bound to or read from a statement. Booleans are stored as 0/1.
#[derive(Clone, Debug, PartialEq)]
pub enum Value {
    Null,
    Int(i64),
    Text(String),
}

impl From<i64> for Value {
    fn from(v: i64) -> Value {
        Value::Int(v)
    }
}
impl From<bool> for Value {
    fn from(v: bool) -> Value {
        Value::Int(v as i64)
    }
}
impl From<&str> for Value {
    fn from(v: &str) -> Value {
        Value::Text(v.to_string())
    }
}
impl From<String> for Value {
    fn from(v: String) -> Value {
        Value::Text(v)
    }
}
impl From<&String> for Value {
    fn from(v: &String) -> Value {
        Value::Text(v.clone())
    }
}
impl<T: Into<Value>> From<Option<T>> for Value {
    fn from(v: Option<T>) -> Value {
        v.map_or(Value::Null, Into::into)
    }
}

/// Binds a list of values: `params![a, b, c]`.
#[macro_export]
macro_rules! params {
    ($($v:expr),* $(,)?) => { &[$($crate::store::Value::from($v)),*][..] };
}

pub type Row = Vec<Value>;

/// Typed reads of a row's columns; a wrong type is a store error, not a panic.
pub trait RowExt {
    fn int(&self, i: usize) -> Result<i64, StoreError>;
    fn text(&self, i: usize) -> Result<String, StoreError>;
    fn opt_int(&self, i: usize) -> Result<Option<i64>, StoreError>;
    fn opt_text(&self, i: usize) -> Result<Option<String>, StoreError>;
}

impl RowExt for Row {
    fn int(&self, i: usize) -> Result<i64, StoreError> {
        self.opt_int(i)?
            .ok_or_else(|| StoreError::Other(format!("column {i} is NULL")))
    }
    fn text(&self, i: usize) -> Result<String, StoreError> {
        self.opt_text(i)?
            .ok_or_else(|| StoreError::Other(format!("column {i} is NULL")))
    }
    fn opt_int(&self, i: usize) -> Result<Option<i64>, StoreError> {
        match self.get(i) {
            Some(Value::Int(v)) => Ok(Some(*v)),
            Some(Value::Null) => Ok(None),
            other => Err(StoreError::Other(format!(
                "column {i}: expected an integer, found {other:?}"
            ))),
        }
    }
    fn opt_text(&self, i: usize) -> Result<Option<String>, StoreError> {
        match self.get(i) {
            Some(Value::Text(v)) => Ok(Some(v.clone())),
            Some(Value::Null) => Ok(None),
            other => Err(StoreError::Other(format!(
                "column {i}: expected text, found {other:?}"
            ))),
        }
    }
}

#[derive(Debug, Error)]
pub enum StoreError {
    /// The disk (or the database's size limit) is full: nothing of the request was stored.
    #[error("the store is full: {0}")]
    Full(String),
    /// The database cannot be reached.
    #[error("the store is unavailable: {0}")]
    Unavailable(String),
    /// A uniqueness or reference rule refused the write.
    #[error("refused by the store: {0}")]
    Constraint(String),
    #[error("store error: {0}")]
    Other(String),
}

/// One transaction's view of the database.
pub trait Conn {
    fn exec(&mut self, sql: &str, params: &[Value]) -> Result<u64, StoreError>;
    fn query(&mut self, sql: &str, params: &[Value]) -> Result<Vec<Row>, StoreError>;
    fn backend(&self) -> Backend;

    fn one(&mut self, sql: &str, params: &[Value]) -> Result<Option<Row>, StoreError> {
        Ok(self.query(sql, params)?.into_iter().next())
    }

    /// Appends many rows to `table` the fastest way the backend has (multi-row INSERTs
    /// here; PostgreSQL's COPY).
    fn append(
        &mut self,
        table: &str,
        columns: &[&str],
        rows: &[Vec<Value>],
    ) -> Result<u64, StoreError> {
        const ROWS_PER_INSERT: usize = 250;
        let one = format!("({})", vec!["?"; columns.len()].join(", "));
        for chunk in rows.chunks(ROWS_PER_INSERT) {
            let sql = format!(
                "INSERT INTO {table} ({}) VALUES {}",
                columns.join(", "),
                vec![one.as_str(); chunk.len()].join(", ")
            );
            let values: Vec<Value> = chunk.iter().flatten().cloned().collect();
            self.exec(&sql, &values)?;
        }
        Ok(rows.len() as u64)
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Backend {
    Sqlite,
    Postgres,
}

impl Backend {
    pub fn name(self) -> &'static str {
        match self {
            Backend::Sqlite => "sqlite",
            Backend::Postgres => "postgres",
        }
    }
}

/// A connection that can open transactions.
trait Session: Send {
    fn transaction(
        &mut self,
        work: &mut dyn FnMut(&mut dyn Conn) -> Result<(), StoreError>,
    ) -> Result<(), StoreError>;
}

/// The numbered migrations, applied in order inside one transaction each.
const MIGRATIONS: &[&str] = &[
    include_str!("../../migrations/001_init.sql"),
    include_str!("../../migrations/002_contracts.sql"),
    include_str!("../../migrations/003_patterns.sql"),
    include_str!("../../migrations/004_reports.sql"),
];

fn dialect(sql: &str, backend: Backend) -> String {
    match backend {
        Backend::Sqlite => sql.replace("ID_PK", "INTEGER PRIMARY KEY"),
        Backend::Postgres => sql.replace("ID_PK", "BIGSERIAL PRIMARY KEY"),
    }
}

struct Pool {
    backend: Backend,
    idle: Mutex<Vec<Box<dyn Session>>>,
    open: Box<dyn Fn() -> Result<Box<dyn Session>, StoreError> + Send + Sync>,
}

/// The desk's database. Cheap to clone.
#[derive(Clone)]
pub struct Store {
    pool: Arc<Pool>,
    pub location: Arc<str>,
}

impl Store {
    /// Opens `sqlite:PATH`, a plain path, or `postgres://…`, and migrates it.
    pub fn open(location: &str) -> Result<Store, StoreError> {
        Store::open_capped(location, None)
    }

    /// [`Store::open`], a SQLite file growing to at most `max_mb`.
    pub fn open_capped(location: &str, max_mb: Option<u64>) -> Result<Store, StoreError> {
        let (backend, open): (Backend, Box<dyn Fn() -> _ + Send + Sync>) =
            if location.starts_with("postgres://") || location.starts_with("postgresql://") {
                let url = location.to_string();
                (
                    Backend::Postgres,
                    Box::new(move || postgres::connect(&url).map(|s| Box::new(s) as _)),
                )
            } else {
                let path = location
                    .strip_prefix("sqlite:")
                    .unwrap_or(location)
                    .to_string();
                (
                    Backend::Sqlite,
                    Box::new(move || sqlite::connect(&path, max_mb).map(|s| Box::new(s) as _)),
                )
            };
        let first = open()?;
        let store = Store {
            pool: Arc::new(Pool {
                backend,
                idle: Mutex::new(vec![first]),
                open,
            }),
            location: redact(location).into(),
        };
        store.migrate()?;
        Ok(store)
    }

    /// The location as messages may show it (no password).
    pub fn describe(location: &str) -> String {
        redact(location)
    }

    pub fn backend(&self) -> Backend {
        self.pool.backend
    }

    fn migrate(&self) -> Result<(), StoreError> {
        let backend = self.backend();
        self.blocking(|c| {
            c.exec(
                "CREATE TABLE IF NOT EXISTS schema_version (version BIGINT NOT NULL)",
                &[],
            )?;
            Ok::<_, StoreError>(())
        })?;
        for (i, m) in MIGRATIONS.iter().enumerate() {
            let number = i as i64 + 1;
            let sql = dialect(m, backend);
            self.blocking(|c| {
                let have = c
                    .one("SELECT MAX(version) FROM schema_version", &[])?
                    .and_then(|r| r.opt_int(0).ok().flatten())
                    .unwrap_or(0);
                if have > MIGRATIONS.len() as i64 {
                    return Err(StoreError::Other(format!(
                        "schema version {have} is newer than this mimamori-desk knows ({}); refusing to touch it",
                        MIGRATIONS.len()
                    )));
                }
                if have >= number {
                    return Ok(());
                }
                for stmt in statements(&sql) {
                    c.exec(&stmt, &[])
                        .map_err(|e| StoreError::Other(format!("migration {number}: {e}")))?;
                }
                c.exec("INSERT INTO schema_version (version) VALUES (?)", params![number])?;
                Ok::<_, StoreError>(())
            })?;
        }
        Ok(())
    }

    /// Runs `work` in one transaction on the calling thread: committed if it returns `Ok`,
    /// rolled back otherwise.
    pub fn blocking<T, E: From<StoreError>>(
        &self,
        work: impl FnOnce(&mut dyn Conn) -> Result<T, E>,
    ) -> Result<T, E> {
        let mut session = match self.pool.idle.lock().map(|mut v| v.pop()) {
            Ok(Some(s)) => s,
            _ => (self.pool.open)()?,
        };
        let mut work = Some(work);
        let mut out = None;
        let mut refused = None;
        let r = session.transaction(&mut |c| {
            let f = work
                .take()
                .ok_or_else(|| StoreError::Other("transaction body ran twice".into()))?;
            match f(c) {
                Ok(v) => {
                    out = Some(v);
                    Ok(())
                }
                Err(e) => {
                    refused = Some(e);
                    // Any error rolls the transaction back; the caller gets `e` itself.
                    Err(StoreError::Other("rolled back".into()))
                }
            }
        });
        let keep = !matches!(r, Err(StoreError::Unavailable(_)));
        // A connection that failed is dropped, not reused: the next call opens anew.
        if keep {
            if let Ok(mut idle) = self.pool.idle.lock() {
                idle.push(session);
            }
        }
        if let Some(e) = refused {
            return Err(e);
        }
        r?;
        out.ok_or_else(|| StoreError::Other("transaction produced nothing".into()).into())
    }

    /// [`Store::blocking`] from async code.
    pub async fn run<T: Send + 'static, E: From<StoreError> + Send + 'static>(
        &self,
        work: impl FnOnce(&mut dyn Conn) -> Result<T, E> + Send + 'static,
    ) -> Result<T, E> {
        let me = self.clone();
        tokio::task::spawn_blocking(move || me.blocking(work))
            .await
            .map_err(|e| StoreError::Other(format!("store task: {e}")))?
    }
}

/// Splits a migration into statements, comments dropped first (they may hold `;`; our
/// literals never do).
fn statements(sql: &str) -> Vec<String> {
    let text: String = sql
        .lines()
        .filter(|l| !l.trim_start().starts_with("--"))
        .map(|l| format!("{l}\n"))
        .collect();
    text.split(';')
        .map(str::trim)
        .filter(|s| !s.is_empty())
        .map(str::to_string)
        .collect()
}

/// A connection string without its password, for messages.
fn redact(location: &str) -> String {
    match (location.find("://"), location.rfind('@')) {
        (Some(s), Some(at)) if at > s => {
            let cred = &location[s + 3..at];
            match cred.find(':') {
                Some(c) => format!(
                    "{}{}:***{}",
                    &location[..s + 3],
                    &cred[..c],
                    &location[at..]
                ),
                None => location.to_string(),
            }
        }
        _ => location.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn passwords_are_not_repeated_in_messages() {
        assert_eq!(
            redact("postgres://desk:s3cret@127.0.0.1/desk"),
            "postgres://desk:***@127.0.0.1/desk"
        );
        assert_eq!(redact("/var/lib/desk.db"), "/var/lib/desk.db");
    }

    #[test]
    fn a_migration_splits_into_its_statements() {
        let n = statements(MIGRATIONS[0]).len();
        assert!(n > 15, "{n}");
        assert!(
            statements(MIGRATIONS[1])
                .iter()
                .all(|s| s.starts_with("CREATE"))
        );
    }

    #[test]
    fn sqlite_store_migrates_and_round_trips() {
        let dir = std::env::temp_dir().join(format!("desk-store-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join("desk.db");
        let s = Store::open(path.to_str().unwrap()).unwrap();
        s.blocking(|c| {
            c.exec(
                "INSERT INTO customer (id, name, created) VALUES (?, ?, ?)",
                params!["c1", "株式会社テスト", 5i64],
            )
        })
        .unwrap();
        let row = s
            .blocking::<_, StoreError>(|c| {
                c.one(
                    "SELECT name, created FROM customer WHERE id = ?",
                    params!["c1"],
                )
            })
            .unwrap()
            .unwrap();
        assert_eq!(row.text(0).unwrap(), "株式会社テスト");
        assert_eq!(row.int(1).unwrap(), 5);
        // A failed transaction leaves nothing.
        let r: Result<(), StoreError> = s.blocking(|c| {
            c.exec(
                "INSERT INTO customer (id, name, created) VALUES (?, ?, ?)",
                params!["c2", "x", 1i64],
            )?;
            c.exec(
                "INSERT INTO customer (id, name, created) VALUES (?, ?, ?)",
                params!["c1", "dup", 1i64],
            )?;
            Ok(())
        });
        assert!(matches!(r, Err(StoreError::Constraint(_))), "{r:?}");
        let n = s
            .blocking::<_, StoreError>(|c| c.one("SELECT COUNT(*) FROM customer", &[]))
            .unwrap()
            .unwrap();
        assert_eq!(n.int(0).unwrap(), 1);
        // Reopening does not migrate twice.
        drop(s);
        Store::open(path.to_str().unwrap()).unwrap();
        let _ = std::fs::remove_dir_all(&dir);
    }
}
