//! The platform misbehaving: closed, failing with 5xx, dropping connections, slow. Inquiries
//! wait (durably, still `queued`) and are answered once it recovers; a deadline ends the wait.

mod common;

use std::time::Duration;

use common::{local_tax, wait_until, Deployment};
use renkei::dev::demo::SAMPLES;
use renkei::dev::init::CLIENT_SUBSIDY;

const TIMEOUT: Duration = Duration::from_secs(20);

/// A running deployment with fast backoff and the samples linked (codes acquired).
async fn ready() -> Deployment {
    let mut d = Deployment::new();
    d.fast_backoff();
    d.start().await;
    d.link_samples().await;
    d.wait_codes(3).await;
    d
}

fn stat(v: &serde_json::Value, k: &str) -> u64 {
    v[k].as_u64()
        .unwrap_or_else(|| panic!("sim stats lack {k}: {v}"))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn closed_platform_keeps_the_inquiry_queued_until_it_opens() {
    let d = ready().await;
    d.sim_mode("closed", 0).await;
    let before = stat(&d.sim_stats().await, "refused_closed");
    let api = d.client(CLIENT_SUBSIDY);
    let id = api
        .submit_ok("closed-1", &local_tax(SAMPLES[0].business_number))
        .await;
    wait_until(TIMEOUT, "the platform refused twice (closed)", || async {
        stat(&d.sim_stats().await, "refused_closed") >= before + 2
    })
    .await;
    assert_eq!(api.status_of(&id).await, "queued");
    let stats = d.sim_stats().await;
    assert!(stats["effects"].get(id.as_str()).is_none());

    d.sim_mode("open", 0).await;
    let v = api.wait_final(&id, TIMEOUT).await;
    assert_eq!(v["status"], "answered", "{v}");
    assert_eq!(
        common::result_field(&v, "市町村民税所得割額").as_deref(),
        Some("123400")
    );
    assert_eq!(stat(&d.sim_stats().await, "inquiries_accepted"), 1);
}

/// Puts the platform in `mode`, waits until the platform has refused two attempts (the
/// simulator's counter for that mode), reopens it and checks the inquiry is answered once.
async fn recovers_from(mode: &str) {
    // The counter each mode moves: neither reaches `messages_received`.
    let counter = match mode {
        "failing" => "refused_failing",
        "dropping" => "connections_dropped",
        other => panic!("no attempt counter for mode {other}"),
    };
    let d = ready().await;
    d.sim_mode(mode, 0).await;
    let before = d.sim_stats().await;
    let api = d.client(CLIENT_SUBSIDY);
    let id = api
        .submit_ok(&format!("{mode}-1"), &local_tax(SAMPLES[1].business_number))
        .await;
    wait_until(
        TIMEOUT,
        &format!("the platform saw two attempts ({mode}: {counter})"),
        || async { stat(&d.sim_stats().await, counter) >= stat(&before, counter) + 2 },
    )
    .await;
    let status = api.status_of(&id).await;
    assert!(
        status == "queued",
        "while the platform is {mode} the inquiry must wait, not {status}"
    );
    let during = d.sim_stats().await;
    assert_eq!(
        stat(&during, "messages_received"),
        stat(&before, "messages_received"),
        "no message may get through while the platform is {mode}: {during}"
    );
    assert!(during["effects"].get(id.as_str()).is_none(), "{during}");
    d.sim_mode("open", 0).await;
    let v = api.wait_final(&id, TIMEOUT).await;
    assert_eq!(v["status"], "answered", "{v}");
    let stats = d.sim_stats().await;
    assert_eq!(stat(&stats, "inquiries_accepted"), 1, "{stats}");
    assert!(stats["effects"].get(id.as_str()).is_some());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn failing_platform_recovers() {
    recovers_from("failing").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn dropping_platform_recovers() {
    recovers_from("dropping").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn slow_platform_still_answers() {
    let d = ready().await;
    d.sim_mode("slow", 400).await;
    let api = d.client(CLIENT_SUBSIDY);
    let start = std::time::Instant::now();
    let id = api
        .submit_ok("slow-1", &local_tax(SAMPLES[0].business_number))
        .await;
    let v = api.wait_final(&id, TIMEOUT).await;
    assert_eq!(v["status"], "answered", "{v}");
    // At least the send and one result fetch each waited the platform's delay.
    assert!(
        start.elapsed() >= Duration::from_millis(800),
        "slow mode had no effect: {:?}",
        start.elapsed()
    );
    assert_eq!(stat(&d.sim_stats().await, "inquiries_accepted"), 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn deadline_passes_while_the_platform_is_closed() {
    let mut d = Deployment::new();
    d.fast_backoff();
    d.set_gateway("inquiry_deadline_secs", "1");
    d.start().await;
    d.link_samples().await;
    d.wait_codes(3).await;
    d.sim_mode("closed", 0).await;
    let api = d.client(CLIENT_SUBSIDY);
    let id = api
        .submit_ok("deadline-1", &local_tax(SAMPLES[0].business_number))
        .await;
    let v = api.wait_final(&id, TIMEOUT).await;
    assert_eq!(v["status"], "failed", "{v}");
    assert_eq!(v["error"]["code"], "deadline_passed", "{v}");
    let stats = d.sim_stats().await;
    assert!(stat(&stats, "refused_closed") >= 1, "{stats}");
    assert!(stats["effects"].get(id.as_str()).is_none());
    // Reopening does not revive a failed inquiry.
    d.sim_mode("open", 0).await;
    assert_eq!(api.status_of(&id).await, "failed");
}
