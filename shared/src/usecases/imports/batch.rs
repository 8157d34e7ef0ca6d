//! A batch of rows written together. Reading every claim of the batch in one
//! BatchGetItem sorts rows into three paths:
//!
//! - new (no identity of the row is held): the contact item is written
//!   first, in a BatchWriteItem, under the row's derived id, which nobody
//!   else can know yet; then the identities are claimed with conditional
//!   puts, up to 100 in one transaction (`Store::claim_rows`); then
//!   referral-code claims, search tokens and `contact_created` activities go
//!   out in BatchWriteItems. A row whose claim is lost to a racing writer has
//!   its item deleted and takes the slow path.
//! - existing (its identities are held by one contact): one UpdateItem merge
//!   per row; token changes and `contact_updated` activities are batched.
//! - anything else (a value held by another contact, a stale claim, the same
//!   person twice in the batch): the general upsert, one row at a time.
//!
//! Tags named by the rows (a tags column, the `tag` option) are looked up
//! (or created) once per batch; each row's memberships are then written with
//! a conditional put and counted only when new.
//!
//! A row retried after a crash finds its own derived id on the claims and
//! counts as created again, so a chunk replayed from its last commit gives
//! the same counts.

use std::collections::{BTreeMap, HashSet};

use aws_sdk_dynamodb::types::{AttributeValue, WriteRequest};
use chrono::Utc;
use futures::StreamExt;
use serde_json::json;

use super::Importer;
use crate::domain::activity::{Activity, Origin};
use crate::domain::contact::{
    changed_fields, Contact, ContactChange, ContactStatus, FieldWarning, IdentityKind, Source,
};
use crate::domain::ids::{derived_id, new_referral_code};
use crate::domain::import::mapping::Field;
use crate::domain::import::row::{self, RowError};
use crate::domain::import::{Import, Mode, Outcome, RowOutcome};
use crate::domain::list::Via;
use crate::domain::project::Project;
use crate::domain::search;
use crate::domain::tag::{name_key, tag_name};
use crate::store::activities::activity_id;
use crate::store::contacts::{Claim, ContactWrite, Merge, WriteMode};
use crate::store::to_attr;
use crate::usecases::contacts::{self, creation_defaults, write_for, UpsertOptions};
use crate::usecases::{lists, tags};
use crate::{Error, Result};

/// Rows written at once where each needs its own request (a merge, a tag):
/// against DynamoDB's latency, a batch of existing rows takes about
/// `BATCH_ROWS` ÷ IN_FLIGHT round trips.
const IN_FLIGHT: usize = 100;

/// A valid row on its way in.
struct Prepared {
    index: usize,
    change: ContactChange,
    tags: Vec<String>,
    labels: BTreeMap<String, String>,
    /// The id a contact created by this row gets.
    id: String,
    /// What of the row the contact is kept without (an unusable phone).
    warnings: Vec<String>,
}

impl Prepared {
    fn identities(&self) -> impl Iterator<Item = (IdentityKind, String)> + '_ {
        self.change
            .identities
            .iter()
            .filter_map(|(k, v)| v.as_ref().map(|v| (*k, v.clone())))
    }

    fn matched(&self) -> (IdentityKind, String) {
        let (k, v) = self.change.match_identity().expect("prepared rows have an identity");
        (k, v.to_string())
    }
}

