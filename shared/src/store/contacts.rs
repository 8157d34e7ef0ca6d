//! Contact items, identity claims and the newest-first contact index.

use std::collections::{HashMap, HashSet};

use aws_sdk_dynamodb::operation::put_item::PutItemError;
use aws_sdk_dynamodb::types::{
    AttributeValue, DeleteRequest, Put, PutRequest, ReturnValue, ReturnValuesOnConditionCheckFailure,
    TransactWriteItem, WriteRequest,
};
use chrono::{DateTime, Utc};
use futures::StreamExt;

use super::index::{contact_sort_attrs, index_attrs, ref_sort, text_sort, time_sort, Order, NEWEST, UPDATED_SORT};
use super::{from_item, get_s, key, n, s, sdk_error, to_attr, Item, Store};
use crate::domain::contact::{Contact, ContactStatus, IdentityKind, Source};
use crate::Result;

pub(crate) const CONTACT_SK: &str = "CONTACT";
const IDENTITY_SK: &str = "ID";
/// DynamoDB's limit on the actions of one TransactWriteItems.
pub const CLAIMS_PER_TRANSACTION: usize = 100;
/// Rows claimed at once when each needs its own requests.
const ROWS_IN_FLIGHT: usize = 32;

pub(crate) fn contact_pk(pid: &str, cid: &str) -> String {
    format!("P#{pid}#C#{cid}")
}

fn identity_pk(pid: &str, kind: IdentityKind, value: &str) -> String {
    format!("P#{pid}#ID#{}#{value}", kind.field())
}

fn contacts_list(pid: &str) -> String {
    format!("P#{pid}#CONTACTS")
}

/// Soft-deleted contacts: a list of their own, so that the live lists never
/// read them and an export that asks for them can.
fn deleted_list(pid: &str) -> String {
    format!("P#{pid}#DELETED")
}

/// The outcome of claiming an identity value for a contact.
#[derive(Debug, PartialEq)]
pub enum Claim {
    /// The value was free and now belongs to the contact.
    Claimed,
    /// The contact already held it.
    Mine,
    OwnedBy {
        contact_id: String,
        claimed_at: Option<DateTime<Utc>>,
    },
}

// Unboxed: a read's result lives for one call, and boxing would add an
// allocation to every contact read.
#[allow(clippy::large_enum_variant)]
#[derive(Debug)]
pub enum StoredContact {
    Live(Contact),
    /// Erased: only a tombstone is left, so late writers cannot resurrect it.
    Erased,
}

/// One UpdateItem on a contact.
pub struct ContactWrite {
    pub set: Vec<(String, AttributeValue)>,
    /// Written only where the contact has no value yet (`if_not_exists`).
    pub defaults: Vec<(String, AttributeValue)>,
    pub remove: Vec<String>,
    pub mode: WriteMode,
}

pub enum WriteMode {
    /// Creates the contact or merges into it, and (re)lists it in the index.
    /// The write is refused (`Merge::Stale`) if the contact was erased or holds
    /// another value for the matched identity: the claim that led here is stale.
    /// `held`: values the caller read as claimed by this contact and does not
    /// claim again; the write is refused too unless the contact still holds
    /// each (a contact's values are always claimed by it, so holding one is
    /// owning its claim).
    Upsert {
        matched: (IdentityKind, String),
        held: Vec<(IdentityKind, String)>,
    },
    /// Changes a live contact; `Merge::Missing` if there is none.
    Update,
}

// Unboxed for the same reason as `StoredContact`.
#[allow(clippy::large_enum_variant)]
#[derive(Debug)]
pub enum Merge {
    Done { old: Option<Contact>, new: Contact },
    Stale,
    Missing,
}

type SdkResult<T, E> =
    std::result::Result<T, aws_sdk_dynamodb::error::SdkError<E, aws_sdk_dynamodb::config::http::HttpResponse>>;

pub(crate) fn is_conditional<E: ConditionalFailure>(
    e: &aws_sdk_dynamodb::error::SdkError<E, aws_sdk_dynamodb::config::http::HttpResponse>,
) -> bool {
    e.as_service_error().is_some_and(ConditionalFailure::is_conditional)
}

/// The outcome of a conditional write: `Some` if it was applied, `None` if
/// its condition did not hold; any other failure is an error.
pub(crate) fn conditional<T, E>(out: SdkResult<T, E>) -> Result<Option<T>>
where
    E: ConditionalFailure + std::error::Error + Send + Sync + 'static,
{
    match out {
        Ok(v) => Ok(Some(v)),
        Err(e) if is_conditional(&e) => Ok(None),
        Err(e) => Err(sdk_error(e)),
    }
}

