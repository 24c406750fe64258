//! One connection, to SQLite or PostgreSQL, behind the few operations the stores use.
//!
//! SQL is written once in the common dialect with SQLite's `?N` placeholders; for PostgreSQL
//! they become `$N` (and SQLite's join-order hint `CROSS JOIN … ON` a plain `JOIN … ON`).
//! Values are integers, text and bytes only.

use std::cell::{RefCell, RefMut};
use std::collections::HashMap;

use openssl::ssl::{SslConnector, SslFiletype, SslMethod, SslVerifyMode};
use postgres::types::{ToSql, Type};
use postgres::{NoTls, Statement};
use postgres_openssl::MakeTlsConnector;

use crate::location::{PgLocation, Tls};
use crate::{Error, Result};

/// A statement parameter.
#[derive(Clone, Copy, Debug)]
pub enum Param<'a> {
    Int(i64),
    Text(&'a str),
    Bytes(&'a [u8]),
}

impl From<i64> for Param<'_> {
    fn from(v: i64) -> Self {
        Param::Int(v)
    }
}
impl<'a> From<&'a str> for Param<'a> {
    fn from(v: &'a str) -> Self {
        Param::Text(v)
    }
}
impl<'a> From<&'a String> for Param<'a> {
    fn from(v: &'a String) -> Self {
        Param::Text(v)
    }
}
impl<'a> From<&'a [u8]> for Param<'a> {
    fn from(v: &'a [u8]) -> Self {
        Param::Bytes(v)
    }
}
impl<'a> From<&'a Vec<u8>> for Param<'a> {
    fn from(v: &'a Vec<u8>) -> Self {
        Param::Bytes(v)
    }
}
impl<'a, const N: usize> From<&'a [u8; N]> for Param<'a> {
    fn from(v: &'a [u8; N]) -> Self {
        Param::Bytes(v)
    }
}

/// `args![a, b]`: a parameter list.
#[macro_export]
macro_rules! args {
    () => { &[] as &[$crate::Param<'_>] };
    ($($v:expr),+ $(,)?) => { &[$($crate::Param::from($v)),+] as &[$crate::Param<'_>] };
}

impl rusqlite::ToSql for Param<'_> {
    fn to_sql(&self) -> rusqlite::Result<rusqlite::types::ToSqlOutput<'_>> {
        use rusqlite::types::{ToSqlOutput, ValueRef};
        Ok(ToSqlOutput::Borrowed(match self {
            Param::Int(v) => ValueRef::Integer(*v),
            Param::Text(v) => ValueRef::Text(v.as_bytes()),
            Param::Bytes(v) => ValueRef::Blob(v),
        }))
    }
}

fn pg_param<'a>(p: &'a Param<'a>) -> &'a (dyn ToSql + Sync) {
    match p {
        Param::Int(v) => v,
        Param::Text(v) => v,
        Param::Bytes(v) => v,
    }
}

/// A column value.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Value {
    Null,
    Int(i64),
    Text(String),
    Bytes(Vec<u8>),
}

/// One result row, owned.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Row(pub Vec<Value>);

impl Row {
    fn at(&self, i: usize) -> Result<&Value> {
        self.0.get(i).ok_or(Error::Column {
            index: i,
            expected: "a column",
        })
    }

    pub fn int(&self, i: usize) -> Result<i64> {
        match self.at(i)? {
            Value::Int(v) => Ok(*v),
            _ => Err(Error::Column {
                index: i,
                expected: "an integer",
            }),
        }
    }

    pub fn text(&self, i: usize) -> Result<String> {
        match self.at(i)? {
            Value::Text(v) => Ok(v.clone()),
            _ => Err(Error::Column {
                index: i,
                expected: "text",
            }),
        }
    }

    pub fn bytes(&self, i: usize) -> Result<Vec<u8>> {
        match self.at(i)? {
            Value::Bytes(v) => Ok(v.clone()),
            _ => Err(Error::Column {
                index: i,
                expected: "bytes",
            }),
        }
    }

    /// Moves a text or bytes column out (cheaper than a copy for large values).
    pub fn take_bytes(&mut self, i: usize) -> Result<Vec<u8>> {
        match self.0.get_mut(i).map(|v| std::mem::replace(v, Value::Null)) {
            Some(Value::Bytes(v)) => Ok(v),
            Some(Value::Text(v)) => Ok(v.into_bytes()),
            _ => Err(Error::Column {
                index: i,
                expected: "bytes",
            }),
        }
    }

    /// An integer column that may be NULL.
    pub fn opt_int(&self, i: usize) -> Result<Option<i64>> {
        match self.at(i)? {
            Value::Null => Ok(None),
            _ => self.int(i).map(Some),
        }
    }
}

/// What a transaction is for.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum TxKind {
    /// Writes that must not interleave with other writers of `lock` (the chain append): SQLite
    /// takes its write lock at BEGIN; PostgreSQL takes a transaction-scoped advisory lock, so
    /// writers on every node queue for it and each sees the others' committed rows.
    Write { lock: i64 },
    /// Reads that must see one consistent state while writers go on.
    Snapshot,
}