/// Upserts a batch of rows; one outcome per row, in order.
pub(super) async fn import_batch(
    ctx: &Importer,
    project: &Project,
    job: &Import,
    fields: &[Option<Field>],
    rows: &[(u64, csv::StringRecord)],
) -> Result<Vec<RowOutcome>> {
    let pid = project.id.as_str();
    let mut outcomes: Vec<Option<RowOutcome>> = vec![None; rows.len()];
    let mut candidates = Vec::new();
    let mut slow = Vec::new();
    let mut seen = HashSet::new();
    for (index, (line, cells)) in rows.iter().enumerate() {
        let p = match prepare(job, project, fields, index, *line, cells)? {
            Ok(p) => p,
            Err(outcome) => {
                outcomes[index] = Some(outcome.into());
                continue;
            }
        };
        // The same person twice in a batch: the later rows go one by one, after.
        let ids: Vec<_> = p.identities().collect();
        if ids.iter().any(|i| seen.contains(i)) {
            slow.push(p);
        } else {
            seen.extend(ids);
            candidates.push(p);
        }
    }

    let names: Vec<String> = candidates.iter().chain(&slow).flat_map(|p| p.tags.clone()).collect();
    let batch_tags = tags::resolve_ids(&ctx.store, pid, &names, true).await?;
    let batch_tags = batch_tags.as_slice();

    let wanted: Vec<(IdentityKind, String)> = candidates.iter().flat_map(|p| p.identities()).collect();
    let owners = ctx.store.identity_owners(pid, &wanted).await?;
    let mode = job.options.mode;
    let (mut new, mut existing) = (Vec::new(), Vec::new());
    for p in candidates {
        let holders: HashSet<Option<&String>> = p.identities().map(|i| owners.get(&i)).collect();
        match owners.get(&p.matched()) {
            Some(owner) if *owner != p.id && mode == Mode::CreateOnly => {
                let field = p.matched().0.field();
                outcomes[p.index] =
                    Some(Outcome::Skipped(format!("a contact with this {field} exists (create_only)")).into());
            }
            Some(owner) if holders.iter().all(|h| h.is_none_or(|h| h == owner)) => {
                let held = p.identities().filter(|i| owners.contains_key(i)).collect();
                existing.push((p, owner.clone(), held));
            }
            None if mode == Mode::UpdateOnly => {
                let field = p.matched().0.field();
                outcomes[p.index] = Some(Outcome::Skipped(format!("no contact has this {field} (update_only)")).into());
            }
            None if holders.iter().all(Option::is_none) => new.push(p),
            _ => slow.push(p),
        }
    }

    let mut done: Vec<(Prepared, Contact, Outcome)> = Vec::new();
    let (created, lost) = create_new(ctx, pid, new).await?;
    done.extend(created);
    slow.extend(lost);
    let (updated, lost) = update_existing(ctx, pid, existing).await?;
    done.extend(updated);
    slow.extend(lost);

    // Tags, labels and lists of the fast rows, a few at a time.
    let finished: Vec<Result<(usize, RowOutcome)>> = futures::stream::iter(done)
        .map(|(p, contact, outcome)| async move {
            let row_tags = pick(batch_tags, &p.tags);
            let result = finish_row(ctx, pid, job, &contact, &row_tags, p.labels, outcome, true).await;
            result.map(|outcome| {
                let warnings = p.warnings;
                (p.index, RowOutcome { outcome, warnings })
            })
        })
        .buffer_unordered(IN_FLIGHT)
        .collect()
        .await;
    for f in finished {
        let (index, outcome) = f?;
        outcomes[index] = Some(outcome);
    }
    slow.sort_by_key(|p| p.index);
    for p in slow {
        let index = p.index;
        outcomes[index] = Some(upsert_one(ctx, project, job, p, batch_tags).await?);
    }
    Ok(outcomes
        .into_iter()
        .map(|o| o.unwrap_or_else(|| Outcome::Failed("not processed".into()).into()))
        .collect())
}

/// Validates a row; `Err` holds its outcome when it goes no further.
fn prepare(
    job: &Import,
    project: &Project,
    fields: &[Option<Field>],
    index: usize,
    line: u64,
    cells: &csv::StringRecord,
) -> Result<std::result::Result<Prepared, Outcome>> {
    let row = match row::to_input(fields, cells, &job.options, &project.default_country) {
        Ok(r) => r,
        Err(RowError { reason, skip: true }) => return Ok(Err(Outcome::Skipped(reason))),
        Err(RowError { reason, .. }) => return Ok(Err(Outcome::Failed(reason))),
    };
    let (mut change, warnings) = match row.input.into_change_keeping(&row.country) {
        Ok(c) => c,
        Err(Error::Validation { message, .. }) => return Ok(Err(Outcome::Failed(message))),
        Err(e) => return Err(e),
    };
    if change.match_identity().is_none() {
        return Ok(Err(Outcome::Skipped(row::NO_IDENTITY.into())));
    }
    // Tags are looked up once for the batch: a bad name fails its row here, before anything is written.
    for t in &row.tags {
        if let Err(e) = tag_name(t) {
            return Ok(Err(Outcome::Failed(format!("tag \"{t}\": {e}"))));
        }
    }
    change.add_to_lists = job.options.list_id.iter().cloned().collect();
    let id = derived_id(
        job.created_at.timestamp_millis().max(0) as u64,
        format!("{}/{line}", job.id).as_bytes(),
    );
    Ok(Ok(Prepared {
        index,
        change,
        tags: row.tags,
        labels: row.labels,
        id,
        warnings: warnings.iter().map(FieldWarning::describe).collect(),
    }))
}