/// The conditional-check failure of each operation we make conditionally.
pub(crate) trait ConditionalFailure {
    fn is_conditional(&self) -> bool;
}

macro_rules! conditional_failure {
    ($($t:ty),*) => {$(
        impl ConditionalFailure for $t {
            fn is_conditional(&self) -> bool {
                self.is_conditional_check_failed_exception()
            }
        }
    )*};
}
conditional_failure!(
    aws_sdk_dynamodb::operation::put_item::PutItemError,
    aws_sdk_dynamodb::operation::update_item::UpdateItemError,
    aws_sdk_dynamodb::operation::delete_item::DeleteItemError
);

pub(crate) fn contact_from(item: Item) -> Result<StoredContact> {
    if item.contains_key("erased_at") {
        return Ok(StoredContact::Erased);
    }
    Ok(StoredContact::Live(from_item::<Contact>(item)?.with_derived()))
}

impl Store {
    // ---- identity claims ----

    pub async fn claim_identity(&self, pid: &str, kind: IdentityKind, value: &str, cid: &str) -> Result<Claim> {
        let item = claim_item(pid, kind, value, cid)?;
        let out = self
            .client
            .put_item()
            .table_name(&self.table)
            .set_item(Some(item))
            .condition_expression("attribute_not_exists(PK)")
            .return_values_on_condition_check_failure(ReturnValuesOnConditionCheckFailure::AllOld)
            .send()
            .await;
        let err = match out {
            Ok(_) => return Ok(Claim::Claimed),
            Err(e) if is_conditional(&e) => e,
            Err(e) => return Err(sdk_error(e)),
        };
        let old = match err.into_service_error() {
            PutItemError::ConditionalCheckFailedException(e) => e.item,
            _ => None,
        };
        let old = match old {
            Some(old) => Some(old),
            // Older emulators do not return the item: read it.
            None => self.identity_item(pid, kind, value).await?,
        };
        let Some(old) = old else {
            // Released between our put and our read: try once more.
            return Box::pin(self.claim_identity(pid, kind, value, cid)).await;
        };
        let owner = get_s(&old, "contact_id").unwrap_or_default().to_string();
        if owner == cid {
            return Ok(Claim::Mine);
        }
        let claimed_at = old
            .get("claimed_at")
            .and_then(|v| serde_dynamo::from_attribute_value(v.clone()).ok());
        Ok(Claim::OwnedBy {
            contact_id: owner,
            claimed_at,
        })
    }

    /// Claims up to [`CLAIMS_PER_TRANSACTION`] free values at once, all or
    /// none, in one TransactWriteItems. `false`: the transaction was cancelled
    /// (a value was taken meanwhile, or a racing write) and nothing was
    /// claimed; the caller claims one by one to learn which values are held.
    pub async fn claim_all(&self, pid: &str, claims: &[(IdentityKind, String, String)]) -> Result<bool> {
        if claims.len() > CLAIMS_PER_TRANSACTION {
            return Err(crate::Error::internal("too many claims for one transaction"));
        }
        let mut puts = Vec::with_capacity(claims.len());
        for (kind, value, cid) in claims {
            let put = Put::builder()
                .table_name(&self.table)
                .set_item(Some(claim_item(pid, *kind, value, cid)?))
                .condition_expression("attribute_not_exists(PK)")
                .build()
                .map_err(crate::Error::internal)?;
            puts.push(TransactWriteItem::builder().put(put).build());
        }
        if puts.is_empty() {
            return Ok(true);
        }
        let out = self
            .client
            .transact_write_items()
            .set_transact_items(Some(puts))
            .send()
            .await;
        match out {
            Ok(_) => Ok(true),
            Err(e)
                if e.as_service_error()
                    .is_some_and(|e| e.is_transaction_canceled_exception()) =>
            {
                Ok(false)
            }
            Err(e) => Err(sdk_error(e)),
        }
    }

    /// Claims each row's values for its contact (`(contact id, values)`);
    /// `true` for each row that now holds all of them. Rows go in
    /// transactions of up to 100 claims, all or none; a cancelled one (a value
    /// taken since the caller looked) is redone row by row, and a row that
    /// finds a value held by someone else gives back the ones it took.
    pub async fn claim_rows(&self, pid: &str, rows: &[(String, Vec<(IdentityKind, String)>)]) -> Result<Vec<bool>> {
        // The groups' transactions go out together; a value named in two
        // groups cancels one of them, which then goes row by row.
        let groups: Vec<_> = claim_groups(rows, CLAIMS_PER_TRANSACTION, |(_, values)| values.len())
            .into_iter()
            .map(|group| self.claim_group(pid, group))
            .collect();
        let mut held = Vec::with_capacity(rows.len());
        let mut done = futures::stream::iter(groups).buffered(super::batch::BATCHES_IN_FLIGHT);
        while let Some(group) = done.next().await {
            held.extend(group?);
        }
        Ok(held)
    }

