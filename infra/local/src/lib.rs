//! The local stack: reads `template.yaml` (the one source of truth), creates
//! the resources it declares in the emulator, and resolves each function's
//! environment the way CloudFormation would, so the local process is wired
//! exactly like the deployed one.

use std::collections::HashMap;
use std::path::Path;

use aws_sdk_dynamodb::types::{
    AttributeDefinition, BillingMode, GlobalSecondaryIndex, KeySchemaElement, KeyType, Projection, ProjectionType,
    ScalarAttributeType, TimeToLiveSpecification,
};
use roster::store::DynamoClient;
use serde_yaml::{Mapping, Value};

#[derive(Debug, thiserror::Error)]
pub enum ProvisionError {
    #[error("cannot read the template: {0}")]
    Read(String),
    #[error("template.yaml: {0}")]
    Template(String),
    #[error("the emulator refused: {0}")]
    Aws(String),
}

type Result<T> = std::result::Result<T, ProvisionError>;

pub struct Template {
    resources: Mapping,
}

/// Logical id → physical name of what was provisioned.
#[derive(Clone, Debug, Default)]
pub struct Stack {
    pub names: HashMap<String, String>,
}

fn bad(msg: impl Into<String>) -> ProvisionError {
    ProvisionError::Template(msg.into())
}

fn get<'a>(v: &'a Value, key: &str) -> Option<&'a Value> {
    v.as_mapping().and_then(|m| m.get(key))
}

fn str_at<'a>(v: &'a Value, key: &str) -> Result<&'a str> {
    get(v, key)
        .and_then(Value::as_str)
        .ok_or_else(|| bad(format!("missing string {key}")))
}

fn list_at<'a>(v: &'a Value, key: &str) -> &'a [Value] {
    get(v, key)
        .and_then(Value::as_sequence)
        .map(Vec::as_slice)
        .unwrap_or(&[])
}

impl Template {
    pub fn load(path: impl AsRef<Path>) -> Result<Self> {
        let text = std::fs::read_to_string(path.as_ref())
            .map_err(|e| ProvisionError::Read(format!("{}: {e}", path.as_ref().display())))?;
        let doc: Value = serde_yaml::from_str(&text).map_err(|e| bad(e.to_string()))?;
        let resources = get(&doc, "Resources")
            .and_then(Value::as_mapping)
            .cloned()
            .ok_or_else(|| bad("no Resources"))?;
        Ok(Template { resources })
    }

    fn of_type<'a>(&'a self, kind: &'a str) -> impl Iterator<Item = (&'a str, &'a Value)> + 'a {
        self.resources.iter().filter_map(move |(id, r)| {
            (get(r, "Type").and_then(Value::as_str) == Some(kind)).then(|| (id.as_str().unwrap_or_default(), r))
        })
    }

    /// Creates every DynamoDB table the template declares (if missing), named `{prefix}-{LogicalId}`.
    pub async fn provision(&self, prefix: &str, dynamodb: &DynamoClient) -> Result<Stack> {
        let mut stack = Stack::default();
        for (id, resource) in self.of_type("AWS::DynamoDB::Table") {
            let name = format!("{prefix}-{id}");
            let props = get(resource, "Properties").ok_or_else(|| bad(format!("{id} has no Properties")))?;
            create_table(dynamodb, &name, props).await?;
            stack.names.insert(id.to_string(), name);
        }
        Ok(stack)
    }

    /// The binary (`BuildProperties.Binary`) of each function with an HTTP API event.
    pub fn http_functions(&self) -> Vec<(String, String)> {
        self.of_type("AWS::Serverless::Function")
            .filter(|(_, f)| {
                get(f, "Properties")
                    .and_then(|p| get(p, "Events"))
                    .and_then(Value::as_mapping)
                    .is_some_and(|events| {
                        events
                            .values()
                            .any(|e| get(e, "Type").and_then(Value::as_str) == Some("HttpApi"))
                    })
            })
            .filter_map(|(id, f)| {
                let binary = get(f, "Metadata")
                    .and_then(|m| get(m, "BuildProperties"))
                    .and_then(|b| get(b, "Binary"))?;
                Some((id.to_string(), binary.as_str()?.to_string()))
            })
            .collect()
    }

    /// A function's environment variables, with `!Ref` resolved to the
    /// provisioned names and to `parameters`.
    pub fn function_env(
        &self,
        function: &str,
        stack: &Stack,
        parameters: &HashMap<String, String>,
    ) -> Result<HashMap<String, String>> {
        let f = self
            .resources
            .get(function)
            .ok_or_else(|| bad(format!("no resource {function}")))?;
        let vars = get(f, "Properties")
            .and_then(|p| get(p, "Environment"))
            .and_then(|e| get(e, "Variables"))
            .and_then(Value::as_mapping)
            .cloned()
            .unwrap_or_default();
        let mut env = HashMap::new();
        for (k, v) in &vars {
            let key = k.as_str().ok_or_else(|| bad("environment names are strings"))?;
            let value = match v {
                Value::Tagged(t) if t.tag == "!Ref" => {
                    let target = t.value.as_str().unwrap_or_default();
                    stack
                        .names
                        .get(target)
                        .or_else(|| parameters.get(target))
                        .cloned()
                        .ok_or_else(|| bad(format!("{function}: cannot resolve !Ref {target} locally")))?
                }
                Value::String(s) => s.clone(),
                other => serde_yaml::to_string(other).unwrap_or_default().trim().to_string(),
            };
            env.insert(key.to_string(), value);
        }
        Ok(env)
    }
}

