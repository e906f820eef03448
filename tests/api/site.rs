//! `--web-root`: the built web page served on the gRPC port beside the services. Static files do
//! not touch the store, so these run on SQLite only.
use std::path::Path;

use library_service::{config::ServeArgs, pb};
use prost::Message;

use crate::{
    helpers::track,
    server::{frames, grpc_web_post, http1},
    support::{
        app::{TestApp, session_token},
        db,
    },
};

const PAGE: &str =
    "<!doctype html><title>My library</title><script type=module src=/assets/app.js></script>";
const SCRIPT: &str = "console.log('library');";
const SECRET: &str = "not for browsers";

/// A web root `site/` inside a folder that also holds a file no browser may read.
fn site() -> tempfile::TempDir {
    let dir = tempfile::tempdir().expect("tempdir");
    let root = dir.path().join("site");
    std::fs::create_dir_all(root.join("assets")).expect("mkdir");
    std::fs::write(root.join("index.html"), PAGE).expect("write");
    std::fs::write(root.join("assets/app.js"), SCRIPT).expect("write");
    std::fs::write(dir.path().join("secret.txt"), SECRET).expect("write");
    dir
}

async fn serving(root: &Path) -> TestApp {
    TestApp::spawn_with(
        db::sqlite(),
        ServeArgs {
            web_root: Some(root.to_path_buf()),
            ..ServeArgs::default()
        },
    )
    .await
}

fn get(method: &str, path: &str) -> Vec<u8> {
    format!("{method} {path} HTTP/1.1\r\nhost: localhost\r\nconnection: close\r\n\r\n").into_bytes()
}

fn header<'a>(head: &'a str, name: &str) -> Option<&'a str> {
    head.lines()
        .find_map(|line| line.strip_prefix(&format!("{name}: ")))
}

#[tokio::test]
async fn the_page_and_its_assets_are_served_with_a_strict_policy() {
    let dir = site();
    let app = serving(&dir.path().join("site")).await;

    let (head, body) = http1(&app, get("GET", "/")).await;
    assert!(head.starts_with("http/1.1 200"), "{head}");
    assert_eq!(header(&head, "content-type"), Some("text/html"));
    assert_eq!(body, PAGE.as_bytes());
    let policy = header(&head, "content-security-policy").expect("a CSP");
    assert!(policy.starts_with("default-src 'self'"), "{policy}");
    assert!(policy.contains("frame-ancestors 'none'"), "{policy}");
    assert_eq!(header(&head, "x-content-type-options"), Some("nosniff"));
    assert_eq!(header(&head, "cache-control"), Some("no-cache"));

    let (head, body) = http1(&app, get("GET", "/assets/app.js")).await;
    assert!(head.starts_with("http/1.1 200"), "{head}");
    assert_eq!(header(&head, "content-type"), Some("text/javascript"));
    assert_eq!(body, SCRIPT.as_bytes());

    let (head, body) = http1(&app, get("HEAD", "/index.html")).await;
    assert!(head.starts_with("http/1.1 200"), "{head}");
    assert!(body.is_empty());

    let (head, _) = http1(&app, get("GET", "/assets/missing.js")).await;
    assert!(head.starts_with("http/1.1 404"), "{head}");
}

#[tokio::test]
async fn nothing_outside_the_web_root_is_served() {
    let dir = site();
    let app = serving(&dir.path().join("site")).await;
    for path in [
        "/../secret.txt",
        "/%2e%2e/secret.txt",
        "/assets/../../secret.txt",
        "/assets/%2e%2e/%2e%2e/secret.txt",
        "/..%2fsecret.txt",
        "//secret.txt",
    ] {
        let (head, body) = http1(&app, get("GET", path)).await;
        assert!(!head.starts_with("http/1.1 200"), "{path}: {head}");
        assert!(
            !String::from_utf8_lossy(&body).contains(SECRET),
            "{path} leaked the file"
        );
    }
}

#[tokio::test]
async fn grpc_web_calls_reach_the_service_beside_the_page() {
    let dir = site();
    let app = serving(&dir.path().join("site")).await;
    let check = pb::CheckLikedTracksRequest {
        user_id: String::new(),
        track_ids: vec![track()],
    };
    let (head, body) = http1(
        &app,
        grpc_web_post(
            "/audiohm.library.v1.LibraryService/CheckLikedTracks",
            Some(&session_token(app.user)),
            &check,
        ),
    )
    .await;
    assert!(head.starts_with("http/1.1 200"), "{head}");
    assert!(
        header(&head, "content-security-policy").is_none(),
        "API responses are not pages: {head}"
    );
    let (data, trailers) = frames(&body);
    let reply = pb::CheckLikedTracksResponse::decode(data[0].as_slice()).expect("a response");
    assert_eq!(reply.liked, vec![false]);
    assert!(trailers.contains("grpc-status:0"), "{trailers}");
}