    async fn claim_group(&self, pid: &str, group: &[(String, Vec<(IdentityKind, String)>)]) -> Result<Vec<bool>> {
        let claims: Vec<(IdentityKind, String, String)> = group
            .iter()
            .flat_map(|(cid, values)| values.iter().map(|(k, v)| (*k, v.clone(), cid.clone())))
            .collect();
        // A transaction may not name one item twice: a value repeated in the group goes one by one.
        let distinct = claims.iter().map(|(k, v, _)| (k, v)).collect::<HashSet<_>>().len();
        let together = claims.len() <= CLAIMS_PER_TRANSACTION && distinct == claims.len();
        if together && self.claim_all(pid, &claims).await? {
            return Ok(vec![true; group.len()]);
        }
        tracing::info!(rows = group.len(), "claims not taken together; claiming row by row");
        let one_by_one: Vec<_> = group
            .iter()
            .map(|(cid, values)| self.claim_row(pid, cid, values))
            .collect();
        let mut held = Vec::with_capacity(group.len());
        for ok in futures::stream::iter(one_by_one)
            .buffered(ROWS_IN_FLIGHT)
            .collect::<Vec<_>>()
            .await
        {
            held.push(ok?);
        }
        Ok(held)
    }

    async fn claim_row(&self, pid: &str, cid: &str, values: &[(IdentityKind, String)]) -> Result<bool> {
        let mut taken: Vec<&(IdentityKind, String)> = Vec::new();
        for value in values {
            match self.claim_identity(pid, value.0, &value.1, cid).await? {
                Claim::Claimed | Claim::Mine => taken.push(value),
                Claim::OwnedBy { .. } => {
                    for (k, v) in taken {
                        self.release_identity(pid, *k, v, cid).await?;
                    }
                    return Ok(false);
                }
            }
        }
        Ok(true)
    }

    /// Owners of many identity values, in BatchGetItem calls of 100 keys;
    /// values nobody holds are absent from the map.
    pub async fn identity_owners(
        &self,
        pid: &str,
        values: &[(IdentityKind, String)],
    ) -> Result<HashMap<(IdentityKind, String), String>> {
        let keys: Vec<Item> = values
            .iter()
            .map(|(k, v)| key(identity_pk(pid, *k, v), IDENTITY_SK))
            .collect();
        let by_pk: HashMap<String, (IdentityKind, String)> = values
            .iter()
            .map(|(k, v)| (identity_pk(pid, *k, v), (*k, v.clone())))
            .collect();
        let mut owners = HashMap::new();
        for item in self.batch_get(keys).await? {
            let (Some(pk), Some(owner)) = (get_s(&item, "PK"), get_s(&item, "contact_id")) else {
                continue;
            };
            if let Some(id) = by_pk.get(pk) {
                owners.insert(id.clone(), owner.to_string());
            }
        }
        Ok(owners)
    }

    /// A claim written without a condition, for values that cannot collide
    /// (random referral codes checked free just before).
    pub fn claim_put(&self, pid: &str, kind: IdentityKind, value: &str, cid: &str) -> Result<WriteRequest> {
        put_request(claim_item(pid, kind, value, cid)?)
    }

    /// A new contact's item, exactly as `merge_contact` in upsert mode would
    /// write it for a contact that did not exist, with the contact it holds.
    pub fn new_contact_item(&self, pid: &str, cid: &str, write: ContactWrite) -> Result<(Item, Contact)> {
        let mut item = key(contact_pk(pid, cid), CONTACT_SK);
        item.extend(index_attrs(&contacts_list(pid), cid));
        item.insert("id".into(), s(cid));
        item.insert("ref_sort".into(), s(ref_sort(0, cid)));
        item.extend(write.defaults);
        item.extend(write.set);
        item.insert("updated_at".into(), to_attr(&Utc::now())?);
        let mut stored = item.clone();
        for k in ["PK", "SK", "GSI1PK", "GSI1SK", "ref_sort"] {
            stored.remove(k);
        }
        let contact = from_item::<Contact>(stored)?.with_derived();
        item.extend(contact_sort_attrs(&contact));
        Ok((item, contact))
    }

    async fn identity_item(&self, pid: &str, kind: IdentityKind, value: &str) -> Result<Option<Item>> {
        self.get_one(key(identity_pk(pid, kind, value), IDENTITY_SK)).await
    }

