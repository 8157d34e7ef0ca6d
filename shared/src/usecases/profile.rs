//! The contact profile: everything about one person in one call, in a fixed
//! number of DynamoDB requests whatever the contact's history.

use serde::Serialize;
use utoipa::ToSchema;

use crate::domain::activity::Activity;
use crate::domain::contact::Contact;
use crate::domain::list::Subscription;
use crate::domain::message::Message;
use crate::domain::submission::{Record, RecordKind};
use crate::store::Store;
use crate::usecases::referrals::ReferralContact;
use crate::usecases::{contacts, referrals};
use crate::Result;

/// How many of each linked list the profile shows (newest first); the full
/// lists have their own routes.
pub const RECENT: usize = 20;

#[derive(Debug, Serialize, ToSchema)]
pub struct ReferralSummary {
    pub referred_by: Option<ReferralContact>,
    pub referral_count: u64,
    /// The first contacts this one referred.
    pub referred: Vec<ReferralContact>,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct Profile {
    pub contact: Contact,
    pub waitlist_signups: Vec<Record>,
    pub form_submissions: Vec<Record>,
    /// Contact-form messages the person sent.
    pub messages: Vec<Record>,
    /// The latest emails and SMS to and from the person, newest first.
    pub conversation: Vec<Message>,
    /// Chat conversations, with their summaries.
    pub chats: Vec<Record>,
    pub referrals: ReferralSummary,
    /// Subscriptions, one per sending list.
    pub lists: Vec<Subscription>,
    pub recent_activity: Vec<Activity>,
}

/// At most 11 requests: the contact; then at once the four record lists, the
/// conversation, the subscriptions, the timeline, the referrer and the
/// referred links; then one batch read of the referred contacts.
pub async fn get(store: &Store, pid: &str, cid: &str) -> Result<Profile> {
    let contact = contacts::get(store, pid, cid).await?;
    let referrer = async {
        match &contact.referred_by {
            Some(r) => Ok(store
                .get_contacts(pid, std::slice::from_ref(r))
                .await?
                .first()
                .map(ReferralContact::from)),
            None => Ok(None),
        }
    };
    let (waitlist, forms, messages, chats, (conversation, _), lists, (activity, _), referred_by, referred) = futures::try_join!(
        store.contact_records(pid, cid, RecordKind::Waitlist, RECENT),
        store.contact_records(pid, cid, RecordKind::Form, RECENT),
        store.contact_records(pid, cid, RecordKind::Message, RECENT),
        store.contact_records(pid, cid, RecordKind::Chat, RECENT),
        store.contact_messages(pid, cid, RECENT, None),
        store.contact_subscriptions(pid, cid),
        store.list_activities(pid, cid, RECENT, None, &[]),
        referrer,
        referrals::referred(store, pid, cid, RECENT, None),
    )?;
    Ok(Profile {
        referrals: ReferralSummary {
            referred_by,
            referral_count: contact.referral_count,
            referred: referred.data,
        },
        contact,
        waitlist_signups: waitlist,
        form_submissions: forms,
        messages,
        conversation,
        chats,
        lists,
        recent_activity: activity,
    })
}