/// A connection to SQLite or PostgreSQL.
pub enum Conn {
    Sqlite(rusqlite::Connection),
    Postgres(Box<RefCell<Pg>>),
}

/// A PostgreSQL client with its prepared statements.
pub struct Pg {
    client: Client,
    statements: HashMap<String, Statement>,
    location: PgLocation,
    /// Open transactions (BEGIN and savepoints are issued as SQL).
    depth: u32,
}

impl Conn {
    /// Connects to a PostgreSQL server.
    pub fn connect(location: &PgLocation) -> Result<Conn> {
        let client = off_runtime(|| pg_connect(location))?;
        Ok(Conn::Postgres(Box::new(RefCell::new(Pg {
            client,
            statements: HashMap::new(),
            location: location.clone(),
            depth: 0,
        }))))
    }

    pub fn is_postgres(&self) -> bool {
        matches!(self, Conn::Postgres(_))
    }

    /// The SQLite connection, for what only SQLite has (online backup, pragmas).
    pub fn sqlite(&self) -> Option<&rusqlite::Connection> {
        match self {
            Conn::Sqlite(c) => Some(c),
            Conn::Postgres(_) => None,
        }
    }

    /// Whether a transaction is open (SQLite ends one by itself on some errors, such as a
    /// full disk; PostgreSQL when the session is lost).
    pub fn in_transaction(&self) -> bool {
        match self {
            Conn::Sqlite(c) => !c.is_autocommit(),
            Conn::Postgres(pg) => {
                let pg = pg.borrow();
                pg.depth > 0 && !pg.client.is_closed()
            }
        }
    }