    /// The contact id that holds an identity value, if any.
    pub async fn identity_owner(&self, pid: &str, kind: IdentityKind, value: &str) -> Result<Option<String>> {
        let item = self.identity_item(pid, kind, value).await?;
        Ok(item.and_then(|i| get_s(&i, "contact_id").map(str::to_string)))
    }

    /// Moves a stale claim from `from` to `to`; false if someone else moved it first.
    pub async fn take_over_identity(
        &self,
        pid: &str,
        kind: IdentityKind,
        value: &str,
        from: &str,
        to: &str,
    ) -> Result<bool> {
        let item = claim_item(pid, kind, value, to)?;
        let out = self
            .client
            .put_item()
            .table_name(&self.table)
            .set_item(Some(item))
            .condition_expression("contact_id = :from")
            .expression_attribute_values(":from", s(from))
            .send()
            .await;
        conditional(out).map(|o| o.is_some())
    }

    /// Frees a value, but only if `cid` still holds it.
    pub async fn release_identity(&self, pid: &str, kind: IdentityKind, value: &str, cid: &str) -> Result<()> {
        let out = self
            .client
            .delete_item()
            .table_name(&self.table)
            .set_key(Some(key(identity_pk(pid, kind, value), IDENTITY_SK)))
            .condition_expression("contact_id = :cid")
            .expression_attribute_values(":cid", s(cid))
            .send()
            .await;
        conditional(out).map(|_| ())
    }

    // ---- contacts ----

    pub async fn get_contact(&self, pid: &str, cid: &str) -> Result<Option<StoredContact>> {
        self.get_one(key(contact_pk(pid, cid), CONTACT_SK))
            .await?
            .map(contact_from)
            .transpose()
    }

    /// One UpdateItem. The new state is the old one (returned by DynamoDB)
    /// with this write applied, exactly as the update expression applies it.
    pub async fn merge_contact(&self, pid: &str, cid: &str, write: ContactWrite) -> Result<Merge> {
        let at = Utc::now();
        let now = to_attr(&at)?;
        let mut names: HashMap<String, String> = HashMap::new();
        let mut values: HashMap<String, AttributeValue> = HashMap::new();
        let mut sets: Vec<String> = Vec::new();
        let mut set = write.set;
        let mut defaults = write.defaults;
        let mut remove = write.remove;
        set.push(("updated_at".into(), now.clone()));
        set.push((UPDATED_SORT.into(), s(time_sort(&at, cid))));
        let upsert_condition;
        let condition: &str = match &write.mode {
            WriteMode::Upsert {
                matched: (kind, value),
                held,
            } => {
                set.extend(index_attrs(&contacts_list(pid), cid));
                defaults.push(("id".into(), s(cid)));
                defaults.push(("ref_sort".into(), s(ref_sort(0, cid))));
                remove.push("deleted_at".into());
                // A contact this write creates gets its sort attributes in the same request.
                defaults.extend(new_contact_sorts(cid, &defaults, &set));
                names.insert("#guard".into(), kind.field().into());
                values.insert(":guard".into(), s(value.as_str()));
                let mut still_held = String::new();
                for (i, (kind, value)) in held.iter().enumerate() {
                    names.insert(format!("#h{i}"), kind.field().into());
                    values.insert(format!(":h{i}"), s(value.as_str()));
                    still_held.push_str(&format!(" AND #h{i} = :h{i}"));
                }
                upsert_condition = format!(
                    "attribute_not_exists(PK) OR (attribute_not_exists(erased_at) AND (attribute_not_exists(#guard) OR #guard = :guard){still_held})"
                );
                &upsert_condition
            }
            WriteMode::Update => "attribute_exists(PK) AND attribute_not_exists(erased_at)",
        };
        defaults.retain(|(d, _)| !set.iter().any(|(f, _)| f == d));
        for (i, (field, value)) in set.iter().enumerate() {
            names.insert(format!("#s{i}"), field.clone());
            values.insert(format!(":s{i}"), value.clone());
            sets.push(format!("#s{i} = :s{i}"));
        }
        for (i, (field, value)) in defaults.iter().enumerate() {
            names.insert(format!("#d{i}"), field.clone());
            values.insert(format!(":d{i}"), value.clone());
            sets.push(format!("#d{i} = if_not_exists(#d{i}, :d{i})"));
        }
        let mut expression = format!("SET {}", sets.join(", "));
        if !remove.is_empty() {
            let removes: Vec<String> = remove
                .iter()
                .enumerate()
                .map(|(i, field)| {
                    names.insert(format!("#r{i}"), field.clone());
                    format!("#r{i}")
                })
                .collect();
            expression.push_str(&format!(" REMOVE {}", removes.join(", ")));
        }
        let out = self
            .client
            .update_item()
            .table_name(&self.table)
            .set_key(Some(key(contact_pk(pid, cid), CONTACT_SK)))
            .update_expression(expression)
            .condition_expression(condition)
            .set_expression_attribute_names(Some(names))
            .set_expression_attribute_values(Some(values))
            .return_values(ReturnValue::AllOld)
            .send()
            .await;
        let old_item = match out {
            Ok(out) => out.attributes.unwrap_or_default(),
            Err(e) if is_conditional(&e) => {
                return Ok(match write.mode {
                    WriteMode::Upsert { .. } => Merge::Stale,
                    WriteMode::Update => Merge::Missing,
                })
            }
            Err(e) => return Err(sdk_error(e)),
        };

        let mut new_item = old_item.clone();
        for (field, value) in defaults {
            new_item.entry(field).or_insert(value);
        }
        new_item.extend(set);
        for field in &remove {
            new_item.remove(field);
        }
        // DynamoDB applies an update atomically; the emulator does not, and a
        // racing writer can see an item half-built by another's first write.
        // Such an old version is not a contact yet: treat it as absent.
        // dynoxide answers ALL_OLD for a new item with its key alone: no contact either.
        let old = if old_item.keys().all(|k| k == "PK" || k == "SK") {
            None
        } else {
            match from_item::<Contact>(old_item) {
                Ok(c) => Some(c.with_derived()),
                Err(e) => {
                    tracing::warn!(contact_id = %cid, error = %e, "previous version incomplete; treated as new");
                    None
                }
            }
        };
        let new = from_item::<Contact>(new_item.clone())?.with_derived();
        self.sync_sort_attrs(pid, &new, &new_item, now).await?;
        Ok(Merge::Done { old, new })
    }

