//! The SQL layer of demail-gateway's stores: where a store lives ([`Location`]) and one
//! connection to it ([`Conn`]), SQLite for a single town or PostgreSQL shared by several
//! gateway nodes. Business rules stay in the stores; this crate only moves rows.

mod conn;
mod location;

pub use conn::{Conn, Param, Row, Tx, TxKind, Value};
pub use location::{Location, PgLocation};

/// What went wrong talking to the database.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("SQLite: {0}")]
    Sqlite(#[from] rusqlite::Error),
    #[error("PostgreSQL: {}", pg_message(.0))]
    Postgres(#[from] postgres::Error),
    #[error("TLS to PostgreSQL: {0}")]
    Tls(#[from] openssl::error::ErrorStack),
    #[error("PostgreSQL connection: {0}")]
    Config(String),
    #[error("the PostgreSQL connection closed inside a transaction")]
    Closed,
    #[error("column {index}: expected {expected}")]
    Column {
        index: usize,
        expected: &'static str,
    },
}

impl Error {
    /// A unique or primary-key constraint refused the row (SQLite or PostgreSQL).
    pub fn is_unique_violation(&self) -> bool {
        match self {
            Error::Sqlite(rusqlite::Error::SqliteFailure(e, _)) => {
                e.extended_code == rusqlite::ffi::SQLITE_CONSTRAINT_UNIQUE
                    || e.extended_code == rusqlite::ffi::SQLITE_CONSTRAINT_PRIMARYKEY
            }
            Error::Postgres(e) => e.code() == Some(&postgres::error::SqlState::UNIQUE_VIOLATION),
            _ => false,
        }
    }

    /// The server went away or refused service for now: worth a retry later (tempfail).
    pub fn is_transient(&self) -> bool {
        match self {
            Error::Closed => true,
            Error::Postgres(e) => {
                e.is_closed()
                    || e.code().is_some_and(|c| {
                        let c = c.code();
                        // connection exception, insufficient resources, operator intervention
                        c.starts_with("08") || c.starts_with("53") || c.starts_with("57")
                    })
            }
            Error::Sqlite(rusqlite::Error::SqliteFailure(e, _)) => matches!(
                e.code,
                rusqlite::ErrorCode::DatabaseBusy | rusqlite::ErrorCode::DatabaseLocked
            ),
            _ => false,
        }
    }
}

/// The server's message with its detail, or the driver's own text (which alone often says
/// only "db error").
fn pg_message(e: &postgres::Error) -> String {
    match e.as_db_error() {
        Some(db) => match db.detail() {
            Some(d) => format!("{} ({d})", db.message()),
            None => db.message().to_string(),
        },
        None => {
            let mut s = e.to_string();
            let mut src = std::error::Error::source(e);
            while let Some(cause) = src {
                s.push_str(": ");
                s.push_str(&cause.to_string());
                src = cause.source();
            }
            s
        }
    }
}

pub type Result<T, E = Error> = std::result::Result<T, E>;