    /// Runs one statement; returns the number of rows changed.
    pub fn execute(&self, sql: &str, params: &[Param<'_>]) -> Result<u64> {
        match self {
            Conn::Sqlite(c) => {
                Ok(c.prepare_cached(sql)?
                    .execute(rusqlite::params_from_iter(params.iter()))? as u64)
            }
            Conn::Postgres(pg) => {
                let mut guard = pg_ready(pg)?;
                let pg: &mut Pg = &mut guard;
                off_runtime(|| {
                    let stmt = pg.statement(sql)?;
                    let args: Vec<&(dyn ToSql + Sync)> = params.iter().map(pg_param).collect();
                    Ok(pg.client.execute(&stmt, &args)?)
                })
            }
        }
    }

    /// Runs a query and returns every row.
    pub fn query(&self, sql: &str, params: &[Param<'_>]) -> Result<Vec<Row>> {
        let mut rows = Vec::new();
        self.for_each(sql, params, |r| {
            rows.push(r);
            Ok::<_, Error>(())
        })?;
        Ok(rows)
    }

    /// Runs a query and returns its first row, if any.
    pub fn query_opt(&self, sql: &str, params: &[Param<'_>]) -> Result<Option<Row>> {
        match self {
            Conn::Sqlite(c) => {
                let mut stmt = c.prepare_cached(sql)?;
                let n = stmt.column_count();
                let mut rows = stmt.query(rusqlite::params_from_iter(params.iter()))?;
                match rows.next()? {
                    Some(r) => Ok(Some(sqlite_row(r, n)?)),
                    None => Ok(None),
                }
            }
            Conn::Postgres(_) => Ok(self.query(sql, params)?.into_iter().next()),
        }
    }

    /// Calls `f` with each row. SQLite streams the rows and `f` may run other statements on
    /// this connection meanwhile; PostgreSQL fetches the result first.
    pub fn for_each<F, E>(&self, sql: &str, params: &[Param<'_>], mut f: F) -> Result<(), E>
    where
        F: FnMut(Row) -> Result<(), E>,
        E: From<Error>,
    {
        match self {
            Conn::Sqlite(c) => {
                let mut stmt = c.prepare_cached(sql).map_err(Error::from)?;
                let n = stmt.column_count();
                let mut rows = stmt
                    .query(rusqlite::params_from_iter(params.iter()))
                    .map_err(Error::from)?;
                while let Some(r) = rows.next().map_err(Error::from)? {
                    f(sqlite_row(r, n)?)?;
                }
                Ok(())
            }
            Conn::Postgres(pg) => {
                let rows = {
                    let mut guard = pg_ready(pg)?;
                    let pg: &mut Pg = &mut guard;
                    off_runtime(|| {
                        let stmt = pg.statement(sql)?;
                        let args: Vec<&(dyn ToSql + Sync)> = params.iter().map(pg_param).collect();
                        pg.client.query(&stmt, &args).map_err(Error::from)
                    })?
                };
                for r in &rows {
                    f(pg_row(r)?)?;
                }
                Ok(())
            }
        }
    }

    /// Runs several statements without parameters (schema, savepoints).
    pub fn batch(&self, sql: &str) -> Result<()> {
        match self {
            Conn::Sqlite(c) => Ok(c.execute_batch(sql)?),
            Conn::Postgres(pg) => {
                let mut guard = pg_ready(pg)?;
                let pg: &mut Pg = &mut guard;
                off_runtime(|| Ok(pg.client.batch_execute(sql)?))
            }
        }
    }

    /// Begins a transaction; it rolls back unless committed.
    pub fn begin(&self, kind: TxKind) -> Result<Tx<'_>> {
        match self {
            Conn::Sqlite(c) => c.execute_batch(match kind {
                TxKind::Write { .. } => "BEGIN IMMEDIATE",
                TxKind::Snapshot => "BEGIN DEFERRED",
            })?,
            Conn::Postgres(pg) => {
                let mut guard = pg_ready(pg)?;
                let pg: &mut Pg = &mut guard;
                off_runtime(|| -> Result<()> {
                    match kind {
                        TxKind::Write { lock } => {
                            pg.client.batch_execute("BEGIN")?;
                            pg.depth += 1;
                            // Released at COMMIT or ROLLBACK, also when the session dies.
                            let r = pg
                                .client
                                .execute("SELECT pg_advisory_xact_lock($1)", &[&lock]);
                            if let Err(e) = r {
                                let _ = pg.client.batch_execute("ROLLBACK");
                                pg.depth -= 1;
                                return Err(e.into());
                            }
                        }
                        TxKind::Snapshot => {
                            pg.client
                                .batch_execute("BEGIN ISOLATION LEVEL REPEATABLE READ READ ONLY")?;
                            pg.depth += 1;
                        }
                    }
                    Ok(())
                })?;
            }
        }
        Ok(Tx {
            conn: self,
            done: false,
        })
    }

    fn end(&self, sql: &str) -> Result<()> {
        match self {
            Conn::Sqlite(c) => Ok(c.execute_batch(sql)?),
            Conn::Postgres(pg) => {
                let mut guard = pg.borrow_mut();
                let pg: &mut Pg = &mut guard;
                pg.depth = pg.depth.saturating_sub(1);
                off_runtime(|| Ok(pg.client.batch_execute(sql)?))
            }
        }
    }
}

/// An open transaction. Dropped without [`Tx::commit`], it rolls back.
pub struct Tx<'a> {
    conn: &'a Conn,
    done: bool,
}

impl Tx<'_> {
    pub fn commit(mut self) -> Result<()> {
        self.done = true;
        self.conn.end("COMMIT")
    }
}

impl Drop for Tx<'_> {
    fn drop(&mut self) {
        if !self.done {
            let _ = self.conn.end("ROLLBACK");
        }
    }
}

impl std::ops::Deref for Tx<'_> {
    type Target = Conn;
    fn deref(&self) -> &Conn {
        self.conn
    }
}

impl Pg {
    fn statement(&mut self, sql: &str) -> Result<Statement> {
        if let Some(s) = self.statements.get(sql) {
            return Ok(s.clone());
        }
        let stmt = self.client.prepare(&pg_dialect(sql))?;
        self.statements.insert(sql.to_string(), stmt.clone());
        Ok(stmt)
    }
}

