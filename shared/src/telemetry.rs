//! JSON logs through `tracing`, and the masks that keep personal data out of them.

use tracing_subscriber::filter::{LevelFilter, Targets};
use tracing_subscriber::prelude::*;

/// JSON lines on stdout (CloudWatch in AWS). `RUST_LOG` sets the level; `info` by default.
/// Release builds stop at `info` whatever it says: debug and trace events are
/// compiled out (the `tracing` dependency in `Cargo.toml` says why).
pub fn init() {
    let _ = tracing_subscriber::fmt()
        .json()
        .with_current_span(false)
        .with_target(false)
        .without_time() // Lambda stamps every line already.
        .finish()
        .with(filter(LevelFilter::INFO))
        .try_init();
}

/// For tests: warnings and errors only (or `RUST_LOG`), through the test
/// harness's writer so they show with a failing test, not in every run.
pub fn init_for_tests() {
    let _ = tracing_subscriber::fmt()
        .json()
        .with_test_writer()
        .finish()
        .with(filter(LevelFilter::WARN))
        .try_init();
}

/// `RUST_LOG` as `target=level` directives and a default level (`warn,roster=debug`),
/// else `default`. Read by `Targets` rather than `EnvFilter`: the same
/// directives without span and field filters, and without the regex engine
/// those need linked into every function.
fn filter(default: LevelFilter) -> Targets {
    directives(std::env::var("RUST_LOG").ok().as_deref(), default)
}

fn directives(rust_log: Option<&str>, default: LevelFilter) -> Targets {
    rust_log
        .and_then(|v| v.parse().ok())
        .unwrap_or_else(|| Targets::new().with_default(default))
}

/// `jane.doe@example.com` → `j***@example.com`.
pub fn mask_email(email: &str) -> String {
    match email.split_once('@') {
        Some((local, domain)) => {
            let first = local.chars().next().map(String::from).unwrap_or_default();
            format!("{first}***@{domain}")
        }
        None => "***".to_string(),
    }
}

/// `+14155551234` → `+1***34`.
pub fn mask_phone(phone: &str) -> String {
    let chars: Vec<char> = phone.chars().collect();
    if chars.len() < 6 {
        return "***".to_string();
    }
    let head: String = chars[..2].iter().collect();
    let tail: String = chars[chars.len() - 2..].iter().collect();
    format!("{head}***{tail}")
}

/// `text` with every `+` and 6 or more digits (an E.164 number) masked.
pub fn mask_phones_in(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    let mut rest = text;
    while let Some(i) = rest.find('+') {
        out.push_str(&rest[..i]);
        let after = &rest[i + 1..];
        let digits = after.find(|c: char| !c.is_ascii_digit()).unwrap_or(after.len());
        if digits >= 6 {
            out.push_str(&mask_phone(&rest[i..i + 1 + digits]));
        } else {
            out.push_str(&rest[i..i + 1 + digits]);
        }
        rest = &after[digits..];
    }
    out.push_str(rest);
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rust_log_sets_levels_by_target_and_nonsense_keeps_the_default() {
        use tracing::Level;
        let t = directives(Some("warn,roster=debug"), LevelFilter::INFO);
        assert!(t.would_enable("roster::store", &Level::DEBUG));
        assert!(!t.would_enable("aws_smithy_runtime", &Level::INFO));
        assert!(t.would_enable("aws_smithy_runtime", &Level::WARN));
        let fallback = directives(Some("roster=[span]"), LevelFilter::INFO);
        assert!(fallback.would_enable("roster", &Level::INFO));
        assert!(!fallback.would_enable("roster", &Level::DEBUG));
        assert!(directives(None, LevelFilter::WARN).would_enable("x", &Level::WARN));
        assert!(!directives(None, LevelFilter::WARN).would_enable("x", &Level::INFO));
    }

    #[test]
    fn numbers_in_text_are_masked() {
        assert_eq!(
            mask_phones_in("Twilio error 21211: The 'To' number +14155550100 is not valid; 1+2"),
            "Twilio error 21211: The 'To' number +1***00 is not valid; 1+2"
        );
        assert_eq!(mask_phones_in("no numbers"), "no numbers");
    }

    #[test]
    fn masks_keep_no_more_than_a_hint() {
        assert_eq!(mask_email("jane.doe@example.com"), "j***@example.com");
        assert_eq!(mask_email("nonsense"), "***");
        assert_eq!(mask_phone("+14155551234"), "+1***34");
        assert_eq!(mask_phone("123"), "***");
    }
}
