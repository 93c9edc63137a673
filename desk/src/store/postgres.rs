//! PostgreSQL behind the repository layer: `?` placeholders become `$n`, prepared
//! statements are kept per connection.

use super::{Backend, Conn, Row, Session, StoreError, Value};
use bytes::BytesMut;
use postgres::error::SqlState;
use postgres::types::{IsNull, ToSql, Type, to_sql_checked};
use postgres::{Client, NoTls, Statement};
use std::collections::HashMap;

pub(super) struct PgSession {
    /// Always `Some` until dropped (see `Drop`).
    client: Option<Client>,
    prepared: HashMap<String, Statement>,
}

impl Drop for PgSession {
    /// The sync client closes its connection with a `block_on` of its own, which panics on
    /// a thread that drives async tasks (the last store handle can go with a runtime's
    /// tasks at shutdown): close it on a plain thread then.
    fn drop(&mut self) {
        if let Some(client) = self.client.take() {
            if tokio::runtime::Handle::try_current().is_ok() {
                let _ = std::thread::Builder::new()
                    .name("pg-close".into())
                    .spawn(move || drop(client));
            }
        }
    }
}

pub(super) fn connect(url: &str) -> Result<PgSession, StoreError> {
    let client = Client::connect(url, NoTls)
        .map_err(|e| StoreError::Unavailable(format!("{}: {e}", super::redact(url))))?;
    Ok(PgSession {
        client: Some(client),
        prepared: HashMap::new(),
    })
}

fn error(e: postgres::Error) -> StoreError {
    if e.is_closed() {
        return StoreError::Unavailable(e.to_string());
    }
    let text = match e.as_db_error() {
        Some(db) => format!("{}: {}", db.code().code(), db.message()),
        None => e.to_string(),
    };
    match e.code() {
        Some(c) if *c == SqlState::DISK_FULL || *c == SqlState::OUT_OF_MEMORY => {
            StoreError::Full(text)
        }
        Some(c)
            if *c == SqlState::UNIQUE_VIOLATION
                || *c == SqlState::FOREIGN_KEY_VIOLATION
                || *c == SqlState::NOT_NULL_VIOLATION
                || *c == SqlState::CHECK_VIOLATION =>
        {
            StoreError::Constraint(text)
        }
        None => StoreError::Unavailable(text),
        _ => StoreError::Other(text),
    }
}

/// `?` → `$1, $2, …` (our statements never hold `?` in a literal).
fn numbered(sql: &str) -> String {
    let mut out = String::with_capacity(sql.len() + 16);
    let mut n = 0;
    for ch in sql.chars() {
        if ch == '?' {
            n += 1;
            out.push('$');
            out.push_str(&n.to_string());
        } else {
            out.push(ch);
        }
    }
    out
}

impl ToSql for Value {
    fn to_sql(
        &self,
        ty: &Type,
        out: &mut BytesMut,
    ) -> Result<IsNull, Box<dyn std::error::Error + Sync + Send>> {
        match self {
            Value::Null => Ok(IsNull::Yes),
            Value::Int(v) if *ty == Type::INT4 => i32::try_from(*v)?.to_sql(ty, out),
            Value::Int(v) if *ty == Type::INT2 => i16::try_from(*v)?.to_sql(ty, out),
            Value::Int(v) if *ty == Type::TEXT || *ty == Type::VARCHAR => {
                v.to_string().to_sql(ty, out)
            }
            Value::Int(v) => v.to_sql(ty, out),
            Value::Text(s) => s.to_sql(ty, out),
        }
    }

    fn accepts(_: &Type) -> bool {
        true
    }

    to_sql_checked!();
}

struct PgTx<'a, 'b> {
    tx: &'a mut postgres::Transaction<'b>,
    prepared: &'a mut HashMap<String, Statement>,
}

impl PgTx<'_, '_> {
    fn statement(&mut self, sql: &str) -> Result<Statement, StoreError> {
        if let Some(s) = self.prepared.get(sql) {
            return Ok(s.clone());
        }
        let s = self.tx.prepare(&numbered(sql)).map_err(error)?;
        if self.prepared.len() > 256 {
            self.prepared.clear();
        }
        self.prepared.insert(sql.to_string(), s.clone());
        Ok(s)
    }
}

