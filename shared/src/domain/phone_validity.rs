//! Whether a parsed phone number is one its country gives out: the decision
//! `phonenumber::is_valid` makes, from the same metadata, in the same steps,
//! with each of the metadata's patterns compiled once.
//!
//! Why not call `phonenumber::is_valid`: it looks every pattern up in one
//! locked LRU cache keyed by the pattern's text, so each number hashes
//! patterns hundreds of bytes long a dozen times or more. That was two
//! thirds of the time an import spent on a phone (4.4 µs of 6.6 µs).
//! The tests hold this equal to `phonenumber::is_valid`.

use std::collections::HashMap;
use std::sync::{LazyLock, OnceLock};

use phonenumber::metadata::{Descriptor, Metadata, DATABASE};
use regex::{Regex, RegexBuilder};

/// Whether the number `+{code}{national}` is valid; `national` as
/// `NationalNumber` displays it (Italian leading zeros included).
pub fn is_valid(code: u16, national: &str) -> bool {
    CODES
        .get(&code)
        .map(|cell| cell.get_or_init(|| regions_of(code)))
        .is_some_and(|regions| Regions::is_valid(regions, national))
}

/// Every calling code, its regions compiled the first time a number uses it
/// (code 1 alone has 25 regions of about ten patterns each). Codes are
/// looked up one by one: `DATABASE.iter()` yields one entry per region id,
/// and the non-geographic codes (800, 808, 870, …) all share the id `001`.
static CODES: LazyLock<HashMap<u16, OnceLock<Regions>>> = LazyLock::new(|| {
    (1..=MAX_CODE)
        .filter(|code| DATABASE.region(code).is_some())
        .map(|code| (code, OnceLock::new()))
        .collect()
});

/// Calling codes have at most three digits.
const MAX_CODE: u16 = 999;

enum Regions {
    /// The code belongs to one region (or to one non-geographic entity).
    One(Option<Region>),
    /// A shared code (1, 7, 44, …): the regions in the metadata's order.
    Shared(Vec<Region>),
}

impl Regions {
    /// `validator::source_for`, then `number_type(..) != Unknown` on the region it finds.
    fn is_valid(&self, national: &str) -> bool {
        match self {
            Regions::One(region) => region.as_ref().is_some_and(|r| r.has_type(national)),
            Regions::Shared(regions) => {
                for region in regions {
                    match &region.leading_digits {
                        Some(leading) => {
                            if leading.is_match(national) {
                                return region.has_type(national);
                            }
                        }
                        None => {
                            if region.has_type(national) {
                                return true;
                            }
                        }
                    }
                }
                false
            }
        }
    }
}

fn regions_of(code: u16) -> Regions {
    let ids = DATABASE.region(&code).unwrap_or_default();
    if let [id] = ids[..] {
        let meta = if id == "001" {
            DATABASE.by_code(&code).and_then(|m| m.into_iter().next())
        } else if id.parse::<phonenumber::country::Id>().is_ok() {
            DATABASE.by_id(id)
        } else {
            None
        };
        return Regions::One(meta.map(Region::new));
    }
    Regions::Shared(
        ids.iter()
            .filter_map(|id| DATABASE.by_id(*id))
            .map(Region::new)
            .collect(),
    )
}

struct Region {
    leading_digits: Option<Regex>,
    general: Pattern,
    /// The patterns `validator::number_type` tries; a number is of a type when one matches.
    types: Vec<Pattern>,
}

impl Region {
    fn new(meta: &Metadata) -> Self {
        let d = meta.descriptors();
        let types = [
            d.premium_rate(),
            d.toll_free(),
            d.shared_cost(),
            d.voip(),
            d.personal_number(),
            d.pager(),
            d.uan(),
            d.voicemail(),
            d.fixed_line(),
            d.mobile(),
        ];
        Region {
            leading_digits: meta.leading_digits().map(|r| at_start(r.as_str())),
            general: Pattern::new(d.general()),
            types: types.into_iter().flatten().map(Pattern::new).collect(),
        }
    }

