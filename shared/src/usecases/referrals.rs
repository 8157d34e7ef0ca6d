//! Referrals: who brought whom. `referred_by` is set once, from the first
//! valid code of the same project; self-referrals and cycles are refused;
//! the referrer's `referral_count` is an atomic counter.

use serde::Serialize;
use serde_json::json;
use utoipa::ToSchema;

use crate::domain::contact::{Contact, IdentityKind};
use crate::store::contacts::StoredContact;
use crate::store::Store;
use crate::usecases::{activities, contacts, decode_cursor, encode_cursor, Page};
use crate::Result;

/// How far up a referral chain is followed (cycle checks, the chain shown).
pub const MAX_CHAIN: usize = 10;

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum ReferralOutcome {
    Applied,
    /// No contact of this project has that code.
    InvalidCode,
    SelfReferral,
    /// The referrer was (directly or not) referred by this contact.
    Cycle,
    /// The contact was already referred by someone; that stays.
    AlreadyReferred,
}

/// Applies a referral code to contact `cid`.
pub async fn apply(store: &Store, pid: &str, cid: &str, code: &str) -> Result<ReferralOutcome> {
    let code = code.trim().to_ascii_lowercase();
    let Some(referrer) = store.identity_owner(pid, IdentityKind::ReferralCode, &code).await? else {
        return Ok(ReferralOutcome::InvalidCode);
    };
    if referrer == cid {
        return Ok(ReferralOutcome::SelfReferral);
    }
    // Walk up from the referrer: meeting `cid` means this referral closes a loop.
    let mut next = Some(referrer.clone());
    for _ in 0..MAX_CHAIN {
        let Some(id) = next.take() else { break };
        match store.get_contact(pid, &id).await? {
            Some(StoredContact::Live(c)) => {
                if id == referrer && c.referral_code.as_deref() != Some(code.as_str()) {
                    return Ok(ReferralOutcome::InvalidCode);
                }
                if c.referred_by.as_deref() == Some(cid) {
                    return Ok(ReferralOutcome::Cycle);
                }
                next = c.referred_by;
            }
            _ if id == referrer => return Ok(ReferralOutcome::InvalidCode),
            _ => break,
        }
    }
    // Only the writer that sets `referred_by` links and counts, so racing
    // signups of one person count once.
    if !store.set_referred_by(pid, cid, &referrer).await? {
        return Ok(ReferralOutcome::AlreadyReferred);
    }
    store.put_referral_link(pid, &referrer, cid).await?;
    let counts = store.add_to_contact(pid, &referrer, &[("referral_count", 1.0)]).await?;
    let count = counts
        .as_ref()
        .and_then(|c| c.get("referral_count"))
        .and_then(|v| v.as_n().ok())
        .and_then(|v| v.parse().ok());
    if let Some(count) = count {
        store.sync_ref_sort(pid, &referrer, count).await?;
    }
    let data = json!({"referred_contact_id": cid});
    activities::record(
        store,
        pid,
        &referrer,
        "referral",
        Some("Referred a new contact".into()),
        super::as_map(data),
    )
    .await?;
    Ok(ReferralOutcome::Applied)
}

/// A contact as it appears in someone else's referral view.
#[derive(Debug, Serialize, ToSchema)]
pub struct ReferralContact {
    pub id: String,
    pub email: Option<String>,
    pub name: Option<String>,
    pub referral_code: Option<String>,
    pub referral_count: u64,
    pub created_at: chrono::DateTime<chrono::Utc>,
}

impl From<&Contact> for ReferralContact {
    fn from(c: &Contact) -> Self {
        ReferralContact {
            id: c.id.clone(),
            email: c.email.clone(),
            name: c.full_name.clone(),
            referral_code: c.referral_code.clone(),
            referral_count: c.referral_count,
            created_at: c.created_at,
        }
    }
}

#[derive(Debug, Serialize, ToSchema)]
pub struct Referrals {
    /// Who referred this contact, then who referred them, up to the root
    /// (at most 10 steps).
    pub chain: Vec<ReferralContact>,
    pub referral_count: u64,
    /// Whom this contact referred, in the order they joined.
    #[schema(value_type = Object)]
    pub referred: Page<ReferralContact>,
}

/// The chain above a contact, nearest first.
pub async fn chain(store: &Store, pid: &str, contact: &Contact) -> Result<Vec<ReferralContact>> {
    let mut chain = Vec::new();
    let mut next = contact.referred_by.clone();
    while let Some(id) = next.take() {
        if chain.len() >= MAX_CHAIN {
            break;
        }
        match store.get_contact(pid, &id).await? {
            Some(StoredContact::Live(c)) => {
                chain.push(ReferralContact::from(&c));
                next = c.referred_by.clone();
            }
            _ => break,
        }
    }
    Ok(chain)
}

pub async fn referred(
    store: &Store,
    pid: &str,
    cid: &str,
    limit: usize,
    cursor: Option<&str>,
) -> Result<Page<ReferralContact>> {
    let after = cursor.map(decode_cursor).transpose()?;
    let (links, more) = store.referral_links(pid, cid, limit, after.as_deref()).await?;
    let ids: Vec<String> = links.iter().map(|l| l.contact_id.clone()).collect();
    let contacts = store.get_contacts(pid, &ids).await?;
    let next_cursor = if more {
        ids.last().map(|id| encode_cursor(id))
    } else {
        None
    };
    Ok(Page {
        data: contacts.iter().map(ReferralContact::from).collect(),
        next_cursor,
    })
}

pub async fn of(store: &Store, pid: &str, cid: &str, limit: usize, cursor: Option<&str>) -> Result<Referrals> {
    let contact = contacts::get(store, pid, cid).await?;
    Ok(Referrals {
        chain: chain(store, pid, &contact).await?,
        referral_count: contact.referral_count,
        referred: referred(store, pid, cid, limit, cursor).await?,
    })
}