    /// Sort attributes that depend on more than one write's fields (a full
    /// name from a first name written now and a last name written before)
    /// are brought in line after the write, unless a later write has come.
    async fn sync_sort_attrs(
        &self,
        pid: &str,
        contact: &Contact,
        item: &Item,
        written_at: AttributeValue,
    ) -> Result<()> {
        let stale: Vec<(String, AttributeValue)> = contact_sort_attrs(contact)
            .into_iter()
            .filter(|(k, v)| item.get(k) != Some(v))
            .collect();
        if stale.is_empty() {
            return Ok(());
        }
        let mut req = self
            .client
            .update_item()
            .table_name(&self.table)
            .set_key(Some(key(contact_pk(pid, &contact.id), CONTACT_SK)))
            .condition_expression("updated_at = :ours AND attribute_not_exists(erased_at)")
            .expression_attribute_values(":ours", written_at);
        let mut sets = Vec::new();
        for (i, (k, v)) in stale.into_iter().enumerate() {
            sets.push(format!("#k{i} = :v{i}"));
            req = req
                .expression_attribute_names(format!("#k{i}"), k)
                .expression_attribute_values(format!(":v{i}"), v);
        }
        conditional(req.update_expression(format!("SET {}", sets.join(", "))).send().await).map(|_| ())
    }

    /// Raises the stored source if `source` outranks it; never lowers it, even
    /// when writers race.
    pub async fn upgrade_source(&self, pid: &str, cid: &str, source: Source) -> Result<bool> {
        let out = self
            .client
            .update_item()
            .table_name(&self.table)
            .set_key(Some(key(contact_pk(pid, cid), CONTACT_SK)))
            .update_expression("SET #src = :src, source_rank = :rank")
            .condition_expression("attribute_exists(PK) AND (attribute_not_exists(source_rank) OR source_rank < :rank)")
            .expression_attribute_names("#src", "source")
            .expression_attribute_values(":src", s(source.as_str()))
            .expression_attribute_values(":rank", n(source.rank()))
            .send()
            .await;
        conditional(out).map(|o| o.is_some())
    }

    /// Status back to active for a soft-deleted contact that signs up again.
    pub async fn undelete_contact(&self, pid: &str, cid: &str) -> Result<()> {
        let out = self
            .client
            .update_item()
            .table_name(&self.table)
            .set_key(Some(key(contact_pk(pid, cid), CONTACT_SK)))
            .update_expression("SET #st = :active")
            .condition_expression("#st = :deleted")
            .expression_attribute_names("#st", "status")
            .expression_attribute_values(":active", to_attr(&ContactStatus::Active)?)
            .expression_attribute_values(":deleted", to_attr(&ContactStatus::Deleted)?)
            .send()
            .await;
        conditional(out).map(|_| ())
    }

