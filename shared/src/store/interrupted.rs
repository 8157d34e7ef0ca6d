//! Jobs left unfinished in a table that outlived the queues and files they
//! depend on: the local stack keeps DynamoDB on disk, but its S3 and SQS are
//! in memory, so after a restart those jobs can never go on. Found with a
//! Scan, so for the local runner at start-up only, never on AWS.

use aws_sdk_dynamodb::types::AttributeValue;

use super::{get_s, sdk_error, Item, Store};
use crate::Result;

/// A job that was pending or running.
#[derive(Debug, PartialEq, Eq)]
pub enum Unfinished {
    Import {
        pid: String,
        id: String,
    },
    Bulk {
        pid: String,
        id: String,
    },
    /// A broadcast that was pending or sending.
    Broadcast {
        pid: String,
        id: String,
    },
    Export {
        pid: String,
        id: String,
    },
}

/// `P#{pid}#IMPORT#{id}` / `BULK` / `BCAST` / `EXPORT` → the job.
fn job_of(item: &Item) -> Option<Unfinished> {
    let pk = get_s(item, "PK")?;
    let rest = pk.strip_prefix("P#")?;
    let (pid, kind_id) = rest.split_once('#')?;
    let (kind, id) = kind_id.split_once('#')?;
    let (pid, id) = (pid.to_string(), id.to_string());
    match (kind, get_s(item, "SK")?) {
        ("IMPORT", "IMPORT") => Some(Unfinished::Import { pid, id }),
        ("BULK", "BULK") => Some(Unfinished::Bulk { pid, id }),
        ("BCAST", "BCAST") => Some(Unfinished::Broadcast { pid, id }),
        ("EXPORT", "EXPORT") => Some(Unfinished::Export { pid, id }),
        _ => None,
    }
}

impl Store {
    pub async fn unfinished_jobs(&self) -> Result<Vec<Unfinished>> {
        let mut out = Vec::new();
        let mut start: Option<Item> = None;
        loop {
            let page = self
                .client
                .scan()
                .table_name(&self.table)
                .filter_expression(
                    "SK IN (:import, :bulk, :bcast, :export) AND #state IN (:pending, :running, :sending)",
                )
                .projection_expression("PK, SK")
                .expression_attribute_names("#state", "state")
                .expression_attribute_values(":import", AttributeValue::S("IMPORT".into()))
                .expression_attribute_values(":bulk", AttributeValue::S("BULK".into()))
                .expression_attribute_values(":bcast", AttributeValue::S("BCAST".into()))
                .expression_attribute_values(":export", AttributeValue::S("EXPORT".into()))
                .expression_attribute_values(":sending", AttributeValue::S("sending".into()))
                .expression_attribute_values(":pending", AttributeValue::S("pending".into()))
                .expression_attribute_values(":running", AttributeValue::S("running".into()))
                .set_exclusive_start_key(start)
                .send()
                .await
                .map_err(sdk_error)?;
            out.extend(page.items().iter().filter_map(job_of));
            match page.last_evaluated_key {
                Some(k) if !k.is_empty() => start = Some(k),
                _ => return Ok(out),
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn item(pk: &str, sk: &str) -> Item {
        Item::from([
            ("PK".to_string(), AttributeValue::S(pk.into())),
            ("SK".to_string(), AttributeValue::S(sk.into())),
        ])
    }

    #[test]
    fn job_items_name_their_job() {
        assert_eq!(
            job_of(&item("P#p1#IMPORT#j1", "IMPORT")),
            Some(Unfinished::Import {
                pid: "p1".into(),
                id: "j1".into()
            })
        );
        assert_eq!(
            job_of(&item("P#p1#BULK#j2", "BULK")),
            Some(Unfinished::Bulk {
                pid: "p1".into(),
                id: "j2".into()
            })
        );
        assert_eq!(
            job_of(&item("P#p1#BCAST#b1", "BCAST")),
            Some(Unfinished::Broadcast {
                pid: "p1".into(),
                id: "b1".into()
            })
        );
        assert_eq!(job_of(&item("P#p1#IMPORT#j1", "CHUNK#000001")), None);
        assert_eq!(job_of(&item("P#p1#C#x", "IMPORT")), None);
    }
}
