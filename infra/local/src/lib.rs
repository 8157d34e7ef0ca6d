//! The local stack: reads `template.yaml` (the one source of truth), creates
//! the resources it declares in the emulator, and resolves each function's
//! environment the way CloudFormation would, so the local process is wired
//! exactly like the deployed one.

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::path::Path;

use aws_sdk_dynamodb::types::{
    AttributeDefinition, BillingMode, GlobalSecondaryIndex, KeySchemaElement, KeyType, Projection, ProjectionType,
    ScalarAttributeType, TimeToLiveSpecification,
};
use roster::store::DynamoClient;
use serde_yaml::{Mapping, Value};

pub mod gateway;
pub mod poller;
mod resources;
pub mod twilio_stub;

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

#[derive(Clone)]
pub struct Template {
    resources: Mapping,
    parameters: Mapping,
}

/// What was provisioned: logical id → what `!Ref` gives (table or bucket
/// name, queue URL) and what `!GetAtt X.Arn` gives.
#[derive(Clone, Debug, Default)]
pub struct Stack {
    pub names: HashMap<String, String>,
    pub arns: HashMap<String, String>,
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

/// A function's `Metadata.BuildProperties.Binary`.
fn binary_of(function: &Value) -> Option<&str> {
    get(function, "Metadata")
        .and_then(|m| get(m, "BuildProperties"))
        .and_then(|b| get(b, "Binary"))
        .and_then(Value::as_str)
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
        let parameters = get(&doc, "Parameters")
            .and_then(Value::as_mapping)
            .cloned()
            .unwrap_or_default();
        Ok(Template { resources, parameters })
    }

    fn of_type<'a>(&'a self, kind: &'a str) -> impl Iterator<Item = (&'a str, &'a Value)> + 'a {
        self.resources
            .iter()
            .filter(move |(_, r)| get(r, "Type").and_then(Value::as_str) == Some(kind))
            .map(|(id, r)| (id.as_str().unwrap_or_default(), r))
    }

    /// Creates what the template declares (if missing), named after
    /// `{prefix}-{LogicalId}`: queues (dead-letter queues first), tables,
    /// then buckets with their notifications.
    pub async fn provision(&self, prefix: &str, aws: &Clients, parameters: &HashMap<String, String>) -> Result<Stack> {
        let mut stack = Stack::default();
        let mut queues: Vec<(&str, &Value)> = self.of_type("AWS::SQS::Queue").collect();
        queues.sort_by_key(|(_, q)| get(q, "Properties").and_then(|p| get(p, "RedrivePolicy")).is_some());
        for (id, resource) in queues {
            let (url, arn) = resources::create_queue(&aws.sqs, &format!("{prefix}-{id}"), resource, &stack).await?;
            stack.names.insert(id.to_string(), url);
            stack.arns.insert(id.to_string(), arn);
        }
        for (id, resource) in self.of_type("AWS::DynamoDB::Table") {
            let name = format!("{prefix}-{id}");
            let props = get(resource, "Properties").ok_or_else(|| bad(format!("{id} has no Properties")))?;
            create_table(&aws.dynamodb, &name, props).await?;
            stack.names.insert(id.to_string(), name);
        }
        for (id, resource) in self.of_type("AWS::S3::Bucket") {
            let name = format!("{prefix}-{id}").to_lowercase();
            resources::create_bucket(&aws.s3, &name, resource, &stack).await?;
            stack.arns.insert(id.to_string(), format!("arn:aws:s3:::{name}"));
            stack.names.insert(id.to_string(), name);
        }
        // SES: the configuration set emails name, and the sending identity
        // (the emulator, like SES, refuses a From address on no identity).
        for (id, _) in self.of_type("AWS::SES::ConfigurationSet") {
            let name = format!("{prefix}-{id}");
            resources::create_configuration_set(&aws.sesv2, &name).await?;
            stack.names.insert(id.to_string(), name);
        }
        for (id, resource) in self.of_type("AWS::SES::EmailIdentity") {
            let value = get(resource, "Properties")
                .and_then(|p| get(p, "EmailIdentity"))
                .ok_or_else(|| bad(format!("{id} has no EmailIdentity")))?;
            let identity = self.resolve(id, value, &stack, parameters)?;
            resources::create_email_identity(&aws.sesv2, &identity).await?;
            stack.names.insert(id.to_string(), identity);
        }
        Ok(stack)
    }

