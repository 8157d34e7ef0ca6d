//! Tags: project-scoped labels for segmentation, unique by name ignoring case.

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use super::normalize;
use crate::{Error, Result};

#[derive(Clone, Debug, Serialize, Deserialize, ToSchema)]
pub struct Tag {
    pub id: String,
    pub name: String,
    /// `#rrggbb`.
    pub color: Option<String>,
    pub description: Option<String>,
    /// Contacts carrying the tag, exact.
    #[serde(default)]
    pub contact_count: i64,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
}

#[derive(Debug, Default, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct TagInput {
    pub name: Option<String>,
    /// `#rgb` or `#rrggbb`.
    pub color: Option<String>,
    pub description: Option<String>,
}

/// The key a tag name is unique by.
pub fn name_key(name: &str) -> String {
    name.to_lowercase()
}

pub fn tag_name(raw: &str) -> Result<String> {
    let name = normalize::text(raw).ok_or_else(|| Error::invalid("name", "a tag name cannot be empty"))?;
    if name.chars().count() > 64 {
        return Err(Error::invalid("name", "a tag name is at most 64 characters"));
    }
    Ok(name)
}

/// `#RGB` / `#RRGGBB` → `#rrggbb`.
pub fn color(raw: &str) -> Result<String> {
    let hex = raw.trim().strip_prefix('#').unwrap_or("").to_ascii_lowercase();
    let bad = || Error::invalid("color", "color is #rgb or #rrggbb");
    if !hex.chars().all(|c| c.is_ascii_hexdigit()) {
        return Err(bad());
    }
    match hex.len() {
        6 => Ok(format!("#{hex}")),
        3 => Ok(format!("#{}", hex.chars().flat_map(|c| [c, c]).collect::<String>())),
        _ => Err(bad()),
    }
}

impl TagInput {
    /// Validated; `require_name` for creation.
    pub fn validated(self, require_name: bool) -> Result<TagInput> {
        let name = match self.name {
            Some(n) => Some(tag_name(&n)?),
            None if require_name => return Err(Error::invalid("name", "name is required")),
            None => None,
        };
        let color = self.color.map(|c| color(&c)).transpose()?;
        let description = self.description.map(|d| normalize::text(&d).unwrap_or_default());
        if description.as_ref().is_some_and(|d| d.chars().count() > 500) {
            return Err(Error::invalid("description", "description is at most 500 characters"));
        }
        Ok(TagInput {
            name,
            color,
            description,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn colors_and_names_are_normalized() {
        assert_eq!(color("#ABC").unwrap(), "#aabbcc");
        assert_eq!(color("#12ab9F").unwrap(), "#12ab9f");
        for bad in ["red", "#12", "#gggggg", "123456"] {
            assert!(color(bad).is_err(), "{bad}");
        }
        assert_eq!(tag_name("  Early   bird ").unwrap(), "Early bird");
        assert!(tag_name(" ").is_err());
        assert_eq!(name_key("VIP"), name_key("vip"));
    }
}
