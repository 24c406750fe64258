//! A real PostgreSQL server in a temporary directory: its own cluster (initdb), on a free
//! loopback port, TLS with the test PKI's `localhost` certificate, password logins
//! (scram-sha-256) only over TLS, no systemd.
//!
//! PostgreSQL refuses to run as root, so `initdb`, `pg_ctl` and the administrative `psql` run
//! as the `postgres` user the Debian package creates (via `runuser`); the superuser is reached
//! only over the instance's unix socket, by peer authentication.
//!
//! Two roles exist as a municipal association would set them up: `demail_owner` owns the
//! database and applies migrations, `demail_gateway` is what the milter, the proxy and
//! `demailctl` log in as; it may connect and nothing else until a migration grants it rights.

use std::os::unix::fs::chown;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::sync::atomic::{AtomicU32, Ordering};

use demail_provider_sim::pki::TestPki;

use crate::files::{instance_dir, mkdir, set_mode, write};
use crate::net::free_port;
use crate::process::text;

/// Where Debian's postgresql package puts the server programs (`/usr/lib/postgresql/N/bin`).
const PG_LIB: &str = "/usr/lib/postgresql";
const PG_USER: &str = "postgres";

pub const OWNER: &str = "demail_owner";
pub const GATEWAY: &str = "demail_gateway";
/// The database every instance starts with, owned by [`OWNER`].
pub const DATABASE: &str = "demail";

/// A running PostgreSQL; stopped (and its directory removed) on drop.
pub struct PgServer {
    pub port: u16,
    /// Root of this instance: data/ (the cluster), socket/, pki/, the password files, the log.
    pub dir: PathBuf,
    /// The CA that issued the server's certificate: `sslrootcert` for clients.
    pub ca_cert: PathBuf,
    bin: PathBuf,
    running: bool,
    _tmp: tempfile::TempDir,
}

impl PgServer {
    /// Creates the cluster, starts the server and sets up [`OWNER`], [`GATEWAY`] and the
    /// [`DATABASE`]. Panics with the server's log when any step fails.
    pub fn start() -> PgServer {
        let bin = server_bin();
        let (uid, gid) = pg_ids();
        let tmp = instance_dir("e2e-postgres-");
        let dir = tmp.path().to_path_buf();

        let pki_dir = dir.join("pki");
        let pki = TestPki::generate(&pki_dir)
            .unwrap_or_else(|e| panic!("PostgreSQL: test PKI in {}: {e}", pki_dir.display()));
        set_mode(&pki_dir, 0o755);
        set_mode(&pki.ca_cert, 0o644);
        // The server reads its key as `postgres` and insists on 0600.
        let tls = dir.join("tls");
        mkdir(&tls);
        for (from, to) in [
            (&pki.server_cert, "server.crt"),
            (&pki.server_key, "server.key"),
        ] {
            let to = tls.join(to);
            std::fs::copy(from, &to).unwrap_or_else(|e| panic!("copy {}: {e}", from.display()));
            chown(&to, Some(uid), Some(gid)).unwrap_or_else(|e| panic!("chown: {e}"));
            set_mode(&to, 0o600);
        }
        let data = dir.join("data");
        let socket = dir.join("socket");
        for d in [&data, &socket] {
            mkdir(d);
            chown(d, Some(uid), Some(gid)).unwrap_or_else(|e| panic!("chown: {e}"));
            set_mode(d, 0o700);
        }
        let log = dir.join("postgres.log");
        write(&log, "");
        chown(&log, Some(uid), Some(gid)).unwrap_or_else(|e| panic!("chown: {e}"));

        let mut server = PgServer {
            port: free_port(),
            dir,
            ca_cert: pki.ca_cert.clone(),
            bin,
            running: false,
            _tmp: tmp,
        };
        let data_s = data.to_string_lossy().into_owned();
        server.as_postgres(
            "initdb",
            &[
                "-D",
                &data_s,
                "-U",
                PG_USER,
                "-E",
                "UTF8",
                "--no-locale",
                "--auth-local=peer",
                "--auth-host=reject",
            ],
        );
        let conf = format!(
            "\n# demail-e2e\nlisten_addresses = '127.0.0.1'\nport = {port}\n\
             unix_socket_directories = '{socket}'\nssl = on\n\
             ssl_cert_file = '{tls}/server.crt'\nssl_key_file = '{tls}/server.key'\n\
             password_encryption = 'scram-sha-256'\nmax_connections = 200\n\
             log_connections = on\nlog_min_messages = warning\n",
            port = server.port,
            socket = socket.display(),
            tls = tls.display(),
        );
        append(&data.join("postgresql.conf"), &conf);
        // Only the superuser over the socket (as the OS user postgres), and the two roles over
        // TLS with a password. Everything else matches no line and is refused.
        write(
            &data.join("pg_hba.conf"),
            format!(
                "local all {PG_USER} peer\n\
                 hostssl all {OWNER},{GATEWAY} 127.0.0.1/32 scram-sha-256\n\
                 hostssl all {OWNER},{GATEWAY} ::1/128 scram-sha-256\n"
            ),
        );
        chown(data.join("pg_hba.conf"), Some(uid), Some(gid))
            .unwrap_or_else(|e| panic!("chown: {e}"));
        let log_s = log.to_string_lossy().into_owned();
        server.as_postgres(
            "pg_ctl",
            &["-D", &data_s, "-l", &log_s, "-w", "-t", "60", "start"],
        );
        server.running = true;

        let owner_pw = random_password();
        let gateway_pw = random_password();
        for (role, pw) in [(OWNER, &owner_pw), (GATEWAY, &gateway_pw)] {
            let file = server.password_file(role);
            write(&file, format!("{pw}\n"));
            set_mode(&file, 0o600);
            server.psql(
                "postgres",
                &format!("CREATE ROLE {role} LOGIN PASSWORD '{pw}'"),
            );
        }
        server.create_named_database(DATABASE);
        server
    }

