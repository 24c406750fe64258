//! The PostgreSQL harness itself: the server the evidence tests run against accepts only
//! what a municipal association's server would (TLS, the right password, the gateway role
//! without rights of its own).

use demail_e2e::PgServer;
use demail_e2e::postgres::{DATABASE, GATEWAY, OWNER};
use demail_sql::{Conn, Location};

fn connect(value: &str, password_file: Option<std::path::PathBuf>) -> Result<Conn, String> {
    let location = Location::parse(value, std::path::Path::new("/"), password_file)?;
    let Location::Postgres(pg) = location else {
        panic!("{value} must name PostgreSQL");
    };
    Conn::connect(&pg).map_err(|e| e.to_string())
}

#[test]
fn logins_need_tls_and_the_password_and_the_gateway_role_starts_without_rights() {
    let pg = PgServer::start();

    // Both connection forms, verify-full against the test CA, password from the file.
    for value in [pg.gateway_url(DATABASE), pg.keyvalue(GATEWAY, DATABASE)] {
        let conn = connect(&value, Some(pg.gateway_password_file())).expect("gateway logs in");
        let row = conn
            .query_opt("SELECT current_user, ssl FROM pg_stat_ssl JOIN pg_stat_activity USING (pid) WHERE pid = pg_backend_pid()", &[])
            .unwrap()
            .expect("own session");
        assert_eq!(row.text(0).unwrap(), GATEWAY);
    }
    let ssl = pg.psql(
        "postgres",
        "SELECT bool_and(s.ssl) FROM pg_stat_ssl s JOIN pg_stat_activity a USING (pid) WHERE a.usename IS NOT NULL AND a.usename <> 'postgres'",
    );
    assert!(
        ssl == "t" || ssl.is_empty(),
        "every client session uses TLS: {ssl}"
    );

    // A wrong password is refused by the server.
    let wrong = pg.dir.join("wrong.password");
    std::fs::write(&wrong, "not-the-password\n").unwrap();
    let err = connect(&pg.gateway_url(DATABASE), Some(wrong))
        .err()
        .expect("refused");
    assert!(err.contains("password authentication failed"), "{err}");

    // Without TLS there is no matching pg_hba line: refused, even with the right password.
    let plain = format!(
        "host=127.0.0.1 port={} dbname={DATABASE} user={GATEWAY}",
        pg.port
    );
    let config: postgres::Config = plain.parse().unwrap();
    let password = std::fs::read_to_string(pg.gateway_password_file()).unwrap();
    let refused = config
        .clone()
        .password(password.trim())
        .connect(postgres::NoTls)
        .err()
        .expect("plain TCP refused");
    let reason = refused.as_db_error().map(|e| e.message().to_string());
    assert!(
        reason
            .as_deref()
            .is_some_and(|m| m.contains("no pg_hba.conf entry")),
        "{refused:?}"
    );

    // verify-full checks the name: 127.0.0.1 is in the certificate's SAN too.
    let other_name = pg
        .gateway_url(DATABASE)
        .replace("@localhost:", "@127.0.0.1:");
    connect(&other_name, Some(pg.gateway_password_file())).expect("IP SAN matches");
    // A server certificate from a CA the client was not given is refused before any password.
    let untrusted_ca = pg.dir.join("pki-other");
    let other = demail_provider_sim::pki::TestPki::generate(&untrusted_ca).unwrap();
    let foreign = format!(
        "postgresql://{GATEWAY}@localhost:{}/{DATABASE}?sslmode=verify-full&sslrootcert={}",
        pg.port,
        other.ca_cert.display()
    );
    let err = connect(&foreign, Some(pg.gateway_password_file()))
        .err()
        .expect("a server certificate from another CA is refused");
    assert!(err.contains("certificate verify failed"), "{err}");

    // The gateway role may connect and nothing else.
    let gw = connect(&pg.gateway_url(DATABASE), Some(pg.gateway_password_file())).unwrap();
    let Err(err) = gw.batch("CREATE TABLE t (x int)") else {
        panic!("gateway may not create");
    };
    assert!(err.to_string().contains("permission denied"), "{err}");
    // The owner may.
    let owner = connect(&pg.owner_url(DATABASE), Some(pg.owner_password_file())).unwrap();
    owner.batch("CREATE TABLE t (x int)").unwrap();
    let Err(err) = gw.query("SELECT * FROM t", &[]) else {
        panic!("no SELECT granted");
    };
    assert!(err.to_string().contains("permission denied"), "{err}");
    assert_eq!(
        pg.psql(
            DATABASE,
            "SELECT tableowner FROM pg_tables WHERE tablename = 't'"
        ),
        OWNER
    );

    // Databases for further tests on the same server.
    let db = pg.create_database();
    connect(&pg.gateway_url(&db), Some(pg.gateway_password_file())).expect("new database");
}