fn refs(params: &[Value]) -> Vec<&(dyn ToSql + Sync)> {
    params.iter().map(|v| v as &(dyn ToSql + Sync)).collect()
}

impl Conn for PgTx<'_, '_> {
    fn exec(&mut self, sql: &str, params: &[Value]) -> Result<u64, StoreError> {
        if params.is_empty() && !sql.contains('?') {
            // DDL and other one-off statements: not worth preparing.
            return self.tx.execute(sql, &[]).map_err(error);
        }
        let st = self.statement(sql)?;
        self.tx.execute(&st, &refs(params)).map_err(error)
    }

    fn query(&mut self, sql: &str, params: &[Value]) -> Result<Vec<Row>, StoreError> {
        let st = self.statement(sql)?;
        let rows = self.tx.query(&st, &refs(params)).map_err(error)?;
        let mut out = Vec::with_capacity(rows.len());
        for r in rows {
            let mut row = Vec::with_capacity(r.len());
            for (i, col) in r.columns().iter().enumerate() {
                let t = col.type_();
                let v = if *t == Type::INT8 {
                    r.try_get::<_, Option<i64>>(i).map(|v| v.into())
                } else if *t == Type::INT4 {
                    r.try_get::<_, Option<i32>>(i)
                        .map(|v| v.map(i64::from).into())
                } else if *t == Type::INT2 {
                    r.try_get::<_, Option<i16>>(i)
                        .map(|v| v.map(i64::from).into())
                } else if *t == Type::BOOL {
                    r.try_get::<_, Option<bool>>(i).map(|v| v.into())
                } else {
                    r.try_get::<_, Option<String>>(i).map(|v| v.into())
                };
                row.push(v.map_err(|e| StoreError::Other(format!("column {i} ({t}): {e}")))?);
            }
            out.push(row);
        }
        Ok(out)
    }

    fn backend(&self) -> Backend {
        Backend::Postgres
    }

    fn append(
        &mut self,
        table: &str,
        columns: &[&str],
        rows: &[Vec<Value>],
    ) -> Result<u64, StoreError> {
        use std::io::Write;
        let mut w = self
            .tx
            .copy_in(&format!("COPY {table} ({}) FROM STDIN", columns.join(", ")))
            .map_err(error)?;
        let mut line = String::new();
        for row in rows {
            line.clear();
            for (i, v) in row.iter().enumerate() {
                if i > 0 {
                    line.push('\t');
                }
                match v {
                    Value::Null => line.push_str("\\N"),
                    Value::Int(n) => line.push_str(&n.to_string()),
                    Value::Text(t) => copy_text(&mut line, t),
                }
            }
            line.push('\n');
            w.write_all(line.as_bytes())
                .map_err(|e| StoreError::Unavailable(format!("COPY {table}: {e}")))?;
        }
        w.finish().map_err(error)
    }
}

/// COPY's text format: backslash, tab, newline and carriage return escaped.
fn copy_text(out: &mut String, t: &str) {
    for ch in t.chars() {
        match ch {
            '\\' => out.push_str("\\\\"),
            '\t' => out.push_str("\\t"),
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\0' => {}
            c => out.push(c),
        }
    }
}

impl Session for PgSession {
    fn transaction(
        &mut self,
        work: &mut dyn FnMut(&mut dyn Conn) -> Result<(), StoreError>,
    ) -> Result<(), StoreError> {
        let client = self
            .client
            .as_mut()
            .ok_or_else(|| StoreError::Unavailable("connection closed".into()))?;
        let mut tx = client.transaction().map_err(error)?;
        work(&mut PgTx {
            tx: &mut tx,
            prepared: &mut self.prepared,
        })?;
        tx.commit().map_err(error)
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn copy_text_escapes_what_copy_reads_specially() {
        let mut s = String::new();
        super::copy_text(&mut s, "a\tb\nc\\d\re\0f");
        assert_eq!(s, "a\\tb\\nc\\\\d\\ref");
    }

    #[test]
    fn placeholders_are_numbered() {
        assert_eq!(
            super::numbered("INSERT INTO t (a, b) VALUES (?, ?)"),
            "INSERT INTO t (a, b) VALUES ($1, $2)"
        );
    }
}
