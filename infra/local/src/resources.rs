//! Queues and buckets as the template declares them, in the emulator.

use aws_sdk_s3::types::{
    Event, FilterRule, FilterRuleName, NotificationConfiguration, NotificationConfigurationFilter, QueueConfiguration,
    S3KeyFilter,
};
use aws_sdk_sqs::types::QueueAttributeName;
use serde_yaml::Value;

use super::{bad, get, list_at, ProvisionError, Result, Stack};

fn aws(e: impl std::fmt::Display) -> ProvisionError {
    ProvisionError::Aws(e.to_string())
}

/// The logical id a `!GetAtt Id.Arn` (either spelling) points at.
pub(crate) fn get_att_target(v: &Value) -> Option<String> {
    let Value::Tagged(t) = v else { return None };
    if t.tag != "!GetAtt" {
        return None;
    }
    match &t.value {
        Value::String(s) => s.split('.').next().map(str::to_string),
        Value::Sequence(parts) => parts.first().and_then(Value::as_str).map(str::to_string),
        _ => None,
    }
}

fn arn_of(v: &Value, stack: &Stack) -> Result<String> {
    let target = get_att_target(v).ok_or_else(|| bad("expected !GetAtt X.Arn"))?;
    stack
        .arns
        .get(&target)
        .cloned()
        .ok_or_else(|| bad(format!("{target} is not provisioned yet")))
}

/// Creates the queue (with its redrive policy) and returns its URL and ARN.
pub(crate) async fn create_queue(
    sqs: &aws_sdk_sqs::Client,
    name: &str,
    resource: &Value,
    stack: &Stack,
) -> Result<(String, String)> {
    let props = get(resource, "Properties");
    let mut req = sqs.create_queue().queue_name(name);
    for (key, attr) in [
        ("VisibilityTimeout", QueueAttributeName::VisibilityTimeout),
        ("MessageRetentionPeriod", QueueAttributeName::MessageRetentionPeriod),
    ] {
        if let Some(v) = props.and_then(|p| get(p, key)).and_then(Value::as_u64) {
            req = req.attributes(attr, v.to_string());
        }
    }
    if let Some(redrive) = props.and_then(|p| get(p, "RedrivePolicy")) {
        let dlq = arn_of(
            get(redrive, "deadLetterTargetArn").ok_or_else(|| bad("RedrivePolicy without target"))?,
            stack,
        )?;
        let max = get(redrive, "maxReceiveCount").and_then(Value::as_u64).unwrap_or(5);
        let policy = serde_json::json!({"deadLetterTargetArn": dlq, "maxReceiveCount": max}).to_string();
        req = req.attributes(QueueAttributeName::RedrivePolicy, policy);
    }
    let url = req
        .send()
        .await
        .map_err(|e| aws(aws_sdk_sqs::error::DisplayErrorContext(e)))?
        .queue_url
        .ok_or_else(|| aws("no queue URL"))?;
    let attrs = sqs
        .get_queue_attributes()
        .queue_url(&url)
        .attribute_names(QueueAttributeName::QueueArn)
        .send()
        .await
        .map_err(|e| aws(aws_sdk_sqs::error::DisplayErrorContext(e)))?;
    let arn = attrs
        .attributes()
        .and_then(|a| a.get(&QueueAttributeName::QueueArn))
        .cloned()
        .ok_or_else(|| aws("no queue ARN"))?;
    Ok((url, arn))
}

/// Creates the bucket, its versioning and its queue notifications.
pub(crate) async fn create_bucket(s3: &aws_sdk_s3::Client, name: &str, resource: &Value, stack: &Stack) -> Result<()> {
    if s3.head_bucket().bucket(name).send().await.is_err() {
        s3.create_bucket()
            .bucket(name)
            .send()
            .await
            .map_err(|e| aws(aws_sdk_s3::error::DisplayErrorContext(e)))?;
    }
    let versioned = get(resource, "Properties")
        .and_then(|p| get(p, "VersioningConfiguration"))
        .and_then(|v| get(v, "Status"))
        .and_then(Value::as_str)
        == Some("Enabled");
    if versioned {
        s3.put_bucket_versioning()
            .bucket(name)
            .versioning_configuration(
                aws_sdk_s3::types::VersioningConfiguration::builder()
                    .status(aws_sdk_s3::types::BucketVersioningStatus::Enabled)
                    .build(),
            )
            .send()
            .await
            .map_err(|e| aws(aws_sdk_s3::error::DisplayErrorContext(e)))?;
    }
    let Some(notifications) = get(resource, "Properties").and_then(|p| get(p, "NotificationConfiguration")) else {
        return Ok(());
    };
    let mut config = NotificationConfiguration::builder();
    for q in list_at(notifications, "QueueConfigurations") {
        let event = get(q, "Event")
            .and_then(Value::as_str)
            .ok_or_else(|| bad("queue notification without Event"))?;
        let mut rules = Vec::new();
        let key_rules = get(q, "Filter").and_then(|f| get(f, "S3Key"));
        for rule in key_rules.map(|k| list_at(k, "Rules")).unwrap_or(&[]) {
            let name = get(rule, "Name").and_then(Value::as_str).unwrap_or("prefix");
            let value = get(rule, "Value").and_then(Value::as_str).unwrap_or("");
            rules.push(
                FilterRule::builder()
                    .name(FilterRuleName::from(name))
                    .value(value)
                    .build(),
            );
        }
        let queue = arn_of(
            get(q, "Queue").ok_or_else(|| bad("queue notification without Queue"))?,
            stack,
        )?;
        config = config.queue_configurations(
            QueueConfiguration::builder()
                .queue_arn(queue)
                .events(Event::from(event))
                .filter(
                    NotificationConfigurationFilter::builder()
                        .key(S3KeyFilter::builder().set_filter_rules(Some(rules)).build())
                        .build(),
                )
                .build()
                .map_err(|e| bad(e.to_string()))?,
        );
    }
    s3.put_bucket_notification_configuration()
        .bucket(name)
        .notification_configuration(config.build())
        .send()
        .await
        .map_err(|e| aws(aws_sdk_s3::error::DisplayErrorContext(e)))?;
    Ok(())
}

/// A configuration set by name (one already there is fine).
pub(crate) async fn create_configuration_set(ses: &aws_sdk_sesv2::Client, name: &str) -> Result<()> {
    if ses
        .get_configuration_set()
        .configuration_set_name(name)
        .send()
        .await
        .is_ok()
    {
        return Ok(());
    }
    ses.create_configuration_set()
        .configuration_set_name(name)
        .send()
        .await
        .map_err(|e| aws(aws_sdk_sesv2::error::DisplayErrorContext(e)))?;
    Ok(())
}

/// A sending identity (a domain or an address); the emulator verifies it at once.
pub(crate) async fn create_email_identity(ses: &aws_sdk_sesv2::Client, identity: &str) -> Result<()> {
    if ses.get_email_identity().email_identity(identity).send().await.is_ok() {
        return Ok(());
    }
    ses.create_email_identity()
        .email_identity(identity)
        .send()
        .await
        .map_err(|e| aws(aws_sdk_sesv2::error::DisplayErrorContext(e)))?;
    Ok(())
}
