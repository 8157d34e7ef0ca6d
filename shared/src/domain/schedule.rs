//! Schedules in EventBridge Scheduler's own syntax: `rate(5 minutes)`,
//! `rate(1 day)`, or `cron(minutes hours day-of-month month day-of-week year)`
//! (one of the two day fields `?`; days of the week 1–7 = SUN–SAT or
//! `MON`…), in a time zone. The next run is computed here, as the scheduler
//! would: a local time that does not exist (the hour skipped when clocks go
//! forward) is skipped, a repeated one (clocks go back) runs once.

use std::str::FromStr;

use chrono::{DateTime, Duration, LocalResult, TimeZone, Timelike, Utc};

use super::zone::Zone;

use crate::{Error, Result};

#[derive(Clone, Debug)]
pub enum Schedule {
    Rate(Duration),
    Cron(Box<croner::Cron>),
}

fn invalid(message: impl Into<String>) -> Error {
    Error::invalid("schedule", message)
}

impl Schedule {
    pub fn parse(expression: &str) -> Result<Schedule> {
        let e = expression.trim();
        if let Some(body) = e.strip_prefix("rate(").and_then(|r| r.strip_suffix(')')) {
            return rate(body);
        }
        if let Some(body) = e.strip_prefix("cron(").and_then(|r| r.strip_suffix(')')) {
            return cron(body);
        }
        Err(invalid(
            "schedule is rate(<n> minute(s)|hour(s)|day(s)) or cron(<minutes> <hours> <day of month> <month> <day of week> <year>)",
        ))
    }

    /// The first run strictly after `after`, in `tz` (rates count from
    /// `anchor`), to the second: the scheduler's resolution is the minute.
    pub fn next_after(&self, after: DateTime<Utc>, anchor: DateTime<Utc>, tz: &Zone) -> Option<DateTime<Utc>> {
        let anchor = anchor.with_nanosecond(0).unwrap_or(anchor);
        match self {
            Schedule::Rate(every) => {
                let every_ms = every.num_milliseconds().max(60_000);
                let since = (after - anchor).num_milliseconds();
                let steps = if since < 0 { 0 } else { since / every_ms + 1 };
                Some(anchor + Duration::milliseconds(steps * every_ms))
            }
            Schedule::Cron(c) => {
                let mut from = after.with_timezone(tz);
                // A few tries: an occurrence on a local time that does not exist is skipped.
                for _ in 0..1000 {
                    let next = c.find_next_occurrence(&from, false).ok()?;
                    // The engine moves a time the clocks skipped to the next instant
                    // that exists; EventBridge Scheduler skips it instead.
                    if exists(tz, &next) && c.is_time_matching(&next).unwrap_or(false) {
                        return Some(next.with_timezone(&Utc));
                    }
                    from = next;
                }
                None
            }
        }
    }
}

/// Whether the local time of `t` exists in `tz` (it is not in the hour
/// skipped when clocks go forward).
fn exists(tz: &Zone, t: &DateTime<Zone>) -> bool {
    match tz.from_local_datetime(&t.naive_local()) {
        LocalResult::Single(x) => x == *t,
        // Clocks went back: the first of the two is the run.
        LocalResult::Ambiguous(first, _) => first == *t,
        LocalResult::None => false,
    }
}

fn rate(body: &str) -> Result<Schedule> {
    let mut parts = body.split_whitespace();
    let (Some(n), Some(unit), None) = (parts.next(), parts.next(), parts.next()) else {
        return Err(invalid("rate is rate(<n> <unit>), e.g. rate(1 day)"));
    };
    let n: i64 = n
        .parse()
        .ok()
        .filter(|n| *n >= 1)
        .ok_or_else(|| invalid("a rate's value is a whole number ≥ 1"))?;
    let one = match unit {
        "minute" | "minutes" => Duration::minutes(1),
        "hour" | "hours" => Duration::hours(1),
        "day" | "days" => Duration::days(1),
        _ => return Err(invalid("a rate's unit is minute(s), hour(s) or day(s)")),
    };
    if (n == 1) != matches!(unit, "minute" | "hour" | "day") {
        return Err(invalid("rate(1 minute), rate(5 minutes): singular for 1, plural above"));
    }
    Ok(Schedule::Rate(one * n as i32))
}

/// AWS's six fields, read into a five-field pattern the engine evaluates.
fn cron(body: &str) -> Result<Schedule> {
    let fields: Vec<&str> = body.split_whitespace().collect();
    let [minutes, hours, dom, month, dow, year] = fields[..] else {
        return Err(invalid(
            "cron has six fields: minutes hours day-of-month month day-of-week year",
        ));
    };
    if (dom == "?") == (dow == "?") {
        return Err(invalid(
            "in cron, one of day-of-month and day-of-week is ? (and only one)",
        ));
    }
    if year != "*" {
        return Err(invalid("cron's year field is * here (a schedule runs every year)"));
    }
    // AWS numbers the days of the week 1–7 from Sunday; the engine 0–6.
    let dow = if dow == "?" { "*".to_string() } else { shift_days(dow)? };
    let dom = if dom == "?" { "*" } else { dom };
    let pattern = format!("{minutes} {hours} {dom} {month} {dow}");
    let parsed = croner::Cron::from_str(&pattern).map_err(|e| invalid(format!("cron: {e}")))?;
    Ok(Schedule::Cron(Box::new(parsed)))
}