/// `held`: values read as this contact's, written on condition that it still holds them.
fn upsert_write(p: &Prepared, held: Vec<(IdentityKind, String)>, now: chrono::DateTime<Utc>) -> Result<ContactWrite> {
    let matched = p.matched();
    let held = held.into_iter().filter(|i| *i != matched).collect();
    let mut write = write_for(&p.change, WriteMode::Upsert { matched, held });
    write.defaults.extend(creation_defaults(now, Source::Import)?);
    Ok(write)
}

fn created_activity(cid: &str, now: chrono::DateTime<Utc>) -> Activity {
    Activity {
        id: activity_id(now),
        contact_id: cid.to_string(),
        kind: "contact_created".into(),
        origin: Origin::System,
        occurred_at: now,
        summary: None,
        data: super::super::as_map(json!({"source": Source::Import})),
    }
}

/// Referral codes no contact holds yet (checked in one read, redrawn on a hit).
async fn free_codes(ctx: &Importer, pid: &str, n: usize) -> Result<Vec<String>> {
    let mut codes: Vec<String> = (0..n).map(|_| new_referral_code()).collect();
    for _ in 0..5 {
        let wanted: Vec<_> = codes.iter().map(|c| (IdentityKind::ReferralCode, c.clone())).collect();
        let taken = ctx.store.identity_owners(pid, &wanted).await?;
        if taken.is_empty() && codes.iter().collect::<HashSet<_>>().len() == codes.len() {
            return Ok(codes);
        }
        let mut seen = HashSet::new();
        for c in codes.iter_mut() {
            if taken.contains_key(&(IdentityKind::ReferralCode, c.clone())) || !seen.insert(c.clone()) {
                *c = new_referral_code();
            }
        }
    }
    Err(Error::internal("could not draw free referral codes"))
}

type Written = Vec<(Prepared, Contact, Outcome)>;

async fn create_new(ctx: &Importer, pid: &str, rows: Vec<Prepared>) -> Result<(Written, Vec<Prepared>)> {
    if rows.is_empty() {
        return Ok((Vec::new(), Vec::new()));
    }
    let now = Utc::now();
    let codes = free_codes(ctx, pid, rows.len()).await?;
    let mut built = Vec::with_capacity(rows.len());
    let mut items = Vec::with_capacity(rows.len());
    for (p, code) in rows.into_iter().zip(codes) {
        let mut write = upsert_write(&p, Vec::new(), now)?;
        write.set.push(("last_activity_at".into(), to_attr(&now)?));
        write.set.push(("referral_code".into(), AttributeValue::S(code)));
        if !p.labels.is_empty() {
            write.set.push(("labels".into(), to_attr(&p.labels)?));
        }
        let (item, contact) = ctx.store.new_contact_item(pid, &p.id, write)?;
        items.push(crate::store::contacts::put_request(item)?);
        built.push((p, contact));
    }
    ctx.store.batch_write(items).await?;

    let wanted: Vec<(String, Vec<(IdentityKind, String)>)> = built
        .iter()
        .map(|(p, _)| (p.id.clone(), p.identities().collect()))
        .collect();
    let held = ctx.store.claim_rows(pid, &wanted).await?;
    let claimed = built.into_iter().zip(held).map(|((p, contact), ok)| (p, contact, ok));

    let (mut written, mut lost, mut writes, mut undo) = (Vec::new(), Vec::new(), Vec::new(), Vec::new());
    for (p, contact, ok) in claimed {
        if !ok {
            undo.push(ctx.store.contact_delete(pid, &p.id)?);
            lost.push(p);
            continue;
        }
        indexing_writes(ctx, pid, &contact, &mut writes)?;
        writes.push(ctx.store.activity_put(pid, &created_activity(&contact.id, now))?);
        written.push((p, contact, Outcome::Created));
    }
    undo.extend(writes);
    ctx.store.batch_write(undo).await?;
    Ok((written, lost))
}