    /// Marks the contact deleted and moves it from the live lists to the
    /// deleted one; its identities stay claimed. `None` if there is no such
    /// contact.
    pub async fn soft_delete_contact(&self, pid: &str, cid: &str) -> Result<Option<Contact>> {
        let now = to_attr(&Utc::now())?;
        let [(_, list_pk), (_, list_sk)] = index_attrs(&deleted_list(pid), cid);
        let out = self
            .client
            .update_item()
            .table_name(&self.table)
            .set_key(Some(key(contact_pk(pid, cid), CONTACT_SK)))
            .update_expression(
                "SET #st = :deleted, deleted_at = if_not_exists(deleted_at, :now), updated_at = :now, GSI1PK = :lpk, GSI1SK = :lsk",
            )
            .condition_expression("attribute_exists(PK) AND attribute_not_exists(erased_at)")
            .expression_attribute_names("#st", "status")
            .expression_attribute_values(":lpk", list_pk)
            .expression_attribute_values(":lsk", list_sk)
            .expression_attribute_values(":deleted", to_attr(&ContactStatus::Deleted)?)
            .expression_attribute_values(":now", now)
            .return_values(ReturnValue::AllNew)
            .send()
            .await;
        match out {
            Ok(out) => Ok(Some(
                from_item::<Contact>(out.attributes.unwrap_or_default())?.with_derived(),
            )),
            Err(e) if is_conditional(&e) => Ok(None),
            Err(e) => Err(sdk_error(e)),
        }
    }

    /// Replaces the contact with a tombstone holding no personal data and
    /// returns what it held, so the caller can free its identities.
    pub async fn erase_contact(&self, pid: &str, cid: &str) -> Result<Option<Contact>> {
        let mut item = key(contact_pk(pid, cid), CONTACT_SK);
        item.insert("id".into(), s(cid));
        item.insert("erased_at".into(), to_attr(&Utc::now())?);
        let out = self
            .client
            .put_item()
            .table_name(&self.table)
            .set_item(Some(item))
            .condition_expression("attribute_exists(PK) AND attribute_not_exists(erased_at)")
            .return_values(ReturnValue::AllOld)
            .send()
            .await;
        match conditional(out)? {
            Some(out) => out.attributes.map(from_item::<Contact>).transpose(),
            None => Ok(None),
        }
    }

    /// Deletes everything the contact's partition holds besides its own item
    /// (timeline, linked records): part of erasing it.
    pub async fn purge_contact_partition(&self, pid: &str, cid: &str) -> Result<()> {
        let mut start: Option<Item> = None;
        loop {
            let page = self
                .client
                .query()
                .table_name(&self.table)
                .key_condition_expression("PK = :pk")
                .expression_attribute_values(":pk", s(contact_pk(pid, cid)))
                .projection_expression("PK, SK")
                .set_exclusive_start_key(start.take())
                .send()
                .await
                .map_err(sdk_error)?;
            let deletes: Vec<WriteRequest> = page
                .items
                .unwrap_or_default()
                .into_iter()
                .filter(|item| get_s(item, "SK") != Some(CONTACT_SK))
                .filter_map(|item| DeleteRequest::builder().set_key(Some(item)).build().ok())
                .map(|d| WriteRequest::builder().delete_request(d).build())
                .collect();
            self.batch_write(deletes).await?;
            match page.last_evaluated_key {
                Some(k) => start = Some(k),
                None => return Ok(()),
            }
        }
    }

    /// Live contacts of the project (deleted ones have left the index).
    pub async fn count_contacts(&self, pid: &str) -> Result<u64> {
        self.count_list(&contacts_list(pid)).await
    }

    /// The ids of every live contact, in no particular order.
    pub async fn all_contact_ids(&self, pid: &str) -> Result<Vec<String>> {
        self.all_list_ids(&contacts_list(pid)).await
    }

    /// Live contacts in `order`, after the position `before` if given, each
    /// with its position; whether more follow; and the position of the last
    /// index entry read (the next page's `before`, even if that contact was
    /// deleted meanwhile).
    pub async fn list_contacts(
        &self,
        pid: &str,
        order: Order,
        limit: usize,
        before: Option<&str>,
    ) -> Result<(Vec<(Contact, String)>, bool, Option<String>)> {
        self.contacts_page(&contacts_list(pid), false, order, limit, before)
            .await
    }

    /// Soft-deleted contacts, newest first, as [`Store::list_contacts`] pages.
    pub async fn list_deleted_contacts(
        &self,
        pid: &str,
        limit: usize,
        before: Option<&str>,
    ) -> Result<(Vec<(Contact, String)>, bool, Option<String>)> {
        self.contacts_page(&deleted_list(pid), true, NEWEST, limit, before)
            .await
    }

    /// Soft-deleted contacts (an index count).
    pub async fn count_deleted_contacts(&self, pid: &str) -> Result<u64> {
        self.count_list(&deleted_list(pid)).await
    }

