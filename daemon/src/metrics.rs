//! A small metrics registry for the Prometheus text format (version 0.0.4): counters, gauges
//! and duration histograms as plain atomics. Counting is one relaxed atomic add, no lock and
//! no allocation; labels are fixed sets the daemon indexes into, rendered only at a scrape.

use std::fmt::{Display, Write};
use std::sync::atomic::{AtomicI64, AtomicU64, Ordering::Relaxed};
use std::time::Duration;

/// What a daemon shows at `GET /metrics`.
pub trait Render: Send + Sync + 'static {
    fn render(&self, out: &mut Exposition);
}

#[derive(Debug, Default)]
pub struct Counter(AtomicU64);

impl Counter {
    pub const fn new() -> Counter {
        Counter(AtomicU64::new(0))
    }

    pub fn inc(&self) {
        self.0.fetch_add(1, Relaxed);
    }

    pub fn get(&self) -> u64 {
        self.0.load(Relaxed)
    }
}

#[derive(Debug, Default)]
pub struct Gauge(AtomicI64);

impl Gauge {
    pub const fn new() -> Gauge {
        Gauge(AtomicI64::new(0))
    }

    pub fn inc(&self) {
        self.0.fetch_add(1, Relaxed);
    }

    pub fn dec(&self) {
        self.0.fetch_sub(1, Relaxed);
    }

    pub fn get(&self) -> i64 {
        self.0.load(Relaxed)
    }
}

/// Upper bounds of the duration buckets, in seconds: from a millisecond (an ordinary mail's
/// header check) to a minute (a large De-Mail fsynced on a slow disk).
pub const BUCKETS: [f64; 14] = [
    0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 60.0,
];

/// A duration histogram with [`BUCKETS`]; `+Inf` is the count.
#[derive(Debug, Default)]
pub struct Histogram {
    /// Observations per bucket (not cumulative: one add per observation).
    buckets: [AtomicU64; BUCKETS.len()],
    count: AtomicU64,
    sum_nanos: AtomicU64,
}

impl Histogram {
    pub fn observe(&self, d: Duration) {
        let nanos = u64::try_from(d.as_nanos()).unwrap_or(u64::MAX);
        let secs = d.as_secs_f64();
        if let Some(i) = BUCKETS.iter().position(|b| secs <= *b) {
            self.buckets[i].fetch_add(1, Relaxed);
        }
        self.count.fetch_add(1, Relaxed);
        self.sum_nanos.fetch_add(nanos, Relaxed);
    }

    pub fn count(&self) -> u64 {
        self.count.load(Relaxed)
    }
}

/// The text exposition of one scrape.
#[derive(Debug, Default)]
pub struct Exposition {
    out: String,
}

#[derive(Debug, Clone, Copy)]
pub enum Type {
    Counter,
    Gauge,
    Histogram,
}

impl Exposition {
    /// `# HELP` and `# TYPE` of a metric family; its samples follow.
    pub fn family(&mut self, name: &str, kind: Type, help: &str) {
        let kind = match kind {
            Type::Counter => "counter",
            Type::Gauge => "gauge",
            Type::Histogram => "histogram",
        };
        let help = help.replace('\\', "\\\\").replace('\n', "\\n");
        let _ = writeln!(self.out, "# HELP {name} {help}\n# TYPE {name} {kind}");
    }

    pub fn sample(&mut self, name: &str, labels: &[(&str, &str)], value: impl Display) {
        self.out.push_str(name);
        self.labels(labels, None);
        let _ = writeln!(self.out, " {value}");
    }

    /// The `_bucket`, `_sum` and `_count` samples of `h`.
    pub fn histogram(&mut self, name: &str, labels: &[(&str, &str)], h: &Histogram) {
        // Loaded once each: the cumulative counts stay monotonic within one scrape even while
        // observations arrive (the count is taken last and is at least the last bucket).
        let mut cumulative = 0;
        for (bound, bucket) in BUCKETS.iter().zip(&h.buckets) {
            cumulative += bucket.load(Relaxed);
            let _ = write!(self.out, "{name}_bucket");
            self.labels(labels, Some(&bound.to_string()));
            let _ = writeln!(self.out, " {cumulative}");
        }
        let sum = h.sum_nanos.load(Relaxed) as f64 / 1e9;
        let count = h.count.load(Relaxed).max(cumulative);
        let _ = write!(self.out, "{name}_bucket");
        self.labels(labels, Some("+Inf"));
        let _ = writeln!(self.out, " {count}");
        self.sample(&format!("{name}_sum"), labels, sum);
        self.sample(&format!("{name}_count"), labels, count);
    }

    fn labels(&mut self, labels: &[(&str, &str)], le: Option<&str>) {
        if labels.is_empty() && le.is_none() {
            return;
        }
        self.out.push('{');
        let all = labels.iter().copied().chain(le.map(|v| ("le", v)));
        for (i, (k, v)) in all.enumerate() {
            if i > 0 {
                self.out.push(',');
            }
            let _ = write!(self.out, "{k}=\"");
            for c in v.chars() {
                match c {
                    '\\' => self.out.push_str("\\\\"),
                    '"' => self.out.push_str("\\\""),
                    '\n' => self.out.push_str("\\n"),
                    c => self.out.push(c),
                }
            }
            self.out.push('"');
        }
        self.out.push('}');
    }

    pub fn into_text(self) -> String {
        self.out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn counters_gauges_and_labels_in_text_format() {
        let c = Counter::new();
        c.inc();
        c.inc();
        let g = Gauge::new();
        g.inc();
        g.inc();
        g.dec();
        let mut e = Exposition::default();
        e.family("demail_x_total", Type::Counter, "Things.\nCounted.");
        e.sample(
            "demail_x_total",
            &[("kind", "a\"b\\c\nd"), ("ok", "true")],
            c.get(),
        );
        e.family("demail_y", Type::Gauge, "Open.");
        e.sample("demail_y", &[], g.get());
        assert_eq!(
            e.into_text(),
            "# HELP demail_x_total Things.\\nCounted.\n# TYPE demail_x_total counter\n\
             demail_x_total{kind=\"a\\\"b\\\\c\\nd\",ok=\"true\"} 2\n\
             # HELP demail_y Open.\n# TYPE demail_y gauge\ndemail_y 1\n"
        );
    }

    #[test]
    fn histogram_buckets_are_cumulative_with_sum_and_count() {
        let h = Histogram::default();
        h.observe(Duration::from_micros(500));
        h.observe(Duration::from_millis(3));
        h.observe(Duration::from_millis(3));
        h.observe(Duration::from_secs(100));
        let mut e = Exposition::default();
        e.histogram("demail_t_seconds", &[("stage", "eom")], &h);
        let text = e.into_text();
        let value = |le: &str| {
            let prefix = format!("demail_t_seconds_bucket{{stage=\"eom\",le=\"{le}\"}} ");
            let line = text.lines().find(|l| l.starts_with(&prefix));
            line.unwrap_or_else(|| panic!("{prefix}\n{text}"))[prefix.len()..].to_string()
        };
        assert_eq!(value("0.001"), "1");
        assert_eq!(value("0.0025"), "1");
        assert_eq!(value("0.005"), "3");
        assert_eq!(value("60"), "3");
        assert_eq!(value("+Inf"), "4");
        assert!(
            text.contains("demail_t_seconds_count{stage=\"eom\"} 4\n"),
            "{text}"
        );
        assert!(
            text.contains("demail_t_seconds_sum{stage=\"eom\"} 100.0065\n"),
            "{text}"
        );
        assert_eq!(h.count(), 4);
    }
}
