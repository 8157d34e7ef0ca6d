//! Events about a contact from other systems: a `purchase` turns a lead into
//! a customer, adds revenue and applies tags; any other type becomes an
//! activity on the timeline.

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use serde_json::{json, Map, Value};
use utoipa::ToSchema;

use crate::domain::activity::{Activity, ActivityInput, Origin};
use crate::domain::contact::{Contact, ContactInput, IdentityKind};
use crate::domain::normalize;
use crate::domain::project::Project;
use crate::store::activities::activity_id;
use crate::store::Store;
use crate::usecases::contacts::{self, UpsertOptions};
use crate::{Error, Result};

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct EventInput {
    /// `purchase`, or any activity type (page_visit, meeting_booked, … or custom).
    #[serde(rename = "type")]
    pub kind: String,
    /// Address the contact by one of these. Email or phone create it if needed.
    pub contact_id: Option<String>,
    pub email: Option<String>,
    pub phone: Option<String>,
    /// Purchase: amount (≥ 0) in `currency` (ISO 4217, default USD).
    pub amount: Option<f64>,
    pub currency: Option<String>,
    pub offer: Option<String>,
    pub product: Option<String>,
    /// Purchase: tags to apply to the contact.
    pub tags: Option<Vec<String>>,
    pub occurred_at: Option<DateTime<Utc>>,
    #[schema(value_type = Option<Object>)]
    pub data: Option<Map<String, Value>>,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct EventResult {
    pub contact: Contact,
    pub activity: Activity,
    /// True when this purchase turned the lead into a customer.
    pub became_customer: bool,
}

async fn resolve(store: &Store, project: &Project, e: &EventInput) -> Result<Contact> {
    let given = [e.contact_id.is_some(), e.email.is_some(), e.phone.is_some()]
        .iter()
        .filter(|g| **g)
        .count();
    if given != 1 {
        return Err(Error::invalid(
            "contact_id",
            "address the contact by exactly one of contact_id, email or phone",
        ));
    }
    if let Some(cid) = &e.contact_id {
        return contacts::get(store, &project.id, cid).await;
    }
    let kind = if e.email.is_some() {
        IdentityKind::Email
    } else {
        IdentityKind::Phone
    };
    let raw = e.email.as_deref().or(e.phone.as_deref()).unwrap_or_default();
    if let Some(c) = contacts::find(store, project, kind, raw, false).await? {
        return Ok(c);
    }
    let input = ContactInput {
        email: e.email.clone().map(Some),
        phone: e.phone.clone().map(Some),
        ..Default::default()
    };
    let change = input.into_change(&project.default_country)?;
    Ok(contacts::upsert_change(
        store,
        project,
        change,
        UpsertOptions {
            fill_blanks: true,
            source: None,
            ..UpsertOptions::default()
        },
    )
    .await?
    .contact)
}

pub async fn record(store: &Store, project: &Project, e: EventInput) -> Result<EventResult> {
    let now = Utc::now();
    let purchase = e.kind == "purchase";
    // Everything is validated before anything is written.
    let mut tags = Vec::new();
    let currency;
    if purchase {
        let amount = e
            .amount
            .ok_or_else(|| Error::invalid("amount", "a purchase has an amount"))?;
        if !amount.is_finite() || amount < 0.0 {
            return Err(Error::invalid("amount", "amount is a number ≥ 0"));
        }
        let c = e.currency.as_deref().unwrap_or("USD").trim().to_ascii_uppercase();
        if c.len() != 3 || !c.chars().all(|ch| ch.is_ascii_uppercase()) {
            return Err(Error::invalid("currency", "currency is an ISO 4217 code such as USD"));
        }
        currency = Some(c);
        tags = normalize::tags(e.tags.as_deref().unwrap_or_default()).map_err(|m| Error::invalid("tags", m))?;
    } else {
        currency = None;
        for (field, present) in [
            ("amount", e.amount.is_some()),
            ("currency", e.currency.is_some()),
            ("tags", e.tags.is_some()),
        ] {
            if present {
                return Err(Error::invalid(field, format!("{field} belongs to purchase events")));
            }
        }
    }
    // `purchase` is reserved to this route; the rest is checked as any activity.
    let activity_input = ActivityInput {
        kind: if purchase {
            "custom_purchase".into()
        } else {
            e.kind.clone()
        },
        occurred_at: e.occurred_at,
        summary: None,
        data: e.data.clone(),
    }
    .validated(now)?;
    for (field, v) in [("offer", &e.offer), ("product", &e.product)] {
        if v.as_ref().is_some_and(|v| v.chars().count() > 200) {
            return Err(Error::invalid(field, format!("{field} is at most 200 characters")));
        }
    }

    let contact = resolve(store, project, &e).await?;
    let pid = project.id.as_str();
    let mut data = activity_input.data.unwrap_or_default();
    let mut became_customer = false;
    let summary = if purchase {
        let amount = e.amount.unwrap_or_default();
        store
            .add_to_contact(pid, &contact.id, &[("total_revenue", amount)])
            .await?;
        became_customer = store.promote_to_customer(pid, &contact.id).await?;
        let at = e.occurred_at.unwrap_or(now);
        if let Some((mid, bid)) = crate::usecases::links::attribute(store, project, &contact, amount, at).await? {
            data.insert("attributed_message_id".into(), json!(mid));
            data.insert("attributed_broadcast_id".into(), json!(bid));
        }
        if !tags.is_empty() {
            crate::usecases::tags::assign(store, pid, &contact.id, &tags, &[]).await?;
        }
        let extra = json!({"amount": amount, "currency": currency, "offer": e.offer, "product": e.product, "tags": tags, "became_customer": became_customer});
        if let Value::Object(m) = extra {
            data.extend(m);
        }
        Some(format!(
            "Purchased {} {amount:.2}",
            currency.as_deref().unwrap_or("USD")
        ))
    } else {
        None
    };
    let occurred_at = e.occurred_at.unwrap_or(now);
    let activity = Activity {
        id: activity_id(occurred_at),
        contact_id: contact.id.clone(),
        kind: e.kind.clone(),
        origin: Origin::Api,
        occurred_at,
        summary,
        data,
    };
    store.put_activity(pid, &activity).await?;
    if became_customer {
        let changes = json!({"fields": ["type"], "changes": {"type": {"from": "lead", "to": "customer"}}, "reason": "first purchase"});
        let changes = match changes {
            Value::Object(m) => m,
            _ => Map::new(),
        };
        crate::usecases::activities::record(
            store,
            pid,
            &contact.id,
            "contact_updated",
            Some("Became a customer".into()),
            changes,
        )
        .await?;
    }
    let contact = contacts::get(store, pid, &contact.id).await?;
    Ok(EventResult {
        contact,
        activity,
        became_customer,
    })
}