    /// Functions fed by an SQS queue: (logical id, binary, queue logical id, batch size, concurrency).
    pub fn sqs_functions(&self) -> Vec<SqsFunction> {
        let mut out = Vec::new();
        for (id, f) in self.of_type("AWS::Serverless::Function") {
            let Some(binary) = binary_of(f) else {
                continue;
            };
            let events = get(f, "Properties")
                .and_then(|p| get(p, "Events"))
                .and_then(Value::as_mapping);
            for event in events.into_iter().flat_map(|e| e.values()) {
                if get(event, "Type").and_then(Value::as_str) != Some("SQS") {
                    continue;
                }
                let Some(props) = get(event, "Properties") else {
                    continue;
                };
                let Some(queue) = get(props, "Queue").and_then(resources::get_att_target) else {
                    continue;
                };
                out.push(SqsFunction {
                    function: id.to_string(),
                    binary: binary.to_string(),
                    queue,
                    batch_size: get(props, "BatchSize").and_then(Value::as_u64).unwrap_or(10) as i32,
                    max_concurrency: get(props, "ScalingConfig")
                        .and_then(|s| get(s, "MaximumConcurrency"))
                        .and_then(Value::as_u64)
                        .unwrap_or(1) as usize,
                });
            }
        }
        out
    }

    /// The schedules that send to a queue.
    pub fn schedules(&self) -> Result<Vec<Schedule>> {
        let mut out = Vec::new();
        for (id, s) in self.of_type("AWS::Scheduler::Schedule") {
            let props = get(s, "Properties").ok_or_else(|| bad(format!("{id} has no Properties")))?;
            let expression = str_at(props, "ScheduleExpression")?;
            let every = rate(expression).ok_or_else(|| {
                bad(format!(
                    "{id}: the local runner drives rate(…) schedules; {expression:?} is not one"
                ))
            })?;
            let target = get(props, "Target").ok_or_else(|| bad(format!("{id} has no Target")))?;
            let queue = get(target, "Arn")
                .and_then(resources::get_att_target)
                .ok_or_else(|| bad(format!("{id}: Target.Arn is not !GetAtt Queue.Arn")))?;
            out.push(Schedule {
                id: id.to_string(),
                queue,
                every,
                input: get(target, "Input").and_then(Value::as_str).unwrap_or("{}").to_string(),
            });
        }
        Ok(out)
    }

    /// The `Type: HttpApi` events of every function: the routes API
    /// Gateway sends to it, with the function's binary (`BuildProperties.Binary`).
    pub fn http_routes(&self) -> Result<Vec<gateway::Route>> {
        let mut out = Vec::new();
        for (id, f) in self.of_type("AWS::Serverless::Function") {
            let Some(events) = get(f, "Properties")
                .and_then(|p| get(p, "Events"))
                .and_then(Value::as_mapping)
            else {
                continue;
            };
            for event in events.values() {
                if get(event, "Type").and_then(Value::as_str) != Some("HttpApi") {
                    continue;
                }
                let binary =
                    binary_of(f).ok_or_else(|| bad(format!("{id} has HTTP events but no BuildProperties.Binary")))?;
                let props =
                    get(event, "Properties").ok_or_else(|| bad(format!("{id}: an HttpApi event has no Properties")))?;
                let (method, path) = (str_at(props, "Method")?, str_at(props, "Path")?);
                out.push(
                    gateway::Route::parse(method, path, binary)
                        .ok_or_else(|| bad(format!("{id}: {method} {path} is not an HTTP API route")))?,
                );
            }
        }
        Ok(out)
    }

    /// The logical id of the function built from `binary`.
    pub fn function_of(&self, binary: &str) -> Option<String> {
        self.of_type("AWS::Serverless::Function")
            .find(|(_, f)| binary_of(f) == Some(binary))
            .map(|(id, _)| id.to_string())
    }

