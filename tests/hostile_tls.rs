//! Who gets a TLS session. A stranger holding a certificate from the same CA, but under a name
//! the gateway does not list as a client, gets none — refused during the handshake, before any
//! HTTP is read — while configured clients are served as before; and the gateway trusts the
//! platform only through the platform's own CA.

mod common;

use std::time::Duration;

use common::{wait_until, Api, Deployment};

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

/// The platform is trusted only through `platform.ca`: a simulator presenting a certificate
/// from the city CA — here the gateway's own server certificate — is not the platform. The
/// gateway sends it nothing (no code acquisition, no inquiry, no master information), the
/// inquiry waits, and once the real platform certificate is back it is answered.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_platform_certificate_from_the_city_ca_is_not_trusted() {
    let mut d = Deployment::new();
    d.fast_backoff();
    d.set_line("sim.toml", "cert", "\"gateway/server.pem\"");
    d.set_line("sim.toml", "key", "\"gateway/server-key.pem\"");
    // The test's own admin client must trust what the impostor presents.
    d.sim_trust = Some(d.dir.join("ca.pem"));
    d.start().await;

    let api = d.client(renkei::dev::init::CLIENT_SUBSIDY);
    let r = api
        .put_json(
            &format!(
                "/v1/persons/{}",
                renkei::dev::demo::SAMPLES[0].business_number
            ),
            &common::link_body(0),
        )
        .await;
    assert_eq!(r.status, 201, "{}", r.body);
    let id = api
        .submit_ok(
            "impostor-1",
            &common::local_tax(renkei::dev::demo::SAMPLES[0].business_number),
        )
        .await;
    // The gateway tried the platform (master information) and failed.
    wait_until(
        Duration::from_secs(20),
        "the gateway reports it cannot reach the platform",
        || async { !d.ops_stats().await["master_info"]["last_error"].is_null() },
    )
    .await;
    let stats = d.sim_stats().await;
    assert_eq!(stats["messages_received"], 0, "{stats}");
    assert_eq!(stats["code_acquisitions"], 0, "{stats}");
    assert_eq!(api.status_of(&id).await, "awaiting_code");
    assert_eq!(d.ops_stats().await["awaiting_code"], 1);

    // The real platform certificate: the same inquiry goes through.
    d.kill_gateway();
    d.kill_sim();
    d.set_line("sim.toml", "cert", "\"sim/server.pem\"");
    d.set_line("sim.toml", "key", "\"sim/server-key.pem\"");
    d.sim_trust = None;
    d.start().await;
    // A new client: the restarted gateway listens on a new port.
    let api = d.client(renkei::dev::init::CLIENT_SUBSIDY);
    let v = api.wait_final(&id, Duration::from_secs(20)).await;
    assert_eq!(v["status"], "answered", "{v}");
}
