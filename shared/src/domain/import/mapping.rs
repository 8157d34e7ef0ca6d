//! Which column feeds which contact field: explicit, or guessed from the
//! header by synonyms.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use crate::{Error, Result};

/// A contact field a column can feed.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Field {
    Email,
    FirstName,
    LastName,
    FullName,
    Phone,
    CountryCode,
    Company,
    AddressLine1,
    AddressLine2,
    City,
    State,
    PostalCode,
    Country,
    Type,
    Tags,
    Eid,
    /// A custom label with this key.
    Label(String),
    Ignore,
}

impl Field {
    const NAMED: [(&'static str, Field); 17] = [
        ("email", Field::Email),
        ("first_name", Field::FirstName),
        ("last_name", Field::LastName),
        ("full_name", Field::FullName),
        ("phone", Field::Phone),
        ("country_code", Field::CountryCode),
        ("company", Field::Company),
        ("address_line1", Field::AddressLine1),
        ("address_line2", Field::AddressLine2),
        ("city", Field::City),
        ("state", Field::State),
        ("postal_code", Field::PostalCode),
        ("country", Field::Country),
        ("type", Field::Type),
        ("tags", Field::Tags),
        ("eid", Field::Eid),
        ("ignore", Field::Ignore),
    ];

    /// `email`, `first_name`, …, `label:{key}`, `label` (the header is the key), `ignore`.
    pub fn parse(name: &str, header: &str) -> Option<Field> {
        let name = name.trim();
        if name == "label" {
            return label_key(header).map(Field::Label);
        }
        if let Some(key) = name.strip_prefix("label:") {
            return label_key(key).map(Field::Label);
        }
        Self::NAMED.iter().find(|(n, _)| *n == name).map(|(_, f)| f.clone())
    }

    pub fn name(&self) -> String {
        match self {
            Field::Label(k) => format!("label:{k}"),
            other => Self::NAMED
                .iter()
                .find(|(_, f)| f == other)
                .map_or_else(String::new, |(n, _)| n.to_string()),
        }
    }
}

fn label_key(raw: &str) -> Option<String> {
    let key = raw.split_whitespace().collect::<Vec<_>>().join(" ");
    (!key.is_empty() && key.len() <= 64).then_some(key)
}

/// Header words, lower-cased with everything but letters and digits removed.
fn squash(header: &str) -> String {
    header
        .chars()
        .filter(|c| c.is_alphanumeric())
        .flat_map(char::to_lowercase)
        .collect()
}

/// The field a header names, by synonyms.
pub fn guess(header: &str) -> Option<Field> {
    let h = squash(header);
    let f = match h.as_str() {
        "email" | "emailaddress" | "mail" | "emails" | "emailid" | "primaryemail" | "workemail" => Field::Email,
        "firstname" | "givenname" | "first" | "forename" | "fname" => Field::FirstName,
        "lastname" | "surname" | "familyname" | "last" | "lname" => Field::LastName,
        "fullname" | "name" | "contactname" | "displayname" => Field::FullName,
        "phone" | "mobile" | "cell" | "phonenumber" | "mobilephone" | "cellphone" | "mobilenumber" | "telephone"
        | "tel" | "cellnumber" | "phoneno" => Field::Phone,
        "countrycode" | "dialcode" | "callingcode" | "phonecountrycode" => Field::CountryCode,
        "company" | "organization" | "organisation" | "companyname" | "org" | "employer" => Field::Company,
        "address" | "addressline1" | "address1" | "street" | "streetaddress" | "addressline" => Field::AddressLine1,
        "addressline2" | "address2" | "apt" | "suite" => Field::AddressLine2,
        "city" | "town" | "locality" => Field::City,
        "state" | "province" | "region" | "stateprovince" | "county" => Field::State,
        "zip" | "zipcode" | "postalcode" | "postcode" | "postal" => Field::PostalCode,
        "country" | "countryname" => Field::Country,
        "type" | "contacttype" => Field::Type,
        "tags" | "tag" | "labels" => Field::Tags,
        "externalid" | "eid" | "crmid" | "customerid" | "externalidentifier" => Field::Eid,
        _ => return None,
    };
    Some(f)
}

/// What a caller may send: header (or 0-based column number) → field name.
pub type MappingInput = BTreeMap<String, String>;

/// One entry per column: the field it feeds, if any.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct Mapping(pub Vec<Option<String>>);

/// The mapping for these headers: the caller's entries where given, else the
/// synonyms; with `unmapped_as_labels`, other columns become labels.
pub fn resolve(headers: &[String], explicit: &MappingInput, unmapped_as_labels: bool) -> Result<Mapping> {
    for key in explicit.keys() {
        let known = headers.iter().any(|h| h.trim().eq_ignore_ascii_case(key.trim()))
            || key.parse::<usize>().is_ok_and(|i| i < headers.len());
        if !known {
            return Err(Error::invalid("mapping", format!("the file has no column \"{key}\"")));
        }
    }
    // The caller's entries first, so a guess never takes a field they gave another column.
    let mut columns: Vec<Option<Field>> = Vec::with_capacity(headers.len());
    let mut used = Vec::new();
    for (i, header) in headers.iter().enumerate() {
        let given = explicit
            .iter()
            .find(|(k, _)| k.trim().eq_ignore_ascii_case(header.trim()) || k.parse::<usize>() == Ok(i))
            .map(|(_, v)| v);
        let field = match given {
            Some(name) => Some(Field::parse(name, header).ok_or_else(|| {
                Error::invalid(
                    "mapping",
                    format!("\"{name}\" (for column \"{header}\") is not a field; use email, first_name, last_name, full_name, phone, country_code, company, address_line1, address_line2, city, state, postal_code, country, type, tags, eid, label, label:KEY or ignore"),
                )
            })?),
            None => None,
        };
        if let Some(f) = &field {
            if !matches!(f, Field::Label(_) | Field::Ignore) && used.contains(f) {
                return Err(Error::invalid(
                    "mapping",
                    format!("two columns are mapped to {}", f.name()),
                ));
            }
            used.push(f.clone());
        }
        columns.push(field.or(given.map(|_| Field::Ignore)));
    }
    for (header, column) in headers.iter().zip(columns.iter_mut()) {
        if column.is_some() {
            continue;
        }
        let guessed = guess(header).filter(|f| !used.contains(f));
        if let Some(f) = &guessed {
            used.push(f.clone());
        }
        *column = guessed.or_else(|| {
            unmapped_as_labels
                .then(|| label_key(header).map(Field::Label))
                .flatten()
        });
    }
    let columns = columns
        .into_iter()
        .map(|f| f.filter(|f| *f != Field::Ignore).map(|f| f.name()))
        .collect();
    Ok(Mapping(columns))
}

impl Mapping {
    pub fn fields(&self) -> Vec<Option<Field>> {
        self.0
            .iter()
            .map(|f| f.as_deref().and_then(|n| Field::parse(n, "")))
            .collect()
    }

