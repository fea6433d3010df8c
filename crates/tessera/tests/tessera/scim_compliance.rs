//! The outside SCIM checker: scim2-tester (PyPI, pinned in interop/scim/requirements.txt,
//! installed by `scripts/install-deps test` into `$CARGO_TARGET_DIR/scim-venv`) runs every
//! one of its checks against a live Tessera; each must pass or be skipped by scim2-tester
//! itself for a feature Tessera does not announce (see interop/scim/check.py).

use std::path::PathBuf;
use std::process::Command;

use tessera_testkit::spawn_app;

#[tokio::test]
async fn scim2_tester_passes_every_check() {
    let target = std::env::var("CARGO_TARGET_DIR").map_or_else(|_| workspace().join("target"), PathBuf::from);
    let python = target.join("scim-venv/bin/python");
    assert!(python.exists(), "{} is missing: run scripts/install-deps test", python.display());
    let app = spawn_app().await;
    let admin = app.user("idp@example.com", true).await;
    let (token, _) = app.token(admin.id, "scim").await;
    let base = app.url("/scim/v2");
    let script = workspace().join("interop/scim/check.py");
    let out = tokio::task::spawn_blocking(move || {
        Command::new(python).arg(script).arg(base).env("SCIM_TOKEN", token).output().unwrap()
    })
    .await
    .unwrap();
    let report = String::from_utf8_lossy(&out.stdout);
    println!("{report}");
    assert!(out.status.success(), "{report}\n{}", String::from_utf8_lossy(&out.stderr));
    assert!(report.contains(" 0 not passed"), "{report}");
}

fn workspace() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../..")
}