    async fn contacts_page(
        &self,
        list: &str,
        deleted: bool,
        order: Order,
        limit: usize,
        before: Option<&str>,
    ) -> Result<(Vec<(Contact, String)>, bool, Option<String>)> {
        let (entries, more) = self.sorted_page(list, order, limit, before).await?;
        let last = entries.last().map(|(_, p)| p.clone());
        let positions: HashMap<String, String> = entries
            .iter()
            .filter_map(|(k, p)| get_s(k, "PK").map(|pk| (pk.to_string(), p.clone())))
            .collect();
        let mut contacts = Vec::with_capacity(entries.len());
        for item in self.batch_get(entries.into_iter().map(|(k, _)| k).collect()).await? {
            let position = get_s(&item, "PK")
                .and_then(|pk| positions.get(pk))
                .cloned()
                .unwrap_or_default();
            // The index is eventually consistent: an entry can name a contact
            // that has moved to the other list since.
            if let StoredContact::Live(c) = contact_from(item)? {
                if (c.status == ContactStatus::Deleted) == deleted {
                    contacts.push((c, position));
                }
            }
        }
        Ok((contacts, more, last))
    }
}

/// The sort attributes of the contact an upsert would create, if the write
/// holds enough to read as one (the creation defaults).
fn new_contact_sorts(
    cid: &str,
    defaults: &[(String, AttributeValue)],
    set: &[(String, AttributeValue)],
) -> Vec<(String, AttributeValue)> {
    let mut item: Item = defaults.iter().chain(set).cloned().collect();
    item.insert("id".into(), s(cid));
    match from_item::<Contact>(item) {
        Ok(c) => contact_sort_attrs(&c.with_derived())
            .into_iter()
            .filter(|(k, _)| k != UPDATED_SORT)
            .collect(),
        Err(_) => Vec::new(),
    }
}

/// Full-jitter exponential backoff: up to 25 ms × 2^attempt, capped at 2 s.
pub(crate) async fn backoff(attempt: u32) {
    use rand::Rng;
    let cap = (25u64 << attempt.min(7)).min(2_000);
    let ms = rand::rng().random_range(0..=cap);
    tokio::time::sleep(std::time::Duration::from_millis(ms)).await;
}

impl Store {
    /// Brings `ref_sort` in line with a referral count just written; a
    /// writer holding an older count loses the condition, so racing writers
    /// end on the latest count.
    pub async fn sync_ref_sort(&self, pid: &str, cid: &str, count: u64) -> Result<()> {
        let out = self
            .client
            .update_item()
            .table_name(&self.table)
            .set_key(Some(key(contact_pk(pid, cid), CONTACT_SK)))
            .update_expression("SET ref_sort = :sort")
            .condition_expression("referral_count = :count")
            .expression_attribute_values(":sort", s(ref_sort(count, cid)))
            .expression_attribute_values(":count", n(count))
            .send()
            .await;
        conditional(out).map(|_| ())
    }

    /// Lead → customer, only if still a lead. True if this call changed it.
    pub async fn promote_to_customer(&self, pid: &str, cid: &str) -> Result<bool> {
        let at = Utc::now();
        let out = self
            .client
            .update_item()
            .table_name(&self.table)
            .set_key(Some(key(contact_pk(pid, cid), CONTACT_SK)))
            .update_expression("SET #type = :customer, updated_at = :now, type_sort = :ts, upd_sort = :us")
            .condition_expression("#type = :lead AND attribute_not_exists(erased_at)")
            .expression_attribute_names("#type", "type")
            .expression_attribute_values(":customer", s("customer"))
            .expression_attribute_values(":ts", s(text_sort(Some("customer"), cid)))
            .expression_attribute_values(":us", s(time_sort(&at, cid)))
            .expression_attribute_values(":lead", s("lead"))
            .expression_attribute_values(":now", to_attr(&at)?)
            .send()
            .await;
        conditional(out).map(|o| o.is_some())
    }
}

impl Store {
    /// The raw items of a contact's partition under a sort-key prefix.
    pub async fn partition_items(&self, pid: &str, cid: &str, prefix: &str) -> Result<Vec<Item>> {
        self.query_all(contact_pk(pid, cid), Some(prefix)).await
    }

