//! The binary as a newcomer and an operator use it: `token`, `migrate`, `migrate --undo`,
//! `serve` with a development token, stopped by SIGTERM, and `export` / `import` of a library.
#[path = "support/mod.rs"]
mod support;

use library_service::pb::{
    self, library_admin_service_client::LibraryAdminServiceClient,
    library_service_client::LibraryServiceClient,
};
use support::{
    app::{TestApp, service_token, with_token},
    db, library,
    process::{Served, binary, run},
};

/// User tables in the database, by name: sqlx's own bookkeeping table and PostgreSQL's monthly
/// partitions of `plays` (which depend on today's date) left out.
async fn tables(url: &str) -> Vec<String> {
    use sqlx::Connection;
    if url.starts_with("sqlite") {
        let mut conn = sqlx::SqliteConnection::connect(url)
            .await
            .expect("connects");
        sqlx::query_scalar(
            "SELECT name FROM sqlite_master WHERE type = 'table' AND name NOT LIKE '_sqlx%' ORDER BY name",
        )
        .fetch_all(&mut conn)
        .await
        .expect("lists tables")
    } else {
        let mut conn = sqlx::PgConnection::connect(url).await.expect("connects");
        sqlx::query_scalar(
            "SELECT relname::text FROM pg_class
             WHERE relnamespace = 'public'::regnamespace AND relkind IN ('r', 'p')
               AND NOT relispartition AND relname NOT LIKE '_sqlx%'
             ORDER BY relname",
        )
        .fetch_all(&mut conn)
        .await
        .expect("lists tables")
    }
}

#[test]
fn the_token_command_mints_a_development_token_for_a_fresh_listener() {
    let dir = tempfile::tempdir().expect("tempdir");
    let out = run(binary()
        .args(["token", "--data-dir"])
        .arg(dir.path())
        .env_remove("LIBRARY_JWT_SECRET"));
    let token = String::from_utf8(out.stdout).expect("utf-8");
    assert_eq!(token.trim().split('.').count(), 3, "a JWT: {token}");
    assert!(
        dir.path().join("dev-jwt-secret").exists(),
        "the development secret was created"
    );
}

/// `own` lists the undos of a backend's own migrations before the live library's, which change
/// no table (PostgreSQL's 0006 drops its triggers; SQLite keeps them).
async fn migrate_undo_and_migrate_again(url: &str, own: usize) {
    let first = ["liked_tracks", "play_requests", "plays"];
    let aggregates = [
        "liked_tracks",
        "play_requests",
        "plays",
        "user_quarter_stats",
        "user_source_stats",
        "user_stats",
        "user_track_stats",
    ];
    let all = [
        "liked_tracks",
        "play_requests",
        "plays",
        "user_period_stats",
        "user_quarter_stats",
        "user_source_stats",
        "user_stats",
        "user_track_stats",
    ];
    let live = [
        "library_event_heads",
        "library_events",
        "liked_tracks",
        "now_playing",
        "play_requests",
        "plays",
        "user_period_stats",
        "user_quarter_stats",
        "user_source_stats",
        "user_stats",
        "user_track_stats",
    ];
    run(binary().args(["migrate"]).env("DATABASE_URL", url));
    assert_eq!(tables(url).await, live);
    // One migration per --undo, newest first: the live library's tables, the backend's own,
    // then 0005 (snapshot ids, a column), 0004 (counted plays, period snapshots), 0003
    // (indexes), 0002 (aggregates), 0001.
    let shared: [&[&str]; 5] = [&all, &aggregates, &aggregates, &first, &[]];
    let after_each_undo = std::iter::once(&all[..])
        .chain(std::iter::repeat_n(&all[..], own))
        .chain(shared);
    for expected in after_each_undo {
        let undo = run(binary()
            .args(["migrate", "--undo"])
            .env("DATABASE_URL", url));
        assert!(String::from_utf8_lossy(&undo.stderr).contains("rolled back"));
        assert_eq!(tables(url).await, expected);
    }
    run(binary().args(["migrate"]).env("DATABASE_URL", url));
    assert_eq!(tables(url).await, live);
}

#[tokio::test]
async fn migrations_apply_and_roll_back_on_sqlite() {
    migrate_undo_and_migrate_again(db::sqlite().url(), 0).await;
}

