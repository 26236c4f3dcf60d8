//! The page in a real browser: Chromium, driven by Playwright
//! (`web/e2e/story.mjs`), against the gateway and every service of a mesh of
//! its own. This test plays the game server (it achieves missions) and the
//! operator (it stops and starts gift) when the script asks; screenshots go
//! to `.run/browser/`.
//!
//! It needs the built development page (`web/dist-dev`), `playwright-core`
//! in `web/node_modules` and Debian's `chromium`, which `./dev test` installs
//! and builds; with `REQUIRE_BROWSER=1` (set by `just test`) a missing one
//! fails the test instead of skipping it. `PAGE_LATENCY_MISSIONS=N` also
//! measures, in the browser, the time from N missions achieved to the page
//! showing each.

use std::path::Path;
use std::process::Stdio;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use api::game::mission::v1::{self as mission, mission_service_client::MissionServiceClient};
use system_tests::{Mesh, MeshOptions};
use testkit::{authorized, identity, workspace_root};
use tokio::io::{AsyncBufReadExt as _, AsyncWriteExt as _, BufReader};

const CHROMIUM: &str = "/usr/bin/chromium";

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn the_page_plays_the_story_in_a_real_browser() {
    let web = workspace_root().join("web");
    let missing: Vec<&str> = [
        (web.join("dist-dev/index.html").exists(), "the built page (npm --prefix web run build:dev)"),
        (web.join("node_modules/playwright-core").exists(), "playwright-core (npm --prefix web ci)"),
        (Path::new(CHROMIUM).exists(), "chromium (apt-get install chromium)"),
    ]
    .into_iter()
    .filter_map(|(present, what)| (!present).then_some(what))
    .collect();
    if !missing.is_empty() {
        assert!(std::env::var("REQUIRE_BROWSER").as_deref() != Ok("1"), "missing {missing:?}: run `./dev test`");
        eprintln!("skipped: missing {missing:?} (`./dev test` installs and builds them)");
        return;
    }
    let options = MeshOptions {
        web: gateway::web::WebConfig {
            root: Some(web.join("dist-dev")),
            dev_sign_in: identity().jwks_path().parent().map(Path::to_path_buf),
            ..Default::default()
        },
        ..Default::default()
    };
    let mut mesh = Mesh::start(options).await;
    let out = workspace_root().join(".run/browser");
    let mut script = tokio::process::Command::new("node");
    script
        .arg(web.join("e2e/story.mjs"))
        .args(["--page", &mesh.gateway_url(), "--out", &out.display().to_string()])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .kill_on_drop(true);
    if let Ok(n) = std::env::var("PAGE_LATENCY_MISSIONS") {
        script.args(["--measure", &n]);
    }
    let mut child = script.spawn().expect("node runs");
    let mut stdin = child.stdin.take().unwrap();
    let mut requests = BufReader::new(child.stdout.take().unwrap()).lines();
    let mut missions = MissionServiceClient::new(mesh.gateway().await);

    let played = tokio::time::timeout(Duration::from_secs(300), async {
        let mut summary = String::new();
        while let Some(line) = requests.next_line().await.unwrap() {
            let words: Vec<&str> = line.split_whitespace().collect();
            let answer = match words.as_slice() {
                ["achieve", customer, code] => {
                    let request = mission::AchieveMissionRequest {
                        customer_id: (*customer).into(),
                        mission_code: (*code).into(),
                        achievement_id: None,
                    };
                    missions.achieve_mission(authorized(request, &identity().player(customer))).await.unwrap();
                    let now = SystemTime::now().duration_since(UNIX_EPOCH).unwrap().as_millis();
                    format!("achieved {now}")
                }
                ["stop", "gift"] => {
                    mesh.stop_service("gift").await;
                    "ok".to_owned()
                }
                ["start", "gift"] => {
                    mesh.start_service("gift").await;
                    "ok".to_owned()
                }
                _ => {
                    println!("{line}");
                    summary.push_str(&line);
                    continue;
                }
            };
            stdin.write_all(format!("{answer}\n").as_bytes()).await.unwrap();
        }
        summary
    })
    .await
    .expect("the story ends within 5 minutes");
    let status = child.wait().await.unwrap();
    assert!(status.success() && played.contains(" 0 failed"), "the browser story failed: {played}");
}
