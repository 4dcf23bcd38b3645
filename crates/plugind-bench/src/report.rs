//! The Markdown report written to `docs/PERFORMANCE.md`.

use std::fmt::Write;
use std::time::Duration;

use crate::Load;

pub struct Row {
    pub concurrency: usize,
    pub daemon: Load,
    pub direct: Load,
}

pub struct Report {
    pub rows: Vec<Row>,
    pub rss_idle_kib: u64,
    pub rss_load_kib: u64,
    pub startup: Duration,
    pub requests: usize,
    pub stalled: Stalled,
}

/// RSS while callers open streams and never read them, and after they go away.
pub struct Stalled {
    pub clients: usize,
    /// Bytes each stream would carry if read.
    pub bytes_each: usize,
    pub buffer_limit: &'static str,
    pub rss_peak_kib: u64,
    pub rss_after_kib: u64,
}

fn percentile(sorted: &[Duration], p: f64) -> Duration {
    if sorted.is_empty() {
        return Duration::ZERO;
    }
    let idx = ((sorted.len() as f64 - 1.0) * p).round() as usize;
    sorted[idx.min(sorted.len() - 1)]
}

struct Stats {
    rps: f64,
    p50: Duration,
    p99: Duration,
}

fn stats(load: &Load) -> Stats {
    let mut sorted = load.latencies.clone();
    sorted.sort();
    Stats {
        rps: load.latencies.len() as f64 / load.wall.as_secs_f64().max(1e-9),
        p50: percentile(&sorted, 0.50),
        p99: percentile(&sorted, 0.99),
    }
}

fn ms(d: Duration) -> String {
    format!("{:.2}", d.as_secs_f64() * 1000.0)
}

impl Report {
    pub fn markdown(&self) -> String {
        let mut out = String::new();
        let _ = writeln!(out, "# Performance\n");
        let _ = writeln!(out, "Produced by:\n\n```sh\ncargo build --release --bins && ./target/release/plugind-bench --out docs/PERFORMANCE.md --requests {}\n```\n", self.requests);
        let _ = writeln!(out, "One run, one machine (2 cores, shared and noisy): compare the columns of a row with each other, not with other runs.");
        let _ = writeln!(out, "Workload: the fixture echo tool (latest `dify_plugin` on Python 3.12), one text message per call, {} calls per level.", self.requests);
        let _ = writeln!(out, "(a) = through plugind (HTTP request, SSE response, SQLite lookup of the installation); (b) = a tiny driver writing the same request line to one plugin process's stdin and waiting for its `end` (the floor).\n");
        let _ = writeln!(out, "| concurrency | (a) daemon req/s | (a) p50 ms | (a) p99 ms | (b) direct req/s | (b) p50 ms | (b) p99 ms | throughput (a)/(b) |");
        let _ = writeln!(out, "|---:|---:|---:|---:|---:|---:|---:|---:|");
        for row in &self.rows {
            let a = stats(&row.daemon);
            let b = stats(&row.direct);
            let _ = writeln!(
                out,
                "| {} | {:.0} | {} | {} | {:.0} | {} | {} | {:.2} |",
                row.concurrency,
                a.rps,
                ms(a.p50),
                ms(a.p99),
                b.rps,
                ms(b.p50),
                ms(b.p99),
                a.rps / b.rps.max(1e-9)
            );
        }
        let _ = writeln!(out, "\n| measure | value |\n|---|---:|");
        let _ = writeln!(
            out,
            "| daemon RSS idle (plugin running, after start-up) | {:.1} MiB |",
            self.rss_idle_kib as f64 / 1024.0
        );
        let _ = writeln!(
            out,
            "| daemon RSS peak under load (concurrency 1-100) | {:.1} MiB |",
            self.rss_load_kib as f64 / 1024.0
        );
        let _ = writeln!(
            out,
            "| daemon start → first successful invoke of an installed plugin | {} ms |",
            ms(self.startup)
        );
        let st = &self.stalled;
        let _ = writeln!(
            out,
            "| daemon RSS peak with {} callers that never read a {} MB stream each (`PLUGIN_SESSION_BUFFER_SIZE` {}) | {:.1} MiB |",
            st.clients,
            st.bytes_each / 1_000_000,
            st.buffer_limit,
            st.rss_peak_kib as f64 / 1024.0
        );
        let _ = writeln!(
            out,
            "| daemon RSS 3 s after those callers went away | {:.1} MiB |",
            st.rss_after_kib as f64 / 1024.0
        );
        out
    }
}