/// The client, connected again if the server closed the session between transactions (a
/// restart or fail-over); inside a transaction the error goes to the caller, who retries it.
fn pg_ready(pg: &RefCell<Pg>) -> Result<RefMut<'_, Pg>> {
    let mut g = pg.borrow_mut();
    if g.client.is_closed() {
        if g.depth > 0 {
            return Err(Error::Closed);
        }
        let location = g.location.clone();
        g.client = off_runtime(move || pg_connect(&location))?;
        g.statements.clear();
    }
    Ok(g)
}

/// The synchronous driver runs a runtime of its own, which tokio refuses to start (or drop)
/// on a thread that drives async tasks. On a multi-thread runtime (the milter; its blocking
/// pool included) `block_in_place` lets it; a current-thread runtime (the IMAP proxy) has no
/// such way out, so there the call goes to a short-lived scoped thread. Off any runtime
/// (demailctl) it simply runs.
fn off_runtime<R: Send>(f: impl FnOnce() -> R + Send) -> R {
    use tokio::runtime::{Handle, RuntimeFlavor};
    match Handle::try_current().map(|h| h.runtime_flavor()) {
        Err(_) => f(),
        Ok(RuntimeFlavor::MultiThread) => tokio::task::block_in_place(f),
        Ok(_) => std::thread::scope(|s| match s.spawn(f).join() {
            Ok(r) => r,
            Err(panic) => std::panic::resume_unwind(panic),
        }),
    }
}

/// The driver's client, dropped off any async runtime (see [`off_runtime`]).
struct Client(Option<postgres::Client>);

impl std::ops::Deref for Client {
    type Target = postgres::Client;
    fn deref(&self) -> &postgres::Client {
        self.0.as_ref().expect("a client until dropped")
    }
}

impl std::ops::DerefMut for Client {
    fn deref_mut(&mut self) -> &mut postgres::Client {
        self.0.as_mut().expect("a client until dropped")
    }
}

impl Drop for Client {
    fn drop(&mut self) {
        if let Some(c) = self.0.take() {
            off_runtime(move || drop(c));
        }
    }
}

fn pg_connect(location: &PgLocation) -> Result<Client> {
    pg_connect_driver(location).map(|c| Client(Some(c)))
}

fn pg_connect_driver(location: &PgLocation) -> Result<postgres::Client> {
    let mut config = location.config().map_err(Error::Config)?;
    match &location.tls {
        Tls::Disable => {
            config.ssl_mode(postgres::config::SslMode::Disable);
            Ok(config.connect(NoTls)?)
        }
        Tls::Verify {
            hostname,
            root_cert,
            client,
        } => {
            config.ssl_mode(postgres::config::SslMode::Require);
            let mut b = SslConnector::builder(SslMethod::tls_client())?;
            b.set_verify(SslVerifyMode::PEER);
            match root_cert {
                Some(ca) => b.set_ca_file(ca)?,
                None => b.set_default_verify_paths()?,
            }
            if let Some((cert, key)) = client {
                b.set_certificate_chain_file(cert)?;
                b.set_private_key_file(key, SslFiletype::PEM)?;
                b.check_private_key()?;
            }
            let mut tls = MakeTlsConnector::new(b.build());
            if !hostname {
                // verify-ca: the chain must lead to the root, the name may differ.
                tls.set_callback(|c, _| {
                    c.set_verify_hostname(false);
                    Ok(())
                });
            }
            Ok(config.connect(tls)?)
        }
    }
}

/// SQLite's dialect to PostgreSQL's: `?N` placeholders become `$N`, and the join-order hint
/// `CROSS JOIN … ON` a plain `JOIN … ON`. Our statements carry no `?` inside literals.
fn pg_dialect(sql: &str) -> String {
    sql.replace('?', "$").replace("CROSS JOIN", "JOIN")
}

fn sqlite_row(r: &rusqlite::Row<'_>, n: usize) -> Result<Row> {
    use rusqlite::types::ValueRef;
    (0..n)
        .map(|i| {
            Ok(match r.get_ref(i)? {
                ValueRef::Null => Value::Null,
                ValueRef::Integer(v) => Value::Int(v),
                ValueRef::Real(v) => Value::Int(v as i64),
                ValueRef::Text(t) => {
                    Value::Text(String::from_utf8(t.to_vec()).map_err(|_| Error::Column {
                        index: i,
                        expected: "UTF-8 text",
                    })?)
                }
                ValueRef::Blob(b) => Value::Bytes(b.to_vec()),
            })
        })
        .collect::<Result<Vec<_>>>()
        .map(Row)
}