    /// `validator::number_type(meta, national) != Type::Unknown`.
    fn has_type(&self, national: &str) -> bool {
        self.general.is_match(national) && self.types.iter().any(|t| t.is_match(national))
    }
}

struct Pattern {
    regex: Regex,
    lengths: Vec<u16>,
}

impl Pattern {
    fn new(d: &Descriptor) -> Self {
        Pattern {
            regex: at_start(d.national_number().as_str()),
            lengths: d.possible_length().to_vec(),
        }
    }

    /// `Descriptor::is_match`: a length the descriptor allows, and a match at the start.
    fn is_match(&self, national: &str) -> bool {
        (self.lengths.is_empty() || self.lengths.contains(&(national.len() as u16))) && self.regex.is_match(national)
    }
}

/// The crate asks whether a pattern's first match starts at 0; some match
/// does exactly when the pattern anchored at the start matches, which the
/// regex engine answers without searching the rest of the text.
/// Built as the metadata database builds its patterns (white space ignored,
/// everything else as `regex_cache`'s defaults; the closing parenthesis on a
/// line of its own, past any `#` comment). The patterns ship inside the
/// crate and compiled there, so a failure here is a broken build.
fn at_start(source: &str) -> Regex {
    RegexBuilder::new(&format!("^(?:{source}\n)"))
        .ignore_whitespace(true)
        .size_limit(10 * (1 << 20))
        .dfa_size_limit(2 * (1 << 20))
        .build()
        .expect("phonenumber's metadata patterns compile")
}

#[cfg(test)]
mod tests {
    use super::*;
    use phonenumber::PhoneNumber;
    use proptest::prelude::*;

    fn both(number: &PhoneNumber) -> (bool, bool) {
        let national = number.national().to_string();
        (
            is_valid(number.code().value(), &national),
            phonenumber::is_valid(number),
        )
    }

    /// Every region's example numbers, and each one a digit shorter, longer
    /// and with its first digit changed: valid and invalid numbers of every
    /// country, shared codes included.
    #[test]
    fn agrees_with_phonenumber_on_every_regions_examples() {
        let (mut valid, mut invalid) = (0, 0);
        for meta in codes()
            .into_iter()
            .flat_map(|code| DATABASE.by_code(&code).unwrap_or_default())
        {
            let d = meta.descriptors();
            let examples = [
                Some(d.general()),
                d.fixed_line(),
                d.mobile(),
                d.toll_free(),
                d.premium_rate(),
                d.shared_cost(),
                d.personal_number(),
                d.voip(),
                d.pager(),
                d.uan(),
                d.voicemail(),
            ]
            .into_iter()
            .flatten()
            .filter_map(Descriptor::example);
            for example in examples {
                let first = example.chars().next().and_then(|c| c.to_digit(10)).unwrap_or(0);
                for national in [
                    example.to_string(),
                    example[..example.len() - 1].to_string(),
                    format!("{example}7"),
                    format!("{}{}", (first + 1) % 10, &example[1..]),
                ] {
                    let Ok(number) = phonenumber::parse(None, format!("+{}{national}", meta.country_code())) else {
                        continue;
                    };
                    let (ours, theirs) = both(&number);
                    assert_eq!(ours, theirs, "+{} {national}", meta.country_code());
                    *(if ours { &mut valid } else { &mut invalid }) += 1;
                }
            }
        }
        assert!(
            valid > 1_000 && invalid > 1_000,
            "{valid} valid and {invalid} invalid numbers checked"
        );
        println!("{valid} valid and {invalid} invalid numbers checked");
    }

    fn codes() -> Vec<u16> {
        let mut codes: Vec<u16> = CODES.keys().copied().collect();
        codes.sort_unstable();
        codes
    }

    proptest! {
        #[test]
        fn agrees_with_phonenumber_on_any_digits(
            code in prop::sample::select(codes()),
            national in "[0-9]{2,17}",
        ) {
            if let Ok(number) = phonenumber::parse(None, format!("+{code}{national}")) {
                let (ours, theirs) = both(&number);
                prop_assert_eq!(ours, theirs);
            }
        }
    }
}
