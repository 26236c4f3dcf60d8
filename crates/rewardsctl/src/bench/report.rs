//! The figures of a run: each with its unit, the baseline it is read
//! against (the ratio is taken at the end, from the same run), and the
//! target it is held to; printed as a table and written as JSON.

use std::fmt::Write as _;

use serde::Serialize;

/// One measured figure.
#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct Figure {
    pub name: String,
    pub value: f64,
    pub unit: &'static str,
    /// The baseline figure this one is read against.
    pub baseline: Option<String>,
    /// `value / baseline`.
    pub ratio: Option<f64>,
    /// E.g. `<= 20`.
    pub target: Option<String>,
    pub met: Option<bool>,
}

/// Every figure of a run, in the order they were measured.
#[derive(Debug, Clone, Default, Serialize)]
pub struct Figures(Vec<Figure>);

impl Figures {
    /// Adds a figure; chain [`Figure::against`], [`Figure::at_most`] or
    /// [`Figure::at_least`] on the result.
    pub fn add(&mut self, name: impl Into<String>, value: f64, unit: &'static str) -> &mut Figure {
        self.0.push(Figure { name: name.into(), value, unit, baseline: None, ratio: None, target: None, met: None });
        let last = self.0.len() - 1;
        &mut self.0[last]
    }

    /// The figures.
    pub fn all(&self) -> &[Figure] {
        &self.0
    }

    /// The figure called `name`.
    pub fn get(&self, name: &str) -> Option<&Figure> {
        self.0.iter().find(|f| f.name == name)
    }

    /// Computes every ratio from the baselines of this run.
    pub fn resolve_ratios(&mut self) {
        let values: Vec<(String, f64)> = self.0.iter().map(|f| (f.name.clone(), f.value)).collect();
        for figure in &mut self.0 {
            if let Some(baseline) = &figure.baseline {
                figure.ratio = values
                    .iter()
                    .find(|(name, _)| name == baseline)
                    .map(|(_, value)| *value)
                    .filter(|value| *value != 0.0 && value.is_finite())
                    .map(|value| figure.value / value);
            }
        }
    }

    /// The table: figure, value, ratio to its baseline, target and whether it is met.
    pub fn table(&self) -> String {
        let width = self.0.iter().map(|f| f.name.len()).max().unwrap_or(6).max(6);
        let mut out = String::new();
        let _ = writeln!(
            out,
            "{:<width$}  {:>12} {:<10} {:>10}  {:<24} {:<10}",
            "figure", "value", "unit", "× base", "baseline", "target"
        );
        let _ = writeln!(out, "{}", "-".repeat(width + 74));
        for f in &self.0 {
            let ratio = f.ratio.map_or_else(String::new, format_ratio);
            let target = match (&f.target, f.met) {
                (Some(t), Some(true)) => format!("{t} met"),
                (Some(t), Some(false)) => format!("{t} NOT MET"),
                (Some(t), None) => t.clone(),
                (None, _) => String::new(),
            };
            let baseline = f.baseline.as_deref().map_or("", |b| b.strip_prefix("baseline.").unwrap_or(b));
            let _ = writeln!(
                out,
                "{:<width$}  {:>12} {:<10} {:>10}  {:<24} {}",
                f.name,
                format_value(f.value),
                f.unit,
                ratio,
                baseline,
                target
            );
        }
        out
    }
}

/// Small ratios (a rate against the disk's commit rate) keep three significant digits.
fn format_ratio(ratio: f64) -> String {
    if ratio.abs() >= 0.1 || ratio == 0.0 { format!("{ratio:.2}") } else { format!("{ratio:.2e}") }
}

fn format_value(value: f64) -> String {
    if value.abs() >= 100.0 { format!("{value:.0}") } else { format!("{value:.2}") }
}

impl Figure {
    /// Reads this figure against the baseline figure `baseline`.
    pub fn against(&mut self, baseline: &str) -> &mut Self {
        self.baseline = Some(baseline.to_owned());
        self
    }

    /// Holds it to at most `limit`.
    pub fn at_most(&mut self, limit: f64) -> &mut Self {
        self.target = Some(format!("<= {}", format_value(limit)));
        self.met = Some(self.value <= limit);
        self
    }

    /// Holds it to at least `limit`.
    pub fn at_least(&mut self, limit: f64) -> &mut Self {
        self.target = Some(format!(">= {}", format_value(limit)));
        self.met = Some(self.value >= limit);
        self
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ratios_are_taken_against_baselines_of_the_same_run() {
        let mut figures = Figures::default();
        figures.add("baseline.echo.p50_ms", 0.2, "ms");
        figures.add("chain.p50_ms", 3.0, "ms").against("baseline.echo.p50_ms").at_most(20.0);
        figures.add("orphan", 1.0, "ms").against("baseline.missing");
        figures.resolve_ratios();
        let chain = figures.get("chain.p50_ms").unwrap();
        assert!((chain.ratio.unwrap() - 15.0).abs() < 1e-9);
        assert_eq!((chain.target.as_deref(), chain.met), (Some("<= 20.00"), Some(true)));
        assert_eq!(figures.get("orphan").unwrap().ratio, None);
    }

    #[test]
    fn targets_say_whether_they_are_met() {
        let mut figures = Figures::default();
        figures.add("kept", 80.0, "%").at_least(85.0);
        figures.add("added", 4.0, "%").at_most(10.0);
        assert_eq!(figures.get("kept").unwrap().met, Some(false));
        assert_eq!(figures.get("added").unwrap().met, Some(true));
        let table = figures.table();
        assert!(table.contains(">= 85.00 NOT MET"), "{table}");
        assert!(table.contains("<= 10.00 met"), "{table}");
    }

    #[test]
    fn figures_serialise_with_their_baseline_and_target() {
        let mut figures = Figures::default();
        figures.add("a", 1.5, "ms").against("b").at_most(2.0);
        let json = serde_json::to_value(&figures).unwrap();
        assert_eq!(json[0]["name"], "a");
        assert_eq!(json[0]["baseline"], "b");
        assert_eq!(json[0]["met"], true);
        assert_eq!(json[0]["unit"], "ms");
    }
}
