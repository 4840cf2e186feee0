//! TLS to the databases (guide: *Security* › *Transport to the backends*): the real server binary
//! against the local PostgreSQL with `sslmode=verify-full` and a Redis over `rediss://`, both with
//! a certificate made here.
//!
//! PostgreSQL: the test makes a CA and a server certificate for `localhost`/`127.0.0.1` (rcgen),
//! keeps them in `/var/lib/postgresql/goldjobs-test-tls/` (a stable place next to PostgreSQL's
//! own data: `ALTER SYSTEM` points the server at them, so they must outlive the test), turns
//! `ssl` on and reloads. Plain connections keep working (the other tests use them).
//! Redis: a TLS-only `redis-server` on a free loopback port, started and stopped by the test.
//!
//! Needs root (to hand the key to the `postgres` user) and the local services; skipped with a
//! reason otherwise, and a failure when `GOLDJOBS_REQUIRE_SERVICES=1`.

#![allow(clippy::unwrap_used)]

use std::io::{BufRead, BufReader};
use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::Duration;

const TLS_DIR: &str = "/var/lib/postgresql/goldjobs-test-tls";

fn require_services() -> bool {
    std::env::var("GOLDJOBS_REQUIRE_SERVICES").as_deref() == Ok("1")
}

fn skip(why: &str) {
    if require_services() {
        panic!("GOLDJOBS_REQUIRE_SERVICES=1 but {why}");
    }
    println!("skipping the TLS test: {why}");
}

fn database_url() -> Option<String> {
    std::env::var("GOLDJOBS_TEST_DATABASE_URL")
        .ok()
        .filter(|u| !u.is_empty())
}

/// A CA and a server certificate for localhost signed by it, as PEM.
struct Certs {
    ca: String,
    cert: String,
    key: String,
}

fn make_certs() -> Certs {
    use rcgen::{BasicConstraints, CertificateParams, DnType, IsCa, KeyPair, SanType};
    let ca_key = KeyPair::generate().unwrap();
    let mut ca_params = CertificateParams::new(Vec::<String>::new()).unwrap();
    ca_params
        .distinguished_name
        .push(DnType::CommonName, "goldjobs test CA");
    ca_params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    let ca = ca_params.self_signed(&ca_key).unwrap();
    let key = KeyPair::generate().unwrap();
    let mut params = CertificateParams::new(vec!["localhost".to_owned()]).unwrap();
    params
        .subject_alt_names
        .push(SanType::IpAddress(std::net::Ipv4Addr::LOCALHOST.into()));
    params
        .distinguished_name
        .push(DnType::CommonName, "localhost");
    let issuer = rcgen::Issuer::new(ca_params, ca_key);
    let cert = params.signed_by(&key, &issuer).unwrap();
    Certs {
        ca: ca.pem(),
        cert: cert.pem(),
        key: key.serialize_pem(),
    }
}

fn write(path: &Path, text: &str, mode: u32, owner: Option<(u32, u32)>) {
    let tmp = path.with_extension("tmp");
    std::fs::write(&tmp, text).unwrap();
    std::fs::set_permissions(&tmp, std::fs::Permissions::from_mode(mode)).unwrap();
    if let Some((uid, gid)) = owner {
        std::os::unix::fs::chown(&tmp, Some(uid), Some(gid)).unwrap();
    }
    std::fs::rename(&tmp, path).unwrap();
}

async fn sql(pool: &sqlx::PgPool, q: &str) -> String {
    let row: (String,) = sqlx::query_as(q).fetch_one(pool).await.unwrap();
    row.0
}

/// Configure the local PostgreSQL for TLS with our certificate, once per test process (the
/// tests run in parallel threads); the CA file to trust.
async fn postgres_tls(url: &str) -> Option<PathBuf> {
    static ONCE: tokio::sync::OnceCell<Option<PathBuf>> = tokio::sync::OnceCell::const_new();
    ONCE.get_or_init(|| configure_postgres_tls(url))
        .await
        .clone()
}