    fn parameter_default(&self, name: &str) -> Option<String> {
        match self.parameters.get(name).and_then(|p| get(p, "Default"))? {
            Value::String(s) => Some(s.clone()),
            Value::Number(n) => Some(n.to_string()),
            _ => None,
        }
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
            env.insert(key.to_string(), self.resolve(function, v, stack, parameters)?);
        }
        Ok(env)
    }

    /// A property value: `!Ref` to what was provisioned or to a parameter
    /// (given, else its default), or the literal.
    fn resolve(&self, owner: &str, v: &Value, stack: &Stack, parameters: &HashMap<String, String>) -> Result<String> {
        Ok(match v {
            Value::Tagged(t) if t.tag == "!Ref" => {
                let target = t.value.as_str().unwrap_or_default();
                stack
                    .names
                    .get(target)
                    .or_else(|| parameters.get(target))
                    .cloned()
                    .or_else(|| self.parameter_default(target))
                    .ok_or_else(|| bad(format!("{owner}: cannot resolve !Ref {target} locally")))?
            }
            Value::String(s) => s.clone(),
            other => serde_yaml::to_string(other).unwrap_or_default().trim().to_string(),
        })
    }
}

/// An EventBridge Scheduler schedule whose target is a queue.
#[derive(Clone, Debug)]
pub struct Schedule {
    pub id: String,
    pub queue: String,
    pub every: std::time::Duration,
    pub input: String,
}

/// `rate(N minute|minutes|hour|hours|day|days)`, as EventBridge Scheduler writes it.
fn rate(expression: &str) -> Option<std::time::Duration> {
    let inner = expression.trim().strip_prefix("rate(")?.strip_suffix(')')?;
    let (n, unit) = inner.trim().split_once(' ')?;
    let n: u64 = n.parse().ok().filter(|n| *n > 0)?;
    let secs = match unit.trim() {
        "minute" | "minutes" => 60,
        "hour" | "hours" => 3600,
        "day" | "days" => 86_400,
        _ => return None,
    };
    Some(std::time::Duration::from_secs(n * secs))
}

/// A function wired to a queue by an `SQS` event.
#[derive(Clone, Debug)]
pub struct SqsFunction {
    pub function: String,
    pub binary: String,
    pub queue: String,
    pub batch_size: i32,
    pub max_concurrency: usize,
}

/// The emulated services' clients.
#[derive(Clone)]
pub struct Clients {
    pub sdk: aws_config::SdkConfig,
    pub dynamodb: DynamoClient,
    pub s3: aws_sdk_s3::Client,
    pub sqs: aws_sdk_sqs::Client,
    pub sesv2: aws_sdk_sesv2::Client,
}