/// The referral-code claim and search tokens of a contact written whole.
fn indexing_writes(ctx: &Importer, pid: &str, contact: &Contact, writes: &mut Vec<WriteRequest>) -> Result<()> {
    if let Some(code) = &contact.referral_code {
        writes.push(
            ctx.store
                .claim_put(pid, IdentityKind::ReferralCode, code, &contact.id)?,
        );
    }
    writes.extend(
        ctx.store
            .token_writes(pid, &contact.id, &[], &search::tokens(contact))?,
    );
    Ok(())
}

/// A row of an existing contact: the row, its contact, the row's values the contact holds already.
type Existing = (Prepared, String, Vec<(IdentityKind, String)>);

async fn update_existing(ctx: &Importer, pid: &str, rows: Vec<Existing>) -> Result<(Written, Vec<Prepared>)> {
    let now = Utc::now();
    let merged: Vec<Result<Merged>> = futures::stream::iter(rows)
        .map(|(p, owner, held)| async move { merge_row(ctx, pid, p, owner, held, now).await })
        .buffered(IN_FLIGHT)
        .collect()
        .await;
    let (mut written, mut lost, mut writes) = (Vec::new(), Vec::new(), Vec::new());
    for m in merged {
        match m? {
            Ok((p, contact, outcome, w)) => {
                writes.extend(w);
                written.push((p, contact, outcome));
            }
            Err(p) => lost.push(p),
        }
    }
    ctx.store.batch_write(writes).await?;
    Ok((written, lost))
}

/// A row merged into its contact, with the writes that store it; or
/// (`Err`) the row, for the slow path.
type Merged = std::result::Result<(Prepared, Contact, Outcome, Vec<WriteRequest>), Prepared>;

/// One existing contact's merge; `Err(row)` sends the row down the slow path.
async fn merge_row(
    ctx: &Importer,
    pid: &str,
    p: Prepared,
    owner: String,
    held: Vec<(IdentityKind, String)>,
    now: chrono::DateTime<Utc>,
) -> Result<Merged> {
    let store = &ctx.store;
    // Values the contact does not hold yet (a new phone) are claimed first;
    // those it holds are not claimed again: the merge checks it still does.
    let mut claimed = Vec::new();
    let others: Vec<_> = p
        .identities()
        .filter(|i| *i != p.matched() && !held.contains(i))
        .collect();
    for (kind, value) in others {
        match store.claim_identity(pid, kind, &value, &owner).await? {
            Claim::Claimed => claimed.push((kind, value)),
            Claim::Mine => {}
            Claim::OwnedBy { .. } => {
                for (k, v) in &claimed {
                    store.release_identity(pid, *k, v, &owner).await?;
                }
                return Ok(Err(p));
            }
        }
    }
    let (old, mut new) = match store.merge_contact(pid, &owner, upsert_write(&p, held, now)?).await? {
        Merge::Done { old: Some(old), new } => (old, new),
        Merge::Done { old: None, new } => {
            // The claim's contact was missing: finish what its writer could not.
            let new = contacts::ensure_referral_code(store, pid, new).await?;
            contacts::reindex(store, pid, None, Some(&new)).await?;
            let outcome = if owner == p.id {
                Outcome::Created
            } else {
                Outcome::Updated
            };
            return Ok(Ok((p, new, outcome, Vec::new())));
        }
        Merge::Stale | Merge::Missing => {
            for (k, v) in &claimed {
                store.release_identity(pid, *k, v, &owner).await?;
            }
            return Ok(Err(p));
        }
    };
    contacts::release_replaced(store, pid, &owner, Some(&old), &new).await?;
    if old.status == ContactStatus::Deleted {
        store.undelete_contact(pid, &owner).await?;
        new.status = ContactStatus::Active;
    }
    contacts::upgrade_source(store, pid, &mut new, Source::Import).await?;
    let mut writes = store.token_writes(pid, &owner, &search::tokens(&old), &search::tokens(&new))?;
    let outcome = if owner == p.id {
        // Our own contact from a try that crashed: its claims and tokens may be missing.
        indexing_writes(ctx, pid, &new, &mut writes)?;
        Outcome::Created
    } else {
        let (fields, values) = changed_fields(&old, &new);
        if !fields.is_empty() {
            let activity = Activity {
                id: activity_id(now),
                contact_id: owner.clone(),
                kind: "contact_updated".into(),
                origin: Origin::System,
                occurred_at: now,
                summary: Some(format!("Changed {}", fields.join(", "))),
                data: super::super::as_map(json!({"fields": fields, "changes": values, "source": Source::Import})),
            };
            writes.push(store.activity_put(pid, &activity)?);
        }
        Outcome::Updated
    };
    Ok(Ok((p, new, outcome, writes)))
}

