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
    let waiting = api.get(&format!("/v1/inquiries/{id}")).await;
    let status = waiting.body["status"].as_str().unwrap_or_default();
    assert!(
        status == "awaiting_code" || status == "queued",
        "the inquiry must wait, not {status}"
    );
    assert!(
        waiting.body["timestamps"]["sent_at"].is_null(),
        "{}",
        waiting.body
    );

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

/// Issues `params` from the deployment's CA into `clients/<dir>/` and asks `/healthz` with it.
async fn answered_with(d: &Deployment, dir: &str, params: rcgen::CertificateParams) -> bool {
    let ca = renkei::keys::pki::DevCa::load(&d.dir).expect("load the development CA");
    let path = d.dir.join("clients").join(dir);
    std::fs::create_dir_all(&path).expect("dir");
    ca.issue_with(&path, params, "cert.pem", "key.pem")
        .expect("issue");
    Api::new(&d.dir, dir, d.gw_addr.expect("gateway address"))
        .try_send(hyper::Method::GET, "/healthz", &[], bytes::Bytes::new())
        .await
        .is_ok()
}

/// A client certificate needs the clientAuth extended key usage and exactly one identity:
/// without the usage, with two common names (both configured clients!), or with a
/// subjectAltName naming someone else, there is no TLS session. The same name issued
/// properly is served, so only the refused property differs.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn client_certificates_need_client_auth_and_one_identity() {
    use renkei::dev::init::{CLIENT_SECOND, CLIENT_SUBSIDY};
    use renkei::keys::pki::client_params;
    let mut d = Deployment::new();
    d.start().await;

    let good = client_params(CLIENT_SUBSIDY).expect("params");
    assert!(
        answered_with(&d, "good", good).await,
        "control: a proper certificate"
    );

    let mut no_eku = client_params(CLIENT_SUBSIDY).expect("params");
    no_eku.extended_key_usages.clear();
    assert!(
        !answered_with(&d, "no-eku", no_eku).await,
        "a certificate without clientAuth got a session"
    );

    let mut server_only = client_params(CLIENT_SUBSIDY).expect("params");
    server_only.extended_key_usages = vec![rcgen::ExtendedKeyUsagePurpose::ServerAuth];
    assert!(
        !answered_with(&d, "server-eku", server_only).await,
        "a server certificate got a client session"
    );

    let mut two_cns = client_params(CLIENT_SUBSIDY).expect("params");
    // A second commonName attribute (OID 2.5.4.3) beside the first.
    two_cns
        .distinguished_name
        .push(rcgen::DnType::CustomDnType(vec![2, 5, 4, 3]), CLIENT_SECOND);
    assert!(
        !answered_with(&d, "two-cns", two_cns).await,
        "a certificate with two common names got a session"
    );

    let mut other_san = client_params(CLIENT_SUBSIDY).expect("params");
    other_san.subject_alt_names = vec![rcgen::SanType::DnsName(
        CLIENT_SECOND.try_into().expect("dns name"),
    )];
    assert!(
        !answered_with(&d, "other-san", other_san).await,
        "a certificate whose subjectAltName names another client got a session"
    );

    let mut same_san = client_params(CLIENT_SUBSIDY).expect("params");
    same_san.subject_alt_names = vec![rcgen::SanType::DnsName(
        CLIENT_SUBSIDY.try_into().expect("dns name"),
    )];
    assert!(
        answered_with(&d, "same-san", same_san).await,
        "a subjectAltName equal to the common name is one identity"
    );
}