    /// The file holding `role`'s password (one line, mode 0600), as `[evidence] password_file`.
    pub fn password_file(&self, role: &str) -> PathBuf {
        self.dir.join(format!("{role}.password"))
    }

    pub fn owner_password_file(&self) -> PathBuf {
        self.password_file(OWNER)
    }

    pub fn gateway_password_file(&self) -> PathBuf {
        self.password_file(GATEWAY)
    }

    /// A `postgresql://` URL for `role` on `db`: TLS with verify-full against the test CA, no
    /// password (that is in [`PgServer::password_file`]).
    pub fn url(&self, role: &str, db: &str) -> String {
        format!(
            "postgresql://{role}@localhost:{}/{db}?sslmode=verify-full&sslrootcert={}",
            self.port,
            self.ca_cert.display()
        )
    }

    pub fn owner_url(&self, db: &str) -> String {
        self.url(OWNER, db)
    }

    pub fn gateway_url(&self, db: &str) -> String {
        self.url(GATEWAY, db)
    }

    /// The same as [`PgServer::url`] in libpq's key/value form.
    pub fn keyvalue(&self, role: &str, db: &str) -> String {
        format!(
            "host=localhost port={} dbname={db} user={role} sslmode=verify-full sslrootcert='{}'",
            self.port,
            self.ca_cert.display()
        )
    }

    /// A fresh database owned by [`OWNER`] that [`GATEWAY`] may connect to; returns its name.
    /// Tests that share one server each take their own.
    pub fn create_database(&self) -> String {
        static NEXT: AtomicU32 = AtomicU32::new(1);
        let name = format!("demail_{}", NEXT.fetch_add(1, Ordering::Relaxed));
        self.create_named_database(&name);
        name
    }

    fn create_named_database(&self, name: &str) {
        self.psql(
            "postgres",
            &format!("CREATE DATABASE {name} OWNER {OWNER} TEMPLATE template0"),
        );
        self.psql(
            "postgres",
            &format!("REVOKE ALL ON DATABASE {name} FROM PUBLIC"),
        );
        self.psql(
            "postgres",
            &format!("GRANT CONNECT ON DATABASE {name} TO {GATEWAY}"),
        );
        // PostgreSQL 15 already keeps PUBLIC from creating in `public`; say it anyway, so the
        // gateway role's rights are exactly what a migration grants on any version.
        self.psql(name, "REVOKE CREATE ON SCHEMA public FROM PUBLIC");
    }

    /// Runs `sql` as the superuser in `db` and returns psql's unaligned, tuples-only output.
    /// Panics when psql fails.
    pub fn psql(&self, db: &str, sql: &str) -> String {
        let out = self.try_psql(db, sql);
        if !out.status.success() {
            panic!(
                "PostgreSQL: psql -d {db} -c {sql:?} failed:\n{}",
                text(&out)
            );
        }
        String::from_utf8_lossy(&out.stdout).trim_end().to_string()
    }

