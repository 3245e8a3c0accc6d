//! An operator can point the gateway at an edited copy of `schemas/`: a broken copy stops
//! the gateway at start with every problem named; a good copy is used; a layout name never
//! reaches outside it.

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

    // A layout name is a file name inside the folder, never a path: a valid layout planted
    // outside `schemas/` is not reachable by `../`, and the answer names the field, not the
    // input.
    std::fs::copy(
        schemas.join("layouts/resident-csv.toml"),
        d.dir.join("planted.toml"),
    )
    .unwrap();
    let feed = d.client(renkei::dev::init::CLIENT_FEED);
    let csv = bytes::Bytes::from_static(b"change_kind,business_number\n");
    for name in [
        "../../planted",
        "..%2F..%2Fplanted",
        "/tmp/planted",
        "Planted",
    ] {
        let r = feed
            .send(
                hyper::Method::POST,
                &format!("/v1/persons:import?layout={name}"),
                &[("content-type", "text/csv")],
                csv.clone(),
            )
            .await;
        assert_eq!(r.status, 400, "{name}: {}", r.body);
        assert_eq!(r.body["code"], "bad_layout_name", "{name}");
        assert_eq!(r.body["field"], "layout", "{name}");
        assert!(
            !String::from_utf8_lossy(&r.raw).contains("planted"),
            "{name}"
        );
    }
    // A well-formed name that could be an individual number is not shown back either.
    let r = feed
        .send(
            hyper::Method::POST,
            "/v1/persons:import?layout=123456789018",
            &[("content-type", "text/csv")],
            csv,
        )
        .await;
    assert_eq!(r.status, 422, "{}", r.body);
    assert_eq!(r.body["code"], "unknown_layout");
    assert!(!String::from_utf8_lossy(&r.raw).contains("123456789018"));
}
