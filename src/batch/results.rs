//! The results file of a batch (情報照会結果ファイル, `inquiry-result` layout): one line per
//! input line that is final — answered, failed, or refused at acceptance — in line order, each
//! with its input line number, its inquiry id (none for a refused line) and its reason code, written by the layout's own writer (encoding,
//! quoting, code tables). Answered lines carry the platform's statuses and the item fields
//! the layout has columns for; failed lines carry the error code and the platform's own
//! Japanese message in 照会処理結果メッセージ.

use std::sync::{Arc, Mutex, OnceLock};

use tokio::sync::mpsc;

use renkei_convert::inquiry::{result_line_record, InquiryResultLine};
use renkei_convert::{Layout, LayoutWriter, Record};
use renkei_ids::AgencyCode;

use super::internal;
use super::{line_of_key, line_prefix, BatchMeta, LineEntry};
use crate::error::Error;
use crate::inquiry::Inquiries;
use crate::inquiry::{Inquiry, Status};
use renkei_store::{prefix_end, Tree};

/// 照会ステータス（明細単位） written for a line the gateway or the platform failed: the
/// layout's status column is numeric and `09` means "finished normally", so failures get
/// the distinct `99`; the reason is in the message column.
pub const FAILED_STATUS_DETAIL: &str = "99";

/// The `inquiry-result` layout (from `schemas_dir`, or the built-in copy), parsed once.
pub fn result_layout() -> Result<&'static Layout, Error> {
    static LAYOUT: OnceLock<Result<Layout, crate::schemas::SchemaError>> = OnceLock::new();
    crate::schemas::layout_once(&LAYOUT, "inquiry-result")
        .map_err(|e| Error::internal("result layout", e))
}

/// The layout field for a result field named by the platform (label, e.g. 市町村民税所得割額,
/// or field name). Fields the layout has no column for are not written.
fn column_for(layout: &Layout, name: &str) -> Option<String> {
    layout
        .fields
        .iter()
        .find(|f| f.label == name || f.name == name)
        .map(|f| f.name.clone())
}

/// The result line of a final inquiry.
pub fn result_line(layout: &Layout, inquiry: &Inquiry) -> InquiryResultLine {
    match (&inquiry.result, &inquiry.error) {
        (Some(r), _) => InquiryResultLine {
            business_number: inquiry.business_number.clone(),
            provider: r
                .provider_agency
                .as_deref()
                .and_then(|a| AgencyCode::parse(a).ok()),
            status_detail: r.detail_status.clone(),
            status_item: r.item_status.clone(),
            message: String::new(),
            items: r
                .items
                .iter()
                .flat_map(|it| it.fields.iter())
                .filter_map(|(k, v)| column_for(layout, k).map(|c| (c, v.clone())))
                .collect(),
        },
        (None, e) => {
            let message = match e {
                Some(e) => {
                    let text = e.platform_message.as_deref().unwrap_or(&e.message);
                    match &e.platform_code {
                        Some(pc) => format!("{} ({pc}): {text}", e.code),
                        None => format!("{}: {text}", e.code),
                    }
                }
                None => "failed".to_string(),
            };
            InquiryResultLine {
                business_number: inquiry.business_number.clone(),
                provider: None,
                status_detail: FAILED_STATUS_DETAIL.into(),
                status_item: String::new(),
                message,
                items: Vec::new(),
            }
        }
    }
}

/// 照会ステータス（明細単位） written for a line the gateway refused before it became an
/// inquiry (bad format, unknown person, not permitted…): the reason code is in `reason_code`.
pub const REJECTED_STATUS_DETAIL: &str = "98";

/// The extra columns of every result record: the input line, the inquiry id, the reason.
fn reconcile(mut rec: Record, line: u64, inquiry: Option<&Inquiry>) -> Record {
    rec.set("line", line.to_string());
    if let Some(i) = inquiry {
        rec.set("inquiry_id", i.id.as_str());
        if let Some(e) = &i.error {
            rec.set("reason_code", &e.code);
        }
    }
    rec
}

