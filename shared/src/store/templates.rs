//! Message templates: one partition per project (`P#{pid}#TEMPLATES`,
//! `T#{id}`); a project has few, read whole.

use super::{from_item, key, sdk_error, Item, Store};
use crate::domain::template::Template;
use crate::{Error, Result};

fn templates_pk(pid: &str) -> String {
    format!("P#{pid}#TEMPLATES")
}

impl Store {
    pub async fn put_template(&self, pid: &str, t: &Template) -> Result<()> {
        let mut item: Item = serde_dynamo::to_item(t).map_err(Error::internal)?;
        item.extend(key(templates_pk(pid), &format!("T#{}", t.id)));
        self.put_one(item).await
    }

    pub async fn get_template(&self, pid: &str, id: &str) -> Result<Option<Template>> {
        self.get_one(key(templates_pk(pid), &format!("T#{id}")))
            .await?
            .map(from_item)
            .transpose()
    }

    pub async fn all_templates(&self, pid: &str) -> Result<Vec<Template>> {
        self.query_all(templates_pk(pid), Some("T#"))
            .await?
            .into_iter()
            .map(from_item)
            .collect()
    }

    pub async fn delete_template(&self, pid: &str, id: &str) -> Result<()> {
        self.client
            .delete_item()
            .table_name(&self.table)
            .set_key(Some(key(templates_pk(pid), &format!("T#{id}"))))
            .send()
            .await
            .map_err(sdk_error)?;
        Ok(())
    }
}
