//! Result lines for `bench/run`: when `BENCH_RESULTS` names a file, a benchmark appends one
//! JSON object per figure to it (JSON Lines), besides its own output; `bench-report` reads
//! them back and writes bench/RESULTS.md. The format is in bench/README.md.

use std::io::Write;

use serde_json::{Value, json};

/// A figure's target: the comparison the figure must pass, against a bound in its own unit.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Target {
    pub op: Op,
    pub bound: f64,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Op {
    AtLeast,
    AtMost,
    Above,
    Below,
}

impl Op {
    fn symbol(self) -> &'static str {
        match self {
            Op::AtLeast => ">=",
            Op::AtMost => "<=",
            Op::Above => ">",
            Op::Below => "<",
        }
    }
}

impl Target {
    pub fn at_least(bound: f64) -> Target {
        Target {
            op: Op::AtLeast,
            bound,
        }
    }

    pub fn at_most(bound: f64) -> Target {
        Target {
            op: Op::AtMost,
            bound,
        }
    }

    pub fn below(bound: f64) -> Target {
        Target {
            op: Op::Below,
            bound,
        }
    }

    pub fn met(&self, value: f64) -> bool {
        match self.op {
            Op::AtLeast => value >= self.bound,
            Op::AtMost => value <= self.bound,
            Op::Above => value > self.bound,
            Op::Below => value < self.bound,
        }
    }

    /// ">= 0.9" for a ratio, "< 64 MiB" for anything with a unit.
    pub fn text(&self, unit: &str) -> String {
        let s = format!("{} {}", self.op.symbol(), self.bound);
        if unit.is_empty() || unit == "ratio" {
            s
        } else {
            format!("{s} {unit}")
        }
    }

    /// Reads what [`Target::text`] writes (the unit, if any, must be the figure's own);
    /// None for anything else.
    pub fn parse(text: &str, unit: &str) -> Option<Target> {
        let text = text.trim();
        let (op, rest) = [
            (">=", Op::AtLeast),
            ("<=", Op::AtMost),
            (">", Op::Above),
            ("<", Op::Below),
        ]
        .into_iter()
        .find_map(|(p, op)| text.strip_prefix(p).map(|r| (op, r.trim())))?;
        let mut words = rest.split_whitespace();
        let bound = words.next()?.replace(',', "").parse::<f64>().ok()?;
        let rest: Vec<&str> = words.collect();
        let same_unit =
            rest.is_empty() || rest.join(" ") == unit || (unit == "ratio" && rest == ["x"]);
        same_unit.then_some(Target { op, bound })
    }
}

/// One reported figure.
#[derive(Clone, Debug, PartialEq)]
pub struct Figure {
    pub section: String,
    pub name: String,
    pub value: f64,
    pub unit: String,
    pub target: Option<String>,
    pub met: Option<bool>,
}

impl Figure {
    /// `met` follows from the value and the target.
    pub fn new(
        section: &str,
        name: &str,
        value: f64,
        unit: &str,
        target: Option<Target>,
    ) -> Figure {
        Figure {
            section: section.into(),
            name: name.into(),
            value,
            unit: unit.into(),
            target: target.map(|t| t.text(unit)),
            met: target.map(|t| t.met(value)),
        }
    }

    pub fn to_json(&self) -> Value {
        json!({
            "section": self.section,
            "name": self.name,
            "value": self.value,
            "unit": self.unit,
            "target": self.target,
            "met": self.met,
        })
    }

    /// A result line back; a missing `met` beside a target it can read is computed.
    pub fn from_json(v: &Value) -> Result<Figure, String> {
        let text = |k: &str| -> Result<String, String> {
            v.get(k)
                .and_then(Value::as_str)
                .map(str::to_string)
                .ok_or_else(|| format!("{k:?} missing or not a string"))
        };
        let value = v
            .get("value")
            .and_then(Value::as_f64)
            .ok_or("\"value\" missing or not a number")?;
        let unit = text("unit")?;
        let target = match v.get("target") {
            None | Some(Value::Null) => None,
            Some(Value::String(s)) => Some(s.clone()),
            Some(_) => return Err("\"target\" is neither text nor null".into()),
        };
        let met = match v.get("met") {
            None | Some(Value::Null) => target
                .as_deref()
                .and_then(|t| Target::parse(t, &unit))
                .map(|t| t.met(value)),
            Some(Value::Bool(b)) => Some(*b),
            Some(_) => return Err("\"met\" is neither true, false nor null".into()),
        };
        Ok(Figure {
            section: text("section")?,
            name: text("name")?,
            value,
            unit,
            target,
            met,
        })
    }
}

/// Appends the figure to `$BENCH_RESULTS` when it is set. Panics when the file cannot be
/// written: a figure that silently goes missing would read as a benchmark that never ran.
pub fn record(section: &str, name: &str, value: f64, unit: &str, target: Option<Target>) {
    let Some(path) = std::env::var_os("BENCH_RESULTS").filter(|p| !p.is_empty()) else {
        return;
    };
    let mut line = Figure::new(section, name, value, unit, target)
        .to_json()
        .to_string();
    line.push('\n');
    std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(&path)
        // One write of the whole line: O_APPEND keeps concurrent writers' lines whole.
        .and_then(|mut f| f.write_all(line.as_bytes()))
        .unwrap_or_else(|e| panic!("BENCH_RESULTS {}: {e}", path.to_string_lossy()));
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn targets_are_judged_and_read_back() {
        let t = Target::at_least(0.9);
        assert!(t.met(0.9) && !t.met(0.899));
        assert_eq!(t.text("ratio"), ">= 0.9");
        assert_eq!(Target::parse(">= 0.9", "ratio"), Some(t));
        assert_eq!(Target::parse(">= 0.9x", "ratio"), None);
        let m = Target::below(64.0);
        assert_eq!(m.text("MiB"), "< 64 MiB");
        assert!(m.met(63.9) && !m.met(64.0));
        assert_eq!(Target::parse("< 64 MiB", "MiB"), Some(m));
        // A bound in another unit is not compared.
        assert_eq!(Target::parse("< 1 ms", "µs"), None);
        assert_eq!(Target::parse("fast", "ms"), None);
        assert_eq!(
            Target::parse(">= 3,000", "mails/s"),
            Some(Target::at_least(3000.0))
        );
        assert!(Target::at_most(0.5).met(0.5));
    }

    #[test]
    fn a_figure_survives_its_line() {
        let f = Figure::new("memory", "peak RSS", 9.5, "MiB", Some(Target::below(64.0)));
        assert_eq!(f.met, Some(true));
        let back = Figure::from_json(&f.to_json()).expect("parses");
        assert_eq!(back, f);
        let peer = Figure::new("milter", "OpenDKIM", 218.0, "mails/s", None);
        assert_eq!(peer.to_json()["met"], Value::Null);
        assert_eq!(Figure::from_json(&peer.to_json()), Ok(peer));
    }

    #[test]
    fn bad_lines_are_named() {
        let v = json!({"section": "qes", "name": "x", "value": "fast", "unit": "s"});
        assert!(Figure::from_json(&v).unwrap_err().contains("value"));
        let v = json!({"section": "qes", "value": 1, "unit": "s"});
        assert!(Figure::from_json(&v).unwrap_err().contains("name"));
        let v = json!({"section": "qes", "name": "x", "value": 1, "unit": "s", "met": "yes"});
        assert!(Figure::from_json(&v).unwrap_err().contains("met"));
    }
}
