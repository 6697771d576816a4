//! Latency samples and percentiles (nearest rank over the sorted samples; every sample is kept,
//! which is fine for the bounded counts this tool runs).

use std::collections::BTreeMap;
use std::time::Duration;

#[derive(Default, Debug)]
pub struct Samples {
    /// Latencies of successful calls.
    ok: Vec<Duration>,
    /// Failed calls by AWS exception name (or gRPC code).
    errors: BTreeMap<String, u64>,
}

/// One line of the result table.
#[derive(Debug)]
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
    pub max_ms: f64,
    pub error_kinds: BTreeMap<String, u64>,
}

impl Samples {
    pub fn record(&mut self, latency: Duration, error: Option<&tonic::Status>) {
        match error {
            None => self.ok.push(latency),
            Some(status) => {
                let name = match status.metadata().get(kms_proto::EXCEPTION_METADATA_KEY) {
                    Some(v) => v.to_str().unwrap_or("?").to_string(),
                    None => format!("{:?}", status.code()),
                };
                *self.errors.entry(name).or_default() += 1;
            }
        }
    }

    pub fn merge(&mut self, other: Samples) {
        self.ok.extend(other.ok);
        for (name, n) in other.errors {
            *self.errors.entry(name).or_default() += n;
        }
    }

    pub fn row(mut self, operation: &str, clients: usize, wall: Duration) -> Row {
        self.ok.sort_unstable();
        let ms = |d: Duration| d.as_secs_f64() * 1e3;
        let seconds = wall.as_secs_f64();
        Row {
            operation: operation.to_string(),
            clients,
            ok: self.ok.len() as u64,
            errors: self.errors.values().sum(),
            seconds,
            throughput: if seconds > 0.0 { self.ok.len() as f64 / seconds } else { 0.0 },
            p50_ms: ms(percentile(&self.ok, 0.50)),
            p90_ms: ms(percentile(&self.ok, 0.90)),
            p99_ms: ms(percentile(&self.ok, 0.99)),
            max_ms: ms(self.ok.last().copied().unwrap_or_default()),
            error_kinds: self.errors,
        }
    }
}

/// Nearest-rank percentile of sorted samples (`q` in 0..=1); zero when empty.
pub fn percentile(sorted: &[Duration], q: f64) -> Duration {
    if sorted.is_empty() {
        return Duration::ZERO;
    }
    let rank = (q * sorted.len() as f64).ceil() as usize;
    sorted[rank.clamp(1, sorted.len()) - 1]
}

#[cfg(test)]
mod tests {
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
    fn rows_count_errors_by_exception() {
        let mut a = Samples::default();
        a.record(ms(3), None);
        a.record(ms(1), None);
        let mut status = tonic::Status::not_found("gone");
        status.metadata_mut().insert(
            kms_proto::EXCEPTION_METADATA_KEY,
            "NotFoundException".parse().unwrap_or_else(|_| unreachable!()),
        );
        let mut b = Samples::default();
        b.record(ms(2), Some(&status));
        b.record(ms(2), Some(&tonic::Status::unavailable("down")));
        b.record(ms(5), None);
        a.merge(b);
        let row = a.row("CreateKey", 2, Duration::from_secs(1));
        assert_eq!((row.ok, row.errors), (3, 2));
        assert_eq!(row.error_kinds.get("NotFoundException"), Some(&1));
        assert_eq!(row.error_kinds.get("Unavailable"), Some(&1));
        assert!((row.throughput - 3.0).abs() < 1e-9);
        assert_eq!(row.max_ms, 5.0);
        assert_eq!(row.p50_ms, 3.0);
    }
}
