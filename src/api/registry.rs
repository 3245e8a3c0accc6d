//! Routes for the registry: the resident-record import (streamed), searches, merges.
//!
//! - `POST /v1/persons:import?layout=NAME` (the resident-record feed only, in its own numbers:
//!   registrations, move-outs, deaths, fact changes — a business system gets 403
//!   `wrong_role`): the raw file as the body, up to `max_batch_bytes`; answers an
//!   [`ImportSummary`].
//! - `GET /v1/persons:lookup?business_number=B` or `?unified=U`: a business system (or the
//!   feed) sees only persons linked to it; a security officer sees any person (recorded).
//! - `POST /v1/persons:match` (basic four facts): same visibility; staff searches recorded.
//! - `POST /v1/persons:by-individual-number` (security officer only): answers the unified
//!   number, never the individual number; every lookup is recorded as touching it.
//! - `POST /v1/persons:merge {from, into}` (security officer): recorded.

use axum::body::Body;
use axum::extract::{DefaultBodyLimit, Query, State};
use axum::http::{HeaderMap, StatusCode};
use axum::routing::{get, post};
use axum::{Json, Router};
use renkei_ids::{BusinessNumber, IndividualNumber, UnifiedAddressNumber};
use renkei_records::{RecordKind, RecordResult};
use serde::Deserialize;

use super::{ApiError, AppState, Caller, JsonBody};
use crate::config::Role;
use crate::error::Error;
use crate::registry::import::{ImportSummary, Importer, DEFAULT_IMPORT_CHUNK};
use crate::registry::lifecycle::MergeError;
use crate::registry::search::{FactsQuery, PersonView};

/// The resident-record feed: bulk imports.
pub fn feed_routes() -> Router<AppState> {
    Router::new().route(
        "/v1/persons:import",
        // The file is streamed and counted against `max_batch_bytes` by the handler; the
        // 64 KiB default limit of the other routes does not apply here.
        post(import).layer(DefaultBodyLimit::disable()),
    )
}

/// Searches a business system makes in its own numbers (and security officers in all).
pub fn search_routes() -> Router<AppState> {
    Router::new()
        .route("/v1/persons:lookup", get(lookup))
        .route("/v1/persons:match", post(match_facts))
}

/// What only security officers may do: find by individual number, merge.
pub fn security_routes() -> Router<AppState> {
    Router::new()
        .route(
            "/v1/persons:by-individual-number",
            post(by_individual_number),
        )
        .route("/v1/persons:merge", post(merge))
}

