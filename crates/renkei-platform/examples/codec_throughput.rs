//! Measures single-thread codec throughput: `cargo run --release -p renkei-platform --example codec_throughput`.

use std::hint::black_box;
use std::time::Instant;

use renkei_ids::{AffairCode, AgencyCode, ItemCode, ProcedureCode, ProcessingSerial};
use renkei_platform::*;

/// Messages per measurement; enough for a stable figure in about a second.
const DEFAULT_ROUNDS: u32 = 100_000;

fn header() -> Header {
    Header {
        message_id: "iq-20261126-000001".into(),
        sender: AgencyCode::parse("0112345678900000").unwrap(),
        recipient: AgencyCode::parse("9900000000000001").unwrap(),
        created_at: "2026-11-26T21:00:00.123+09:00".into(),
        in_reply_to: None,
    }
}

fn measure(label: &str, msg: &Message) {
    let xml = to_xml(msg);
    let t = Instant::now();
    for _ in 0..DEFAULT_ROUNDS {
        black_box(to_xml(black_box(msg)));
    }
    let write = DEFAULT_ROUNDS as f64 / t.elapsed().as_secs_f64();
    let t = Instant::now();
    for _ in 0..DEFAULT_ROUNDS {
        black_box(from_xml(black_box(xml.as_bytes())).unwrap());
    }
    let read = DEFAULT_ROUNDS as f64 / t.elapsed().as_secs_f64();
    println!(
        "{label:<28} {:>6} bytes  to_xml {:>9.0}/s  from_xml {:>9.0}/s",
        xml.len(),
        write,
        read
    );
}

fn main() {
    let sealed = SealedData {
        key_version: 1,
        enc: vec![4; 65],
        ciphertext: vec![7; 256],
    };
    let inquiry = Message::InquiryRequest {
        header: header(),
        record_id: "R20261126000000000001".into(),
        affair: AffairCode::parse("JM01000000121000").unwrap(),
        procedure: ProcedureCode::parse("JT01010000000214").unwrap(),
        item: ItemCode::parse("TM00000000000002").unwrap(),
        inquirer: AgencyCode::parse("0112345678900000").unwrap(),
        provider: None,
        non_disclosure: false,
        condition: Condition::FiscalYear(2026),
        sealed: sealed.clone(),
    };
    let result = Message::InquiryResult {
        header: header(),
        serial: ProcessingSerial::parse("20261126000000000123").unwrap(),
        record_id: "R20261126000000000001".into(),
        status: ResultStatus::Finished {
            detail_status: "09".into(),
            item_status: "01".into(),
        },
        provider: Some(AgencyCode::parse("0113456789000000").unwrap()),
        sealed: Some(SealedData {
            ciphertext: vec![9; 4096],
            ..sealed
        }),
        fault: Some(PlatformFault {
            code: "I0000".into(),
            message: "正常終了しました。（処理通番：２０２６１１２６）".into(),
        }),
    };
    let fault = Message::Fault {
        header: header(),
        fault: PlatformFault {
            code: "E1001".into(),
            message: "符号が未取得です。（団体内統合宛名番号：１２３４５６７８９０１２３４０）"
                .into(),
        },
    };
    measure("InquiryRequest (256 B ct)", &inquiry);
    measure("InquiryResult (4 KiB ct)", &result);
    measure("Fault (Japanese text)", &fault);
}
