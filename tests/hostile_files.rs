//! Personal data at rest is for the service user only: after a real flow (persons linked, an
//! inquiry answered, a batch of records and checkpoints written) no file under the gateway's
//! data folder, and no folder, is readable or writable by the group or by other users —
//! whatever umask the shell that started renkei had.

mod common;

use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::time::Duration;

use common::{local_tax, Deployment};
use renkei::dev::demo::SAMPLES;
use renkei::dev::init::CLIENT_SUBSIDY;

fn walk(p: &Path, out: &mut Vec<PathBuf>) {
    out.push(p.to_path_buf());
    if p.is_dir() {
        for e in std::fs::read_dir(p).expect("read_dir").flatten() {
            walk(&e.path(), out);
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_file_and_folder_under_data_dir_is_owner_only() {
    // The children inherit the test runner's umask (022 here), which alone would leave the
    // store's files 0644: renkei must set its own.
    let mut d = Deployment::new();
    d.start().await;
    d.link_samples().await;
    let api = d.client(CLIENT_SUBSIDY);
    let id = api
        .submit_ok("perm-1", &local_tax(SAMPLES[0].business_number))
        .await;
    let v = api.wait_final(&id, Duration::from_secs(60)).await;
    assert_eq!(v["status"], "answered", "{v}");
    let data = d.dir.join("gateway/data");
    let mut all = Vec::new();
    walk(&data, &mut all);
    assert!(all.len() > 3, "the data folder holds the store: {all:?}");
    let open: Vec<String> = all
        .iter()
        .filter_map(|p| {
            let mode = std::fs::metadata(p).ok()?.permissions().mode() & 0o777;
            (mode & 0o077 != 0).then(|| format!("{} {:o}", p.display(), mode))
        })
        .collect();
    assert!(open.is_empty(), "readable by others: {open:#?}");
}