/// Records a staff lookup durably before the answer is given.
async fn record_lookup(
    gw: &AppState,
    caller: &Caller,
    action: &str,
    person: Option<UnifiedAddressNumber>,
    touched: bool,
) -> Result<(), ApiError> {
    let mut r = crate::records::base(
        RecordKind::StaffAction,
        if person.is_some() {
            RecordResult::Done
        } else {
            RecordResult::NotHeld
        },
    );
    r.person = person;
    r.staff = Some(caller.staff_detail(action, person.map(|u| format!("person:{u}")), touched));
    crate::records::record_now(gw.store.as_ref(), &r)
        .await
        .map_err(|e| ApiError::from(Error::Store(e)))
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct ImportQuery {
    layout: String,
}

async fn import(
    State(gw): State<AppState>,
    caller: Caller,
    query: Result<Query<ImportQuery>, axum::extract::rejection::QueryRejection>,
    headers: HeaderMap,
    body: Body,
) -> Result<Json<ImportSummary>, ApiError> {
    let system = caller.client.name.clone();
    // Fixed texts only: neither the query's text nor serde's is shown back (a layout name is
    // input, and input may be an individual number).
    let Query(q) = query.map_err(|_| {
        ApiError::new(
            StatusCode::BAD_REQUEST,
            "missing_layout",
            "layout: a ?layout= query parameter is required",
        )
        .field("layout")
    })?;
    let layout = crate::schemas::layout(&q.layout).map_err(|e| match e {
        crate::schemas::SchemaError::BadName => ApiError::new(
            StatusCode::BAD_REQUEST,
            "bad_layout_name",
            "layout: layout names are lower-case letters, digits and '-'",
        )
        .field("layout"),
        _ => ApiError::new(
            StatusCode::UNPROCESSABLE_ENTITY,
            "unknown_layout",
            "layout: no such layout",
        )
        .field("layout"),
    })?;
    if ["change_kind", "business_number", "individual_number"]
        .iter()
        .any(|f| layout.field_index(f).is_none())
    {
        return Err(ApiError::new(
            StatusCode::UNPROCESSABLE_ENTITY,
            "wrong_layout",
            "layout: not a resident-record layout (needs change_kind, business_number, individual_number)",
        )
        .field("layout"));
    }
    let layout_name = layout.name.clone();
    let max = gw.config.max_batch_bytes;
    let too_large = || super::upload::too_large(max);
    super::upload::check_declared(&headers, max)?;
    let started = std::time::Instant::now();
    let mut stream = super::upload::LineStream::start(body, layout, max, DEFAULT_IMPORT_CHUNK);
    let mut failure = None;
    let mut waiting = std::time::Instant::now();
    let mut waited = 0u64;
    let mut importer =
        Importer::new(&gw.registry, system.clone(), &layout_name).map_err(Error::from)?;
    while let Some(chunk) = stream.chunks.recv().await {
        waited += waiting.elapsed().as_millis() as u64;
        if let Err(e) = importer.push(chunk).await {
            failure = Some(e);
            break;
        }
        waiting = std::time::Instant::now();
    }
    let mut summary = if failure.is_some() {
        importer.summary.clone()
    } else {
        match importer.finish().await {
            Ok(s) => s,
            Err(e) => {
                failure = Some(e);
                ImportSummary {
                    layout: layout_name.clone(),
                    system: system.to_string(),
                    ..Default::default()
                }
            }
        }
    };
    summary.timing.waiting_for_lines_ms = waited;
    summary.timing.total_ms = started.elapsed().as_millis() as u64;
    let over = stream.finish().await;
    gw.registry.wake().notify();
    let complete = failure.is_none() && !over;
    tracing::info!(
        message = "Import finished.",
        system = %system,
        layout = %summary.layout,
        lines = summary.lines,
        applied = summary.applied_changes,
        unchanged = summary.unchanged,
        rejected = summary.rejections.rejected_count,
        commits = summary.commits,
        ms = started.elapsed().as_millis() as u64,
        complete,
    );
    let staff = caller.staff_detail(
        "persons.import",
        Some(format!("layout:{}", summary.layout)),
        true,
    );
    gw.registry
        .record_import(staff, &summary, complete)
        .await
        .map_err(Error::from)?;
    if let Some(e) = failure {
        return Err(Error::from(e).into());
    }
    if over {
        let mut e = too_large();
        e.body.message = format!(
            "{}; the first {} lines were applied and replaying the file is harmless",
            e.body.message, summary.lines
        )
        .into();
        return Err(e);
    }
    Ok(Json(summary))
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct LookupQuery {
    #[serde(default)]
    business_number: Option<String>,
    #[serde(default)]
    unified: Option<String>,
}

fn not_found() -> ApiError {
    ApiError::new(
        StatusCode::NOT_FOUND,
        "person_not_found",
        "no such person for this client",
    )
}

fn parse_unified(field: &'static str, s: &str) -> Result<UnifiedAddressNumber, ApiError> {
    UnifiedAddressNumber::parse(s).map_err(|e| {
        ApiError::new(StatusCode::UNPROCESSABLE_ENTITY, e.code(), e.to_string()).field(field)
    })
}

async fn lookup(
    State(gw): State<AppState>,
    caller: Caller,
    query: Result<Query<LookupQuery>, axum::extract::rejection::QueryRejection>,
) -> Result<Json<PersonView>, ApiError> {
    let Query(q) =
        query.map_err(|e| ApiError::new(StatusCode::BAD_REQUEST, "bad_query", e.body_text()))?;
    let staff = caller.is(Role::Security);
    let system = caller.client.name.clone();
    let view = match (&q.business_number, &q.unified) {
        (Some(bn), None) => {
            if staff {
                return Err(ApiError::new(
                    StatusCode::UNPROCESSABLE_ENTITY,
                    "business_number_needs_system",
                    "business numbers belong to a business system; staff look up by unified",
                )
                .field("business_number"));
            }
            let bn = BusinessNumber::parse(bn).map_err(|e| {
                ApiError::new(StatusCode::UNPROCESSABLE_ENTITY, e.code(), e.to_string())
                    .field("business_number")
            })?;
            gw.registry
                .view_by_business_number(&system, &bn)
                .map_err(Error::from)?
        }
        (None, Some(u)) => {
            let u = parse_unified("unified", u)?;
            let v = gw
                .registry
                .view(&u, (!staff).then_some(&system))
                .map_err(Error::from)?;
            if staff {
                record_lookup(
                    &gw,
                    &caller,
                    "person.lookup",
                    v.as_ref().map(|v| v.unified_address_number),
                    false,
                )
                .await?;
            }
            v
        }
        _ => {
            return Err(ApiError::new(
                StatusCode::BAD_REQUEST,
                "one_key",
                "give exactly one of business_number or unified",
            ))
        }
    };
    view.map(Json).ok_or_else(not_found)
}

#[derive(Debug, serde::Serialize)]
struct Matches {
    persons: Vec<PersonView>,
}

async fn match_facts(
    State(gw): State<AppState>,
    caller: Caller,
    JsonBody(q): JsonBody<FactsQuery>,
) -> Result<Json<Matches>, ApiError> {
    let staff = caller.is(Role::Security);
    crate::error::check_date("birth_date", &q.birth_date).or_else(|e| {
        // Partial dates (不詳) are stored as YYYY-MM or YYYY.
        let ok = q.birth_date.len() == 7 || q.birth_date.len() == 4;
        if ok
            && q.birth_date
                .bytes()
                .all(|b| b.is_ascii_digit() || b == b'-')
        {
            Ok(())
        } else {
            Err(e)
        }
    })?;
    if q.kana.as_deref().unwrap_or("").trim().is_empty()
        && q.name.as_deref().unwrap_or("").trim().is_empty()
    {
        return Err(ApiError::new(
            StatusCode::UNPROCESSABLE_ENTITY,
            "missing_field",
            "give kana or name, and birth_date",
        )
        .field("kana"));
    }
    let system = caller.client.name.clone();
    let found = gw.registry.find_by_facts(&q).map_err(Error::from)?;
    let mut persons = Vec::new();
    for u in found {
        if let Some(v) = gw
            .registry
            .view(&u, (!staff).then_some(&system))
            .map_err(Error::from)?
        {
            persons.push(v);
        }
    }
    if staff {
        record_lookup(
            &gw,
            &caller,
            "person.match",
            persons.first().map(|v| v.unified_address_number),
            false,
        )
        .await?;
    }
    Ok(Json(Matches { persons }))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct ByNumber {
    individual_number: IndividualNumber,
}

async fn by_individual_number(
    State(gw): State<AppState>,
    caller: Caller,
    JsonBody(q): JsonBody<ByNumber>,
) -> Result<Json<PersonView>, ApiError> {
    let found = gw
        .registry
        .find_by_individual_number(&q.individual_number)
        .map_err(Error::from)?;
    drop(q);
    let view = match found {
        Some(u) => gw.registry.view(&u, None).map_err(Error::from)?,
        None => None,
    };
    record_lookup(
        &gw,
        &caller,
        "person.by_individual_number",
        view.as_ref().map(|v| v.unified_address_number),
        true,
    )
    .await?;
    view.map(Json).ok_or_else(not_found)
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct MergeRequest {
    from: String,
    into: String,
}

async fn merge(
    State(gw): State<AppState>,
    caller: Caller,
    JsonBody(q): JsonBody<MergeRequest>,
) -> Result<Json<crate::registry::lifecycle::Merged>, ApiError> {
    let from = parse_unified("from", &q.from)?;
    let into = parse_unified("into", &q.into)?;
    let staff = caller.staff_detail("person.merge", None, true);
    match gw.registry.merge(&from, &into, staff).await {
        Ok(m) => Ok(Json(m)),
        Err(MergeError::Registry(e)) => Err(Error::from(e).into()),
        Err(e) => {
            let status = match e {
                MergeError::NotFound => StatusCode::NOT_FOUND,
                MergeError::Same => StatusCode::UNPROCESSABLE_ENTITY,
                _ => StatusCode::CONFLICT,
            };
            Err(ApiError::new(status, e.code(), e.to_string()))
        }
    }
}