fn shift_days(dow: &str) -> Result<String> {
    let mut out = String::new();
    let mut digits = String::new();
    let flush = |digits: &mut String, out: &mut String| -> Result<()> {
        if !digits.is_empty() {
            let n: u32 = digits.parse().map_err(|_| invalid("cron: bad day of week"))?;
            if !(1..=7).contains(&n) {
                return Err(invalid("cron: days of the week are 1-7 (SUN-SAT) or SUN, MON, …"));
            }
            out.push_str(&(n - 1).to_string());
            digits.clear();
        }
        Ok(())
    };
    let mut after_hash = false;
    for c in dow.chars() {
        if c.is_ascii_digit() && !after_hash {
            digits.push(c);
        } else {
            flush(&mut digits, &mut out)?;
            after_hash = c == '#';
            out.push(c);
        }
    }
    flush(&mut digits, &mut out)?;
    Ok(out)
}

/// A time zone by its IANA name (`Europe/Helsinki`, `UTC`).
pub fn time_zone(name: &str) -> Result<Zone> {
    Zone::named(name).ok_or_else(|| {
        Error::invalid(
            "timezone",
            format!("{name:?} is not an IANA time zone (e.g. Europe/Helsinki)"),
        )
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at(s: &str) -> DateTime<Utc> {
        DateTime::parse_from_rfc3339(s).unwrap().with_timezone(&Utc)
    }

    fn next(expr: &str, after: &str, tz: &str) -> DateTime<Utc> {
        Schedule::parse(expr)
            .unwrap()
            .next_after(at(after), at("2027-01-01T00:00:00Z"), &time_zone(tz).unwrap())
            .unwrap()
    }

    #[test]
    fn rates_count_from_their_anchor() {
        assert_eq!(
            next("rate(1 minute)", "2027-01-01T00:00:30Z", "UTC"),
            at("2027-01-01T00:01:00Z")
        );
        assert_eq!(
            next("rate(1 day)", "2027-01-03T10:00:00Z", "UTC"),
            at("2027-01-04T00:00:00Z")
        );
        assert_eq!(
            next("rate(5 minutes)", "2026-12-31T00:00:00Z", "UTC"),
            at("2027-01-01T00:00:00Z")
        );
        for bad in [
            "rate(0 minutes)",
            "rate(1 minutes)",
            "rate(2 minute)",
            "rate(1 week)",
            "rate(x days)",
            "every day",
        ] {
            assert!(Schedule::parse(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn cron_in_the_schedulers_syntax() {
        // Mondays at 09:00 in Helsinki (UTC+2 in winter): 2027-01-04 is a Monday.
        assert_eq!(
            next("cron(0 9 ? * MON *)", "2027-01-01T00:00:00Z", "Europe/Helsinki"),
            at("2027-01-04T07:00:00Z")
        );
        // 2 = MON in AWS numbering.
        assert_eq!(
            next("cron(0 9 ? * 2 *)", "2027-01-01T00:00:00Z", "Europe/Helsinki"),
            at("2027-01-04T07:00:00Z")
        );
        // The first of the month at 06:30 UTC.
        assert_eq!(
            next("cron(30 6 1 * ? *)", "2027-01-15T00:00:00Z", "UTC"),
            at("2027-02-01T06:30:00Z")
        );
        for bad in [
            "cron(0 9 * * MON *)",
            "cron(0 9 ? * ? *)",
            "cron(0 9 ? * MON 2027)",
            "cron(0 9 ? *)",
            "cron(0 9 ? * 8 *)",
        ] {
            assert!(Schedule::parse(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn a_local_time_that_does_not_exist_is_skipped() {
        // Helsinki, 2027-03-28: clocks go from 03:00 to 04:00; 03:30 does not exist that day.
        assert_eq!(
            next("cron(30 3 * * ? *)", "2027-03-27T12:00:00Z", "Europe/Helsinki"),
            at("2027-03-29T00:30:00Z")
        );
        // 2027-10-31: 03:30 happens twice (clocks go back at 04:00); it runs once, at the first.
        let first = next("cron(30 3 * * ? *)", "2027-10-30T12:00:00Z", "Europe/Helsinki");
        assert_eq!(first, at("2027-10-31T00:30:00Z"));
        assert_eq!(
            next("cron(30 3 * * ? *)", "2027-10-31T00:30:00Z", "Europe/Helsinki"),
            at("2027-11-01T01:30:00Z")
        );
    }
}