/// Tags (added), labels (merged) and the list of a written row.
#[allow(clippy::too_many_arguments)]
async fn finish_row(
    ctx: &Importer,
    pid: &str,
    job: &Import,
    contact: &Contact,
    row_tags: &[tags::Resolved],
    row_labels: BTreeMap<String, String>,
    outcome: Outcome,
    add_to_list: bool,
) -> Result<Outcome> {
    let cid = contact.id.as_str();
    if !row_tags.is_empty() {
        tags::apply(&ctx.store, pid, cid, row_tags, &[]).await?;
    }
    if row_labels.iter().any(|(k, v)| contact.labels.get(k) != Some(v)) {
        let mut labels = contact.labels.clone();
        labels.extend(row_labels);
        let write = ContactWrite {
            set: vec![("labels".into(), to_attr(&labels)?)],
            defaults: Vec::new(),
            remove: Vec::new(),
            mode: WriteMode::Update,
        };
        if let Merge::Stale | Merge::Missing = ctx.store.merge_contact(pid, cid, write).await? {
            return Ok(Outcome::Failed("the contact was deleted while it was imported".into()));
        }
    }
    if add_to_list {
        if let Some(list) = &job.options.list_id {
            lists::add_if_absent(&ctx.store, pid, list, contact, Via::Import).await?;
        }
    }
    Ok(outcome)
}

/// The general upsert, for rows the batch could not take. An identity
/// another contact holds (a shared phone) is left out with a warning.
async fn upsert_one(
    ctx: &Importer,
    project: &Project,
    job: &Import,
    p: Prepared,
    batch_tags: &[tags::Resolved],
) -> Result<RowOutcome> {
    let opts = &job.options;
    let (kind, _) = p.matched();
    let upsert = UpsertOptions {
        fill_blanks: false,
        source: Some(Source::Import),
        new_id: Some(p.id.clone()),
        create_only: opts.mode == Mode::CreateOnly,
        update_only: opts.mode == Mode::UpdateOnly,
        via: Some(Via::Import),
        skip_taken: true,
    };
    let upserted = match contacts::upsert_change(&ctx.store, project, p.change, upsert).await {
        Ok(u) => u,
        Err(Error::Conflict { code: "exists", .. }) => {
            return Ok(Outcome::Skipped(format!("a contact with this {} exists (create_only)", kind.field())).into())
        }
        Err(Error::NotFound(_)) => {
            return Ok(Outcome::Skipped(format!("no contact has this {} (update_only)", kind.field())).into())
        }
        Err(Error::Conflict { field, message, .. }) => {
            let field = field.unwrap_or_else(|| kind.field().into());
            return Ok(Outcome::Failed(format!("{field}: {message}")).into());
        }
        Err(Error::Validation { message, .. }) => return Ok(Outcome::Failed(message).into()),
        Err(e) => return Err(e),
    };
    let mut warnings = p.warnings;
    warnings.extend(
        upserted
            .not_kept
            .iter()
            .map(|(kind, value)| FieldWarning::taken(*kind, value).describe()),
    );
    let outcome = if upserted.created {
        Outcome::Created
    } else {
        Outcome::Updated
    };
    // The upsert joined the list itself (add_to_lists).
    let outcome = finish_row(
        ctx,
        &project.id,
        job,
        &upserted.contact,
        &pick(batch_tags, &p.tags),
        p.labels,
        outcome,
        false,
    )
    .await?;
    Ok(RowOutcome { outcome, warnings })
}

/// The batch's tags that a row names.
fn pick(batch_tags: &[tags::Resolved], names: &[String]) -> Vec<tags::Resolved> {
    let keys: Vec<String> = names.iter().map(|n| name_key(n)).collect();
    batch_tags
        .iter()
        .filter(|t| keys.contains(&name_key(&t.name)))
        .cloned()
        .collect()
}
