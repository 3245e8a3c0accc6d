//! Throughput measurement: generate, write and re-read inquiry-batch lines on one thread.

use std::time::Instant;

use renkei_ids::UnifiedAddressNumber;
use time::macros::date;

use crate::inquiry::parse_batch_line;
use crate::layout::{Layout, LayoutReader, LayoutWriter, Record};

/// Figures from [`bench_convert`]. Single thread, so records/s is per core.
#[derive(Debug, Clone, PartialEq)]
pub struct ConvertBench {
    /// Records generated, written and read.
    pub records: usize,
    /// Bytes of the generated Shift_JIS file.
    pub bytes: usize,
    /// Records written per second (record → Shift_JIS line).
    pub write_per_sec: f64,
    /// Records read per second (line → record → typed `BatchInquiryLine`).
    pub read_per_sec: f64,
    /// Lines that failed (must be 0).
    pub errors: usize,
}

/// Why the benchmark could not run.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("bench: {0}")]
pub struct BenchError(pub String);

impl BenchError {
    /// Stable machine code.
    pub fn code(&self) -> &'static str {
        "bench_failed"
    }
}

fn record(layout: &Layout, i: usize) -> Result<Record, BenchError> {
    let unified =
        UnifiedAddressNumber::from_serial(i as u64 + 1).map_err(|e| BenchError(e.to_string()))?;
    let mut r = Record::new(layout);
    r.set("numbering_system", "01");
    r.set("business_number", format!("{:010}", i + 1));
    r.set("unified_address_number", unified.to_string());
    r.set("requested_at", "20260401093000123");
    r.set("inquirer_department", "子ども医療費助成課");
    r.set("inquirer_user_id", format!("user{:04}", i % 1000));
    r.set("inquirer_agency", "0112345600000001");
    r.set(
        "non_disclosure",
        if i.is_multiple_of(10) { "1" } else { "0" },
    );
    r.set("affair_code", "JM01000000121000");
    r.set("procedure_code", "JT01010000000214");
    r.set("provider_agency", "0113000000000001");
    r.set("item_code", "TM00000000000002");
    r.set("condition_kind", "1");
    r.set("fiscal_year_kind", "1");
    r.set("from_date", "2026-04-01");
    r.set("to_date", "2027-03-31");
    Ok(r)
}

/// Generates `records` inquiry-batch records, writes them as a Shift_JIS file in memory,
/// then reads them back into typed lines, timing both halves.
pub fn bench_convert(records: usize) -> Result<ConvertBench, BenchError> {
    let layout = Layout::builtin("inquiry-batch").map_err(|e| BenchError(format!("{e:?}")))?;
    let as_of = date!(2026 - 04 - 01);
    let recs = (0..records)
        .map(|i| record(&layout, i))
        .collect::<Result<Vec<_>, _>>()?;
    let mut errors = 0usize;

    let start = Instant::now();
    let mut w = LayoutWriter::with_as_of(&layout, Vec::with_capacity(records * 240), as_of);
    for r in &recs {
        if w.write(r).is_err() {
            errors += 1;
        }
    }
    let file = w.into_inner();
    let write_secs = start.elapsed().as_secs_f64();

    let start = Instant::now();
    let mut read = 0usize;
    for r in LayoutReader::with_as_of(&layout, file.as_slice(), as_of) {
        match r.and_then(|r| parse_batch_line(&r)) {
            Ok(_) => read += 1,
            Err(_) => errors += 1,
        }
    }
    let read_secs = start.elapsed().as_secs_f64();
    let per_sec = |n: usize, s: f64| if s > 0.0 { n as f64 / s } else { f64::INFINITY };
    Ok(ConvertBench {
        records,
        bytes: file.len(),
        write_per_sec: per_sec(records, write_secs),
        read_per_sec: per_sec(read, read_secs),
        errors,
    })
}

#[cfg(test)]
mod tests {
    #[test]
    fn bench_runs_without_errors() {
        let b = super::bench_convert(500).unwrap();
        assert_eq!((b.records, b.errors, b.bytes), (500, 0, 500 * 239));
        assert!(b.read_per_sec > 0.0 && b.write_per_sec > 0.0);
    }
}
