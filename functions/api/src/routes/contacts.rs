use axum::extract::{Path, State};
use axum::http::{header, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::Json;
use chrono::{DateTime, Utc};
use roster::domain::contact::{Contact, ContactInput, ContactStatus, ContactType, IdentityKind, Intent, Source};
use roster::domain::list::SubscriptionStatus;
use roster::usecases::bulk::{self, Action, BulkJobStatus, BulkOutcome, BulkRequest, Started};
use roster::usecases::filter::{ContactFilter, TagNames};
use roster::usecases::merge::{self, MergeResult};
use roster::usecases::{self, contacts, exports, Page};
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};

use crate::error::{ApiError, ApiResult, ErrorBody};
use crate::extract::{JsonBody, ProjectKey, QueryParams};
use crate::AppState;

#[derive(Serialize, ToSchema)]
pub struct UpsertedContact {
    #[serde(flatten)]
    pub contact: Contact,
    /// True when this call created the contact.
    pub created: bool,
    /// Lists (`add_to_lists`) the contact was added to by this call.
    pub lists_updated: usize,
}

/// Creates the contact, or merges into the one with the same email (else
/// phone, else eid): 201 when created, 200 when it existed.
#[utoipa::path(post, path = "/v1/projects/{pid}/contacts", tag = "contacts", request_body = ContactInput,
    params(("pid" = String, Path, description = "Project id"),
           ("Idempotency-Key" = Option<String>, Header, description = "A retry with the same key returns the first result")),
    security(("secret_key" = [])),
    responses((status = 201, body = UpsertedContact, description = "Created"),
              (status = 200, body = UpsertedContact, description = "Existed; updated"),
              (status = 409, body = ErrorBody, description = "An identity belongs to another contact"),
              (status = 422, body = ErrorBody)))]
pub async fn create_contact(
    State(state): State<AppState>,
    ProjectKey(project): ProjectKey,
    JsonBody(input): JsonBody<ContactInput>,
) -> ApiResult<(StatusCode, Json<UpsertedContact>)> {
    let up = contacts::upsert(&state.store, &project, input).await?;
    let status = if up.created {
        StatusCode::CREATED
    } else {
        StatusCode::OK
    };
    Ok((
        status,
        Json(UpsertedContact {
            contact: up.contact,
            created: up.created,
            lists_updated: up.lists_updated,
        }),
    ))
}

#[derive(Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
pub struct ListQuery {
    /// Exact lookup by email (any case).
    email: Option<String>,
    /// Exact lookup by phone, in any format.
    phone: Option<String>,
    /// Exact lookup by external id.
    eid: Option<String>,
    /// Page size, 1 to 1000 (default 50).
    limit: Option<usize>,
    /// `next_cursor` from the previous page.
    cursor: Option<String>,
    /// Lookups only: also return a soft-deleted contact.
    include_deleted: Option<bool>,
    /// `created_at` (the default), `updated_at`, `last_activity_at`,
    /// `referral_count`, `name`, `email` or `type`.
    sort: Option<contacts::Sort>,
    /// `asc` or `desc`: dates and referral counts default to `desc` (newest,
    /// most first), name, email and type to `asc`.
    order: Option<contacts::Direction>,
    /// Search: contacts whose email, first, last or full name, company or
    /// phone digits start with this, case-insensitive.
    q: Option<String>,
    source: Option<Source>,
    #[serde(rename = "type")]
    contact_type: Option<ContactType>,
    status: Option<ContactStatus>,
    intent: Option<Intent>,
    /// Comma-separated tag names the contact carries all of.
    tags: Option<String>,
    /// Comma-separated tag names the contact carries at least one of.
    any_tags: Option<String>,
    /// Comma-separated tag names the contact does not carry.
    exclude_tags: Option<String>,
    /// On this sending list (and with `list_status`, in that status).
    list_id: Option<String>,
    list_status: Option<SubscriptionStatus>,
    created_after: Option<DateTime<Utc>>,
    created_before: Option<DateTime<Utc>>,
    has_email: Option<bool>,
    has_phone: Option<bool>,
    /// Also count every contact the query selects (`total`). Exact; costs
    /// index reads for the whole audience, and reads every page of a search
    /// or filter, so it is asked for, not given by default.
    total: Option<bool>,
    /// `export.csv` only: comma-separated columns (default: email, name,
    /// first_name, last_name, phone, company, source, type, status, tags,
    /// referral_code, referral_count, created_at); also address_*, the
    /// engagement counters, `label:<key>` and `list:<list id>` (the status on that list).
    columns: Option<String>,
    /// `export.csv` only: start the file with a UTF-8 byte order mark (for Excel).
    bom: Option<bool>,
}

