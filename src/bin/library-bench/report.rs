//! What the bench prints: a header, one line per scenario (service | baseline | ratio), and at
//! the end each target with met or missed. Figures go to stdout, progress to stderr, so
//! `library-bench ... > figures.txt` keeps only the figures.
use std::time::Duration;

use crate::stats::Sample;

pub fn ms(d: Duration) -> String {
    format!("{:.2} ms", d.as_secs_f64() * 1000.0)
}

pub fn rate(r: f64) -> String {
    // Thousands separators: these numbers are read by people comparing them side by side.
    let n = r.round() as u64;
    let digits = n.to_string();
    let mut out = String::new();
    for (i, c) in digits.chars().enumerate() {
        if i > 0 && (digits.len() - i).is_multiple_of(3) {
            out.push(',');
        }
        out.push(c);
    }
    out
}

/// `service R unit p50 p99 | baseline R unit p50 p99 | ratio`, then `extra`.
pub fn line(name: &str, unit: &str, service: &Sample, baseline: &Sample, extra: &str) -> String {
    format!(
        "{name:<16} service {:>9} {unit} p50 {:>9} p99 {:>9} | baseline {:>9} {unit} p50 {:>9} p99 {:>9} | ratio {:.2} | {extra}",
        rate(service.rate()),
        ms(service.p50()),
        ms(service.p99()),
        rate(baseline.rate()),
        ms(baseline.p50()),
        ms(baseline.p99()),
        ratio(service, baseline),
    )
}

pub fn ratio(service: &Sample, baseline: &Sample) -> f64 {
    let b = baseline.rate();
    if b > 0.0 { service.rate() / b } else { 0.0 }
}

pub fn emit(line: String) {
    println!("{line}");
}

pub struct Target {
    scenario: &'static str,
    what: &'static str,
    /// None when it could not be measured (e.g. RSS without --server-pid).
    met: Option<bool>,
    observed: String,
}

#[derive(Default)]
pub struct Report {
    targets: Vec<Target>,
}

impl Report {
    pub fn target(
        &mut self,
        scenario: &'static str,
        what: &'static str,
        met: Option<bool>,
        observed: String,
    ) {
        self.targets.push(Target {
            scenario,
            what,
            met,
            observed,
        });
    }

    /// At least `goal` (e.g. a throughput or ratio).
    pub fn at_least(
        &mut self,
        scenario: &'static str,
        what: &'static str,
        value: f64,
        goal: f64,
        shown: String,
    ) {
        let observed = if value >= goal {
            shown
        } else {
            format!("{shown}, missed by {:.0}%", (1.0 - value / goal) * 100.0)
        };
        self.target(scenario, what, Some(value >= goal), observed);
    }

    /// At most `goal` (a latency).
    pub fn at_most(
        &mut self,
        scenario: &'static str,
        what: &'static str,
        value: Duration,
        goal: Duration,
    ) {
        let observed = if value <= goal {
            ms(value)
        } else {
            format!("{}, missed by {}", ms(value), ms(value - goal))
        };
        self.target(scenario, what, Some(value <= goal), observed);
    }

    pub fn print(&self) {
        if self.targets.is_empty() {
            return;
        }
        println!("targets:");
        for t in &self.targets {
            let verdict = match t.met {
                Some(true) => "met",
                Some(false) => "MISSED",
                None => "n/a",
            };
            println!(
                "  {:<12} {:<28} {:<7} {}",
                t.scenario, t.what, verdict, t.observed
            );
        }
    }
}
