//! Project items.

use chrono::Utc;

use super::contacts::conditional;
use super::{from_item, key, s, sdk_error, to_attr, Store};
use crate::domain::project::{Project, ProjectSettings};
use crate::{Error, Result};

fn project_pk(pid: &str) -> String {
    format!("P#{pid}")
}
const PROJECT_SK: &str = "PROJECT";

impl Store {
    pub async fn create_project(&self, project: &Project) -> Result<()> {
        let mut item: super::Item = serde_dynamo::to_item(project).map_err(Error::internal)?;
        item.extend(key(project_pk(&project.id), PROJECT_SK));
        self.client
            .put_item()
            .table_name(&self.table)
            .set_item(Some(item))
            .condition_expression("attribute_not_exists(PK)")
            .send()
            .await
            .map_err(sdk_error)?;
        Ok(())
    }

    pub async fn get_project(&self, pid: &str) -> Result<Option<Project>> {
        self.get_one(key(project_pk(pid), PROJECT_SK))
            .await?
            .map(from_item)
            .transpose()
    }

    /// Applies the settings that are present; `None` when the project does not exist.
    pub async fn update_project(&self, pid: &str, settings: &ProjectSettings) -> Result<Option<Project>> {
        let mut sets = vec!["updated_at = :now".to_string()];
        let mut req = self
            .client
            .update_item()
            .table_name(&self.table)
            .set_key(Some(key(project_pk(pid), PROJECT_SK)))
            .condition_expression("attribute_exists(PK)")
            .expression_attribute_values(":now", to_attr(&Utc::now())?);
        if let Some(name) = &settings.name {
            sets.push("#name = :name".into());
            req = req
                .expression_attribute_names("#name", "name")
                .expression_attribute_values(":name", s(name));
        }
        if let Some(country) = &settings.default_country {
            sets.push("default_country = :country".into());
            req = req.expression_attribute_values(":country", s(country));
        }
        if let Some(v) = settings.public_rate_per_ip {
            sets.push("public_rate_per_ip = :rate_ip".into());
            req = req.expression_attribute_values(":rate_ip", super::n(v));
        }
        if let Some(v) = settings.public_rate_per_project {
            sets.push("public_rate_per_project = :rate_project".into());
            req = req.expression_attribute_values(":rate_project", super::n(v));
        }
        for (field, value) in [
            ("email_from", &settings.email_from),
            ("email_from_name", &settings.email_from_name),
            ("reply_to", &settings.reply_to),
            ("unsubscribe_mailto", &settings.unsubscribe_mailto),
            ("twilio_account_sid", &settings.twilio_account_sid),
            ("twilio_messaging_service_sid", &settings.twilio_messaging_service_sid),
            ("sms_help_text", &settings.sms_help_text),
            ("sms_opt_out_text", &settings.sms_opt_out_text),
            ("sms_opt_in_text", &settings.sms_opt_in_text),
        ] {
            if let Some(v) = value {
                sets.push(format!("{field} = :{field}"));
                req = req.expression_attribute_values(format!(":{field}"), s(v));
            }
        }
        for (field, value) in [
            ("send_rate", settings.send_rate),
            ("missed_after_minutes", settings.missed_after_minutes),
            ("attribution_days", settings.attribution_days),
        ] {
            if let Some(v) = value {
                sets.push(format!("{field} = :{field}"));
                req = req.expression_attribute_values(format!(":{field}"), super::n(v));
            }
        }
        if let Some(token) = &settings.twilio_auth_token {
            sets.push("twilio_auth_token = :twilio_auth_token".into());
            req = req.expression_attribute_values(":twilio_auth_token", s(token.expose()));
        }
        if let Some(origins) = &settings.allowed_origins {
            sets.push("allowed_origins = :origins".into());
            req = req.expression_attribute_values(":origins", to_attr(origins)?);
        }
        let out = req
            .update_expression(format!("SET {}", sets.join(", ")))
            .return_values(aws_sdk_dynamodb::types::ReturnValue::AllNew)
            .send()
            .await;
        match conditional(out)? {
            Some(out) => out.attributes.map(from_item).transpose(),
            None => Ok(None),
        }
    }

    /// Replaces one key hash; the old key stops working at once.
    pub async fn set_key_hash(&self, pid: &str, attribute: &'static str, hash: &str) -> Result<bool> {
        let out = self
            .client
            .update_item()
            .table_name(&self.table)
            .set_key(Some(key(project_pk(pid), PROJECT_SK)))
            .condition_expression("attribute_exists(PK)")
            .update_expression("SET #h = :h, updated_at = :now")
            .expression_attribute_names("#h", attribute)
            .expression_attribute_values(":h", s(hash))
            .expression_attribute_values(":now", to_attr(&Utc::now())?)
            .send()
            .await;
        conditional(out).map(|o| o.is_some())
    }
}