async fn create_table(dynamodb: &DynamoClient, name: &str, props: &Value) -> Result<()> {
    let aws = |e: String| ProvisionError::Aws(e);
    let exists = dynamodb.describe_table().table_name(name).send().await.is_ok();
    if exists {
        return Ok(());
    }
    let key_schema = |v: &Value| -> Result<Vec<KeySchemaElement>> {
        list_at(v, "KeySchema")
            .iter()
            .map(|k| {
                KeySchemaElement::builder()
                    .attribute_name(str_at(k, "AttributeName")?)
                    .key_type(KeyType::from(str_at(k, "KeyType")?))
                    .build()
                    .map_err(|e| bad(e.to_string()))
            })
            .collect()
    };
    let mut req = dynamodb
        .create_table()
        .table_name(name)
        .billing_mode(BillingMode::from(
            get(props, "BillingMode")
                .and_then(Value::as_str)
                .unwrap_or("PAY_PER_REQUEST"),
        ))
        .set_key_schema(Some(key_schema(props)?));
    for a in list_at(props, "AttributeDefinitions") {
        req = req.attribute_definitions(
            AttributeDefinition::builder()
                .attribute_name(str_at(a, "AttributeName")?)
                .attribute_type(ScalarAttributeType::from(str_at(a, "AttributeType")?))
                .build()
                .map_err(|e| bad(e.to_string()))?,
        );
    }
    for g in list_at(props, "GlobalSecondaryIndexes") {
        let projection = get(g, "Projection")
            .map(|p| str_at(p, "ProjectionType"))
            .transpose()?
            .unwrap_or("ALL");
        let mut p = Projection::builder().projection_type(ProjectionType::from(projection));
        for attr in get(g, "Projection")
            .map(|p| list_at(p, "NonKeyAttributes"))
            .unwrap_or(&[])
        {
            p = p.non_key_attributes(attr.as_str().unwrap_or_default());
        }
        req = req.global_secondary_indexes(
            GlobalSecondaryIndex::builder()
                .index_name(str_at(g, "IndexName")?)
                .set_key_schema(Some(key_schema(g)?))
                .projection(p.build())
                .build()
                .map_err(|e| bad(e.to_string()))?,
        );
    }
    req.send()
        .await
        .map_err(|e| aws(aws_sdk_dynamodb::error::DisplayErrorContext(e).to_string()))?;
    if let Some(ttl) = get(props, "TimeToLiveSpecification") {
        if get(ttl, "Enabled").and_then(Value::as_bool) == Some(true) {
            dynamodb
                .update_time_to_live()
                .table_name(name)
                .time_to_live_specification(
                    TimeToLiveSpecification::builder()
                        .attribute_name(str_at(ttl, "AttributeName")?)
                        .enabled(true)
                        .build()
                        .map_err(|e| bad(e.to_string()))?,
                )
                .send()
                .await
                .map_err(|e| aws(aws_sdk_dynamodb::error::DisplayErrorContext(e).to_string()))?;
        }
    }
    Ok(())
}

/// Parameter values for a local stack: `ADMIN_TOKEN` from the environment.
pub fn local_parameters() -> HashMap<String, String> {
    let token = std::env::var("ADMIN_TOKEN").unwrap_or_else(|_| roster::config::DEFAULT_ADMIN_TOKEN.to_string());
    HashMap::from([("AdminToken".to_string(), token)])
}

/// Provisions the stack and builds the api function's state from the
/// template's wiring: what the local runner and the end-to-end tests share.
pub async fn api_state(
    template: &Template,
    prefix: &str,
    parameters: &HashMap<String, String>,
) -> std::result::Result<roster_api::AppState, Box<dyn std::error::Error + Send + Sync>> {
    let sdk = roster::aws::sdk_config().await;
    let dynamodb = roster::aws::dynamodb(&sdk);
    let stack = template.provision(prefix, &dynamodb).await?;
    let (function, _) = template
        .http_functions()
        .into_iter()
        .find(|(_, binary)| binary == "api")
        .ok_or_else(|| bad("no HTTP function with Binary: api"))?;
    let env = template.function_env(&function, &stack, parameters)?;
    let config = roster::Config::from_vars(|k| env.get(k).cloned())?;
    Ok(roster_api::AppState::new(config, dynamodb))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn template() -> Template {
        Template::load(concat!(env!("CARGO_MANIFEST_DIR"), "/../../template.yaml")).unwrap()
    }

    #[test]
    fn the_api_function_is_wired_to_the_table_and_the_token() {
        let t = template();
        let functions = t.http_functions();
        assert!(functions.iter().any(|(_, b)| b == "api"), "{functions:?}");
        let stack = Stack {
            names: HashMap::from([("Table".into(), "x-Table".into())]),
        };
        let params = HashMap::from([("AdminToken".to_string(), "secret-token".to_string())]);
        let env = t.function_env("ApiFunction", &stack, &params).unwrap();
        assert_eq!(env["TABLE_NAME"], "x-Table");
        assert_eq!(env["ADMIN_TOKEN"], "secret-token");
    }

    #[test]
    fn unresolvable_references_are_reported() {
        let t = template();
        assert!(t
            .function_env("ApiFunction", &Stack::default(), &HashMap::new())
            .is_err());
    }
}
