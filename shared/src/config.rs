//! Typed configuration, read once from the environment at start-up.

use crate::{Error, Result};

#[derive(Clone, Debug)]
pub struct Config {
    /// The single DynamoDB table (single-table design).
    pub table_name: String,
    /// Operator token for `POST /v1/projects` and project administration.
    pub admin_token: String,
}

pub const DEFAULT_ADMIN_TOKEN: &str = "dev-admin-token";

impl Config {
    pub fn from_env() -> Result<Self> {
        Self::from_vars(|name| std::env::var(name).ok())
    }

    /// From any source of variables (the local runner resolves them from `template.yaml`).
    pub fn from_vars(var: impl Fn(&str) -> Option<String>) -> Result<Self> {
        let table_name = var("TABLE_NAME").ok_or_else(|| Error::internal("TABLE_NAME is not set"))?;
        let admin_token = var("ADMIN_TOKEN").unwrap_or_else(|| DEFAULT_ADMIN_TOKEN.to_string());
        if admin_token.len() < 8 {
            return Err(Error::internal("ADMIN_TOKEN must be at least 8 characters"));
        }
        Ok(Config {
            table_name,
            admin_token,
        })
    }
}
