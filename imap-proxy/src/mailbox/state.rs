//! The proxy's own state file (`[imap_proxy] state`): per (login, folder role) the
//! UIDVALIDITY, UIDNEXT and HIGHESTMODSEQ, and per item its UID, MODSEQ and flags. Every
//! change is one transaction with `synchronous=FULL`: a UID that a client may have seen is on
//! disk before the answer leaves, so a crash can never hand it to another message.

use std::path::{Path, PathBuf};

use demail_evidence::Digest;
use rusqlite::{Connection, OpenFlags, OptionalExtension, TransactionBehavior, params};

use super::{MailboxError, Role};

/// `PRAGMA application_id` "DMPX": refuse to write into another program's database (say the
/// evidence store, given by mistake).
const APPLICATION_ID: i64 = 0x444d_5058;
const VERSION: i64 = 1;

const SCHEMA: &str = r#"
CREATE TABLE folders (
    login           TEXT NOT NULL,    -- normalised (demail_policy::login_key)
    role            TEXT NOT NULL,    -- Role::key
    uid_validity    INTEGER NOT NULL CHECK (uid_validity BETWEEN 1 AND 4294967295),
    uid_next        INTEGER NOT NULL CHECK (uid_next BETWEEN 1 AND 4294967296),
    highest_modseq  INTEGER NOT NULL CHECK (highest_modseq >= 1),
    PRIMARY KEY (login, role)
) WITHOUT ROWID;
CREATE TABLE items (
    login        TEXT NOT NULL,
    role         TEXT NOT NULL,
    key          BLOB NOT NULL CHECK (length(key) = 32),  -- content digest
    uid          INTEGER NOT NULL,
    modseq       INTEGER NOT NULL,
    seen         INTEGER NOT NULL,
    flagged      INTEGER NOT NULL,
    gone_modseq  INTEGER,                                  -- set when the item left
    PRIMARY KEY (login, role, key),
    UNIQUE (login, role, uid)
) WITHOUT ROWID;
"#;

pub(crate) struct FolderRow {
    pub uid_validity: u32,
    pub uid_next: u32,
    pub highest_modseq: u64,
}

#[derive(Clone, Copy, Debug)]
pub(crate) struct EntryRow {
    pub key: Digest,
    pub uid: u32,
    pub modseq: u64,
    pub seen: bool,
    pub flagged: bool,
    pub gone: Option<u64>,
}

pub(crate) struct State {
    conn: Connection,
    path: PathBuf,
}

impl State {
    /// Opens or creates the file (its directory must exist), WAL, schema checked.
    pub fn open(path: &Path) -> Result<State, MailboxError> {
        let err = |source| MailboxError::State {
            path: path.display().to_string(),
            source,
        };
        if let Some(parent) = path.parent().filter(|p| !p.as_os_str().is_empty())
            && !parent.is_dir()
        {
            return Err(MailboxError::Other(format!(
                "proxy state {}: directory {} does not exist",
                path.display(),
                parent.display()
            )));
        }
        let flags = OpenFlags::SQLITE_OPEN_READ_WRITE
            | OpenFlags::SQLITE_OPEN_CREATE
            | OpenFlags::SQLITE_OPEN_NO_MUTEX;
        let conn = Connection::open_with_flags(path, flags).map_err(err)?;
        let setup = || -> rusqlite::Result<Result<(), String>> {
            conn.busy_timeout(std::time::Duration::from_secs(30))?;
            let app: i64 = conn.pragma_query_value(None, "application_id", |r| r.get(0))?;
            let version: i64 = conn.pragma_query_value(None, "user_version", |r| r.get(0))?;
            if app == 0 {
                let any: Option<String> = conn
                    .query_row("SELECT name FROM sqlite_schema LIMIT 1", [], |r| r.get(0))
                    .optional()?;
                if let Some(name) = any {
                    return Ok(Err(format!(
                        "not a proxy state file: it holds table {name:?} but no application id"
                    )));
                }
            } else if app != APPLICATION_ID {
                return Ok(Err(format!(
                    "not a proxy state file (application id {app:#x})"
                )));
            } else if version != VERSION {
                return Ok(Err(format!(
                    "state schema version {version}, this program knows {VERSION}"
                )));
            }
            conn.pragma_update(None, "journal_mode", "WAL")?;
            conn.pragma_update(None, "synchronous", "FULL")?;
            if app == 0 {
                let tx =
                    rusqlite::Transaction::new_unchecked(&conn, TransactionBehavior::Immediate)?;
                let again: i64 = tx.pragma_query_value(None, "application_id", |r| r.get(0))?;
                if again == 0 {
                    tx.execute_batch(SCHEMA)?;
                    tx.pragma_update(None, "application_id", APPLICATION_ID)?;
                    tx.pragma_update(None, "user_version", VERSION)?;
                }
                tx.commit()?;
            }
            Ok(Ok(()))
        };
        match setup().map_err(err)? {
            Ok(()) => Ok(State {
                conn,
                path: path.to_path_buf(),
            }),
            Err(reason) => Err(MailboxError::Other(format!(
                "proxy state {}: {reason}",
                path.display()
            ))),
        }
    }

