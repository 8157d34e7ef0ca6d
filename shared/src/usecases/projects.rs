//! Projects and their keys.

use chrono::Utc;
use serde::Serialize;
use utoipa::ToSchema;

use crate::domain::ids::new_id;
use crate::domain::keys::{self, KeyKind};
use crate::domain::project::{
    Project, ProjectSettings, ProjectView, DEFAULT_ATTRIBUTION_DAYS, DEFAULT_COUNTRY, DEFAULT_MISSED_AFTER_MINUTES,
    DEFAULT_RATE_PER_IP, DEFAULT_RATE_PER_PROJECT, DEFAULT_SEND_RATE,
};
use crate::store::Store;
use crate::{Error, Result};

/// Returned once, at creation: the keys are not stored and cannot be shown again.
#[derive(Debug, Serialize, ToSchema)]
pub struct CreatedProject {
    #[serde(flatten)]
    pub project: ProjectView,
    /// Secret key (`sk_…`): server-side access to this project's data.
    pub api_key: String,
    /// Publishable key (`pk_…`): public submission endpoints only.
    pub publishable_key: String,
}

pub async fn create(store: &Store, settings: ProjectSettings) -> Result<CreatedProject> {
    let settings = settings.normalized()?;
    let name = settings
        .name
        .ok_or_else(|| Error::invalid("name", "name is required"))?;
    let id = new_id();
    let api_key = keys::new_key(KeyKind::Secret, &id);
    let publishable_key = keys::new_key(KeyKind::Publishable, &id);
    let now = Utc::now();
    let project = Project {
        id,
        name,
        default_country: settings.default_country.unwrap_or_else(|| DEFAULT_COUNTRY.to_string()),
        allowed_origins: settings.allowed_origins.unwrap_or_default(),
        secret_key_hash: keys::hash_key(&api_key),
        publishable_key_hash: keys::hash_key(&publishable_key),
        public_rate_per_ip: settings.public_rate_per_ip.unwrap_or(DEFAULT_RATE_PER_IP),
        public_rate_per_project: settings.public_rate_per_project.unwrap_or(DEFAULT_RATE_PER_PROJECT),
        email_from: settings.email_from,
        email_from_name: settings.email_from_name,
        reply_to: settings.reply_to,
        unsubscribe_mailto: settings.unsubscribe_mailto,
        send_rate: settings.send_rate.unwrap_or(DEFAULT_SEND_RATE),
        missed_after_minutes: settings.missed_after_minutes.unwrap_or(DEFAULT_MISSED_AFTER_MINUTES),
        twilio_account_sid: settings.twilio_account_sid,
        twilio_auth_token: settings.twilio_auth_token,
        twilio_messaging_service_sid: settings.twilio_messaging_service_sid,
        sms_help_text: settings.sms_help_text,
        sms_opt_out_text: settings.sms_opt_out_text,
        sms_opt_in_text: settings.sms_opt_in_text,
        attribution_days: settings.attribution_days.unwrap_or(DEFAULT_ATTRIBUTION_DAYS),
        created_at: now,
        updated_at: now,
    };
    store.create_project(&project).await?;
    Ok(CreatedProject {
        project: ProjectView::from(&project),
        api_key,
        publishable_key,
    })
}

/// Applies the settings present; `sender_domain`: the deployment's sending
/// domain, which `email_from` must be on.
pub async fn update(
    store: &Store,
    pid: &str,
    settings: ProjectSettings,
    sender_domain: Option<&str>,
) -> Result<Project> {
    let settings = settings.normalized()?;
    if let (Some(from), Some(domain)) = (&settings.email_from, sender_domain) {
        crate::domain::email::check_on_domain("email_from", from, domain)?;
    }
    store
        .update_project(pid, &settings)
        .await?
        .ok_or(Error::NotFound("project"))
}

/// Issues a new key of `kind`; the old one stops working at once.
pub async fn rotate_key(store: &Store, pid: &str, kind: KeyKind) -> Result<String> {
    let key = keys::new_key(kind, pid);
    let attribute = match kind {
        KeyKind::Secret => "secret_key_hash",
        KeyKind::Publishable => "publishable_key_hash",
    };
    if !store.set_key_hash(pid, attribute, &keys::hash_key(&key)).await? {
        return Err(Error::NotFound("project"));
    }
    Ok(key)
}

/// The project `pid`, if `presented` is its current key of `kind`.
/// A well-formed key of another project is `Forbidden` and reads nothing.
pub async fn authenticate(store: &Store, pid: &str, presented: &str, kind: KeyKind) -> Result<Project> {
    check_key_shape(pid, presented, kind)?;
    let project = store.get_project(pid).await?.ok_or(Error::Unauthorized)?;
    check_key(&project, presented, kind)?;
    Ok(project)
}

/// The checks that need no read: the key's shape and the project it names.
pub fn check_key_shape(pid: &str, presented: &str, kind: KeyKind) -> Result<()> {
    match keys::key_project(kind, presented) {
        None => Err(Error::Unauthorized),
        Some(key_pid) if key_pid != pid => Err(Error::Forbidden),
        Some(_) => Ok(()),
    }
}

/// Whether `presented` is the project's current key of `kind`.
pub fn check_key(project: &Project, presented: &str, kind: KeyKind) -> Result<()> {
    check_key_shape(&project.id, presented, kind)?;
    let hash = match kind {
        KeyKind::Secret => &project.secret_key_hash,
        KeyKind::Publishable => &project.publishable_key_hash,
    };
    if keys::key_matches(presented, hash) {
        Ok(())
    } else {
        Err(Error::Unauthorized)
    }
}

pub async fn get(store: &Store, pid: &str) -> Result<Project> {
    store.get_project(pid).await?.ok_or(Error::NotFound("project"))
}