impl ListQuery {
    fn filter(&self) -> ContactFilter {
        ContactFilter {
            source: self.source,
            contact_type: self.contact_type,
            status: self.status,
            intent: self.intent,
            tags: self.tags.as_deref().map(TagNames::split),
            any_tags: self.any_tags.as_deref().map(TagNames::split),
            exclude_tags: self.exclude_tags.as_deref().map(TagNames::split),
            list_id: self.list_id.clone(),
            list_status: self.list_status,
            created_after: self.created_after,
            created_before: self.created_before,
            has_email: self.has_email,
            has_phone: self.has_phone,
        }
    }

    fn order(&self) -> Option<contacts::SortOrder> {
        (self.sort.is_some() || self.order.is_some()).then(|| contacts::SortOrder::new(self.sort, self.order))
    }
}

#[derive(Serialize, ToSchema)]
pub struct ContactPage {
    pub data: Vec<Contact>,
    pub next_cursor: Option<String>,
    /// With `total=true`: how many contacts the query selects, all pages.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub total: Option<u64>,
}

impl From<Page<Contact>> for ContactPage {
    fn from(p: Page<Contact>) -> Self {
        ContactPage {
            data: p.data,
            next_cursor: p.next_cursor,
            total: None,
        }
    }
}

/// Live contacts newest first, or an exact lookup by email, phone or eid.
#[utoipa::path(get, path = "/v1/projects/{pid}/contacts", tag = "contacts",
    params(("pid" = String, Path, description = "Project id"), ListQuery),
    security(("secret_key" = [])),
    responses((status = 200, body = ContactPage), (status = 422, body = ErrorBody)))]
pub async fn list_contacts(
    State(state): State<AppState>,
    ProjectKey(project): ProjectKey,
    QueryParams(q): QueryParams<ListQuery>,
) -> ApiResult<Json<ContactPage>> {
    let lookups = [
        (IdentityKind::Email, &q.email),
        (IdentityKind::Phone, &q.phone),
        (IdentityKind::Eid, &q.eid),
    ];
    let mut given = lookups.iter().filter_map(|(k, v)| v.as_deref().map(|v| (*k, v)));
    if let Some((kind, value)) = given.next() {
        if let Some((other, _)) = given.next() {
            return Err(ApiError::invalid(
                other.field(),
                "look up by one of email, phone or eid at a time",
            ));
        }
        let found = contacts::find(&state.store, &project, kind, value, q.include_deleted.unwrap_or(false)).await?;
        return Ok(Json(ContactPage {
            total: (q.total == Some(true)).then_some(found.is_some() as u64),
            data: found.into_iter().collect(),
            next_cursor: None,
        }));
    }
    let limit = usecases::limit(q.limit)?;
    for (field, given) in [("columns", q.columns.is_some()), ("bom", q.bom.is_some())] {
        if given {
            return Err(ApiError::invalid(
                field,
                format!("{field} is for GET …/contacts/export.csv"),
            ));
        }
    }
    let filter = q.filter();
    let pid = project.id.as_str();
    let page = contacts::query(
        &state.store,
        pid,
        q.q.as_deref(),
        &filter,
        q.order(),
        limit,
        q.cursor.as_deref(),
    )
    .await?;
    let mut page = ContactPage::from(page);
    if q.total == Some(true) {
        page.total = Some(contacts::count(&state.store, pid, q.q.as_deref(), &filter).await?);
    }
    Ok(Json(page))
}

#[utoipa::path(get, path = "/v1/projects/{pid}/contacts/{cid}", tag = "contacts",
    params(("pid" = String, Path, description = "Project id"), ("cid" = String, Path, description = "Contact id")),
    security(("secret_key" = [])),
    responses((status = 200, body = Contact), (status = 404, body = ErrorBody)))]