#[tokio::test]
async fn migrations_apply_and_roll_back_on_postgres() {
    let Some(test_db) = db::postgres().await else {
        return;
    };
    migrate_undo_and_migrate_again(test_db.url(), 1).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_service_starts_on_its_embedded_default_serves_a_minted_token_and_stops_on_sigterm() {
    let dir = tempfile::tempdir().expect("tempdir");
    let mut server = binary();
    server
        .current_dir(dir.path())
        .env_remove("DATABASE_URL")
        .env_remove("LIBRARY_JWT_SECRET");
    let (served, channel) = Served::start(server, &[]).await;
    let token = String::from_utf8(run(binary().current_dir(dir.path()).arg("token")).stdout)
        .expect("utf-8");
    let mut client = LibraryServiceClient::new(channel);
    let request = pb::RecordPlayRequest {
        track_id: uuid::Uuid::new_v4().to_string(),
        played_for_seconds: 42,
        ..Default::default()
    };
    client
        .record_play(with_token(request, token.trim()))
        .await
        .expect("a development token works");
    assert!(
        dir.path().join("data/library.db").exists(),
        "the embedded database lives in ./data"
    );

    served.sigterm();
    let (status, logs) = served.wait();
    assert!(status.success(), "exit 0 after SIGTERM: {logs}");
    assert!(logs.contains("DEVELOPMENT MODE"));
}

/// The binary with a data directory of its own and nothing from the caller's environment that
/// would change where it listens or what it serves.
fn isolated(dir: &std::path::Path) -> std::process::Command {
    let mut cmd = binary();
    cmd.current_dir(dir);
    for var in [
        "DATABASE_URL",
        "LIBRARY_JWT_SECRET",
        "LIBRARY_LISTEN",
        "LIBRARY_WEB_ROOT",
        "LIBRARY_METRICS_LISTEN",
    ] {
        cmd.env_remove(var);
    }
    cmd
}

/// The README's run command is the bare one: it must honour `serve`'s environment, not its own
/// defaults.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_bare_command_listens_where_library_listen_says_exactly_as_serve_does() {
    for subcommand in [&["serve"][..], &[][..]] {
        let dir = tempfile::tempdir().expect("tempdir");
        let port = support::process::free_port();
        let mut cmd = isolated(dir.path());
        cmd.args(subcommand)
            .env("LIBRARY_LISTEN", format!("127.0.0.1:{port}"));
        let (served, channel) = Served::start_on(cmd, port).await;
        let token =
            String::from_utf8(run(isolated(dir.path()).arg("token")).stdout).expect("utf-8");
        LibraryServiceClient::new(channel)
            .check_liked_tracks(with_token(
                pb::CheckLikedTracksRequest::default(),
                token.trim(),
            ))
            .await
            .unwrap_or_else(|e| panic!("{subcommand:?}: a call on LIBRARY_LISTEN's port: {e}"));
        served.sigterm();
        let (status, logs) = served.wait();
        assert!(status.success(), "{subcommand:?}: {logs}");
        assert!(
            logs.contains(&format!("127.0.0.1:{port}")),
            "{subcommand:?} logs where it serves: {logs}"
        );
    }
}

#[test]
fn the_bare_command_refuses_library_web_root_without_a_page_exactly_as_serve_does() {
    for subcommand in [&["serve"][..], &[][..]] {
        let dir = tempfile::tempdir().expect("tempdir");
        let out = isolated(dir.path())
            .args(subcommand)
            .env("LIBRARY_LISTEN", "127.0.0.1:0")
            .env("LIBRARY_WEB_ROOT", "/nonexistent")
            .output()
            .expect("binary runs");
        assert!(!out.status.success(), "{subcommand:?} started anyway");
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(stderr.contains("/nonexistent"), "{subcommand:?}: {stderr}");
    }
}

#[test]
fn a_serve_flag_before_another_subcommand_is_refused_instead_of_ignored() {
    let dir = tempfile::tempdir().expect("tempdir");
    let out = isolated(dir.path())
        .args(["--listen", "127.0.0.1:0", "migrate"])
        .output()
        .expect("binary runs");
    assert_eq!(out.status.code(), Some(2), "a usage error");
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("--listen is a flag of `serve`"), "{stderr}");
    assert!(
        !dir.path().join("data").exists(),
        "nothing ran: no database was created"
    );
}

#[test]
fn serve_refuses_a_web_root_without_a_built_page() {
    let dir = tempfile::tempdir().expect("tempdir");
    let mut child = binary()
        .args(["serve", "--listen", "127.0.0.1:0", "--data-dir"])
        .arg(dir.path())
        .arg("--web-root")
        .arg(dir.path().join("dist"))
        .env_remove("DATABASE_URL")
        .stderr(std::process::Stdio::piped())
        .spawn()
        .expect("binary runs");
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(30);
    while child.try_wait().expect("waits").is_none() {
        if std::time::Instant::now() > deadline {
            let _ = child.kill();
            panic!("serve started without a page to serve");
        }
        std::thread::sleep(std::time::Duration::from_millis(50));
    }
    let out = child.wait_with_output().expect("exits");
    assert!(!out.status.success());
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains("no index.html there") && stderr.contains("npm --prefix web run build"),
        "{stderr}"
    );
}

