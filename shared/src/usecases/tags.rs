//! Tags: create (one or many), rename, recolor, delete (removes it from every
//! contact), exact contact counts, assignment on one contact or many.

use chrono::Utc;
use serde::Serialize;
use utoipa::ToSchema;

use crate::domain::contact::Contact;
use crate::domain::ids::new_id;
use crate::domain::tag::{name_key, tag_name, Tag, TagInput};
use crate::store::Store;
use crate::usecases::contacts;
use crate::{Error, Result};

/// Most contacts one synchronous rename or delete rewrites; larger tags wait
/// for bulk jobs.
pub const MAX_SYNC_MEMBERS: usize = 5_000;
/// Most contacts one assignment call touches.
pub const MAX_BULK_IDS: usize = 1_000;

#[derive(Debug, Serialize, ToSchema)]
pub struct CreatedTag {
    #[serde(flatten)]
    pub tag: Tag,
    /// False when a tag of that name (in any case) already existed.
    pub created: bool,
}

async fn create_one(store: &Store, pid: &str, input: TagInput) -> Result<CreatedTag> {
    let now = Utc::now();
    let tag = Tag {
        id: new_id(),
        name: input.name.unwrap_or_default(),
        color: input.color,
        description: input.description,
        contact_count: 0,
        created_at: now,
        updated_at: now,
    };
    match store.create_tag(pid, &tag).await? {
        Ok(()) => Ok(CreatedTag { tag, created: true }),
        Err(existing) => {
            let tag = store
                .get_tag(pid, &existing)
                .await?
                .ok_or_else(|| Error::internal("tag name claim without its tag"))?;
            Ok(CreatedTag { tag, created: false })
        }
    }
}

pub async fn create(store: &Store, pid: &str, input: TagInput) -> Result<Tag> {
    let created = create_one(store, pid, input.validated(true)?).await?;
    if !created.created {
        return Err(Error::Conflict {
            code: "tag_exists",
            field: Some("name".into()),
            message: format!("a tag named {:?} exists", created.tag.name),
        });
    }
    Ok(created.tag)
}

/// Creates many at once; names that exist are returned as they are.
pub async fn create_many(store: &Store, pid: &str, inputs: Vec<TagInput>) -> Result<Vec<CreatedTag>> {
    if inputs.is_empty() || inputs.len() > 500 {
        return Err(Error::invalid("tags", "send 1 to 500 tags"));
    }
    let mut valid = Vec::with_capacity(inputs.len());
    for (i, input) in inputs.into_iter().enumerate() {
        valid.push(input.validated(true).map_err(|e| match e {
            Error::Validation { field, message } => Error::Validation {
                field: Some(format!("tags[{i}].{}", field.unwrap_or_default())),
                message,
            },
            other => other,
        })?);
    }
    let mut out: Vec<CreatedTag> = Vec::new();
    for input in valid {
        let key = name_key(input.name.as_deref().unwrap_or_default());
        if out.iter().any(|t| name_key(&t.tag.name) == key) {
            continue;
        }
        out.push(create_one(store, pid, input).await?);
    }
    Ok(out)
}

pub async fn list(store: &Store, pid: &str) -> Result<Vec<Tag>> {
    let mut tags = store.list_tags(pid).await?;
    tags.sort_by_key(|t| name_key(&t.name));
    Ok(tags)
}

pub async fn get(store: &Store, pid: &str, id: &str) -> Result<Tag> {
    store.get_tag(pid, id).await?.ok_or(Error::NotFound("tag"))
}

/// Every contact carrying the tag, for a rename or a delete.
async fn all_members(store: &Store, pid: &str, tag_id: &str) -> Result<Vec<String>> {
    let (ids, more) = store.tag_members(pid, tag_id, MAX_SYNC_MEMBERS, None).await?;
    if more {
        return Err(Error::Conflict {
            code: "too_many_contacts",
            field: None,
            message: format!("this tag is on more than {MAX_SYNC_MEMBERS} contacts; use a bulk job"),
        });
    }
    Ok(ids)
}

pub async fn update(store: &Store, pid: &str, id: &str, input: TagInput) -> Result<Tag> {
    let input = input.validated(false)?;
    let tag = get(store, pid, id).await?;
    let renamed = input.name.as_ref().filter(|n| **n != tag.name).cloned();
    let members = match renamed {
        Some(_) => all_members(store, pid, id).await?,
        None => Vec::new(),
    };
    let updated = store
        .update_tag(
            pid,
            &tag,
            input.name.as_deref(),
            input.color.as_deref(),
            input.description.as_deref(),
        )
        .await?
        .map_err(|_| Error::Conflict {
            code: "tag_exists",
            field: Some("name".into()),
            message: "another tag has that name".into(),
        })?;
    if let Some(new_name) = renamed {
        let old_key = name_key(&tag.name);
        for cid in members {
            store
                .edit_contact_tags(pid, &cid, false, |tags| {
                    for t in tags.iter_mut() {
                        if name_key(t) == old_key {
                            *t = new_name.clone();
                        }
                    }
                })
                .await?;
        }
    }
    Ok(updated)
}

/// Deletes the tag and takes it off every contact.
pub async fn delete(store: &Store, pid: &str, id: &str) -> Result<()> {
    let tag = get(store, pid, id).await?;
    let key = name_key(&tag.name);
    for cid in all_members(store, pid, id).await? {
        store
            .edit_contact_tags(pid, &cid, false, |tags| tags.retain(|t| name_key(t) != key))
            .await?;
        store.remove_membership(pid, id, &cid).await?;
    }
    store.delete_tag(pid, &tag).await
}

