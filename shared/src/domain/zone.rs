//! IANA time zones for schedules: chrono's `TimeZone` (the cron engine
//! computes in it) over jiff's copy of the tz database.
//!
//! Not chrono-tz: it compiles every zone's whole history into tables of
//! pointers, about 1.6 MiB of each binary that links it (bench/README.md,
//! "What the bytes are"); jiff bundles the same database as compact TZif
//! data, read when a zone is first asked for.

use std::fmt;

use chrono::{
    Datelike, FixedOffset, MappedLocalTime, NaiveDate, NaiveDateTime, NaiveTime, Offset, TimeZone, Timelike, Utc,
};
use jiff::tz::AmbiguousOffset;

#[derive(Clone)]
pub struct Zone(jiff::tz::TimeZone);

impl Zone {
    /// The zone of an IANA name (`Europe/Helsinki`, `UTC`; in any case).
    pub fn named(name: &str) -> Option<Zone> {
        let tz = jiff::tz::TimeZone::get(name.trim()).ok()?;
        tz.iana_name().is_some().then_some(Zone(tz))
    }

    /// The database's own spelling of the name.
    pub fn name(&self) -> &str {
        self.0.iana_name().unwrap_or("UTC")
    }

    fn offset(&self, offset: jiff::tz::Offset) -> ZoneOffset {
        ZoneOffset {
            zone: self.clone(),
            fixed: FixedOffset::east_opt(offset.seconds()).unwrap_or_else(|| Utc.fix()),
        }
    }
}

impl fmt::Debug for Zone {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// The offset in force at an instant, with the zone it came from (chrono
/// gets the zone of a date-time back from its offset).
#[derive(Clone, Debug)]
pub struct ZoneOffset {
    zone: Zone,
    fixed: FixedOffset,
}

impl Offset for ZoneOffset {
    fn fix(&self) -> FixedOffset {
        self.fixed
    }
}

impl fmt::Display for ZoneOffset {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.fixed.fmt(f)
    }
}

/// jiff's civil date-time of chrono's (None beyond jiff's years, ±9999).
fn civil(t: &NaiveDateTime) -> Option<jiff::civil::DateTime> {
    let nanos = t.nanosecond().min(999_999_999) as i32;
    jiff::civil::DateTime::new(
        i16::try_from(t.year()).ok()?,
        t.month() as i8,
        t.day() as i8,
        t.hour() as i8,
        t.minute() as i8,
        t.second() as i8,
        nanos,
    )
    .ok()
}

impl TimeZone for Zone {
    type Offset = ZoneOffset;

    fn from_offset(offset: &ZoneOffset) -> Zone {
        offset.zone.clone()
    }

    fn offset_from_local_date(&self, local: &NaiveDate) -> MappedLocalTime<ZoneOffset> {
        self.offset_from_local_datetime(&local.and_time(NaiveTime::MIN))
    }

    fn offset_from_local_datetime(&self, local: &NaiveDateTime) -> MappedLocalTime<ZoneOffset> {
        let Some(civil) = civil(local) else {
            return MappedLocalTime::None;
        };
        match self.0.to_ambiguous_timestamp(civil).offset() {
            AmbiguousOffset::Unambiguous { offset } => MappedLocalTime::Single(self.offset(offset)),
            // Clocks went forward: this local time does not exist.
            AmbiguousOffset::Gap { .. } => MappedLocalTime::None,
            // Clocks went back: the earlier instant is the one under the offset before.
            AmbiguousOffset::Fold { before, after } => {
                MappedLocalTime::Ambiguous(self.offset(before), self.offset(after))
            }
        }
    }

    fn offset_from_utc_date(&self, utc: &NaiveDate) -> ZoneOffset {
        self.offset_from_utc_datetime(&utc.and_time(NaiveTime::MIN))
    }

    fn offset_from_utc_datetime(&self, utc: &NaiveDateTime) -> ZoneOffset {
        let second = utc.and_utc().timestamp();
        let at = jiff::Timestamp::from_second(second).unwrap_or(if second < 0 {
            jiff::Timestamp::MIN
        } else {
            jiff::Timestamp::MAX
        });
        self.offset(self.0.to_offset(at))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::DateTime;
    use proptest::prelude::*;

    fn helsinki() -> Zone {
        Zone::named("Europe/Helsinki").unwrap()
    }

    #[test]
    fn names_are_iana_names_spelled_as_the_database_does() {
        assert_eq!(Zone::named(" europe/helsinki ").unwrap().name(), "Europe/Helsinki");
        assert_eq!(Zone::named("UTC").unwrap().name(), "UTC");
        assert_eq!(
            Zone::named("America/Argentina/Buenos_Aires").unwrap().name(),
            "America/Argentina/Buenos_Aires"
        );
        for bad in ["", "Mars/Olympus", "+02:00", "Europe/", "EST5EDT,M3.2.0,M11.1.0"] {
            assert!(Zone::named(bad).is_none(), "{bad}");
        }
    }

    #[test]
    fn offsets_follow_daylight_saving_time() {
        let at = |s: &str| DateTime::parse_from_rfc3339(s).unwrap().with_timezone(&Utc);
        let winter = at("2027-01-15T12:00:00Z").with_timezone(&helsinki());
        let summer = at("2027-07-15T12:00:00Z").with_timezone(&helsinki());
        assert_eq!(winter.to_rfc3339(), "2027-01-15T14:00:00+02:00");
        assert_eq!(summer.to_rfc3339(), "2027-07-15T15:00:00+03:00");
    }

    #[test]
    fn local_times_in_a_gap_or_a_fold() {
        let local = |s: &str| NaiveDateTime::parse_from_str(s, "%Y-%m-%d %H:%M").unwrap();
        let tz = helsinki();
        // 2027-03-28: 03:00 becomes 04:00.
        assert!(matches!(
            tz.from_local_datetime(&local("2027-03-28 03:30")),
            MappedLocalTime::None
        ));
        // 2027-10-31: 04:00 becomes 03:00; 03:30 is first +03:00, then +02:00.
        let MappedLocalTime::Ambiguous(first, second) = tz.from_local_datetime(&local("2027-10-31 03:30")) else {
            panic!("03:30 happens twice");
        };
        assert_eq!(first.to_rfc3339(), "2027-10-31T03:30:00+03:00");
        assert_eq!(second.to_rfc3339(), "2027-10-31T03:30:00+02:00");
        assert!(first < second);
    }

    proptest! {
        // An instant seen in a zone and read back from its local time is the same instant.
        #[test]
        fn an_instant_comes_back_from_its_local_time(second in -2_000_000_000i64..4_000_000_000i64,
                                                     zone in prop::sample::select(vec!["Europe/Helsinki", "America/New_York", "Australia/Lord_Howe", "Asia/Kolkata", "UTC"])) {
            let tz = Zone::named(zone).unwrap();
            let t = DateTime::from_timestamp(second, 0).unwrap().with_timezone(&tz);
            let back = match tz.from_local_datetime(&t.naive_local()) {
                MappedLocalTime::Single(x) => vec![x],
                MappedLocalTime::Ambiguous(a, b) => vec![a, b],
                MappedLocalTime::None => vec![],
            };
            prop_assert!(back.contains(&t), "{t:?} is not among {back:?}");
        }
    }
}