    pub fn has_identity(&self) -> bool {
        self.fields()
            .iter()
            .any(|f| matches!(f, Some(Field::Email | Field::Phone | Field::Eid)))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn h(names: &[&str]) -> Vec<String> {
        names.iter().map(|s| s.to_string()).collect()
    }

    #[test]
    fn synonyms_map_common_headers() {
        let m = resolve(
            &h(&[
                "E-mail",
                "Given Name",
                "Surname",
                "Mobile",
                "Organization",
                "Zip Code",
                "Province",
                "External ID",
                "Notes",
            ]),
            &MappingInput::new(),
            false,
        )
        .unwrap();
        assert_eq!(
            m.0,
            vec![
                Some("email".into()),
                Some("first_name".into()),
                Some("last_name".into()),
                Some("phone".into()),
                Some("company".into()),
                Some("postal_code".into()),
                Some("state".into()),
                Some("eid".into()),
                None
            ]
        );
        for header in ["email", "Email Address", "EMAIL"] {
            assert_eq!(guess(header), Some(Field::Email), "{header}");
        }
        for header in ["Full Name", "name"] {
            assert_eq!(guess(header), Some(Field::FullName), "{header}");
        }
        for header in ["phone", "Cell", "Phone Number"] {
            assert_eq!(guess(header), Some(Field::Phone), "{header}");
        }
    }

    #[test]
    fn explicit_entries_win_and_unmapped_columns_can_be_labels() {
        let explicit = MappingInput::from([
            ("Contact".to_string(), "email".to_string()),
            ("email".to_string(), "ignore".to_string()),
            ("2".to_string(), "label:Plan".to_string()),
        ]);
        let m = resolve(&h(&["Contact", "Email", "P", "Shoe size"]), &explicit, true).unwrap();
        assert_eq!(
            m.0,
            vec![
                Some("email".into()),
                None,
                Some("label:Plan".into()),
                Some("label:Shoe size".into())
            ]
        );
        assert!(m.has_identity());
    }

    #[test]
    fn bad_mappings_are_refused_with_the_reason() {
        let err = |e: Error| e.to_string();
        let headers = h(&["email", "x"]);
        let bad = MappingInput::from([("x".to_string(), "shoe".to_string())]);
        assert!(err(resolve(&headers, &bad, false).unwrap_err()).contains("not a field"));
        let missing = MappingInput::from([("nope".to_string(), "email".to_string())]);
        assert!(err(resolve(&headers, &missing, false).unwrap_err()).contains("no column"));
        let twice = MappingInput::from([
            ("x".to_string(), "email".to_string()),
            ("email".to_string(), "email".to_string()),
        ]);
        assert!(err(resolve(&headers, &twice, false).unwrap_err()).contains("two columns"));
    }
}
