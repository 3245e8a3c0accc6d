//! The simulator's provider data: what other agencies hold about residents, seeded from a
//! JSON file keyed by the simulator's own person index (never an individual number), with a
//! deterministic generator for everyone the file does not name.

use std::collections::HashMap;
use std::path::Path;

use renkei_ids::{Fugo, ItemCode};
use renkei_platform::{Condition, ResultItem};
use serde::{Deserialize, Serialize};

/// 特定個人情報名コード of local-tax information (地方税関係情報).
pub const ITEM_LOCAL_TAX: &str = "TM00000000000002";
/// 特定個人情報名コード of the public-fund receipt account (公金受取口座).
pub const ITEM_PUBLIC_FUND_ACCOUNT: &str = "TM00000000000089";
use renkei_platform::item_status::{NOT_HELD as ITEM_NOT_HELD, PROVIDED as ITEM_PROVIDED};

/// Fields of one item for one condition: (name, value) in order.
pub type Fields = Vec<(String, String)>;
/// item code → condition key → fields.
pub type PersonData = HashMap<String, HashMap<String, Fields>>;

/// `provider-data.json`: person index (hex) → item code → condition key (fiscal year or
/// `from..to`) → field name → value.
#[derive(Debug, Default, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ProviderData {
    pub persons: HashMap<String, PersonData>,
}

/// The code the platform issues for a person to an agency: stable, opaque, per agency.
pub fn fugo_for(person: &[u8], agency: &str) -> Option<Fugo> {
    let mut ctx = ring::digest::Context::new(&ring::digest::SHA256);
    ctx.update(b"renkei-sim/fugo/v1");
    ctx.update(person);
    ctx.update(agency.as_bytes());
    let h = hex::encode(ctx.finish());
    Fugo::parse(&format!("F{}", &h[..31])).ok()
}

fn condition_key(c: &Condition) -> String {
    match c {
        Condition::FiscalYear(y) => y.to_string(),
        Condition::Period { from, to } => format!("{from}..{to}"),
    }
}

impl ProviderData {
    /// Reads the seed file; a missing file means "generated data only".
    pub fn load(path: &Path) -> Result<Self, super::SimError> {
        if !path.exists() {
            return Ok(Self::default());
        }
        let bad = |detail: String| super::SimError::ProviderData {
            path: path.display().to_string(),
            detail,
        };
        let text = std::fs::read_to_string(path).map_err(|e| bad(e.to_string()))?;
        serde_json::from_str(&text).map_err(|e| bad(e.to_string()))
    }

    /// The item status and items for a person, item and condition.
    pub fn answer(
        &self,
        person: &[u8],
        item: &ItemCode,
        condition: &Condition,
    ) -> (&'static str, Vec<ResultItem>) {
        let key = hex::encode(person);
        if let Some(fields) = self
            .persons
            .get(&key)
            .and_then(|items| items.get(item.as_str()))
            .and_then(|conds| conds.get(&condition_key(condition)))
        {
            return (
                ITEM_PROVIDED,
                vec![ResultItem {
                    item: item.clone(),
                    fields: fields.clone(),
                }],
            );
        }
        // Everyone else: deterministic figures from the person index, so answers are stable
        // across runs and differ between people.
        let seed = u64::from_be_bytes(
            person
                .get(..8)
                .and_then(|b| b.try_into().ok())
                .unwrap_or([0; 8]),
        );
        match item.as_str() {
            ITEM_LOCAL_TAX => {
                let income_levy = (seed % 400) * 1_000;
                (
                    ITEM_PROVIDED,
                    vec![ResultItem {
                        item: item.clone(),
                        fields: vec![
                            ("市町村民税均等割額".into(), "3500".into()),
                            ("市町村民税所得割額".into(), income_levy.to_string()),
                        ],
                    }],
                )
            }
            ITEM_PUBLIC_FUND_ACCOUNT => (
                ITEM_PROVIDED,
                vec![ResultItem {
                    item: item.clone(),
                    fields: vec![("口座登録有無".into(), "1".into())],
                }],
            ),
            _ => (ITEM_NOT_HELD, Vec::new()),
        }
    }
}
