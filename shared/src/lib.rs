//! Roster's core: the domain rules, the use cases that apply them, and the
//! adapters that store their results in AWS. Every function crate is a thin
//! entry point over this library.
//!
//! - `domain`: pure rules (normalization, contact merge, keys). No I/O.
//! - `usecases`: one function per thing a caller can do; validates, then
//!   drives the store.
//! - `store`: the only place that talks to DynamoDB (key layout documented there).
//! - `files` (S3), `queue` (SQS) and `mailer` (SESv2): the other AWS adapters;
//!   `twilio`: the SMS provider's REST API.
//! - `config`, `telemetry`, `aws`: process set-up shared by every `main`.

pub mod aws;
pub mod config;
pub mod domain;
pub mod error;
pub mod files;
pub mod mailer;
pub mod queue;
pub mod store;
pub mod telemetry;
pub mod twilio;
pub mod usecases;
pub mod workers;

pub use config::Config;
pub use error::{Error, Result};
