//! A stranger holding a certificate from the same CA, but under a name the gateway does not
//! list as a client, gets no TLS session at all — refused during the handshake, before any
//! HTTP is read — while configured clients are served as before.

mod common;

use common::{Api, Deployment};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_unconfigured_certificate_is_refused_at_the_handshake() {
    let mut d = Deployment::new();
    d.start().await;
    let addr = d.gw_addr.expect("gateway address");
    // Issued by the deployment's own CA: valid in every way but the name.
    let ca = renkei::keys::pki::DevCa::load(&d.dir).expect("load the development CA");
    let dir = d.dir.join("clients").join("stranger");
    std::fs::create_dir_all(&dir).expect("dir");
    ca.issue_client(&dir, "stranger", "cert.pem", "key.pem")
        .expect("issue");

    let stranger = Api::new(&d.dir, "stranger", addr);
    let refused = stranger
        .try_send(
            hyper::Method::GET,
            "/v1/ops/stats",
            &[],
            bytes::Bytes::new(),
        )
        .await;
    assert!(
        refused.is_err(),
        "a certificate with an unconfigured name got an HTTP answer: {:?}",
        refused.map(|r| (r.status, r.body))
    );

    let operator = d.client("operator");
    let ok = operator.get("/v1/ops/stats").await;
    assert_eq!(ok.status, 200, "{}", ok.body);
}