pub async fn get_contact(
    State(state): State<AppState>,
    ProjectKey(project): ProjectKey,
    Path((_, cid)): Path<(String, String)>,
) -> ApiResult<Json<Contact>> {
    Ok(Json(contacts::get(&state.store, &project.id, &cid).await?))
}

/// Changes the fields given; `null` clears one. Identities may change (taken → 409).
#[utoipa::path(patch, path = "/v1/projects/{pid}/contacts/{cid}", tag = "contacts", request_body = ContactInput,
    params(("pid" = String, Path, description = "Project id"), ("cid" = String, Path, description = "Contact id")),
    security(("secret_key" = [])),
    responses((status = 200, body = Contact), (status = 404, body = ErrorBody), (status = 409, body = ErrorBody), (status = 422, body = ErrorBody)))]
pub async fn update_contact(
    State(state): State<AppState>,
    ProjectKey(project): ProjectKey,
    Path((_, cid)): Path<(String, String)>,
    JsonBody(input): JsonBody<ContactInput>,
) -> ApiResult<Json<Contact>> {
    Ok(Json(contacts::update(&state.store, &project, &cid, input).await?))
}

#[derive(Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
pub struct DeleteQuery {
    /// Remove personal data everywhere and free the contact's identities.
    erase: Option<bool>,
}

#[derive(Serialize, ToSchema)]
pub struct Deleted {
    pub id: String,
    pub deleted: bool,
    pub erased: bool,
}

/// Soft delete by default (hidden from lists, identities kept reserved);
/// `?erase=true` erases the personal data and frees the identities.
#[utoipa::path(delete, path = "/v1/projects/{pid}/contacts/{cid}", tag = "contacts",
    params(("pid" = String, Path, description = "Project id"), ("cid" = String, Path, description = "Contact id"), DeleteQuery),
    security(("secret_key" = [])),
    responses((status = 200, body = Deleted), (status = 404, body = ErrorBody)))]
pub async fn delete_contact(
    State(state): State<AppState>,
    ProjectKey(project): ProjectKey,
    Path((_, cid)): Path<(String, String)>,
    QueryParams(q): QueryParams<DeleteQuery>,
) -> ApiResult<Json<Deleted>> {
    let erase = q.erase.unwrap_or(false);
    contacts::delete(&state.store, &project.id, &cid, erase).await?;
    Ok(Json(Deleted {
        id: cid,
        deleted: true,
        erased: erase,
    }))
}

#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct MergeRequest {
    /// The contact to merge into this one; it is gone afterwards.
    pub other_id: String,
    /// Show the result and what would move, change nothing.
    #[serde(default)]
    pub preview: bool,
}

/// Merges another contact into this one (identities, tags, lists, activities,
/// messages, referral data); `preview: true` only shows what would change.
#[utoipa::path(post, path = "/v1/projects/{pid}/contacts/{cid}/merge", tag = "contacts", request_body = MergeRequest,
    params(("pid" = String, Path, description = "Project id"), ("cid" = String, Path, description = "The surviving contact")),
    security(("secret_key" = [])),
    responses((status = 200, body = MergeResult), (status = 404, body = ErrorBody), (status = 422, body = ErrorBody)))]
pub async fn merge_contacts(
    State(state): State<AppState>,
    ProjectKey(project): ProjectKey,
    Path((_, cid)): Path<(String, String)>,
    JsonBody(body): JsonBody<MergeRequest>,
) -> ApiResult<Json<MergeResult>> {
    Ok(Json(
        merge::merge(&state.store, &project.id, &cid, &body.other_id, body.preview).await?,
    ))
}

/// Acts on a selection of contacts (ids, or a filter covering later pages
/// too): delete (with `"confirm": "DELETE"`), tag, untag, add to or remove
/// from a list, set type. Up to 1,000 contacts are acted on within the call
/// (200); a larger selection starts a bulk job (202, `Location` names it):
/// its selection is read once when it starts, and `GET …/bulk-jobs/{id}`
/// shows its progress and final counts.
#[utoipa::path(post, path = "/v1/projects/{pid}/contacts/bulk", tag = "contacts", request_body = BulkRequest,
    params(("pid" = String, Path, description = "Project id")),
    security(("secret_key" = [])),
    responses((status = 200, body = BulkOutcome, description = "Done within the call"),
              (status = 202, body = BulkJobStatus, description = "More than 1,000 contacts: a bulk job was started"),
              (status = 400, body = ErrorBody, description = "Deleting without the typed confirmation"),
              (status = 422, body = ErrorBody)))]