    /// As [`PgServer::psql`], returning the output whether or not it failed.
    pub fn try_psql(&self, db: &str, sql: &str) -> Output {
        let socket = self.dir.join("socket");
        let port = self.port.to_string();
        Command::new("runuser")
            .args(["-u", PG_USER, "--"])
            .arg(self.bin.join("psql"))
            .args(["-X", "-q", "-A", "-t", "-v", "ON_ERROR_STOP=1", "-h"])
            .arg(&socket)
            .args(["-p", &port, "-U", PG_USER, "-d", db, "-c", sql])
            .current_dir("/")
            .output()
            .unwrap_or_else(|e| panic!("PostgreSQL: cannot run psql: {e}"))
    }

    /// Everything the server logged so far.
    pub fn log(&self) -> String {
        std::fs::read_to_string(self.dir.join("postgres.log")).unwrap_or_default()
    }

    /// Stops the server (fast shutdown: sessions are ended, committed work is kept).
    pub fn stop(&mut self) {
        if !self.running {
            return;
        }
        self.running = false;
        let data = self.dir.join("data").to_string_lossy().into_owned();
        let out = self.run_as_postgres(
            "pg_ctl",
            &["-D", &data, "-m", "fast", "-w", "-t", "60", "stop"],
        );
        if !out.status.success() {
            eprintln!("PostgreSQL: pg_ctl stop failed:\n{}", text(&out));
        }
    }

    fn as_postgres(&self, program: &str, args: &[&str]) {
        let out = self.run_as_postgres(program, args);
        if !out.status.success() {
            panic!(
                "PostgreSQL: {program} {} failed:\n{}\n--- postgres.log ---\n{}",
                args.join(" "),
                text(&out),
                self.log()
            );
        }
    }

    fn run_as_postgres(&self, program: &str, args: &[&str]) -> Output {
        Command::new("runuser")
            .args(["-u", PG_USER, "--"])
            .arg(self.bin.join(program))
            .args(args)
            // postgres cannot read root's working directory; some tools chdir back to it.
            .current_dir("/")
            .output()
            .unwrap_or_else(|e| panic!("PostgreSQL: cannot run {program} via runuser: {e}"))
    }
}

impl Drop for PgServer {
    fn drop(&mut self) {
        if std::thread::panicking() {
            eprintln!(
                "--- postgres.log ({}) ---\n{}--- end of postgres.log ---",
                self.dir.display(),
                self.log()
            );
        }
        self.stop();
    }
}

/// The newest installed server's bin directory.
fn server_bin() -> PathBuf {
    let mut versions: Vec<(u32, PathBuf)> = std::fs::read_dir(PG_LIB)
        .unwrap_or_else(|e| {
            panic!("PostgreSQL: {PG_LIB}: {e} (install the Debian package postgresql)")
        })
        .filter_map(|e| e.ok())
        .filter_map(|e| {
            let v = e.file_name().to_str()?.parse::<u32>().ok()?;
            let bin = e.path().join("bin");
            bin.join("initdb").exists().then_some((v, bin))
        })
        .collect();
    versions.sort();
    versions
        .pop()
        .map(|(_, bin)| bin)
        .unwrap_or_else(|| panic!("PostgreSQL: no {PG_LIB}/*/bin/initdb (install postgresql)"))
}

/// uid and gid of the `postgres` user.
fn pg_ids() -> (u32, u32) {
    let out = Command::new("id")
        .args(["-u", PG_USER])
        .output()
        .expect("run id");
    let uid = String::from_utf8_lossy(&out.stdout).trim().parse::<u32>();
    let out = Command::new("id")
        .args(["-g", PG_USER])
        .output()
        .expect("run id");
    let gid = String::from_utf8_lossy(&out.stdout).trim().parse::<u32>();
    match (uid, gid) {
        (Ok(u), Ok(g)) => (u, g),
        _ => panic!("PostgreSQL: no user {PG_USER} (the postgresql package creates it)"),
    }
}

fn append(path: &Path, text: &str) {
    use std::io::Write as _;
    let mut f = std::fs::OpenOptions::new()
        .append(true)
        .open(path)
        .unwrap_or_else(|e| panic!("open {}: {e}", path.display()));
    f.write_all(text.as_bytes())
        .unwrap_or_else(|e| panic!("write {}: {e}", path.display()));
}

fn random_password() -> String {
    let mut buf = [0u8; 18];
    openssl::rand::rand_bytes(&mut buf).expect("random bytes");
    buf.iter().map(|b| format!("{b:02x}")).collect()
}
