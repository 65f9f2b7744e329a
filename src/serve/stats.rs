//! The server's own counters (sessions, bytes, refusals) and the `GET /metrics` document: these
//! families followed by every served pipeline's (per-node histograms), merged family by family.

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::sync::atomic::{AtomicU64, Ordering};

use super::config::{CloseKind, Refusal};

#[derive(Default)]
pub struct ServeStats {
    pub sessions_open: AtomicU64,
    pub sessions_total: AtomicU64,
    pub chunks_total: AtomicU64,
    pub bytes_received: AtomicU64,
    pub bytes_sent: AtomicU64,
    pub http_runs: AtomicU64,
    closed: [AtomicU64; CloseKind::ALL.len()],
    refused: [AtomicU64; Refusal::ALL.len()],
}

impl ServeStats {
    pub fn closed(&self, kind: CloseKind) {
        let i = CloseKind::ALL.iter().position(|k| *k == kind).unwrap_or(0);
        self.closed[i].fetch_add(1, Ordering::Relaxed);
    }

    pub fn refused(&self, r: Refusal) {
        let i = Refusal::ALL.iter().position(|k| *k == r).unwrap_or(0);
        self.refused[i].fetch_add(1, Ordering::Relaxed);
    }

    pub fn add(counter: &AtomicU64, n: u64) {
        counter.fetch_add(n, Ordering::Relaxed);
    }

    /// The server's families as Prometheus text.
    pub fn prometheus(&self) -> String {
        let mut s = String::new();
        let get = |c: &AtomicU64| c.load(Ordering::Relaxed);
        let mut one = |name: &str, kind: &str, help: &str, v: u64| {
            let _ = writeln!(s, "# HELP {name} {help}\n# TYPE {name} {kind}\n{name} {v}");
        };
        one("remotemedia_serve_sessions_open", "gauge", "Streaming sessions open now.", get(&self.sessions_open));
        one("remotemedia_serve_sessions_total", "counter", "Streaming sessions started.", get(&self.sessions_total));
        one("remotemedia_serve_chunks_total", "counter", "PCM chunks accepted into sessions.", get(&self.chunks_total));
        one("remotemedia_serve_received_bytes_total", "counter", "Bytes of WebSocket messages and request bodies received.", get(&self.bytes_received));
        one("remotemedia_serve_sent_bytes_total", "counter", "Bytes of WebSocket messages queued to clients.", get(&self.bytes_sent));
        one("remotemedia_serve_http_runs_total", "counter", "POST /v1/pipelines/NAME/run requests answered with outputs.", get(&self.http_runs));
        let name = "remotemedia_serve_sessions_closed_total";
        let _ = writeln!(s, "# HELP {name} Streaming sessions ended, by close reason.\n# TYPE {name} counter");
        for (k, c) in CloseKind::ALL.iter().zip(&self.closed) {
            let _ = writeln!(s, "{name}{{reason=\"{}\",code=\"{}\"}} {}", k.label(), k.code(), get(c));
        }
        let name = "remotemedia_serve_http_refused_total";
        let _ = writeln!(s, "# HELP {name} HTTP requests and WebSocket upgrades refused, by reason.\n# TYPE {name} counter");
        for (r, c) in Refusal::ALL.iter().zip(&self.refused) {
            let _ = writeln!(s, "{name}{{reason=\"{}\",status=\"{}\"}} {}", r.label(), r.status(), get(c));
        }
        s
    }
}

/// Several Prometheus documents as one: each family's HELP/TYPE once, its samples from every
/// document together (the text format wants a family's lines in one group).
pub fn merge_families(docs: &[String]) -> String {
    let mut order: Vec<String> = Vec::new();
    let mut families: BTreeMap<String, (Vec<String>, Vec<String>)> = BTreeMap::new();
    for doc in docs {
        let mut current = String::new();
        for line in doc.lines() {
            if let Some(rest) = line.strip_prefix("# HELP ").or_else(|| line.strip_prefix("# TYPE ")) {
                let name = rest.split(' ').next().unwrap_or("").to_string();
                if !families.contains_key(&name) {
                    order.push(name.clone());
                }
                let entry = families.entry(name.clone()).or_default();
                if entry.0.len() < 2 && !entry.0.iter().any(|l| l == line) {
                    entry.0.push(line.to_string());
                }
                current = name;
            } else if !line.is_empty() {
                families.entry(current.clone()).or_default().1.push(line.to_string());
            }
        }
    }
    let mut s = String::new();
    for name in order {
        let (head, samples) = &families[&name];
        for l in head.iter().chain(samples) {
            s.push_str(l);
            s.push('\n');
        }
    }
    s
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn families_are_merged_in_first_seen_order() {
        let a = "# HELP x X.\n# TYPE x counter\nx{p=\"a\"} 1\n# HELP y Y.\n# TYPE y gauge\ny{p=\"a\"} 2\n".to_string();
        let b = "# HELP x X.\n# TYPE x counter\nx{p=\"b\"} 3\n".to_string();
        assert_eq!(
            merge_families(&[a, b]),
            "# HELP x X.\n# TYPE x counter\nx{p=\"a\"} 1\nx{p=\"b\"} 3\n# HELP y Y.\n# TYPE y gauge\ny{p=\"a\"} 2\n"
        );
        let s = ServeStats::default();
        s.closed(CloseKind::Idle);
        s.refused(Refusal::Unauthorized);
        let text = s.prometheus();
        assert!(text.contains("remotemedia_serve_sessions_closed_total{reason=\"idle\",code=\"4008\"} 1"));
        assert!(text.contains("remotemedia_serve_http_refused_total{reason=\"unauthorized\",status=\"401\"} 1"));
    }
}
