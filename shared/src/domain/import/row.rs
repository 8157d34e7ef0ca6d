//! One row of a file → the contact input it stands for, or why it cannot be.

use std::collections::BTreeMap;

use super::mapping::Field;
use super::ImportOptions;
use crate::domain::contact::{Address, ContactInput, ContactType};
use crate::domain::normalize;

/// What a row asks for, before validation against the contact rules.
#[derive(Debug, Default)]
pub struct RowInput {
    pub input: ContactInput,
    /// Added to the contact's tags (never replacing them).
    pub tags: Vec<String>,
    /// Merged into the contact's labels.
    pub labels: BTreeMap<String, String>,
    /// The country national phone numbers of this row belong to.
    pub country: String,
}

/// A row the file cannot give: the reason, in words for the error report.
/// `skip`: nothing to import (no identity), as opposed to bad data.
#[derive(Debug, PartialEq)]
pub struct RowError {
    pub reason: String,
    pub skip: bool,
}

fn failed(reason: String) -> RowError {
    RowError { reason, skip: false }
}

pub const NO_IDENTITY: &str = "has no email, phone or external id";

/// Cells in column order; `fields` is the mapping of each column.
pub fn to_input(
    fields: &[Option<Field>],
    cells: &csv::StringRecord,
    opts: &ImportOptions,
    default_country: &str,
) -> Result<RowInput, RowError> {
    if cells.len() != fields.len() {
        return Err(failed(format!(
            "has {} fields where the header has {}",
            cells.len(),
            fields.len()
        )));
    }
    let mut row = RowInput {
        country: opts
            .default_country
            .clone()
            .unwrap_or_else(|| default_country.to_string()),
        ..RowInput::default()
    };
    let input = &mut row.input;
    let mut address = Address::default();
    let mut address_seen = false;
    let mut phone = None;
    let mut country_code = None;
    for (field, raw) in fields.iter().zip(cells) {
        let Some(field) = field else { continue };
        let value = normalize::text(raw);
        let blank = value.is_none();
        if blank && !opts.blank_overwrites {
            continue;
        }
        // A blank cell clears the field (blank_overwrites), never an identity.
        let set = |v: Option<String>| Some(v);
        match field {
            Field::Email => {
                if !blank {
                    input.email = set(value);
                }
            }
            Field::Eid => {
                if !blank {
                    input.eid = set(value);
                }
            }
            Field::Phone => phone = value,
            Field::CountryCode => country_code = value,
            Field::FirstName => input.first_name = set(value),
            Field::LastName => input.last_name = set(value),
            Field::FullName => input.full_name = set(value),
            Field::Company => input.company = set(value),
            Field::AddressLine1 => (address.line1, address_seen) = (value, true),
            Field::AddressLine2 => (address.line2, address_seen) = (value, true),
            Field::City => (address.city, address_seen) = (value, true),
            Field::State => (address.state, address_seen) = (value, true),
            Field::PostalCode => (address.postal_code, address_seen) = (value, true),
            Field::Country => (address.country, address_seen) = (value, true),
            Field::Type => {
                if let Some(v) = value {
                    input.contact_type = Some(Some(contact_type(&v)?));
                }
            }
            Field::Tags => {
                if let Some(v) = value {
                    row.tags.extend(split_list(&v));
                }
            }
            Field::Label(key) => {
                if let Some(v) = value {
                    row.labels.insert(key.clone(), v);
                }
            }
            Field::Ignore => {}
        }
    }
    if let Some(cc) = country_code {
        row.country = phone_country(&cc).ok_or_else(|| failed(format!("country code \"{cc}\" is not one we know")))?;
    }
    if let Some(p) = phone {
        input.phone = Some(Some(p));
    }
    if address_seen {
        input.address = Some(Some(address));
    }
    if input.contact_type.is_none() {
        input.contact_type = opts.contact_type.map(Some);
    }
    row.tags.extend(opts.tag.iter().cloned());
    if input.email.is_none() && input.phone.is_none() && input.eid.is_none() {
        return Err(RowError {
            reason: NO_IDENTITY.to_string(),
            skip: true,
        });
    }
    Ok(row)
}