fn pg_row(r: &postgres::Row) -> Result<Row> {
    (0..r.len())
        .map(|i| {
            let ty = r.columns()[i].type_();
            let bad = |_| Error::Column {
                index: i,
                expected: "a value of its declared type",
            };
            Ok(if *ty == Type::INT8 {
                r.try_get::<_, Option<i64>>(i).map_err(bad)?.map(Value::Int)
            } else if *ty == Type::INT4 {
                r.try_get::<_, Option<i32>>(i)
                    .map_err(bad)?
                    .map(|v| Value::Int(v.into()))
            } else if *ty == Type::INT2 {
                r.try_get::<_, Option<i16>>(i)
                    .map_err(bad)?
                    .map(|v| Value::Int(v.into()))
            } else if *ty == Type::BOOL {
                r.try_get::<_, Option<bool>>(i)
                    .map_err(bad)?
                    .map(|v| Value::Int(v.into()))
            } else if *ty == Type::BYTEA {
                r.try_get::<_, Option<Vec<u8>>>(i)
                    .map_err(bad)?
                    .map(Value::Bytes)
            } else if [Type::TEXT, Type::VARCHAR, Type::NAME, Type::BPCHAR].contains(ty) {
                r.try_get::<_, Option<String>>(i)
                    .map_err(bad)?
                    .map(Value::Text)
            } else {
                return Err(Error::Column {
                    index: i,
                    expected: "integer, text or bytea (found another type)",
                });
            }
            .unwrap_or(Value::Null))
        })
        .collect::<Result<Vec<_>>>()
        .map(Row)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sqlite() -> Conn {
        let c = Conn::Sqlite(rusqlite::Connection::open_in_memory().unwrap());
        c.batch("CREATE TABLE t (id INTEGER PRIMARY KEY, name TEXT, data BLOB)")
            .unwrap();
        c
    }

    #[test]
    fn a_dropped_transaction_leaves_nothing_and_a_committed_one_stays() {
        let c = sqlite();
        {
            let tx = c.begin(TxKind::Write { lock: 1 }).unwrap();
            tx.execute("INSERT INTO t VALUES (?1, ?2, ?3)", args![1, "a", b"x"])
                .unwrap();
        }
        assert!(c.query("SELECT * FROM t", args![]).unwrap().is_empty());
        let tx = c.begin(TxKind::Write { lock: 1 }).unwrap();
        tx.execute("INSERT INTO t VALUES (?1, ?2, ?3)", args![2, "b", b"y"])
            .unwrap();
        tx.commit().unwrap();
        let row = c
            .query_opt("SELECT id, name, data FROM t WHERE id = ?1", args![2])
            .unwrap()
            .unwrap();
        assert_eq!(
            row,
            Row(vec![
                Value::Int(2),
                Value::Text("b".into()),
                Value::Bytes(b"y".to_vec())
            ])
        );
        assert!(row.text(0).is_err(), "an integer is not read as text");
    }

    #[test]
    fn a_unique_violation_is_recognised() {
        let c = sqlite();
        c.execute("INSERT INTO t (id) VALUES (?1)", args![1])
            .unwrap();
        let e = c
            .execute("INSERT INTO t (id) VALUES (?1)", args![1])
            .unwrap_err();
        assert!(e.is_unique_violation(), "{e}");
    }

    #[test]
    fn placeholders_and_join_hints_become_postgresql() {
        assert_eq!(
            pg_dialect("SELECT a FROM x CROSS JOIN y ON y.i = x.i WHERE a = ?1 LIMIT ?2"),
            "SELECT a FROM x JOIN y ON y.i = x.i WHERE a = $1 LIMIT $2"
        );
    }

    #[test]
    fn rows_stream_while_the_callback_writes() {
        let c = sqlite();
        for i in 0..3 {
            c.execute("INSERT INTO t (id) VALUES (?1)", args![i])
                .unwrap();
        }
        let mut seen = 0;
        c.for_each("SELECT id FROM t WHERE id < 3 ORDER BY id", args![], |r| {
            c.execute("INSERT INTO t (id) VALUES (?1)", args![100 + r.int(0)?])?;
            seen += 1;
            Ok::<_, Error>(())
        })
        .unwrap();
        assert_eq!(seen, 3);
        assert_eq!(c.query("SELECT id FROM t", args![]).unwrap().len(), 6);
    }
}