/// A client entry may pin its certificate by SHA-256: another certificate under the same name
/// (same CA, valid in every way) is refused at the handshake; the pinned one is served.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_pinned_client_accepts_only_its_certificate() {
    use renkei::dev::init::{CLIENT_SECOND, CLIENT_SUBSIDY};
    let mut d = Deployment::new();
    let cert =
        &renkei::tls::load_certs(&d.dir.join("clients").join(CLIENT_SUBSIDY).join("cert.pem"))
            .expect("cert")[0];
    let right = renkei::tls::fingerprint(cert);
    let wrong = "ab".repeat(32);
    set_pin(&d, CLIENT_SUBSIDY, &wrong);
    d.start().await;
    let ok = |d: &Deployment, name: &str| {
        let api = d.client(name);
        async move {
            api.try_send(hyper::Method::GET, "/healthz", &[], bytes::Bytes::new())
                .await
                .is_ok()
        }
    };
    assert!(
        !ok(&d, CLIENT_SUBSIDY).await,
        "a certificate not matching its pin was served"
    );
    assert!(
        ok(&d, CLIENT_SECOND).await,
        "an unpinned client is served as before"
    );

    d.kill_gateway();
    set_pin(&d, CLIENT_SUBSIDY, &right);
    d.start_gateway().await;
    assert!(
        ok(&d, CLIENT_SUBSIDY).await,
        "the pinned certificate was refused"
    );
}

/// Sets (or replaces) the `pin` of client `name` in renkei.toml (a plain text edit).
fn set_pin(d: &Deployment, name: &str, hex: &str) {
    let path = d.dir.join("renkei.toml");
    let text = std::fs::read_to_string(&path).expect("config");
    let entry = format!("name = \"{name}\"\n");
    let text: String = text
        .lines()
        .filter(|l| !l.starts_with("pin = "))
        .map(|l| format!("{l}\n"))
        .collect();
    let text = text.replace(&entry, &format!("{entry}pin = \"sha256:{hex}\"\n"));
    std::fs::write(&path, text).expect("write config");
}

/// `tls.crl` is checked at the handshake and reloaded while serving: a certificate put on the
/// deployment's revocation list is refused within 5 s — on new connections and on one already
/// open — while other clients are still served; a broken list on reload changes nothing.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_revoked_certificate_is_refused_without_a_restart() {
    use renkei::dev::init::{CLIENT_SECOND, CLIENT_SUBSIDY};
    use renkei::keys::pki::{certificate_facts, DevCa, CRL_FILE};
    let mut d = Deployment::new();
    d.start().await;
    let served = |api: Api| async move {
        api.try_send(hyper::Method::GET, "/healthz", &[], bytes::Bytes::new())
            .await
            .is_ok()
    };
    // Connections already open (the clients keep them in their pools).
    let kodomo = d.client(CLIENT_SUBSIDY);
    let kokuho = d.client(CLIENT_SECOND);
    assert!(served(kodomo.clone()).await && served(kokuho.clone()).await);

    let crl = d.dir.join(CRL_FILE);
    let (serial, _) =
        certificate_facts(&d.dir.join("clients").join(CLIENT_SUBSIDY).join("cert.pem"))
            .expect("serial");
    let revoked_at = std::time::Instant::now();
    DevCa::load(&d.dir)
        .expect("ca")
        .revoke(&crl, &[serial])
        .expect("revoke");
    wait_until(
        Duration::from_secs(5),
        "the revoked certificate is refused on its open connection",
        || {
            let k = kodomo.clone();
            async move { !served(k).await }
        },
    )
    .await;
    println!(
        "revoked certificate refused after {:?}",
        revoked_at.elapsed()
    );
    assert!(
        !served(d.client(CLIENT_SUBSIDY)).await,
        "a new connection was served"
    );
    assert!(
        served(kokuho.clone()).await,
        "another client's open connection"
    );
    assert!(
        served(d.client(CLIENT_SECOND)).await,
        "another client, new connection"
    );

    // A broken list: the one in use stays (the revoked client stays refused, others served).
    std::fs::write(
        &crl,
        b"-----BEGIN X509 CRL-----\nnot a list\n-----END X509 CRL-----\n",
    )
    .expect("write");
    // Nothing to wait for when nothing may change: give the poller a few rounds.
    tokio::time::sleep(renkei::tls::CRL_POLL_INTERVAL * 3).await;
    assert!(
        !served(d.client(CLIENT_SUBSIDY)).await,
        "a broken list dropped the revocation"
    );
    assert!(
        served(d.client(CLIENT_SECOND)).await,
        "a broken list refused everyone"
    );
}