    /// Moves partition items from one contact to another (copies, then
    /// deletes the originals). `owner_field`: also point `contact_id` at the
    /// new contact (not for referral links, whose `contact_id` is the referee).
    pub async fn move_items(&self, pid: &str, to: &str, items: Vec<Item>, owner_field: bool) -> Result<usize> {
        let mut puts = Vec::with_capacity(items.len());
        let mut deletes = Vec::with_capacity(items.len());
        for item in items {
            let old_key: Item = item
                .iter()
                .filter(|(k, _)| *k == "PK" || *k == "SK")
                .map(|(k, v)| (k.clone(), v.clone()))
                .collect();
            let mut moved = item;
            moved.insert("PK".into(), s(contact_pk(pid, to)));
            if owner_field && moved.contains_key("contact_id") {
                moved.insert("contact_id".into(), s(to));
            }
            puts.push(
                WriteRequest::builder()
                    .put_request(
                        PutRequest::builder()
                            .set_item(Some(moved))
                            .build()
                            .map_err(crate::Error::internal)?,
                    )
                    .build(),
            );
            deletes.push(
                WriteRequest::builder()
                    .delete_request(
                        DeleteRequest::builder()
                            .set_key(Some(old_key))
                            .build()
                            .map_err(crate::Error::internal)?,
                    )
                    .build(),
            );
        }
        let n = puts.len();
        self.batch_write(puts).await?;
        self.batch_write(deletes).await?;
        Ok(n)
    }

    /// Points a contact's `referred_by` elsewhere (merges only).
    pub async fn replace_referred_by(&self, pid: &str, cid: &str, referrer: Option<&str>) -> Result<()> {
        let req = self
            .client
            .update_item()
            .table_name(&self.table)
            .set_key(Some(key(contact_pk(pid, cid), CONTACT_SK)));
        let req = match referrer {
            Some(r) => req
                .update_expression("SET referred_by = :r")
                .expression_attribute_values(":r", s(r)),
            None => req.update_expression("REMOVE referred_by"),
        };
        let out = req
            .condition_expression("attribute_exists(PK) AND attribute_not_exists(erased_at)")
            .send()
            .await;
        conditional(out).map(|_| ())
    }
}

/// The item that says `cid` holds an identity value, and since when.
fn claim_item(pid: &str, kind: IdentityKind, value: &str, cid: &str) -> Result<Item> {
    let mut item = key(identity_pk(pid, kind, value), IDENTITY_SK);
    item.insert("contact_id".into(), s(cid));
    item.insert("claimed_at".into(), to_attr(&Utc::now())?);
    Ok(item)
}

/// Rows in order, cut so that no group holds more than `max` claims
/// (`claims` of a row); a row never spans two groups.
fn claim_groups<T>(rows: &[T], max: usize, claims: impl Fn(&T) -> usize) -> Vec<&[T]> {
    let mut groups = Vec::new();
    let (mut start, mut in_group) = (0, 0);
    for (i, row) in rows.iter().enumerate() {
        let n = claims(row);
        if i > start && in_group + n > max {
            groups.push(&rows[start..i]);
            (start, in_group) = (i, 0);
        }
        in_group += n;
    }
    if start < rows.len() {
        groups.push(&rows[start..]);
    }
    groups
}

pub fn put_request(item: Item) -> Result<WriteRequest> {
    let put = PutRequest::builder()
        .set_item(Some(item))
        .build()
        .map_err(crate::Error::internal)?;
    Ok(WriteRequest::builder().put_request(put).build())
}

pub(crate) fn delete_request(k: Item) -> Result<WriteRequest> {
    let del = DeleteRequest::builder()
        .set_key(Some(k))
        .build()
        .map_err(crate::Error::internal)?;
    Ok(WriteRequest::builder().delete_request(del).build())
}

impl Store {
    /// Deletes the item of a contact nobody can know yet (its claims failed).
    pub fn contact_delete(&self, pid: &str, cid: &str) -> Result<WriteRequest> {
        delete_request(key(contact_pk(pid, cid), CONTACT_SK))
    }
}

#[cfg(test)]
mod tests {
    use super::claim_groups;

    #[test]
    fn claim_groups_keep_rows_whole_and_under_the_limit() {
        let rows = [1usize, 2, 3, 1, 1, 3, 2];
        let groups = claim_groups(&rows, 4, |n| *n);
        assert_eq!(groups, vec![&[1, 2][..], &[3, 1], &[1, 3], &[2]]);
        assert_eq!(groups.concat(), rows);
        assert!(claim_groups(&[] as &[usize], 4, |n| *n).is_empty());
        // A row with more claims than a transaction takes stands alone (and its transaction is refused).
        assert_eq!(claim_groups(&[1usize, 5, 1], 4, |n| *n), vec![&[1][..], &[5], &[1]]);
        // 100 rows of one email each: one transaction; with a phone too: two.
        assert_eq!(claim_groups(&[1usize; 100], 100, |n| *n).len(), 1);
        assert_eq!(claim_groups(&[2usize; 100], 100, |n| *n).len(), 2);
    }
}