fn contact_type(raw: &str) -> Result<ContactType, RowError> {
    match raw.to_ascii_lowercase().as_str() {
        "lead" => Ok(ContactType::Lead),
        "customer" => Ok(ContactType::Customer),
        "employee" => Ok(ContactType::Employee),
        _ => Err(failed(format!("type \"{raw}\" is not lead, customer or employee"))),
    }
}

/// Several values in one cell: separated by commas, semicolons or pipes.
fn split_list(raw: &str) -> impl Iterator<Item = String> + '_ {
    raw.split([',', ';', '|']).filter_map(normalize::text)
}

/// The region whose national numbers a country-code cell stands for:
/// an ISO code (`GB`) or a calling code (`44`, `+44`, `0044`).
pub fn phone_country(raw: &str) -> Option<String> {
    let raw = raw.trim();
    if let Ok(code) = normalize::country(raw) {
        return Some(code);
    }
    let digits = raw.trim_start_matches('+').trim_start_matches("00");
    let code: u16 = digits.parse().ok()?;
    normalize::region_of_calling_code(code)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::import::mapping::Field as F;

    fn opts() -> ImportOptions {
        ImportOptions::default()
    }

    fn record<const N: usize>(cells: [&str; N]) -> csv::StringRecord {
        csv::StringRecord::from(cells.to_vec())
    }

    #[test]
    fn a_row_becomes_an_input_with_its_tags_and_labels() {
        let fields = vec![
            Some(F::Email),
            Some(F::FullName),
            Some(F::Tags),
            Some(F::Label("Plan".into())),
            None,
        ];
        let mut o = opts();
        o.tag = Some("Imported".into());
        let row = to_input(
            &fields,
            &record(["A@B.io", "Ada  Lovelace", "vip; beta", "Pro", "x"]),
            &o,
            "US",
        )
        .unwrap();
        assert_eq!(row.input.email, Some(Some("A@B.io".into())));
        assert_eq!(row.input.full_name, Some(Some("Ada Lovelace".into())));
        assert_eq!(row.tags, vec!["vip", "beta", "Imported"]);
        assert_eq!(row.labels["Plan"], "Pro");
    }

    #[test]
    fn blank_cells_leave_data_alone_unless_told() {
        let fields = vec![Some(F::Email), Some(F::Company), Some(F::City)];
        let row = to_input(&fields, &record(["a@b.io", " ", ""]), &opts(), "US").unwrap();
        assert_eq!(row.input.company, None);
        assert!(row.input.address.is_none());
        let mut o = opts();
        o.blank_overwrites = true;
        let row = to_input(&fields, &record(["a@b.io", " ", ""]), &o, "US").unwrap();
        assert_eq!(row.input.company, Some(None));
        assert_eq!(row.input.address, Some(Some(Address::default())));
    }

    #[test]
    fn country_codes_pick_the_region_of_national_numbers() {
        assert_eq!(phone_country("44").as_deref(), Some("GB"));
        assert_eq!(phone_country("+1").as_deref(), Some("US"));
        assert_eq!(phone_country("0033").as_deref(), Some("FR"));
        assert_eq!(phone_country("de").as_deref(), Some("DE"));
        assert_eq!(phone_country("999"), None);
        let fields = vec![Some(F::Phone), Some(F::CountryCode)];
        let row = to_input(&fields, &record(["07911 123456", "44"]), &opts(), "US").unwrap();
        assert_eq!(row.country, "GB");
    }

    #[test]
    fn bad_rows_say_why() {
        let fields = vec![Some(F::Email), Some(F::Type)];
        let ragged = to_input(&fields, &record(["a@b.io"]), &opts(), "US").unwrap_err();
        assert!(!ragged.skip && ragged.reason.contains("has 1 fields"));
        let typed = to_input(&fields, &record(["a@b.io", "vendor"]), &opts(), "US").unwrap_err();
        assert!(typed.reason.contains("vendor"));
        let none = to_input(&fields, &record(["", "lead"]), &opts(), "US").unwrap_err();
        assert!(none.skip && none.reason.contains("no email"));
    }
}