/// 1,500 plays over 2023 and 2024 (sources, durations, completions varied), two likes with
/// notes, one of them changed later.
async fn a_library(app: &TestApp) {
    let tracks: Vec<String> = (0..7).map(|_| uuid::Uuid::new_v4().to_string()).collect();
    let mut client = app.client.clone();
    let plays: Vec<pb::NewPlay> = (0..1500)
        .map(|i| pb::NewPlay {
            track_id: tracks[i % tracks.len()].clone(),
            played_for_seconds: 20 + (i % 280) as u32,
            completed: i % 3 == 0,
            source: ["album", "radio", "playlist", ""][i % 4].into(),
            played_at: Some(prost_types::Timestamp {
                seconds: 1_672_531_200 + 41_000 * i as i64,
                nanos: 1000 * (i as i32 % 7),
            }),
            request_id: String::new(),
            track_duration_seconds: (i % 2 == 0).then_some(180),
        })
        .collect();
    for batch in plays.chunks(1000) {
        let done = client
            .record_plays(app.req(pb::RecordPlaysRequest {
                user_id: String::new(),
                plays: batch.to_vec(),
            }))
            .await
            .expect("recorded")
            .into_inner();
        assert_eq!(done.rejected_count, 0);
    }
    for (track, notes) in [(&tracks[1], "on repeat\nall week"), (&tracks[4], "")] {
        client
            .like_track(app.req(pb::LikeTrackRequest {
                user_id: String::new(),
                track_id: track.clone(),
                notes: Some(notes.into()),
            }))
            .await
            .expect("liked");
    }
    client
        .update_liked_track(app.req(pb::UpdateLikedTrackRequest {
            track_id: tracks[1].clone(),
            notes: "still on repeat".into(),
            ..Default::default()
        }))
        .await
        .expect("notes changed");
}

fn cli(url: &str, args: &[&std::ffi::OsStr]) -> std::process::Output {
    binary()
        .args(args)
        .env("DATABASE_URL", url)
        .output()
        .expect("binary runs")
}

/// Export to a file, erase, refuse a truncated copy, import twice: the library reads the same.
async fn export_erase_and_import_again(app: TestApp) {
    a_library(&app).await;
    let before = library::view(&app, app.user).await;
    let url = app.database_url().to_string();
    let user = app.user.to_string();

    let exported = run(binary()
        .args(["export", "--user", &user])
        .env("DATABASE_URL", &url));
    let stderr = String::from_utf8_lossy(&exported.stderr);
    assert!(
        stderr.contains(&format!("exported 1500 plays and 2 likes of {user}")),
        "{stderr}"
    );
    let dir = tempfile::tempdir().expect("tempdir");
    let file = dir.path().join("library.ndjson");
    std::fs::write(&file, &exported.stdout).expect("file written");
    let text = String::from_utf8(exported.stdout).expect("utf-8");
    let lines: Vec<&str> = text.lines().collect();
    assert_eq!(lines.len(), 1 + 1500 + 2 + 1);
    assert!(
        lines[0].contains(r#""format":"audiohm.library.export","version":1"#),
        "{}",
        lines[0]
    );
    assert!(
        lines[1503].contains(r#""play_count":1500,"like_count":2"#),
        "{}",
        lines[1503]
    );

    let mut admin = LibraryAdminServiceClient::new(app.channel().await);
    admin
        .delete_user_data(with_token(
            pb::DeleteUserDataRequest {
                user_id: user.clone(),
            },
            &service_token("account-service", "library:admin"),
        ))
        .await
        .expect("erased");
    let erased = library::view(&app, app.user).await;
    assert!(erased.history.is_empty() && erased.likes.is_empty());

    // Cut in the middle of the plays, and just before the trailer: both refused, nothing written.
    let cut_mid_line = &text[..text.len() / 2];
    let no_trailer = lines[..1503].join("\n") + "\n";
    for (name, truncated) in [
        ("mid-line", cut_mid_line.to_string()),
        ("no trailer", no_trailer),
    ] {
        let path = dir.path().join("truncated.ndjson");
        std::fs::write(&path, truncated).expect("file written");
        let refused = cli(&url, &["import".as_ref(), path.as_os_str()]);
        assert!(
            !refused.status.success(),
            "{name}: a truncated file was imported"
        );
        let stderr = String::from_utf8_lossy(&refused.stderr);
        assert!(stderr.contains("nothing was imported"), "{name}: {stderr}");
        assert_eq!(
            library::view(&app, app.user).await,
            erased,
            "{name}: nothing written"
        );
    }

    for (run, expected) in [
        (
            1,
            "imported 1500 plays (0 already there) and restored 2 likes (0 already there)",
        ),
        (
            2,
            "imported 0 plays (1500 already there) and restored 0 likes (2 already there)",
        ),
    ] {
        let imported = cli(&url, &["import".as_ref(), file.as_os_str()]);
        let stderr = String::from_utf8_lossy(&imported.stderr);
        assert!(imported.status.success(), "import {run}: {stderr}");
        assert!(stderr.contains(expected), "import {run}: {stderr}");
        assert_eq!(library::view(&app, app.user).await, before, "import {run}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_library_exported_to_a_file_erased_and_imported_twice_reads_the_same_on_sqlite() {
    export_erase_and_import_again(TestApp::spawn(db::sqlite()).await).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_library_exported_to_a_file_erased_and_imported_twice_reads_the_same_on_postgres() {
    let Some(test_db) = db::postgres().await else {
        return;
    };
    export_erase_and_import_again(TestApp::spawn(test_db).await).await;
}