/// The result record of a refused line: no inquiry, the reason code.
fn rejected_record(layout: &Layout, line: u64, code: &str) -> Record {
    let mut rec = Record::new(layout);
    rec.set("status_detail", REJECTED_STATUS_DETAIL);
    rec.set("reason_code", code);
    reconcile(rec, line, None)
}

/// Pieces of the results file rendered ahead of what the client has read: a few pages,
/// so a slow download holds a bounded amount of memory.
pub const PAGES_AHEAD: usize = 4;

/// A piece of a results file, or why it stopped.
pub type Chunk = Result<bytes::Bytes, std::io::Error>;

/// A `Write` into a buffer shared with the renderer, which takes what was written after
/// each page (the layout writer keeps its own state, e.g. whether the header is out).
#[derive(Clone, Default)]
struct PageBuf(Arc<Mutex<Vec<u8>>>);

impl PageBuf {
    fn take(&self) -> Vec<u8> {
        std::mem::take(&mut *self.0.lock().unwrap_or_else(|p| p.into_inner()))
    }
}

impl std::io::Write for PageBuf {
    fn write(&mut self, b: &[u8]) -> std::io::Result<usize> {
        self.0
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .extend_from_slice(b);
        Ok(b.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

/// Streams the results file of `meta`'s batch as it stands (lines not yet final are left
/// out; `done` in the status says when the file is complete): rendered one store page at a
/// time by a task of its own and handed over as it goes, never built whole. A failure
/// midway ends the stream with an error (the download is cut short, not silently shorter).
pub fn stream(gw: Arc<Inquiries>, meta: BatchMeta) -> mpsc::Receiver<Chunk> {
    let (tx, rx) = mpsc::channel(PAGES_AHEAD);
    tokio::spawn(async move {
        if let Err(error) = render_to(&gw, &meta, &tx).await {
            tracing::error!(message = "Results file cut short.", batch_id = %meta.id, %error);
            let _ = tx
                .send(Err(std::io::Error::other("results file cut short")))
                .await;
        }
    });
    rx
}

/// Renders page by page into `tx`; stops early (without error) if the reader went away.
async fn render_to(
    gw: &Inquiries,
    meta: &BatchMeta,
    tx: &mpsc::Sender<Chunk>,
) -> Result<(), Error> {
    let layout = result_layout()?;
    let page_buf = PageBuf::default();
    let mut w = LayoutWriter::new(layout, page_buf.clone());
    let prefix = line_prefix(&meta.id);
    let end = prefix_end(&prefix);
    let mut start = prefix.clone();
    loop {
        let page = gw.store().range(
            Tree::Batches,
            &start,
            &end,
            super::progress::DEFAULT_SCAN_PAGE,
        )?;
        let Some((last_key, _)) = page.last() else {
            break;
        };
        let mut next = last_key.clone();
        next.push(0);
        let full = page.len() == super::progress::DEFAULT_SCAN_PAGE;
        for (key, value) in page {
            let entry: LineEntry = serde_json::from_slice(&value).map_err(internal)?;
            let Some(line_no) = line_of_key(&key) else {
                continue;
            };
            let id = match (&entry.inquiry, &entry.rejected) {
                (_, Some(code)) => {
                    w.write(&rejected_record(layout, line_no, code))
                        .map_err(internal)?;
                    continue;
                }
                (Some(id), None) => id,
                (None, None) => continue,
            };
            let Ok(id) = renkei_ids::InquiryId::parse(id) else {
                continue;
            };
            let Some(inquiry) = gw.repo().get(&id)? else {
                continue;
            };
            if !matches!(inquiry.status, Status::Answered | Status::Failed) {
                continue;
            }
            let mut line = result_line(layout, &inquiry);
            let written = result_line_record(layout, &line)
                .and_then(|r| w.write(&reconcile(r, line_no, Some(&inquiry))));
            if let Err(e) = written {
                // A character the result encoding cannot carry: say so on the line rather
                // than replace it silently or drop the line.
                tracing::warn!(message = "Result line not encodable; writing the reason instead.", batch_id = %meta.id, inquiry_id = %inquiry.id, code = e.code, field = ?e.field);
                line.message = format!("result_unencodable: {}", e.code);
                line.items.clear();
                let r = result_line_record(layout, &line).map_err(internal)?;
                w.write(&reconcile(r, line_no, Some(&inquiry)))
                    .map_err(internal)?;
            }
        }
        let bytes = page_buf.take();
        if !bytes.is_empty() && tx.send(Ok(bytes.into())).await.is_err() {
            return Ok(());
        }
        if !full {
            break;
        }
        start = next;
    }
    w.flush().map_err(internal)?;
    let rest = page_buf.take();
    if !rest.is_empty() {
        let _ = tx.send(Ok(rest.into())).await;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::inquiry::{Conditions, InquiryError, InquiryResult, ResultItem};
    use renkei_convert::LayoutReader;

    fn inquiry(result: Option<InquiryResult>, error: Option<InquiryError>) -> Inquiry {
        serde_json::from_value::<Inquiry>(serde_json::json!({
            "id": "IQ01ARZ3NDEKTSV4RRFFQ69G5FAV", "system": "kodomo-iryo", "business_number": "000000000012345",
            "unified": renkei_ids::UnifiedAddressNumber::from_serial(1).unwrap().to_string(),
            "affair": "JM01000000121000",
            "procedure": "JT01010000000214", "item": "TM00000000000002",
            "conditions": {"fiscal_year": 2026}, "status": "failed",
            "accepted_ms": 0, "deadline_ms": 0,
        }))
        .map(|mut i| {
            i.result = result;
            i.error = error;
            i.conditions = Conditions::FiscalYear { fiscal_year: 2026 };
            i
        })
        .unwrap()
    }

    fn render_one(i: &Inquiry) -> (Vec<u8>, renkei_convert::Record) {
        let layout = result_layout().unwrap();
        let rec = reconcile(
            result_line_record(layout, &result_line(layout, i)).unwrap(),
            1,
            Some(i),
        );
        let mut w = LayoutWriter::new(layout, Vec::new());
        w.write(&rec).unwrap();
        let raw = w.into_inner();
        let back = LayoutReader::new(layout, raw.as_slice())
            .next()
            .unwrap()
            .unwrap();
        (raw, back)
    }

    #[test]
    fn failed_line_carries_code_and_platform_message_in_cp932() {
        let i = inquiry(
            None,
            Some(InquiryError {
                code: "platform_not_permitted".into(),
                message: "the platform refused the inquiry".into(),
                platform_code: Some("E1002".into()),
                platform_message: Some("照会は許可されていません".into()),
            }),
        );
        let (raw, back) = render_one(&i);
        assert!(
            std::str::from_utf8(&raw).is_err(),
            "written as CP932, not UTF-8"
        );
        assert_eq!(back.get("status_detail"), Some(FAILED_STATUS_DETAIL));
        assert_eq!(
            back.get("result_message"),
            Some("platform_not_permitted (E1002): 照会は許可されていません")
        );
        assert_eq!(back.get("business_number"), Some("000000000012345"));
    }

    #[test]
    fn answered_line_maps_item_labels_to_columns() {
        let i = inquiry(
            Some(InquiryResult {
                provider_agency: Some("0110020000000099".into()),
                detail_status: "09".into(),
                item_status: "01".into(),
                items: vec![ResultItem {
                    item: renkei_ids::ItemCode::parse("TM00000000000002").unwrap(),
                    fields: vec![
                        ("市町村民税均等割額".into(), "3500".into()),
                        ("市町村民税所得割額".into(), "123400".into()),
                        ("no such column".into(), "x".into()),
                    ],
                }],
            }),
            None,
        );
        let (_, back) = render_one(&i);
        assert_eq!(back.get("status_detail"), Some("09"));
        assert_eq!(back.get("status_item"), Some("01"));
        assert_eq!(back.get("provider_agency"), Some("0110020000000099"));
        assert_eq!(back.get("municipal_tax_per_capita"), Some("3500"));
        assert_eq!(back.get("municipal_tax_income_levy"), Some("123400"));
    }
}
