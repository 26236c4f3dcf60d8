//! A client in another language: Python stubs generated from `proto/` with
//! grpcio-tools play the player's story through the gateway
//! (`scripts/python_client/player_story.py`), as an external client would.
//!
//! It needs `grpcio` and `grpcio-tools` in the project's virtualenv, which
//! `just test` (and so `./dev test` and CI) installs; with `REQUIRE_PYTHON_CLIENT=1`
//! (set by `just test`) a missing one fails the test instead of skipping it.

use std::process::Stdio;
use std::time::Duration;

use system_tests::{Mesh, MeshOptions};
use testkit::{identity, workspace_root};

use crate::clients::player;

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn python_stubs_play_the_story_through_the_gateway() {
    let python = workspace_root().join(".tools/venv/bin/python");
    let ready = tokio::process::Command::new(&python)
        .args(["-c", "import grpc, grpc_tools"])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .await
        .is_ok_and(|s| s.success());
    if !ready {
        assert!(
            std::env::var("REQUIRE_PYTHON_CLIENT").as_deref() != Ok("1"),
            "{} has no grpcio/grpcio-tools: run `just test` (it installs scripts/python_client/requirements.txt)",
            python.display()
        );
        eprintln!("skipped: no grpcio/grpcio-tools in {} (`just test` installs them)", python.display());
        return;
    }
    let mesh = Mesh::start(MeshOptions::default()).await;
    let (customer, other) = (player(), player());
    let story = tokio::process::Command::new(&python)
        .arg(workspace_root().join("scripts/python_client/player_story.py"))
        .args(["--gateway", mesh.gateway_url().trim_start_matches("http://")])
        .args(["--customer", &customer])
        .args(["--token", &identity().player(&customer)])
        .args(["--other-token", &identity().player(&other)])
        .args(["--operator-token", &identity().operator()])
        .kill_on_drop(true)
        .output();
    let output = tokio::time::timeout(Duration::from_secs(120), story).await.expect("the story ends").unwrap();
    let (stdout, stderr) = (String::from_utf8_lossy(&output.stdout), String::from_utf8_lossy(&output.stderr));
    println!("{stdout}");
    assert!(output.status.success(), "the Python client failed:\n{stdout}\n{stderr}");
    assert!(stdout.contains(" passed, 0 failed"), "{stdout}");
}