    fn err(&self, source: rusqlite::Error) -> MailboxError {
        MailboxError::State {
            path: self.path.display().to_string(),
            source,
        }
    }

    /// The folder's counters and every item row, creating the folder (UIDVALIDITY chosen now,
    /// once) when it is new.
    pub fn load(
        &self,
        login: &str,
        role: Role,
        new_uid_validity: u32,
    ) -> Result<(FolderRow, Vec<EntryRow>), MailboxError> {
        let run = || -> rusqlite::Result<(FolderRow, Vec<EntryRow>)> {
            let tx =
                rusqlite::Transaction::new_unchecked(&self.conn, TransactionBehavior::Immediate)?;
            tx.prepare_cached(
                "INSERT INTO folders (login, role, uid_validity, uid_next, highest_modseq) \
                 VALUES (?1, ?2, ?3, 1, 1) ON CONFLICT DO NOTHING",
            )?
            .execute(params![login, role.key(), new_uid_validity])?;
            let folder = tx
                .prepare_cached(
                    "SELECT uid_validity, uid_next, highest_modseq FROM folders \
                     WHERE login = ?1 AND role = ?2",
                )?
                .query_row(params![login, role.key()], |r| {
                    Ok(FolderRow {
                        uid_validity: r.get(0)?,
                        uid_next: r.get::<_, i64>(1)?.try_into().unwrap_or(u32::MAX),
                        highest_modseq: r.get::<_, i64>(2)? as u64,
                    })
                })?;
            let mut rows = Vec::new();
            {
                let mut stmt = tx.prepare_cached(
                    "SELECT key, uid, modseq, seen, flagged, gone_modseq FROM items \
                     WHERE login = ?1 AND role = ?2",
                )?;
                let mut q = stmt.query(params![login, role.key()])?;
                while let Some(r) = q.next()? {
                    let key: Vec<u8> = r.get(0)?;
                    let Ok(key) = <[u8; 32]>::try_from(&key[..]) else {
                        continue; // the CHECK constraint rules this out
                    };
                    rows.push(EntryRow {
                        key: Digest(key),
                        uid: r.get(1)?,
                        modseq: r.get::<_, i64>(2)? as u64,
                        seen: r.get(3)?,
                        flagged: r.get(4)?,
                        gone: r.get::<_, Option<i64>>(5)?.map(|m| m as u64),
                    });
                }
            }
            tx.commit()?;
            Ok((folder, rows))
        };
        run().map_err(|e| self.err(e))
    }

    /// Writes changed item rows and the folder's counters in one transaction.
    pub fn save(
        &self,
        login: &str,
        role: Role,
        folder: &FolderRow,
        rows: &[EntryRow],
    ) -> Result<(), MailboxError> {
        let run = || -> rusqlite::Result<()> {
            let tx =
                rusqlite::Transaction::new_unchecked(&self.conn, TransactionBehavior::Immediate)?;
            {
                let mut up = tx.prepare_cached(
                    "INSERT INTO items (login, role, key, uid, modseq, seen, flagged, gone_modseq) \
                     VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8) \
                     ON CONFLICT (login, role, key) DO UPDATE SET uid = excluded.uid, \
                     modseq = excluded.modseq, seen = excluded.seen, flagged = excluded.flagged, \
                     gone_modseq = excluded.gone_modseq",
                )?;
                for r in rows {
                    up.execute(params![
                        login,
                        role.key(),
                        &r.key.0[..],
                        r.uid,
                        r.modseq as i64,
                        r.seen,
                        r.flagged,
                        r.gone.map(|m| m as i64)
                    ])?;
                }
            }
            // The counters only grow, whatever another process wrote meanwhile.
            tx.prepare_cached(
                "UPDATE folders SET uid_next = max(uid_next, ?3), \
                 highest_modseq = max(highest_modseq, ?4) WHERE login = ?1 AND role = ?2",
            )?
            .execute(params![
                login,
                role.key(),
                i64::from(folder.uid_next),
                folder.highest_modseq as i64
            ])?;
            tx.commit()
        };
        run().map_err(|e| self.err(e))
    }
}
