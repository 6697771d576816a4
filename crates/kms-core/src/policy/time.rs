//! Dates in policy conditions (`DateLessThan` on `aws:CurrentTime`, ...): ISO 8601 in UTC or
//! epoch seconds, as AWS accepts them.

use crate::calendar::{civil_from_days, days_from_civil, days_in_month};

/// Milliseconds since the Unix epoch of a date, `2025-01-31`, `2025-01-31T12:00:00Z` (optional
/// fraction, `Z` or `±HH:MM`), or epoch seconds; `None` if it is none of these.
pub(crate) fn parse_millis(text: &str) -> Option<i64> {
    if !text.is_empty() && text.bytes().all(|b| b.is_ascii_digit()) {
        return text.parse::<i64>().ok()?.checked_mul(1000);
    }
    let (date, time) = match text.split_once('T') {
        Some((date, time)) => (date, Some(time)),
        None => (text, None),
    };
    let days = parse_date(date)?;
    let millis = match time {
        Some(time) => parse_time(time)?,
        None => 0,
    };
    days.checked_mul(86_400_000)?.checked_add(millis)
}

fn number(text: &str, digits: usize) -> Option<i64> {
    if text.len() != digits || !text.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    text.parse().ok()
}

/// Days since 1970-01-01 of `YYYY-MM-DD`.
fn parse_date(text: &str) -> Option<i64> {
    let mut parts = text.split('-');
    let (year, month, day) = (parts.next()?, parts.next()?, parts.next()?);
    if parts.next().is_some() {
        return None;
    }
    let (year, month, day) = (number(year, 4)?, number(month, 2)?, number(day, 2)?);
    if !(1..=12).contains(&month) || day < 1 || day > days_in_month(year, month) {
        return None;
    }
    Some(days_from_civil(year, month, day))
}

/// Milliseconds into the day (shifted to UTC) of `HH:MM:SS[.fff](Z|±HH:MM)`.
fn parse_time(text: &str) -> Option<i64> {
    let (clock, offset_minutes) = if let Some(clock) = text.strip_suffix('Z') {
        (clock, 0)
    } else {
        let at = text.rfind(['+', '-'])?;
        let (clock, offset) = text.split_at(at);
        let sign = if offset.starts_with('-') { -1 } else { 1 };
        let (hours, minutes) = offset[1..].split_once(':')?;
        (clock, sign * (number(hours, 2)? * 60 + number(minutes, 2)?))
    };
    let (clock, fraction) = match clock.split_once('.') {
        Some((clock, fraction)) if !fraction.is_empty() && fraction.bytes().all(|b| b.is_ascii_digit()) => {
            let millis: String = fraction.chars().chain("000".chars()).take(3).collect();
            (clock, millis.parse::<i64>().ok()?)
        }
        Some(_) => return None,
        None => (clock, 0),
    };
    let mut parts = clock.split(':');
    let (h, m, s) = (number(parts.next()?, 2)?, number(parts.next()?, 2)?, number(parts.next()?, 2)?);
    if parts.next().is_some() || h > 23 || m > 59 || s > 60 {
        return None;
    }
    Some(((h * 60 + m - offset_minutes) * 60 + s) * 1000 + fraction)
}

/// `aws:CurrentTime`'s form: `2025-01-31T12:00:00Z`.
pub(crate) fn format_millis(millis: u64) -> String {
    let secs = (millis / 1000) as i64;
    let (year, month, day) = civil_from_days(secs.div_euclid(86_400));
    let in_day = secs.rem_euclid(86_400);
    format!(
        "{year:04}-{month:02}-{day:02}T{:02}:{:02}:{:02}Z",
        in_day / 3600,
        in_day % 3600 / 60,
        in_day % 60
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dates_round_trip_and_parse_in_aws_forms() {
        assert_eq!(parse_millis("1970-01-01"), Some(0));
        assert_eq!(parse_millis("2000-03-01T00:00:00Z"), Some(951_868_800_000));
        assert_eq!(parse_millis("951868800"), Some(951_868_800_000));
        assert_eq!(parse_millis("2000-03-01T01:00:00+01:00"), Some(951_868_800_000));
        assert_eq!(parse_millis("2000-03-01T00:00:00.5Z"), Some(951_868_800_500));
        assert_eq!(format_millis(951_868_800_000), "2000-03-01T00:00:00Z");
        assert_eq!(format_millis(1_700_000_000_000), "2023-11-14T22:13:20Z");
        for bad in ["", "2000-02-30", "2000-13-01", "yesterday", "2000-01-01T25:00:00Z", "2000-1-1"] {
            assert_eq!(parse_millis(bad), None, "{bad}");
        }
    }
}
