//! The binary as an operator runs it: exit codes, config errors, check-conditions, migrate,
//! seed-demo and a graceful stop on SIGTERM.

#![allow(clippy::unwrap_used)]

use std::io::{BufRead, BufReader, Write};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

const BIN: &str = env!("CARGO_BIN_EXE_goldjobs-server");

/// A command with a clean environment (no inherited GOLDJOBS_* / DATABASE_URL / REDIS_URL).
fn cmd(dir: &std::path::Path) -> Command {
    let mut c = Command::new(BIN);
    c.current_dir(dir).env_clear();
    if let Ok(path) = std::env::var("PATH") {
        c.env("PATH", path);
    }
    c
}

/// Every check runs before anything is connected: with a database that cannot be reached, a
/// bad feed list or FCM credentials file is still reported as a configuration error (exit 2),
/// not as the database's failure.
#[test]
fn configuration_is_checked_before_connecting() {
    let dir = tempfile::tempdir().unwrap();
    // Nothing listens on port 1: connecting would fail (exit 1) if it came first.
    let unreachable = "postgres://postgres@127.0.0.1:1/none?connect_timeout=2";
    let out = cmd(dir.path())
        .env("DATABASE_URL", unreachable)
        .env(
            "GOLDJOBS_NEWS_FEEDS",
            "gold|A|https://a.example/rss;Gold|B|https://a.example/rss",
        )
        .output()
        .unwrap();
    assert_eq!(
        out.status.code(),
        Some(2),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(String::from_utf8_lossy(&out.stderr).contains("listed twice"));
    let out = cmd(dir.path())
        .env("DATABASE_URL", unreachable)
        .env("FCM_PROJECT_ID", "p")
        .env(
            "GOOGLE_APPLICATION_CREDENTIALS",
            dir.path().join("missing.json"),
        )
        .output()
        .unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{err}");
    assert!(err.contains("notifier"), "{err}");
    assert!(!err.contains("database"), "{err}");
}

#[test]
fn a_bad_config_value_exits_2_with_one_line() {
    let dir = tempfile::tempdir().unwrap();
    let out = cmd(dir.path())
        .env("GOLDJOBS_PRICE_INTERVAL", "fast")
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    let err = String::from_utf8(out.stderr).unwrap();
    assert_eq!(err.trim().lines().count(), 1, "{err}");
    assert!(err.contains("GOLDJOBS_PRICE_INTERVAL"), "{err}");
    assert!(err.contains("\"fast\""), "{err}");
    assert!(err.contains("500ms"), "{err}");

    // A secret is never echoed.
    let out = cmd(dir.path())
        .env("DATABASE_URL", "mysql://user:hunter2@db/gold")
        .arg("migrate")
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    let err = String::from_utf8(out.stderr).unwrap();
    assert!(
        err.contains("DATABASE_URL") && !err.contains("hunter2"),
        "{err}"
    );

    // A bad config file too.
    let file = dir.path().join("bad.toml");
    std::fs::write(&file, "listen = \"nowhere\"\n").unwrap();
    let out = cmd(dir.path()).arg("--config").arg(&file).output().unwrap();
    assert_eq!(out.status.code(), Some(2));
}

#[test]
fn help_on_every_command() {
    let dir = tempfile::tempdir().unwrap();
    for args in [
        vec!["--help"],
        vec!["serve", "--help"],
        vec!["migrate", "--help"],
        vec!["seed-demo", "--help"],
        vec!["recompute-stats", "--help"],
        vec!["check-conditions", "--help"],
    ] {
        let out = cmd(dir.path()).args(&args).output().unwrap();
        assert_eq!(out.status.code(), Some(0), "{args:?}");
        assert!(
            String::from_utf8(out.stdout).unwrap().contains("Usage"),
            "{args:?}"
        );
    }
}

fn check(dir: &std::path::Path, json: &str, extra: &[&str]) -> (i32, String) {
    let mut child = cmd(dir)
        .arg("check-conditions")
        .arg("-")
        .args(extra)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    child
        .stdin
        .take()
        .unwrap()
        .write_all(json.as_bytes())
        .unwrap();
    let out = child.wait_with_output().unwrap();
    let text = String::from_utf8(out.stdout).unwrap() + &String::from_utf8(out.stderr).unwrap();
    (out.status.code().unwrap(), text.trim().to_owned())
}

#[test]
fn check_conditions_prints_ok_problems_and_choices() {
    let dir = tempfile::tempdir().unwrap();
    // The platform's shape (guide: *The condition object*); plain strings below.
    let good = r#"{"A": {"condition": "price_change_percent >= 1.0"}, "B": {"condition": "price_change_percent > 0 AND price_change_percent < 1.0"}, "C": {"condition": "price_change_percent <= 0"}}"#;
    let plain = r#"{"A": "price_change_percent >= 1.0", "B": "price_change_percent > 0 AND price_change_percent < 1.0", "C": "price_change_percent <= 0"}"#;
    assert_eq!(check(dir.path(), plain, &[]), (0, "ok".to_owned()));
    assert_eq!(
        check(dir.path(), plain, &["--at", "0.5"]),
        (0, "B".to_owned())
    );
    assert_eq!(check(dir.path(), good, &[]), (0, "ok".to_owned()));
    assert_eq!(
        check(dir.path(), good, &["--at", "1.5"]),
        (0, "A".to_owned())
    );
    assert_eq!(
        check(dir.path(), good, &["--at", "-0.25"]),
        (0, "C".to_owned())
    );

    let (code, text) = check(
        dir.path(),
        r#"{"A": "price_change_percent >= ", "B": "1 = 1"}"#,
        &[],
    );
    assert_eq!(code, 1);
    assert!(text.contains("\"A\""), "{text}");

    let gap = r#"{"A": "price_change_percent > 1", "B": "price_change_percent < 0"}"#;
    let (code, text) = check(dir.path(), gap, &[]);
    assert_eq!(code, 1);
    assert!(text.contains("gap"), "{text}");
    assert_eq!(
        check(dir.path(), gap, &["--at", "0.5"]),
        (1, "none".to_owned())
    );

    // From a file.
    let file = dir.path().join("c.json");
    std::fs::write(&file, good).unwrap();
    let out = cmd(dir.path())
        .arg("check-conditions")
        .arg(&file)
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(0));
    assert_eq!(String::from_utf8(out.stdout).unwrap().trim(), "ok");
}

