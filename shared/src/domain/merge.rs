//! Merging two contacts: what the surviving contact looks like afterwards.
//! The survivor's values win; blanks are filled from the other; collections
//! are united; counters add up; times take the earliest creation and the
//! latest activity; the source is the higher-intent one; a customer stays a
//! customer.

use serde_json::{Map, Value};

use super::contact::{Contact, ContactType, IdentityKind};

#[derive(Debug, Default, PartialEq)]
pub struct MergePlan {
    /// Attributes to write on the survivor.
    pub set: Vec<(&'static str, Value)>,
    /// Identity values that move from the other contact to the survivor.
    pub moved: Vec<(IdentityKind, String)>,
    /// Identity values of the other contact that the survivor's own replace.
    pub dropped: Vec<(IdentityKind, String)>,
}

fn json<T: serde::Serialize>(v: T) -> Value {
    serde_json::to_value(v).unwrap_or(Value::Null)
}

fn merged_map(survivor: &Map<String, Value>, other: &Map<String, Value>) -> Map<String, Value> {
    let mut out = other.clone();
    out.extend(survivor.clone());
    out
}

pub fn plan(survivor: &Contact, other: &Contact) -> MergePlan {
    let mut p = MergePlan::default();
    for kind in IdentityKind::SETTABLE {
        match (survivor.identity(kind), other.identity(kind)) {
            (None, Some(v)) => {
                p.moved.push((kind, v.to_string()));
                p.set.push((kind.field(), json(v)));
            }
            (Some(_), Some(v)) => p.dropped.push((kind, v.to_string())),
            _ => {}
        }
    }
    let fill = |p: &mut MergePlan, field: &'static str, s: Value, o: Value| {
        if s.is_null() && !o.is_null() {
            p.set.push((field, o));
        }
    };
    fill(
        &mut p,
        "first_name",
        json(&survivor.first_name),
        json(&other.first_name),
    );
    fill(&mut p, "last_name", json(&survivor.last_name), json(&other.last_name));
    fill(&mut p, "company", json(&survivor.company), json(&other.company));
    fill(&mut p, "address", json(&survivor.address), json(&other.address));
    fill(&mut p, "intent", json(survivor.intent), json(other.intent));

    let mut tags = survivor.tags.clone();
    for t in &other.tags {
        if !tags.iter().any(|x| x.to_lowercase() == t.to_lowercase()) {
            tags.push(t.clone());
        }
    }
    if tags != survivor.tags {
        p.set.push(("tags", json(&tags)));
    }
    let mut labels = other.labels.clone();
    labels.extend(survivor.labels.clone());
    if labels != survivor.labels {
        p.set.push(("labels", json(&labels)));
    }
    let metadata = merged_map(&survivor.metadata, &other.metadata);
    if metadata != survivor.metadata {
        p.set.push(("metadata", Value::Object(metadata)));
    }
    if other.contact_type == ContactType::Customer && survivor.contact_type != ContactType::Customer {
        p.set.push(("type", json(ContactType::Customer)));
    }
    let rank = |c: &Contact| c.source.map_or(0, |s| s.rank());
    if rank(other) > rank(survivor) {
        if let Some(source) = other.source {
            p.set.push(("source", json(source)));
            p.set.push(("source_rank", json(source.rank())));
        }
    }
    for (field, s, o) in [
        ("total_sends", survivor.total_sends, other.total_sends),
        ("total_opens", survivor.total_opens, other.total_opens),
        ("total_clicks", survivor.total_clicks, other.total_clicks),
        ("messages_in", survivor.messages_in, other.messages_in),
        ("messages_out", survivor.messages_out, other.messages_out),
        ("referral_count", survivor.referral_count, other.referral_count),
    ] {
        if o > 0 {
            p.set.push((field, json(s + o)));
        }
    }
    if other.total_revenue > 0.0 {
        p.set
            .push(("total_revenue", json(survivor.total_revenue + other.total_revenue)));
    }
    for (field, s, o) in [
        ("last_sent_at", survivor.last_sent_at, other.last_sent_at),
        ("last_opened_at", survivor.last_opened_at, other.last_opened_at),
        ("last_clicked_at", survivor.last_clicked_at, other.last_clicked_at),
        ("last_activity_at", survivor.last_activity_at, other.last_activity_at),
    ] {
        if o > s {
            p.set.push((field, json(o)));
        }
    }
    if other.created_at < survivor.created_at {
        p.set.push(("created_at", json(other.created_at)));
    }
    p
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json as j;

    fn contact(v: Value) -> Contact {
        let mut base = j!({
            "id": "01J0000000000000000000000A", "email": null, "phone": null, "eid": null,
            "first_name": null, "last_name": null, "company": null, "address": null, "source": "api",
            "intent": null, "referral_code": null, "referred_by": null, "last_sent_at": null,
            "last_clicked_at": null, "created_at": "2026-02-01T00:00:00Z", "updated_at": "2026-02-01T00:00:00Z",
            "deleted_at": null, "last_activity_at": null
        });
        base.as_object_mut().unwrap().extend(v.as_object().unwrap().clone());
        serde_json::from_value(base).unwrap()
    }

    #[test]
    fn the_survivor_wins_blanks_fill_and_counters_add() {
        let s = contact(
            j!({"email": "s@x.com", "company": "S Co", "tags": ["VIP"], "total_sends": 2, "labels": {"plan": "pro"}}),
        );
        let o = contact(
            j!({"email": "o@x.com", "phone": "+14155552671", "company": "O Co", "first_name": "Olly",
            "tags": ["vip", "Beta"], "total_sends": 3, "type": "customer", "source": "waitlist",
            "labels": {"plan": "free", "seat": "2"}, "created_at": "2026-01-01T00:00:00Z", "total_revenue": 5.0}),
        );
        let p = plan(&s, &o);
        assert_eq!(p.moved, vec![(IdentityKind::Phone, "+14155552671".to_string())]);
        assert_eq!(p.dropped, vec![(IdentityKind::Email, "o@x.com".to_string())]);
        let set: std::collections::HashMap<_, _> = p.set.into_iter().collect();
        assert_eq!(set["phone"], j!("+14155552671"));
        assert_eq!(set["first_name"], j!("Olly"));
        assert!(!set.contains_key("company"));
        assert_eq!(set["tags"], j!(["VIP", "Beta"]));
        assert_eq!(set["labels"], j!({"plan": "pro", "seat": "2"}));
        assert_eq!(set["type"], j!("customer"));
        assert_eq!(set["source"], j!("waitlist"));
        assert_eq!(set["total_sends"], j!(5));
        assert_eq!(set["total_revenue"], j!(5.0));
        assert_eq!(set["created_at"], j!("2026-01-01T00:00:00Z"));
    }

    #[test]
    fn merging_an_empty_contact_changes_nothing() {
        let s = contact(j!({"email": "s@x.com", "company": "S"}));
        let o = contact(j!({"created_at": "2026-03-01T00:00:00Z"}));
        assert_eq!(plan(&s, &o), MergePlan::default());
    }
}
