//! `normalize::phone` against Google's libphonenumber on its own example
//! numbers: `fixtures/phones.tsv`, written by `fixtures/phones.py` from the
//! Python port `phonenumbers` (pinned in infra/requirements.txt). Every
//! region's example number of every type, spelled as people type them, under
//! the default countries US, GB, DE and its own region, plus mutated
//! (mostly invalid) variants.

use std::collections::BTreeMap;

use roster::domain::normalize;

const CORPUS: &str = include_str!("fixtures/phones.tsv");

/// Rows where Roster knowingly differs from libphonenumber, with the reason.
/// Valid numbers may not appear here: those must agree.
const KNOWN: &[(&str, &str, &str)] = &[];

#[derive(Default)]
struct Tally {
    rows: usize,
    agree: usize,
    refused: usize,
    changed: usize,
    accepted: usize,
}

#[test]
fn phones_agree_with_libphonenumber() {
    let mut by_spelling: BTreeMap<(&str, &str), Tally> = BTreeMap::new();
    let mut valid_misses = Vec::new();
    let mut invalid_misses = Vec::new();
    for line in CORPUS.lines().filter(|l| !l.starts_with('#')) {
        let [default, input, expected, spelling] = line.split('\t').collect::<Vec<_>>()[..] else {
            panic!("bad corpus line {line:?}");
        };
        let expected = (expected != "-").then_some(expected);
        let got = normalize::phone(input, default).ok();
        let class = if expected.is_some() { "valid" } else { "invalid" };
        let tally = by_spelling.entry((class, spelling)).or_default();
        tally.rows += 1;
        if got.as_deref() == expected {
            tally.agree += 1;
            continue;
        }
        if KNOWN.iter().any(|&(d, i, _)| d == default && i == input) {
            tally.agree += 1;
            continue;
        }
        let miss = format!("{default}\t{input:?}\texpected {expected:?}\tgot {got:?}");
        match (expected, got) {
            (Some(_), None) => {
                tally.refused += 1;
                valid_misses.push(miss);
            }
            (Some(_), Some(_)) => {
                tally.changed += 1;
                valid_misses.push(miss);
            }
            _ => {
                tally.accepted += 1;
                invalid_misses.push(miss);
            }
        }
    }

    let mut totals: BTreeMap<&str, Tally> = BTreeMap::new();
    println!("class\tspelling\trows\tagree\trefused\tchanged\taccepted");
    for ((class, spelling), t) in &by_spelling {
        println!(
            "{class}\t{spelling}\t{}\t{}\t{}\t{}\t{}",
            t.rows, t.agree, t.refused, t.changed, t.accepted
        );
        let total = totals.entry(class).or_default();
        total.rows += t.rows;
        total.agree += t.agree;
        total.refused += t.refused;
        total.changed += t.changed;
        total.accepted += t.accepted;
    }
    for (class, t) in &totals {
        println!(
            "{class}: {} rows, {} agree ({:.3}%), {} refused, {} changed, {} accepted",
            t.rows,
            t.agree,
            100.0 * t.agree as f64 / t.rows as f64,
            t.refused,
            t.changed,
            t.accepted
        );
    }
    for miss in valid_misses.iter().chain(&invalid_misses).take(60) {
        println!("{miss}");
    }

    assert!(totals["valid"].rows > 30_000, "the corpus lost its valid numbers");
    assert!(totals["invalid"].rows > 10_000, "the corpus lost its invalid numbers");
    assert!(
        valid_misses.is_empty(),
        "{} valid numbers refused or changed, e.g. {:#?}",
        valid_misses.len(),
        &valid_misses[..valid_misses.len().min(10)]
    );
    let invalid = &totals["invalid"];
    assert!(
        invalid.agree * 100 >= invalid.rows * 99,
        "only {} of {} invalid numbers refused",
        invalid.agree,
        invalid.rows
    );
}

#[test]
fn known_differences_name_their_reason() {
    for (default, input, reason) in KNOWN {
        assert!(!reason.is_empty(), "{default} {input}: say why it differs");
        let line = CORPUS
            .lines()
            .find(|l| l.starts_with(&format!("{default}\t{input}\t")))
            .unwrap_or_else(|| panic!("{default} {input} is not in the corpus"));
        assert!(
            line.split('\t').nth(2) == Some("-"),
            "{default} {input}: a valid number must agree"
        );
    }
}