#[test]
fn migrate_and_seed_demo() {
    let dir = tempfile::tempdir().unwrap();
    let url = format!("sqlite://{}?mode=rwc", dir.path().join("g.db").display());
    let out = cmd(dir.path())
        .env("DATABASE_URL", &url)
        .arg("migrate")
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(0), "{out:?}");
    assert!(String::from_utf8(out.stdout)
        .unwrap()
        .contains("migrations applied"));
    let out = cmd(dir.path())
        .env("DATABASE_URL", &url)
        .arg("seed-demo")
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(0), "{out:?}");
    let text = String::from_utf8(out.stdout).unwrap();
    assert!(
        text.contains("seeded 6 symbols, 4 predictions, 20 votes"),
        "{text}"
    );
}

#[cfg(unix)]
#[test]
fn serve_prints_its_address_and_stops_cleanly_on_sigterm() {
    let dir = tempfile::tempdir().unwrap();
    let mut child = cmd(dir.path())
        .env("GOLDJOBS_LISTEN", "127.0.0.1:0")
        .env(
            "GOLDJOBS_NEWS_FEEDS",
            "gold|Local test feed|http://127.0.0.1:9/rss",
        )
        .env("RUST_LOG", "warn")
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let mut line = String::new();
    BufReader::new(child.stdout.take().unwrap())
        .read_line(&mut line)
        .unwrap();
    assert!(line.starts_with("listening on 127.0.0.1:"), "{line}");
    let addr = line.trim().trim_start_matches("listening on ").to_owned();
    // It answers.
    let mut stream = std::net::TcpStream::connect(&addr).unwrap();
    stream
        .write_all(b"GET /health HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
        .unwrap();
    let mut response = String::new();
    std::io::Read::read_to_string(&mut stream, &mut response).unwrap();
    assert!(response.starts_with("HTTP/1.1 200"), "{response}");

    let status = Command::new("kill")
        .arg("-TERM")
        .arg(child.id().to_string())
        .status()
        .unwrap();
    assert!(status.success());
    let started = Instant::now();
    loop {
        if let Some(status) = child.try_wait().unwrap() {
            assert_eq!(status.code(), Some(0));
            break;
        }
        assert!(
            started.elapsed() < Duration::from_secs(20),
            "server did not stop after SIGTERM"
        );
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// `recompute-stats --check` lists the users whose stored statistics differ (exit 1) and writes
/// nothing; `recompute-stats` names the users whose statistics have no votes behind them, fixes
/// everyone in one go and says how many changed; a second check is clean (exit 0, no output).
#[test]
fn recompute_stats_checks_and_fixes() {
    use goldjobs::adapters::sql::SqliteStore;
    use goldjobs::{
        PredictionRepository, PriceSource, Verdict, VerificationOutcome, VerificationRecord,
    };
    let dir = tempfile::tempdir().unwrap();
    let url = format!("sqlite://{}?mode=rwc", dir.path().join("g.db").display());
    let out = cmd(dir.path())
        .env("DATABASE_URL", &url)
        .arg("migrate")
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(0));
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    rt.block_on(async {
        let store = SqliteStore::connect(&url).await.unwrap();
        let t0 = chrono::DateTime::parse_from_rfc3339("2026-03-01T12:00:00Z")
            .unwrap()
            .with_timezone(&chrono::Utc);
        for (i, id) in ["p0", "p1"].iter().enumerate() {
            let p = goldjobs::Prediction::new_active(
                *id,
                "XAUUSD",
                "Gold up?",
                "2650".parse().unwrap(),
                t0 + chrono::Duration::seconds(i as i64),
                goldjobs::VerifyRule::Manual,
                None,
                t0,
            );
            store.insert_prediction(&p).await.unwrap();
            store
                .insert_votes(&[goldjobs::Vote {
                    prediction_id: (*id).into(),
                    user_id: "u1".into(),
                    selected_option: "A".into(),
                    is_correct: None,
                    created_at: t0,
                }])
                .await
                .unwrap();
        }
        // Recorded out of verify_time order: the store recomputes u1 (B then A: streak 1).
        for (id, option) in [("p1", "A"), ("p0", "B")] {
            store
                .record_verifications(&[VerificationRecord {
                    prediction_id: id.into(),
                    outcome: VerificationOutcome::Verified(Verdict {
                        correct_option: option.into(),
                        price_at_verify: "2660".parse().unwrap(),
                        price_change_percent: Some("0.38".parse().unwrap()),
                        price_source: PriceSource::Manual,
                        price_provider: None,
                        price_at_verify_ts: t0,
                    }),
                    verified_at: t0,
                    manual: true,
                }])
                .await
                .unwrap();
        }
        sqlx::query(
            "INSERT INTO user_prediction_stats (user_id, total_participations, correct_count, \
             accuracy_rate, current_streak, max_streak, updated_at) \
             VALUES ('imported', 7, 5, '71.43', 2, 4, '2026-01-01T00:00:00.000000Z')",
        )
        .execute(store.pool())
        .await
        .unwrap();
        // Another program edits u1's row behind goldjobs' back.
        sqlx::query("UPDATE user_prediction_stats SET current_streak = 0 WHERE user_id = 'u1'")
            .execute(store.pool())
            .await
            .unwrap();
    });
    let run = |args: &[&str]| {
        let out = cmd(dir.path())
            .env("DATABASE_URL", &url)
            .arg("recompute-stats")
            .args(args)
            .output()
            .unwrap();
        (
            out.status.code(),
            String::from_utf8(out.stdout).unwrap(),
            String::from_utf8(out.stderr).unwrap(),
        )
    };
    let (code, stdout, stderr) = run(&["--check"]);
    assert_eq!(code, Some(1), "{stdout}{stderr}");
    let lines: Vec<&str> = stdout.lines().collect();
    assert_eq!(lines.len(), 2, "{stdout}");
    assert!(
        lines[0].starts_with("user imported: stored total=7"),
        "{stdout}"
    );
    assert!(lines[0].contains("no verified votes"), "{stdout}");
    assert!(
        lines[1].starts_with("user u1: stored total=2 correct=1 accuracy=50.00 current_streak=0 max_streak=1; recomputed total=2 correct=1 accuracy=50.00 current_streak=1 max_streak=1"),
        "{stdout}"
    );
    // --check wrote nothing.
    assert_eq!(run(&["--check"]).1, stdout);

    let (code, stdout, stderr) = run(&[]);
    assert_eq!(code, Some(0), "{stdout}{stderr}");
    let lines: Vec<&str> = stdout.lines().collect();
    assert_eq!(
        lines,
        vec![
            "user imported: statistics without verified votes (total=7 correct=5 accuracy=71.43 current_streak=2 max_streak=4) are reset to zero",
            "2 users changed",
        ],
        "{stdout}"
    );
    let (code, stdout, _) = run(&["--check"]);
    assert_eq!((code, stdout.as_str()), (Some(0), ""));
}
