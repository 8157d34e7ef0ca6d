//! Templates: the project's own, and the starters every project has.

use chrono::Utc;

use crate::domain::ids::new_id;
use crate::domain::list::Channel;
use crate::domain::template::{starters, Compiled, Rendered, Template, TemplateInput, Variables};
use crate::store::Store;
use crate::usecases::contacts;
use crate::{Error, Result};

/// At most this many templates of a project's own.
pub const MAX_TEMPLATES: usize = 500;

pub async fn create(store: &Store, pid: &str, input: TemplateInput) -> Result<Template> {
    if store.all_templates(pid).await?.len() >= MAX_TEMPLATES {
        return Err(Error::Conflict {
            code: "too_many_templates",
            field: None,
            message: format!("a project holds at most {MAX_TEMPLATES} templates; delete some first"),
        });
    }
    let t = input.apply(None, new_id(), Utc::now())?;
    store.put_template(pid, &t).await?;
    Ok(t)
}

pub async fn get(store: &Store, pid: &str, id: &str) -> Result<Template> {
    if let Some(t) = starters().into_iter().find(|t| t.id == id) {
        return Ok(t);
    }
    store.get_template(pid, id).await?.ok_or(Error::NotFound("template"))
}

/// The starters, then the project's own by name.
pub async fn all(store: &Store, pid: &str, channel: Option<Channel>) -> Result<Vec<Template>> {
    let mut own = store.all_templates(pid).await?;
    own.sort_by_cached_key(|t| (t.name.to_lowercase(), t.id.clone()));
    Ok(starters()
        .into_iter()
        .chain(own)
        .filter(|t| channel.is_none_or(|c| c == t.channel))
        .collect())
}

fn read_only() -> Error {
    Error::Conflict {
        code: "system_template",
        field: None,
        message: "starter templates cannot be changed or deleted; create your own from its parts".into(),
    }
}

pub async fn update(store: &Store, pid: &str, id: &str, input: TemplateInput) -> Result<Template> {
    let old = get(store, pid, id).await?;
    if old.system {
        return Err(read_only());
    }
    let t = input.apply(Some(&old), old.id.clone(), Utc::now())?;
    store.put_template(pid, &t).await?;
    Ok(t)
}

pub async fn delete(store: &Store, pid: &str, id: &str) -> Result<()> {
    if get(store, pid, id).await?.system {
        return Err(read_only());
    }
    store.delete_template(pid, id).await
}

/// Every part of the template, rendered for one contact. The unsubscribe
/// link is a sample: a real one is made for each message sent.
/// A template rendered for one contact; an SMS with what it costs.
#[derive(Debug, serde::Serialize, utoipa::ToSchema)]
pub struct Preview {
    #[serde(flatten)]
    pub rendered: Rendered,
    /// SMS: encoding and segments of the rendered body.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub sms: Option<crate::domain::sms::SmsSize>,
    /// SMS: set when a character forces UCS-2 (fewer characters a segment).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub warning: Option<String>,
}

pub async fn preview(store: &Store, pid: &str, id: &str, contact_id: &str) -> Result<Preview> {
    let t = get(store, pid, id).await?;
    let contact = contacts::get(store, pid, contact_id).await?;
    let mut vars = Variables::of(&contact);
    vars.unsubscribe_url = Some("https://example.invalid/unsubscribe/preview".into());
    let rendered = Compiled::new(&t)?.render(&vars)?;
    let sms = rendered.body.as_deref().map(crate::domain::sms::size);
    Ok(Preview {
        warning: sms.as_ref().and_then(|s| s.warning()),
        sms,
        rendered,
    })
}
