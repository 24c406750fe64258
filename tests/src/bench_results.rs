//! Result lines of the benchmarks: with `BENCH_RESULTS` naming a file, each reported figure is
//! appended to it as one JSON object per line (section, name, value, unit, target, met), which
//! `bench/run` collects into bench/RESULTS.md. Without it, nothing is written.

use std::io::Write;

/// A target a figure is held against; `met` is computed from it, never given.
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum Target {
    AtLeast(f64),
    AtMost(f64),
    Below(f64),
}

impl Target {
    pub fn met(self, value: f64) -> bool {
        match self {
            Target::AtLeast(t) => value >= t,
            Target::AtMost(t) => value <= t,
            Target::Below(t) => value < t,
        }
    }

    /// As the issue and DESIGN.md write it, e.g. ">= 0.5" or "<= 0.5 ms".
    pub fn text(self, unit: &str) -> String {
        let (op, t) = match self {
            Target::AtLeast(t) => (">=", t),
            Target::AtMost(t) => ("<=", t),
            Target::Below(t) => ("<", t),
        };
        match unit {
            "ratio" | "" => format!("{op} {t}"),
            unit => format!("{op} {t} {unit}"),
        }
    }
}

/// One figure as a JSON line.
pub fn line(section: &str, name: &str, value: f64, unit: &str, target: Option<Target>) -> String {
    // JSON has no NaN or infinity: a figure that could not be measured is null.
    let number = serde_json::Number::from_f64(value).map(serde_json::Value::Number);
    let met = match (target, &number) {
        (Some(t), Some(_)) => serde_json::Value::Bool(t.met(value)),
        (Some(_), None) => serde_json::Value::Bool(false),
        (None, _) => serde_json::Value::Null,
    };
    serde_json::json!({
        "section": section,
        "name": name,
        "value": number.unwrap_or(serde_json::Value::Null),
        "unit": unit,
        "target": target.map(|t| t.text(unit)),
        "met": met,
    })
    .to_string()
}

/// Appends one figure to the file `BENCH_RESULTS` names (if it does); panics if it cannot,
/// since a run whose results vanish would look like a run that measured nothing.
pub fn emit(section: &str, name: &str, value: f64, unit: &str, target: Option<Target>) {
    let Some(path) = std::env::var_os("BENCH_RESULTS").filter(|p| !p.is_empty()) else {
        return;
    };
    let text = line(section, name, value, unit, target);
    let mut file = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(&path)
        .unwrap_or_else(|e| panic!("BENCH_RESULTS {}: {e}", path.to_string_lossy()));
    writeln!(file, "{text}")
        .unwrap_or_else(|e| panic!("BENCH_RESULTS {}: {e}", path.to_string_lossy()));
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parsed(s: &str) -> serde_json::Value {
        serde_json::from_str(s).expect("JSON")
    }

    #[test]
    fn met_is_computed_from_the_target() {
        let v = parsed(&line(
            "milter",
            "x",
            0.41,
            "ratio",
            Some(Target::AtLeast(0.5)),
        ));
        assert_eq!(v["section"], "milter");
        assert_eq!(v["value"], 0.41);
        assert_eq!(v["target"], ">= 0.5");
        assert_eq!(v["met"], false);
        let v = parsed(&line("milter", "x", 0.4, "ms", Some(Target::AtMost(0.5))));
        assert_eq!(
            (v["target"].as_str(), v["met"].as_bool()),
            (Some("<= 0.5 ms"), Some(true))
        );
        let v = parsed(&line("memory", "x", 64.0, "MiB", Some(Target::Below(64.0))));
        assert_eq!(
            (v["target"].as_str(), v["met"].as_bool()),
            (Some("< 64 MiB"), Some(false))
        );
    }

    #[test]
    fn figures_without_target_or_value() {
        let v = parsed(&line("milter", "bare", 1200.5, "mails/s", None));
        assert!(v["target"].is_null() && v["met"].is_null());
        let v = parsed(&line(
            "milter",
            "x",
            f64::NAN,
            "ratio",
            Some(Target::AtLeast(1.0)),
        ));
        assert!(v["value"].is_null());
        assert_eq!(
            v["met"], false,
            "an unmeasured figure does not meet its target"
        );
    }
}