impl Clients {
    pub async fn from_env() -> Self {
        let sdk = roster::aws::sdk_config().await;
        Clients {
            dynamodb: roster::aws::dynamodb(&sdk),
            s3: roster::aws::s3(&sdk),
            sqs: roster::aws::sqs(&sdk),
            sesv2: roster::aws::sesv2(&sdk),
            sdk,
        }
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

/// Signs unsubscribe links locally unless `SIGNING_SECRET` is set (never for a deployment).
pub const LOCAL_SIGNING_SECRET: &str = "local-signing-secret-not-for-production";

/// Parameter values for a local stack: `ADMIN_TOKEN`, `SIGNING_SECRET`,
/// `SENDER_DOMAIN`, `PUBLIC_BASE_URL`, `TWILIO_API_URL`, `IMPORT_CHUNK_ROWS` and `BULK_CHUNK_IDS` from the environment.
pub fn local_parameters() -> HashMap<String, String> {
    let token = std::env::var("ADMIN_TOKEN").unwrap_or_else(|_| roster::config::DEFAULT_ADMIN_TOKEN.to_string());
    let secret = std::env::var("SIGNING_SECRET").unwrap_or_else(|_| LOCAL_SIGNING_SECRET.to_string());
    let mut params = HashMap::from([("AdminToken".to_string(), token), ("SigningSecret".to_string(), secret)]);
    for (var, param) in [
        ("SENDER_DOMAIN", "SenderDomain"),
        ("PUBLIC_BASE_URL", "PublicBaseUrl"),
        ("TWILIO_API_URL", "TwilioApiUrl"),
    ] {
        if let Ok(v) = std::env::var(var) {
            params.insert(param.to_string(), v);
        }
    }
    if let Ok(rows) = std::env::var("IMPORT_CHUNK_ROWS") {
        params.insert("ImportChunkRows".to_string(), rows);
    }
    if let Ok(ids) = std::env::var("BULK_CHUNK_IDS") {
        params.insert("BulkChunkIds".to_string(), ids);
    }
    params
}

/// A running local stack: each HTTP function's state and router (serve
/// them all with [`LocalStack::router`]) and the SQS-driven functions,
/// polled in the background.
pub struct LocalStack {
    /// Each HTTP function's state, by binary (`api`, `public-api`, …), built
    /// from that function's own environment: read it with `api` and `state`.
    http: BTreeMap<String, roster_api::AppState>,
    routers: Vec<(String, axum::Router)>,
    routes: Vec<gateway::Route>,
    pub stack: Stack,
    pub clients: Clients,
    pub workers: Vec<tokio::task::JoinHandle<()>>,
}

/// The state and router of the HTTP function built from `binary`.
pub fn http_function(
    binary: &str,
    config: roster::Config,
    sdk: &aws_config::SdkConfig,
) -> roster::Result<Option<(roster_api::AppState, axum::Router)>> {
    use roster_api::functions;
    Ok(Some(match binary {
        "api" => functions::api(config, sdk)?,
        "public-api" => functions::public_api(config, sdk)?,
        "files-api" => functions::files_api(config, sdk)?,
        "messaging-api" => functions::messaging_api(config, sdk)?,
        _ => return Ok(None),
    }))
}

impl LocalStack {
    /// Provisions the stack and wires every function from the template.
    pub async fn start(
        template: &Template,
        prefix: &str,
        parameters: &HashMap<String, String>,
    ) -> std::result::Result<Self, Box<dyn std::error::Error + Send + Sync>> {
        let clients = Clients::from_env().await;
        let stack = template.provision(prefix, &clients, parameters).await?;
        let routes = template.http_routes()?;
        let mut http = BTreeMap::new();
        let mut routers = Vec::new();
        for binary in routes.iter().map(|r| r.binary.clone()).collect::<BTreeSet<_>>() {
            let function = template
                .function_of(&binary)
                .ok_or_else(|| bad(format!("no function with Binary: {binary}")))?;
            let env = template.function_env(&function, &stack, parameters)?;
            let config = roster::Config::from_vars(|k| env.get(k).cloned())?;
            let (state, router) = http_function(&binary, config, &clients.sdk)?
                .ok_or_else(|| bad(format!("no local router for binary {binary}")))?;
            http.insert(binary.clone(), state);
            routers.push((binary, router));
        }
        if !http.contains_key("api") {
            return Err(bad("no HTTP function with Binary: api").into());
        }
        let mut local = LocalStack {
            http,
            routers,
            routes,
            stack,
            clients,
            workers: Vec::new(),
        };
        local.start_workers(template, parameters)?;
        local.start_schedules(template)?;
        Ok(local)
    }

    /// The operator api's state (the table, and what every function shares).
    pub fn api(&self) -> &roster_api::AppState {
        &self.http["api"]
    }

    /// The state of the HTTP function built from `binary`.
    pub fn state(&self, binary: &str) -> Option<&roster_api::AppState> {
        self.http.get(binary)
    }

    /// Every HTTP function behind one router, each request to the function
    /// API Gateway would send it to.
    pub fn router(&self) -> axum::Router {
        gateway::router(self.routes.clone(), self.routers.clone())
    }

    /// Starts a poller per SQS-fed function (several for those allowed to
    /// run concurrently), each with the function's own environment.
    pub fn start_workers(
        &mut self,
        template: &Template,
        parameters: &HashMap<String, String>,
    ) -> std::result::Result<(), Box<dyn std::error::Error + Send + Sync>> {
        for f in template.sqs_functions() {
            let env = template.function_env(&f.function, &self.stack, parameters)?;
            let config = roster::Config::from_vars(|k| env.get(k).cloned())?;
            let store = roster::store::Store::new(self.clients.dynamodb.clone(), config.table_name.clone());
            let handler = poller::handler_for(&f.binary, &config, store, &self.clients.sdk)?
                .ok_or_else(|| bad(format!("no local handler for binary {}", f.binary)))?;
            let url = self
                .stack
                .names
                .get(&f.queue)
                .cloned()
                .ok_or_else(|| bad(format!("{}: unknown queue {}", f.function, f.queue)))?;
            for _ in 0..f.max_concurrency.min(poller::LOCAL_CONCURRENCY) {
                self.workers.push(tokio::spawn(poller::poll(
                    self.clients.sqs.clone(),
                    url.clone(),
                    f.batch_size,
                    handler.clone(),
                )));
            }
        }
        Ok(())
    }

    /// Sends each schedule's input to its target queue as EventBridge
    /// Scheduler would (`rate(…)` expressions), from the template.
    pub fn start_schedules(
        &mut self,
        template: &Template,
    ) -> std::result::Result<(), Box<dyn std::error::Error + Send + Sync>> {
        for s in template.schedules()? {
            let url = self
                .stack
                .names
                .get(&s.queue)
                .cloned()
                .ok_or_else(|| bad(format!("{}: unknown queue {}", s.id, s.queue)))?;
            self.workers.push(tokio::spawn(poller::tick(
                self.clients.sqs.clone(),
                url,
                s.every,
                s.input,
            )));
        }
        Ok(())
    }

    /// Stops the pollers at once, wherever they are (as a killed process would).
    pub fn kill_workers(&mut self) {
        for w in self.workers.drain(..) {
            w.abort();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn template() -> Template {
        Template::load(concat!(env!("CARGO_MANIFEST_DIR"), "/../../template.yaml")).unwrap()
    }

    #[test]
    fn each_http_function_is_wired_to_what_its_routes_reach_and_nothing_else() {
        let t = template();
        let stack = Stack {
            names: HashMap::from([
                ("Table".into(), "x-Table".into()),
                ("ImportsBucket".into(), "x-importsbucket".into()),
                ("PlanQueue".into(), "http://q/x-PlanQueue".into()),
                ("ChunkQueue".into(), "http://q/x-ChunkQueue".into()),
                ("BulkQueue".into(), "http://q/x-BulkQueue".into()),
                ("EmailConfigurationSet".into(), "x-EmailConfigurationSet".into()),
                ("SendQueue".into(), "http://q/x-SendQueue".into()),
                ("ExportsBucket".into(), "x-exportsbucket".into()),
                ("ExportQueue".into(), "http://q/x-ExportQueue".into()),
            ]),
            ..Stack::default()
        };
        let params = HashMap::from([
            ("AdminToken".to_string(), "secret-token".to_string()),
            ("SigningSecret".to_string(), "s".repeat(32)),
        ]);
        let env = |binary: &str| {
            let function = t.function_of(binary).unwrap();
            let mut env: Vec<(String, String)> = t
                .function_env(&function, &stack, &params)
                .unwrap()
                .into_iter()
                .collect();
            env.sort();
            env
        };
        let names = |binary: &str| env(binary).into_iter().map(|(k, _)| k).collect::<Vec<_>>();
        assert_eq!(
            env("api"),
            [
                ("ADMIN_TOKEN", "secret-token"),
                ("BULK_CHUNK_IDS", "1000"),
                ("BULK_QUEUE_URL", "http://q/x-BulkQueue"),
                ("SENDER_DOMAIN", "example.com"),
                ("TABLE_NAME", "x-Table"),
            ]
            .map(|(k, v)| (k.to_string(), v.to_string()))
        );
        assert_eq!(names("public-api"), ["PUBLIC_BASE_URL", "SIGNING_SECRET", "TABLE_NAME"]);
        assert_eq!(
            names("files-api"),
            [
                "CHUNK_QUEUE_URL",
                "EXPORTS_BUCKET",
                "EXPORT_DESTINATION_BUCKET",
                "EXPORT_LINK_SECONDS",
                "EXPORT_QUEUE_URL",
                "EXPORT_SYNC_ROWS",
                "IMPORTS_BUCKET",
                "PLAN_QUEUE_URL",
                "TABLE_NAME",
            ]
        );
        assert_eq!(
            names("messaging-api"),
            [
                "EMAIL_CONFIGURATION_SET",
                "PUBLIC_BASE_URL",
                "SENDER_DOMAIN",
                "SEND_QUEUE_URL",
                "SIGNING_SECRET",
                "TABLE_NAME",
                "TWILIO_API_URL",
            ]
        );
    }

    #[test]
    fn requests_reach_the_function_api_gateway_would_choose() {
        let routes = template().http_routes().unwrap();
        let to = |method: axum::http::Method, path: &str| {
            gateway::choose(&routes, &method, path)
                .map(|r| r.binary.clone())
                .unwrap()
        };
        use axum::http::Method;
        assert_eq!(to(Method::GET, "/health"), "api");
        assert_eq!(to(Method::GET, "/v1/projects/p1/contacts/c1"), "api");
        assert_eq!(to(Method::GET, "/v1/projects/p1/contact-messages"), "api");
        assert_eq!(to(Method::GET, "/v1/projects/p1/contacts/export.csv"), "files-api");
        assert_eq!(
            to(Method::GET, "/v1/projects/p1/contact-messages/export.csv"),
            "files-api"
        );
        assert_eq!(to(Method::GET, "/v1/projects/p1/messages/export.csv"), "files-api");
        assert_eq!(to(Method::POST, "/v1/projects/p1/imports/i1/start"), "files-api");
        assert_eq!(to(Method::GET, "/v1/projects/p1/messages/m1"), "messaging-api");
        assert_eq!(
            to(Method::POST, "/v1/projects/p1/contacts/c1/messages"),
            "messaging-api"
        );
        assert_eq!(to(Method::POST, "/v1/public/p1/waitlist"), "public-api");
        assert_eq!(to(Method::OPTIONS, "/v1/public/p1/waitlist"), "public-api");
        assert_eq!(to(Method::POST, "/v1/webhooks/twilio/p1/sms"), "public-api");
        assert_eq!(to(Method::GET, "/l/t1"), "public-api");
    }

    #[test]
    fn queue_functions_know_when_their_queue_gives_a_message_up() {
        let t = template();
        let names = [
            "Table",
            "ImportsBucket",
            "PlanQueue",
            "ChunkQueue",
            "BulkQueue",
            "SendQueue",
            "EmailConfigurationSet",
            "ExportsBucket",
            "ExportQueue",
        ];
        let stack = Stack {
            names: names.iter().map(|n| (n.to_string(), format!("x-{n}"))).collect(),
            ..Stack::default()
        };
        let mut checked = Vec::new();
        for f in t.sqs_functions() {
            let params = HashMap::from([("SigningSecret".to_string(), "s".repeat(32))]);
            let env = t.function_env(&f.function, &stack, &params).unwrap();
            let Some(max_receives) = env.get("QUEUE_MAX_RECEIVES") else {
                continue;
            };
            let queue = t.resources.get(f.queue.as_str()).unwrap();
            let redrive = get(get(queue, "Properties").unwrap(), "RedrivePolicy").unwrap();
            let max = get(redrive, "maxReceiveCount").and_then(Value::as_u64).unwrap();
            assert_eq!(*max_receives, max.to_string(), "{}", f.function);
            checked.push(f.binary);
        }
        checked.sort();
        assert_eq!(checked, ["export-worker", "import-planner", "import-worker"]);
    }

    #[test]
    fn the_queue_functions_are_fed_by_their_queues() {
        let f = template().sqs_functions();
        let find = |b: &str| f.iter().find(|x| x.binary == b).cloned().unwrap();
        assert_eq!(find("import-planner").queue, "PlanQueue");
        let worker = find("import-worker");
        assert_eq!(
            (worker.queue.as_str(), worker.batch_size, worker.max_concurrency),
            ("ChunkQueue", 1, 2)
        );
        let bulk = find("bulk-worker");
        assert_eq!((bulk.queue.as_str(), bulk.batch_size), ("BulkQueue", 1));
        let send = find("send-worker");
        assert_eq!(
            (send.queue.as_str(), send.batch_size, send.max_concurrency),
            ("SendQueue", 1, 2)
        );
        let ses = find("ses-events");
        assert_eq!((ses.queue.as_str(), ses.batch_size), ("SesEventsQueue", 10));
    }

    #[test]
    fn the_scheduler_tick_reaches_the_send_queue_every_minute() {
        let s = template().schedules().unwrap();
        let tick = s.iter().find(|s| s.id == "SchedulerTick").unwrap();
        assert_eq!((tick.queue.as_str(), tick.every.as_secs()), ("SendQueue", 60));
        assert!(tick.input.contains("<aws.scheduler.scheduled-time>"));
        assert_eq!(rate("rate(5 minutes)").map(|d| d.as_secs()), Some(300));
        assert_eq!(rate("cron(0 12 * * ? *)"), None);
        assert_eq!(rate("rate(0 minutes)"), None);
    }

    #[test]
    fn unresolvable_references_are_reported() {
        let t = template();
        assert!(t
            .function_env("ApiFunction", &Stack::default(), &HashMap::new())
            .is_err());
    }
}
