//! An operator can point the gateway at an edited copy of `schemas/`: a broken copy stops
//! the gateway at start with every problem named; a good copy is used.

mod common;

use std::path::Path;
use std::process::Command;

use common::*;

fn copy_dir(from: &Path, to: &Path) {
    std::fs::create_dir_all(to).unwrap();
    for e in std::fs::read_dir(from).unwrap() {
        let e = e.unwrap();
        let target = to.join(e.file_name());
        if e.file_type().unwrap().is_dir() {
            copy_dir(&e.path(), &target);
        } else {
            std::fs::copy(e.path(), target).unwrap();
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn gateway_uses_an_edited_schemas_folder_and_refuses_a_broken_one() {
    let mut d = Deployment::new();
    let schemas = d.dir.join("schemas");
    copy_dir(
        &Path::new(env!("CARGO_MANIFEST_DIR")).join("schemas"),
        &schemas,
    );
    let cfg = d.dir.join("renkei.toml");
    let text = std::fs::read_to_string(&cfg).unwrap();
    let text = text.replacen("listen = ", "schemas_dir = \"schemas\"\nlisten = ", 1);
    std::fs::write(&cfg, text).unwrap();

    // Broken: an unknown key in a layout. `renkei serve` must refuse to start, naming it.
    let layout = schemas.join("layouts/inquiry-batch.toml");
    let good = std::fs::read_to_string(&layout).unwrap();
    std::fs::write(&layout, format!("surprise = 1\n{good}")).unwrap();
    let out = Command::new(BIN)
        .args(["serve", "--config", cfg.to_str().unwrap()])
        .output()
        .unwrap();
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("inquiry-batch.toml"), "{err}");

    // Good copy: the gateway starts and serves a batch file with it.
    std::fs::write(&layout, good).unwrap();
    d.start().await;
    d.link_samples().await;
    let file = renkei::dev::batch_file::generate_batch_file(
        2,
        &[renkei::dev::demo::SAMPLES[0].business_number],
    );
    let r = d
        .client(renkei::dev::init::CLIENT_SUBSIDY)
        .send(
            hyper::Method::POST,
            "/v1/inquiries:batch",
            &[("content-type", "application/octet-stream")],
            bytes::Bytes::from(file),
        )
        .await;
    assert_eq!(r.status, 202, "{}", r.body);
}
