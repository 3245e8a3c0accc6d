//! The alive notification (稼動状態の通知) against the real binaries: the gateway sends it on
//! its schedule, signed like every platform message, and the simulator shows at
//! `GET /admin/alive` when it last heard one and from whom.

mod common;

use common::{wait_for, Deployment, START_TIMEOUT};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_simulator_hears_the_gateways_alive_notifications() {
    let mut d = Deployment::new();
    d.set_in_table("renkei.toml", "platform", "alive_interval_secs", "1");
    d.start().await;
    let city = renkei::dev::init::DEV_CITY_AGENCY;
    let admin = d.sim_admin();
    // Two in a row: the schedule repeats, not only the first notification at start.
    let heard = wait_for(
        START_TIMEOUT * 3,
        "the simulator heard two alive notifications",
        || async {
            let r = admin.get("/admin/alive").await;
            assert_eq!(r.status, 200, "GET /admin/alive: {}", r.body);
            r.body["agencies"]
                .as_array()
                .and_then(|a| a.iter().find(|x| x["agency"] == city).cloned())
                .filter(|x| x["count"].as_u64().unwrap_or(0) >= 2)
        },
    )
    .await;
    assert!(
        heard["last_heard_at"]
            .as_str()
            .is_some_and(|t| t.len() >= 19),
        "{heard}"
    );
    assert!(
        heard["message_id"]
            .as_str()
            .is_some_and(|m| m.starts_with("AL")),
        "{heard}"
    );
    // Signed and verified like other messages: nothing was refused for its signature.
    assert_eq!(d.sim_stats().await["refused_signature"], 0);
}
