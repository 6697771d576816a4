//! Latency samples: an HDR histogram of successful calls (microsecond resolution, 3 significant
//! digits, so a percentile is within 0.1 % of the true value) and failed calls by name. Also the
//! nearest-rank percentile of a sorted sample list, for the tools that keep every sample.

use hdrhistogram::Histogram;
use serde_json::json;
use std::collections::BTreeMap;
use std::time::Duration;

/// The longest latency the histogram tracks exactly (longer ones are clamped to it): one minute,
/// well beyond every call's timeout.
const MAX_MICROS: u64 = 60_000_000;

#[derive(Debug)]
pub struct Samples {
    /// Latencies of successful calls, in microseconds.
    ok: Histogram<u64>,
    /// Failed calls by AWS exception name (or gRPC code, or HTTP status).
    errors: BTreeMap<String, u64>,
}

impl Default for Samples {
    fn default() -> Self {
        // Invariant: 1..=MAX_MICROS with 3 significant digits is a valid histogram configuration.
        #[allow(clippy::expect_used)]
        let ok = Histogram::new_with_bounds(1, MAX_MICROS, 3).expect("valid histogram bounds");
        Self { ok, errors: BTreeMap::new() }
    }
}

/// One line of a result table.
#[derive(Debug, Clone, PartialEq)]
pub struct Row {
    pub operation: String,
    pub clients: usize,
    pub ok: u64,
    pub errors: u64,
    pub seconds: f64,
    pub throughput: f64,
    pub p50_ms: f64,
    pub p90_ms: f64,
    pub p99_ms: f64,
    pub p999_ms: f64,
    pub max_ms: f64,
    pub error_kinds: BTreeMap<String, u64>,
}

impl Row {
    /// The failed calls by error name, as `<count> x <name>`.
    pub fn errors_by_name(&self) -> impl Iterator<Item = String> + '_ {
        self.error_kinds.iter().map(|(name, n)| format!("{n} x {name}"))
    }
}

impl Samples {
    pub fn record_ok(&mut self, latency: Duration) {
        let micros = u64::try_from(latency.as_micros()).unwrap_or(MAX_MICROS).clamp(1, MAX_MICROS);
        self.ok.saturating_record(micros);
    }

    pub fn record_error(&mut self, name: String) {
        *self.errors.entry(name).or_default() += 1;
    }

    pub fn merge(&mut self, other: Samples) {
        // Both histograms have the same bounds, so adding cannot fail; clamped just in case.
        if self.ok.add(&other.ok).is_err() {
            for value in other.ok.iter_recorded() {
                self.ok.saturating_record_n(value.value_iterated_to(), value.count_at_value());
            }
        }
        for (name, n) in other.errors {
            *self.errors.entry(name).or_default() += n;
        }
    }

    pub fn row(self, operation: &str, clients: usize, wall: Duration) -> Row {
        let ms = |micros: u64| micros as f64 / 1e3;
        let at = |q: f64| if self.ok.is_empty() { 0.0 } else { ms(self.ok.value_at_quantile(q)) };
        let seconds = wall.as_secs_f64();
        Row {
            operation: operation.to_string(),
            clients,
            ok: self.ok.len(),
            errors: self.errors.values().sum(),
            seconds,
            throughput: if seconds > 0.0 { self.ok.len() as f64 / seconds } else { 0.0 },
            p50_ms: at(0.50),
            p90_ms: at(0.90),
            p99_ms: at(0.99),
            p999_ms: at(0.999),
            max_ms: if self.ok.is_empty() { 0.0 } else { ms(self.ok.max()) },
            error_kinds: self.errors,
        }
    }
}

/// The name a failed gRPC call is counted under.
pub fn status_name(status: &tonic::Status) -> String {
    match status.metadata().get(kms_proto::EXCEPTION_METADATA_KEY) {
        Some(v) => v.to_str().unwrap_or("?").to_string(),
        None => format!("{:?}", status.code()),
    }
}

impl Row {
    pub fn to_json(&self) -> serde_json::Value {
        json!({
            "operation": self.operation,
            "clients": self.clients,
            "ok": self.ok,
            "errors": self.errors,
            "error_kinds": self.error_kinds,
            "seconds": self.seconds,
            "ops_per_second": self.throughput,
            "latency_ms": {
                "p50": self.p50_ms, "p90": self.p90_ms, "p99": self.p99_ms,
                "p99.9": self.p999_ms, "max": self.max_ms,
            },
        })
    }
}

/// The result table as text, one row per line, failures by kind below.
pub fn render_table(rows: &[Row]) -> String {
    let mut out = format!(
        "{:<22} {:>7} {:>8} {:>7} {:>7} {:>9} {:>7} {:>7} {:>7} {:>8} {:>8}\n",
        "operation",
        "clients",
        "ok",
        "errors",
        "seconds",
        "ops/s",
        "p50 ms",
        "p90 ms",
        "p99 ms",
        "p99.9 ms",
        "max ms"
    );
    for r in rows {
        out.push_str(&format!(
            "{:<22} {:>7} {:>8} {:>7} {:>7.2} {:>9.1} {:>7.2} {:>7.2} {:>7.2} {:>8.2} {:>8.2}\n",
            r.operation,
            r.clients,
            r.ok,
            r.errors,
            r.seconds,
            r.throughput,
            r.p50_ms,
            r.p90_ms,
            r.p99_ms,
            r.p999_ms,
            r.max_ms
        ));
    }
    for r in rows {
        for kind in r.errors_by_name() {
            out.push_str(&format!("  {}: {kind}\n", r.operation));
        }
    }
    out
}