pub async fn bulk(
    State(state): State<AppState>,
    ProjectKey(project): ProjectKey,
    JsonBody(body): JsonBody<BulkRequest>,
) -> ApiResult<Response> {
    if body.action == Action::Delete && body.confirm.as_deref() != Some("DELETE") {
        return Err(ApiError::new(
            StatusCode::BAD_REQUEST,
            "confirmation_required",
            "type DELETE in `confirm` to delete these contacts",
        )
        .with_field("confirm"));
    }
    Ok(
        match bulk::run(&state.store, state.jobs.as_ref(), &project, body).await? {
            Started::Done(outcome) => Json(outcome).into_response(),
            Started::Job(job) => {
                let location = format!("/v1/projects/{}/bulk-jobs/{}", project.id, job.id);
                (StatusCode::ACCEPTED, [(header::LOCATION, location)], Json(job)).into_response()
            }
        },
    )
}

/// A bulk job's progress: contacts matched when it started, processed,
/// updated and failed (with the first failures), percent; final once
/// `state` is `completed` or `failed`.
#[utoipa::path(get, path = "/v1/projects/{pid}/bulk-jobs/{id}", tag = "contacts",
    params(("pid" = String, Path, description = "Project id"), ("id" = String, Path, description = "Bulk job id")),
    security(("secret_key" = [])),
    responses((status = 200, body = BulkJobStatus), (status = 404, body = ErrorBody)))]
pub async fn bulk_job(
    State(state): State<AppState>,
    ProjectKey(project): ProjectKey,
    Path((_, id)): Path<(String, String)>,
) -> ApiResult<Json<BulkJobStatus>> {
    Ok(Json(bulk::status(&state.store, &project.id, &id).await?))
}

/// The contacts a list query selects (the same `q`, filters and sort as
/// `GET …/contacts`), as CSV, streamed; at most 10,000 rows. A file cut
/// there says so in `X-Roster-Truncated` (use `POST …/exports` for all).
/// Cells a spreadsheet would run as formulas are neutralized.
#[utoipa::path(get, path = "/v1/projects/{pid}/contacts/export.csv", tag = "contacts",
    params(("pid" = String, Path, description = "Project id"), ListQuery),
    security(("secret_key" = [])),
    responses((status = 200, description = "CSV (RFC 4180)", content_type = "text/csv", body = String,
        headers(("X-Roster-Truncated" = String, description = "Set when the query selects more than 10,000 contacts"))),
        (status = 422, body = ErrorBody)))]
pub async fn export_contacts(
    State(state): State<AppState>,
    ProjectKey(project): ProjectKey,
    QueryParams(q): QueryParams<ListQuery>,
) -> ApiResult<axum::response::Response> {
    for (field, given) in [
        ("email", q.email.is_some()),
        ("phone", q.phone.is_some()),
        ("eid", q.eid.is_some()),
        ("limit", q.limit.is_some()),
        ("cursor", q.cursor.is_some()),
        ("total", q.total.is_some()),
        ("include_deleted", q.include_deleted.is_some()),
    ] {
        if given {
            return Err(ApiError::invalid(field, format!("{field} is not an export parameter")));
        }
    }
    let e = exports::ContactExport {
        filter: q.filter(),
        order: q.order(),
        columns: roster::domain::export::columns(q.columns.as_deref())?,
        bom: q.bom.unwrap_or(false),
        q: q.q,
    };
    // Checked before the first byte: a bad query is a 422, not a broken file.
    contacts::query(&state.store, &project.id, e.q.as_deref(), &e.filter, e.order, 1, None).await?;
    let cap = state.config.export_sync_rows;
    let truncated = exports::over_cap(&state.store, &project.id, &e, cap).await?;
    let stream = exports::contacts_csv(state.store.clone(), project.id.clone(), e, cap);
    let note = truncated.then(|| {
        format!(
            "the first {cap} rows only; POST /v1/projects/{}/exports exports them all",
            project.id
        )
    });
    Ok(super::csv_file("contacts.csv", stream, note))
}
