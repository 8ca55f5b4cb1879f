//! `reachlab emulate check`'s table: each probe's expectation, prediction and kernel answer
//! side by side, with the verdict and the evidence the kernel gave.

use std::time::Duration;

use super::Palette;
use crate::emulate::{Comparison, Echo, MAX_RTT, ms};
use crate::model::Outcome;

/// The side-by-side table `reachlab emulate check` prints.
pub fn emulate_table(rows: &[Comparison], palette: Palette) -> String {
    let width = rows
        .iter()
        .map(|r| r.probe.chars().count())
        .max()
        .unwrap_or(5)
        .max(5);
    let mut out = format!(
        "{:width$}  {:16}  {:16}  {:16}  {}\n",
        "probe", "expected", "predicted", "kernel", "agree"
    );
    let (ok, bad, warn, dim) = (
        palette.ok(),
        palette.error(),
        palette.warning(),
        palette.dim(),
    );
    for r in rows {
        let predicted = side(
            r.simulated,
            &r.simulated_echoes,
            r.simulated_ttl,
            r.simulated_status,
        );
        let kernel = side(
            r.kernel.outcome,
            &r.kernel_echoes(),
            r.kernel.ttl,
            r.kernel.http.as_ref().map(|h| h.status),
        );
        let verdict = if !r.agrees() {
            format!("{bad}NO: {}{bad:#}", r.differences.join("; "))
        } else if r.not_compared.is_empty() {
            format!("{ok}yes{ok:#}")
        } else {
            let skipped: Vec<String> = r.not_compared.iter().map(ToString::to_string).collect();
            format!("{warn}yes, except: {}{warn:#}", skipped.join("; "))
        };
        let rtt = match (r.max_rtt, r.simulated_rtt, r.kernel.rtt) {
            (Some(max), Some(sim), Some(real))
                if !r.not_compared.iter().any(|n| n.what == MAX_RTT) =>
            {
                format!(
                    "; rtt predicted {}, kernel {} (max_rtt {})",
                    ms(sim),
                    ms(real),
                    ms(max)
                )
            }
            _ => String::new(),
        };
        out.push_str(&format!(
            "{:width$}  {:16}  {:16}  {:16}  {verdict}  {dim}{}{rtt} [{}]{dim:#}\n",
            r.probe,
            r.expected.map_or("-".to_owned(), |e| e.to_string()),
            predicted,
            kernel,
            r.kernel.evidence,
            fmt_ms(r.kernel.elapsed),
        ));
    }
    out
}

/// `reply 2/2 ttl=63`, `host-unreachable 0/1`, `reply ttl=63 200`.
fn side(outcome: Outcome, echoes: &[Echo], ttl: Option<u8>, status: Option<u16>) -> String {
    let mut text = outcome.to_string();
    if !echoes.is_empty() {
        let replies = echoes
            .iter()
            .filter(|e| matches!(e, Echo::Reply { .. }))
            .count();
        text.push_str(&format!(" {replies}/{}", echoes.len()));
    }
    if let Some(t) = ttl {
        text.push_str(&format!(" ttl={t}"));
    }
    if let Some(s) = status {
        text.push_str(&format!(" {s}"));
    }
    text
}

fn fmt_ms(d: Duration) -> String {
    format!("{:.0} ms", d.as_secs_f64() * 1e3)
}
