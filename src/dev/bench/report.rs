//! The bench's report: each figure with its target and its ratio to the limit that bounds
//! it, printed as one table or as one JSON object (`--json`).

use serde::Serialize;

use super::limits::Limits;

/// Which way a figure improves.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Better {
    Higher,
    Lower,
}

/// One measured figure.
#[derive(Debug, Clone, Serialize)]
pub struct Figure {
    /// Stable name (the JSON key tests and scripts read).
    pub name: &'static str,
    /// What it is, for people.
    pub label: String,
    pub value: f64,
    pub unit: &'static str,
    /// The target, when the issue sets one (`>=` for higher-is-better, `<=` otherwise).
    pub target: Option<f64>,
    pub better: Better,
    /// Whether the target is met.
    pub met: Option<bool>,
    /// The limit that bounds it: a field of `limits`.
    pub limit: Option<&'static str>,
    /// That limit's value.
    pub limit_value: Option<f64>,
    /// How close the figure is to its limit, as a share (1 = at the limit): figure / limit
    /// for rates, limit / figure for latencies.
    pub ratio: Option<f64>,
}

impl Figure {
    pub fn new(
        name: &'static str,
        label: String,
        value: f64,
        unit: &'static str,
        target: Option<f64>,
        better: Better,
    ) -> Figure {
        let met = target.map(|t| match better {
            Better::Higher => value >= t,
            Better::Lower => value <= t,
        });
        Figure {
            name,
            label,
            value,
            unit,
            target,
            better,
            met,
            limit: None,
            limit_value: None,
            ratio: None,
        }
    }

    /// Names the limit that bounds the figure and computes the ratio.
    pub fn bounded_by(mut self, (limit, limit_value): (&'static str, f64)) -> Figure {
        self.limit = Some(limit);
        self.limit_value = Some(limit_value);
        self.ratio = Some(match self.better {
            Better::Higher => self.value / limit_value,
            Better::Lower => limit_value / self.value,
        });
        self
    }
}

/// The gateway process as `/proc` saw it.
#[derive(Debug, Clone, Serialize)]
pub struct ProcessReport {
    pub pid: u32,
    /// VmHWM at the end of the run.
    pub peak_rss_mib: f64,
    /// VmRSS at the end of the run.
    pub rss_mib: f64,
    /// Cores the gateway used during the closed-loop phase.
    pub accept_cpu_cores: Option<f64>,
}

/// Everything one run measured.
#[derive(Debug, Clone, Serialize)]
pub struct Report {
    pub quick: bool,
    pub store: &'static str,
    pub durability: String,
    pub cores: usize,
    /// This process: the clients and the in-process limits.
    pub bench_pid: u32,
    pub gateway: ProcessReport,
    pub sim_pid: u32,
    /// Accepted in the median closed-loop round.
    pub accepted: u64,
    /// Inquiries answered at the end.
    pub answered: u64,
    /// Bytes on disk under the gateway's data folder at the end.
    pub disk_bytes: u64,
    /// The live data of each tree of a sled store at the end (empty on PostgreSQL): what
    /// `disk_bytes` holds besides is the storage engine's own (old page versions, slack).
    pub store_trees: Vec<super::disk::TreeBytes>,
    pub limits: Limits,
    pub figures: Vec<Figure>,
    /// How long the run took.
    pub seconds: f64,
    pub deployment: String,
}

fn num(v: f64) -> String {
    if !v.is_finite() {
        "—".into()
    } else if v.abs() >= 100.0 {
        format!("{v:.0}")
    } else {
        format!("{v:.2}")
    }
}

impl Report {
    /// The table: figure, value, target, limit and ratio.
    pub fn print_table(&self) {
        println!();
        println!(
            "| figure | measured | target | bounded by | ratio to the limit |\n|---|---|---|---|---|"
        );
        for f in &self.figures {
            let target = match (f.target, f.better, f.met) {
                (Some(t), Better::Higher, Some(m)) => {
                    format!("≥ {} {}", num(t), if m { "✓" } else { "✗" })
                }
                (Some(t), Better::Lower, Some(m)) => {
                    format!("≤ {} {}", num(t), if m { "✓" } else { "✗" })
                }
                _ => "—".into(),
            };
            let limit = match (f.limit, f.limit_value) {
                (Some(l), Some(v)) => format!("{l} = {}", num(v)),
                _ => "—".into(),
            };
            let ratio = f
                .ratio
                .map_or("—".into(), |r| format!("{:.1} %", r * 100.0));
            println!(
                "| {} | {} {} | {target} | {limit} | {ratio} |",
                f.label,
                num(f.value),
                f.unit
            );
        }
        let l = &self.limits;
        println!(
            "\nlimits, this run: {} ring P-256 signatures/s ({} cores), {} fdatasync/s ({:.2} ms), {} sled batches/s, {} HTTPS no-op requests/s",
            num(l.ring_p256_signatures_per_sec),
            self.cores,
            num(l.fdatasync_per_sec),
            l.fdatasync_ms,
            num(l.sled_batch_writes_per_sec),
            num(l.https_noop_requests_per_sec)
        );
        println!(
            "gateway pid {} (bench {}), peak {:.0} MiB, now {:.0} MiB{}; {} answered, {} bytes under the data folder; {:.0} s in all",
            self.gateway.pid,
            self.bench_pid,
            self.gateway.peak_rss_mib,
            self.gateway.rss_mib,
            self.gateway
                .accept_cpu_cores
                .map_or(String::new(), |c| format!(", {c:.2} cores while accepting")),
            self.answered,
            self.disk_bytes,
            self.seconds
        );
        if !self.store_trees.is_empty() {
            let per = |b: u64| b as f64 / self.answered.max(1) as f64;
            let live: u64 = self
                .store_trees
                .iter()
                .map(|t| t.key_bytes + t.value_bytes)
                .sum();
            println!("\nlive data per tree, per answered inquiry (keys + values):");
            for t in &self.store_trees {
                println!(
                    "  {:<20} {:>9} entries  {:>8.0} B",
                    t.tree,
                    t.entries,
                    per(t.key_bytes + t.value_bytes)
                );
            }
            println!(
                "  live in all {:.0} B; the storage engine's own (old versions, slack) {:.0} B",
                per(live),
                per(self.disk_bytes.saturating_sub(live))
            );
        }
    }
}