async fn configure_postgres_tls(url: &str) -> Option<PathBuf> {
    let pool = match sqlx::PgPool::connect(url).await {
        Ok(p) => p,
        Err(e) => {
            skip(&format!("PostgreSQL is not reachable: {e}"));
            return None;
        }
    };
    let data_dir = sql(&pool, "SHOW data_directory").await;
    let Ok(meta) = std::fs::metadata(&data_dir) else {
        skip("PostgreSQL's data directory is not on this machine (or not readable)");
        return None;
    };
    let owner = (meta.uid(), meta.gid());
    let dir = Path::new(TLS_DIR);
    if std::fs::create_dir_all(dir).is_err() {
        skip(&format!("cannot create {TLS_DIR} (not root?)"));
        return None;
    }
    let ca = dir.join("ca.crt");
    let cert = dir.join("server.crt");
    let key = dir.join("server.key");
    if !(ca.exists() && cert.exists() && key.exists()) {
        let certs = make_certs();
        write(&key, &certs.key, 0o600, Some(owner));
        write(&cert, &certs.cert, 0o644, Some(owner));
        write(&ca, &certs.ca, 0o644, None);
    }
    let cert_s = cert.display().to_string();
    if sql(&pool, "SHOW ssl_cert_file").await != cert_s || sql(&pool, "SHOW ssl").await != "on" {
        for q in [
            format!("ALTER SYSTEM SET ssl_cert_file = '{cert_s}'"),
            format!("ALTER SYSTEM SET ssl_key_file = '{}'", key.display()),
            "ALTER SYSTEM SET ssl = on".to_owned(),
        ] {
            sqlx::query(&q).execute(&pool).await.unwrap();
        }
        sqlx::query("SELECT pg_reload_conf()")
            .execute(&pool)
            .await
            .unwrap();
        for _ in 0..50 {
            let fresh = sqlx::PgPool::connect(url).await.unwrap();
            if sql(&fresh, "SHOW ssl_cert_file").await == cert_s {
                break;
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }
    Some(ca)
}

/// A TLS-only redis-server on a free loopback port, stopped on drop.
struct TlsRedis {
    child: Child,
    port: u16,
    /// The CA that signed its certificate.
    ca: PathBuf,
    _dir: tempfile::TempDir,
}

impl Drop for TlsRedis {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

async fn tls_redis(certs: &Certs) -> Option<TlsRedis> {
    let dir = tempfile::tempdir().unwrap();
    let (cert, key, ca) = (
        dir.path().join("redis.crt"),
        dir.path().join("redis.key"),
        dir.path().join("ca.crt"),
    );
    write(&cert, &certs.cert, 0o644, None);
    write(&key, &certs.key, 0o600, None);
    write(&ca, &certs.ca, 0o644, None);
    let port = free_port();
    let child = Command::new("redis-server")
        .args(["--port", "0", "--tls-port", &port.to_string()])
        .args(["--bind", "127.0.0.1", "--save", "", "--appendonly", "no"])
        .arg("--tls-cert-file")
        .arg(&cert)
        .arg("--tls-key-file")
        .arg(&key)
        .arg("--tls-ca-cert-file")
        .arg(&ca)
        .args(["--tls-auth-clients", "no", "--dir"])
        .arg(dir.path())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn();
    let Ok(child) = child else {
        skip("redis-server is not installed");
        return None;
    };
    let redis = TlsRedis {
        child,
        port,
        ca,
        _dir: dir,
    };
    for _ in 0..50 {
        if tokio::net::TcpStream::connect(("127.0.0.1", port))
            .await
            .is_ok()
        {
            return Some(redis);
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    skip("redis-server did not start with TLS (built without TLS?)");
    None
}

/// The server binary with `env`; the address it listens on, read from its first output line.
fn start_server(env: &[(&str, String)]) -> (Child, String) {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_goldjobs-server"));
    cmd.env_clear()
        .env("PATH", std::env::var("PATH").unwrap_or_default())
        .env("GOLDJOBS_LISTEN", "127.0.0.1:0")
        .env("GOLDJOBS_NEWS_FEEDS", "gold|Local|http://127.0.0.1:9/rss")
        .env("GOLDJOBS_NEWS_INTERVAL", "1h")
        .env("RUST_LOG", "warn")
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit());
    for (k, v) in env {
        cmd.env(k, v);
    }
    let mut child = cmd.spawn().unwrap();
    let stdout = child.stdout.take().unwrap();
    let mut line = String::new();
    BufReader::new(stdout).read_line(&mut line).unwrap();
    let addr = line
        .trim()
        .strip_prefix("listening on ")
        .unwrap_or_else(|| panic!("unexpected first line {line:?}"))
        .to_owned();
    (child, addr)
}

/// `url` with its query replaced by `query`, and the host spelt `localhost` (the name in the
/// certificate).
fn with_query(url: &str, query: &str) -> String {
    let mut u = url::Url::parse(url).unwrap();
    u.set_host(Some("localhost")).unwrap();
    u.set_query(Some(query));
    u.to_string()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_server_talks_tls_to_postgres_and_redis() {
    let Some(url) = database_url() else {
        skip("GOLDJOBS_TEST_DATABASE_URL is not set");
        return;
    };
    let Some(ca) = postgres_tls(&url).await else {
        return;
    };
    // Redis gets a certificate of a CA of its own, trusted by the server through SSL_CERT_FILE.
    let Some(redis) = tls_redis(&make_certs()).await else {
        return;
    };
    let app_name = format!("goldjobs-tls-{}", std::process::id());
    let db = with_query(
        &url,
        &format!(
            "sslmode=verify-full&sslrootcert={}&application_name={app_name}",
            ca.display()
        ),
    );
    let (mut server, addr) = start_server(&[
        ("DATABASE_URL", db),
        ("REDIS_URL", format!("rediss://localhost:{}", redis.port)),
        // Where rustls' native roots look: the operator's CA bundle.
        ("SSL_CERT_FILE", redis.ca.display().to_string()),
    ]);
    let health: serde_json::Value = reqwest::get(format!("http://{addr}/health"))
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    // The server's own database connections (named by application_name) are encrypted.
    let pool = sqlx::PgPool::connect(&url).await.unwrap();
    let (total, encrypted): (i64, i64) = sqlx::query_as(
        "SELECT count(*), count(*) FILTER (WHERE s.ssl) \
         FROM pg_stat_activity a JOIN pg_stat_ssl s USING (pid) WHERE a.application_name = $1",
    )
    .bind(&app_name)
    .fetch_one(&pool)
    .await
    .unwrap();
    let _ = server.kill();
    let _ = server.wait();
    assert_eq!(health["database"], "ok", "{health}");
    assert_eq!(health["cache"], "ok", "{health}");
    assert!(total > 0, "no connection of the server seen");
    assert_eq!(encrypted, total, "every connection of the server uses TLS");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn verify_full_refuses_a_certificate_of_another_ca() {
    let Some(url) = database_url() else {
        skip("GOLDJOBS_TEST_DATABASE_URL is not set");
        return;
    };
    let Some(_ca) = postgres_tls(&url).await else {
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    let other = dir.path().join("other-ca.crt");
    write(&other, &make_certs().ca, 0o644, None);
    let e = sqlx::PgPool::connect(&with_query(
        &url,
        &format!("sslmode=verify-full&sslrootcert={}", other.display()),
    ))
    .await
    .unwrap_err();
    let text = e.to_string().to_ascii_lowercase();
    assert!(
        text.contains("certificate") || text.contains("tls") || text.contains("unknown"),
        "{e}"
    );
    // require: TLS without verification works, and really is TLS.
    let pool = sqlx::PgPool::connect(&with_query(&url, "sslmode=require"))
        .await
        .unwrap();
    assert_eq!(
        sql(
            &pool,
            "SELECT ssl::text FROM pg_stat_ssl WHERE pid = pg_backend_pid()"
        )
        .await,
        "true"
    );
}