/// Nearest-rank percentile of sorted samples (`q` in 0..=1); zero when empty.
pub fn percentile(sorted: &[Duration], q: f64) -> Duration {
    if sorted.is_empty() {
        return Duration::ZERO;
    }
    let rank = (q * sorted.len() as f64).ceil() as usize;
    sorted[rank.clamp(1, sorted.len()) - 1]
}

/// The median of `values` (the mean of the middle two for an even count); `None` when empty.
pub fn median(values: &[f64]) -> Option<f64> {
    let mut sorted: Vec<f64> = values.iter().copied().filter(|v| v.is_finite()).collect();
    sorted.sort_by(f64::total_cmp);
    let n = sorted.len();
    match n {
        0 => None,
        _ if !n.is_multiple_of(2) => Some(sorted[n / 2]),
        _ => Some((sorted[n / 2 - 1] + sorted[n / 2]) / 2.0),
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    fn ms(v: u64) -> Duration {
        Duration::from_millis(v)
    }

    #[test]
    fn nearest_rank_percentiles() {
        let sorted: Vec<Duration> = (1..=100).map(ms).collect();
        assert_eq!(percentile(&sorted, 0.50), ms(50));
        assert_eq!(percentile(&sorted, 0.90), ms(90));
        assert_eq!(percentile(&sorted, 0.99), ms(99));
        assert_eq!(percentile(&sorted, 1.0), ms(100));
        assert_eq!(percentile(&sorted, 0.0), ms(1));
        assert_eq!(percentile(&[ms(7)], 0.99), ms(7));
        assert_eq!(percentile(&[], 0.5), Duration::ZERO);
    }

    #[test]
    fn histogram_percentiles_are_within_a_tenth_of_a_percent() {
        let mut samples = Samples::default();
        // 1..=10_000 microseconds, once each.
        for micros in 1..=10_000u64 {
            samples.record_ok(Duration::from_micros(micros));
        }
        let row = samples.row("x", 1, Duration::from_secs(2));
        let close = |got: f64, want: f64| (got - want).abs() <= want * 0.001 + 0.001;
        assert!(close(row.p50_ms, 5.0), "{}", row.p50_ms);
        assert!(close(row.p90_ms, 9.0), "{}", row.p90_ms);
        assert!(close(row.p99_ms, 9.9), "{}", row.p99_ms);
        assert!(close(row.p999_ms, 9.99), "{}", row.p999_ms);
        assert!(close(row.max_ms, 10.0), "{}", row.max_ms);
        assert_eq!(row.ok, 10_000);
        assert!((row.throughput - 5_000.0).abs() < 1e-9);
    }

    #[test]
    fn rows_count_errors_by_exception_and_merge() {
        let mut a = Samples::default();
        a.record_ok(ms(3));
        a.record_ok(ms(1));
        let mut status = tonic::Status::not_found("gone");
        status.metadata_mut().insert(kms_proto::EXCEPTION_METADATA_KEY, "NotFoundException".parse().unwrap());
        let mut b = Samples::default();
        b.record_error(status_name(&status));
        b.record_error(status_name(&tonic::Status::unavailable("down")));
        b.record_ok(ms(5));
        b.record_error("HTTP 503".into());
        a.merge(b);
        let row = a.row("CreateKey", 2, Duration::from_secs(1));
        assert_eq!((row.ok, row.errors), (3, 3));
        assert_eq!(row.error_kinds.get("NotFoundException"), Some(&1));
        assert_eq!(row.error_kinds.get("Unavailable"), Some(&1));
        assert_eq!(row.error_kinds.get("HTTP 503"), Some(&1));
        assert!((row.max_ms - 5.0).abs() < 0.01);
        assert!((row.p50_ms - 3.0).abs() < 0.01);
        let text = render_table(std::slice::from_ref(&row));
        assert!(text.contains("CreateKey"), "{text}");
        assert!(text.contains("  CreateKey: 1 x HTTP 503"), "{text}");
        assert_eq!(row.to_json()["latency_ms"]["p99.9"], serde_json::json!(row.p999_ms));
    }

    #[test]
    fn empty_rows_and_medians() {
        let row = Samples::default().row("x", 1, Duration::ZERO);
        assert_eq!((row.ok, row.throughput, row.p99_ms, row.max_ms), (0, 0.0, 0.0, 0.0));
        assert_eq!(median(&[]), None);
        assert_eq!(median(&[3.0, 1.0, 2.0]), Some(2.0));
        assert_eq!(median(&[4.0, 1.0, 2.0, 3.0]), Some(2.5));
        assert_eq!(median(&[f64::NAN, 1.0]), Some(1.0));
    }
}