/// The project's spelling of each name, creating tags that do not exist yet.
pub async fn resolve(store: &Store, pid: &str, names: &[String]) -> Result<Vec<String>> {
    let mut out: Vec<String> = Vec::with_capacity(names.len());
    for raw in names {
        let name = tag_name(raw).map_err(|_| Error::invalid("tags", "tags cannot be empty"))?;
        if out.iter().any(|t| name_key(t) == name_key(&name)) {
            continue;
        }
        let canonical = match store.tag_id_by_name(pid, &name).await? {
            Some(id) => store.get_tag(pid, &id).await?.map(|t| t.name).unwrap_or(name),
            None => {
                create_one(
                    store,
                    pid,
                    TagInput {
                        name: Some(name),
                        ..Default::default()
                    },
                )
                .await?
                .tag
                .name
            }
        };
        out.push(canonical);
    }
    Ok(out)
}

/// Brings membership items and counts in line with a contact's tags.
pub async fn sync(store: &Store, pid: &str, cid: &str, before: &[String], after: &[String]) -> Result<()> {
    let keys = |v: &[String]| v.iter().map(|t| name_key(t)).collect::<Vec<_>>();
    let (before, after) = (keys(before), keys(after));
    for added in after.iter().filter(|t| !before.contains(t)) {
        if let Some(tag_id) = store.tag_id_by_name(pid, added).await? {
            if store.add_membership(pid, &tag_id, cid).await? {
                store.add_tag_count(pid, &tag_id, cid, 1).await?;
            }
        }
    }
    for removed in before.iter().filter(|t| !after.contains(t)) {
        if let Some(tag_id) = store.tag_id_by_name(pid, removed).await? {
            if store.remove_membership(pid, &tag_id, cid).await? {
                store.add_tag_count(pid, &tag_id, cid, -1).await?;
            }
        }
    }
    Ok(())
}

/// Adds and removes tags on one contact.
pub async fn assign(store: &Store, pid: &str, cid: &str, add: &[String], remove: &[String]) -> Result<Contact> {
    contacts::get(store, pid, cid).await?;
    let add = resolve(store, pid, add).await?;
    let remove: Vec<String> = remove.iter().map(|t| name_key(t)).collect();
    let (before, after) = store
        .edit_contact_tags(pid, cid, true, |tags| {
            tags.retain(|t| !remove.contains(&name_key(t)));
            for t in &add {
                if !tags.iter().any(|x| name_key(x) == name_key(t)) {
                    tags.push(t.clone());
                }
            }
        })
        .await?
        .ok_or(Error::NotFound("contact"))?;
    sync(store, pid, cid, &before.tags, &after.tags).await?;
    Ok(after)
}

/// A tag looked up once for many contacts.
#[derive(Debug, Clone)]
pub struct Resolved {
    pub id: String,
    pub name: String,
}

/// The tags of these names (created when `create`; otherwise unknown names are left out).
pub async fn resolve_ids(store: &Store, pid: &str, names: &[String], create: bool) -> Result<Vec<Resolved>> {
    let names = if create {
        resolve(store, pid, names).await?
    } else {
        names.to_vec()
    };
    let mut out = Vec::with_capacity(names.len());
    for name in names {
        if let Some(id) = store.tag_id_by_name(pid, &name).await? {
            out.push(Resolved { id, name });
        }
    }
    Ok(out)
}

/// Adds and removes tags looked up beforehand on one live contact (a bulk
/// action: no per-contact look-ups). Membership items are made to agree
/// with every tag named, not only those that changed, so doing it again
/// after a crash between the two writes heals the membership and its count.
pub async fn apply(store: &Store, pid: &str, cid: &str, add: &[Resolved], remove: &[Resolved]) -> Result<()> {
    let removed: Vec<String> = remove.iter().map(|t| name_key(&t.name)).collect();
    store
        .edit_contact_tags(pid, cid, true, |tags| {
            tags.retain(|t| !removed.contains(&name_key(t)));
            for t in add {
                if !tags.iter().any(|x| name_key(x) == name_key(&t.name)) {
                    tags.push(t.name.clone());
                }
            }
        })
        .await?
        .ok_or(Error::NotFound("contact"))?;
    for t in add {
        if store.add_membership(pid, &t.id, cid).await? {
            store.add_tag_count(pid, &t.id, cid, 1).await?;
        }
    }
    for t in remove {
        if store.remove_membership(pid, &t.id, cid).await? {
            store.add_tag_count(pid, &t.id, cid, -1).await?;
        }
    }
    Ok(())
}

#[derive(Debug, Serialize, ToSchema)]
pub struct BulkResult {
    /// Contacts changed.
    pub updated: usize,
    /// Ids that are not live contacts of this project.
    pub not_found: Vec<String>,
}

/// The same assignment on many contacts (at most 1,000 ids a call).
pub async fn assign_many(
    store: &Store,
    pid: &str,
    ids: &[String],
    add: &[String],
    remove: &[String],
) -> Result<BulkResult> {
    if ids.is_empty() || ids.len() > MAX_BULK_IDS {
        return Err(Error::invalid(
            "contact_ids",
            format!("send 1 to {MAX_BULK_IDS} contact ids"),
        ));
    }
    let mut result = BulkResult {
        updated: 0,
        not_found: Vec::new(),
    };
    for cid in ids {
        match assign(store, pid, cid, add, remove).await {
            Ok(_) => result.updated += 1,
            Err(Error::NotFound(_)) => result.not_found.push(cid.clone()),
            Err(e) => return Err(e),
        }
    }
    Ok(result)
}
