//! The Markdown report written to `docs/PERFORMANCE.md`: one section per labelled run, merged
//! into the existing file so earlier runs stay beside the new one.

use std::fmt::Write;
use std::time::Duration;

use crate::{Load, StreamLoad};

pub struct Row {
    pub concurrency: usize,
    pub daemon: Load,
    pub direct: Load,
}

pub struct StreamRow {
    pub chunks: usize,
    pub sleep_ms: u64,
    pub concurrency: usize,
    pub daemon: StreamLoad,
    pub direct: StreamLoad,
    /// The daemon's CPU (user + system) while the daemon side of this level ran.
    pub daemon_cpu: Duration,
}

/// One install, upload to first successful invoke.
pub struct Install {
    pub what: String,
    pub upload: Duration,
    /// Upload start → task `success` (polled every 20 ms).
    pub installed: Duration,
    /// Upload start → first successful invoke.
    pub first_invoke: Duration,
    /// The task's message: the launch steps with their times.
    pub steps: String,
}

pub struct Profile {
    pub seconds: u64,
    /// `perf report` lines: self time per symbol.
    pub top: Vec<String>,
}

pub struct Report {
    pub label: String,
    pub commit: String,
    pub pinned: bool,
    pub daemon_env: Vec<String>,
    pub rows: Vec<Row>,
    pub stream_rows: Vec<StreamRow>,
    pub rss_idle_kib: u64,
    pub rss_load_kib: u64,
    /// Before the streaming workload, its peak, 3 s after it.
    pub rss_stream_kib: [u64; 3],
    pub installs: Vec<Install>,
    pub profile: Option<Profile>,
    pub startup: Duration,
    pub requests: usize,
    pub stream_calls: usize,
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

fn mib(kib: u64) -> String {
    format!("{:.1} MiB", kib as f64 / 1024.0)
}

fn chunk_rate(load: &StreamLoad) -> f64 {
    load.chunks as f64 / load.wall.as_secs_f64().max(1e-9)
}

fn ttfc(load: &StreamLoad) -> (Duration, Duration) {
    let mut sorted = load.first_chunks.clone();
    sorted.sort();
    (percentile(&sorted, 0.5), percentile(&sorted, 0.99))
}

const BEGIN: &str = "<!-- bench-run: ";
const END: &str = "<!-- /bench-run -->";

/// `previous` with the section of `label` replaced by `section` (or added first). Text outside
/// any section (the file's head, hand-written notes, a report from before sections existed) is
/// kept in place.
pub fn merge(previous: &str, label: &str, section: &str) -> String {
    let marker = format!("{BEGIN}{label} -->");
    let wrapped = format!("{marker}\n{}\n{END}\n", section.trim_end());
    if let Some(start) = previous.find(&marker) {
        if let Some(len) = previous[start..].find(END) {
            let end = start + len + END.len();
            let end = end + usize::from(previous[end..].starts_with('\n'));
            return format!("{}{wrapped}{}", &previous[..start], &previous[end..]);
        }
    }
    // New label: after the head (everything before the first section or `## `), before the rest.
    let head_end = previous
        .find(BEGIN)
        .or_else(|| previous.find("\n## ").map(|i| i + 1))
        .unwrap_or(previous.len());
    let (head, rest) = previous.split_at(head_end);
    let head = if head.trim().is_empty() {
        HEAD.to_owned()
    } else {
        head.to_owned()
    };
    format!("{head}{wrapped}\n{rest}")
}

const HEAD: &str = "# Performance\n\n\
Regenerate a run's section (it replaces the section with the same label; the others are kept):\n\n\
```sh\ncargo build --release --bins && ./target/release/plugind-bench --label <name> --profile\n```\n\n";

impl Report {
    pub fn markdown(&self) -> String {
        let mut out = String::new();
        let _ = writeln!(out, "## Run `{}` (commit {})\n", self.label, self.commit);
        let mut cmd = format!(
            "./target/release/plugind-bench --label {} --requests {} --stream-calls {}",
            self.label, self.requests, self.stream_calls
        );
        if self.profile.is_some() {
            cmd.push_str(" --profile");
        }
        for kv in &self.daemon_env {
            let _ = write!(cmd, " --daemon-env {kv}");
        }
        let _ = writeln!(out, "```sh\ncargo build --release --bins && {cmd}\n```\n");
        let _ = writeln!(out, "One run, one machine (2 cores, shared with other work, noisy): compare the columns of a row with each other, not with other runs. {}",
            if self.pinned { "The daemon and the bench client run on core 0, every plugin process (the daemon's and the direct driver's) on core 1." } else { "Not pinned (one core)." });

        let _ = writeln!(out, "\n### Tool invokes\n");
        let _ = writeln!(out, "The fixture echo tool (latest `dify_plugin` on Python 3.12), one text message per call, {} calls per level. (a) = through plugind (HTTP request, SSE response); (b) = a tiny driver writing the same request line to one plugin process's stdin and waiting for its `end` (the floor).\n", self.requests);
        let _ = writeln!(out, "| concurrency | (a) daemon req/s | (a) p50 ms | (a) p99 ms | (b) direct req/s | (b) p50 ms | (b) p99 ms | throughput (a)/(b) | p50 added ms |");
        let _ = writeln!(out, "|---:|---:|---:|---:|---:|---:|---:|---:|---:|");
        for row in &self.rows {
            let a = stats(&row.daemon);
            let b = stats(&row.direct);
            let _ = writeln!(
                out,
                "| {} | {:.0} | {} | {} | {:.0} | {} | {} | {:.2} | {} |",
                row.concurrency,
                a.rps,
                ms(a.p50),
                ms(a.p99),
                b.rps,
                ms(b.p50),
                ms(b.p99),
                a.rps / b.rps.max(1e-9),
                ms(a.p50.saturating_sub(b.p50))
            );
        }

        let _ = writeln!(out, "\n### Streaming (LLM)\n");
        let _ = writeln!(out, "A synthetic LLM on the real SDK yields N fixed chunks per call (optionally sleeping before each); (a) = `dispatch/llm/invoke` through plugind, read by an HTTP client that checks every event; (b) = the same request straight to one plugin process's stdin. Calls per level: max({}, concurrency). TTFC = time to first chunk. Daemon CPU = its utime+stime over the (a) run divided by the chunks relayed. Reads/call = body reads of the client per call (a measure of how many HTTP chunks/writes the events took).\n", self.stream_calls);
        let _ = writeln!(out, "| N × sleep | conc. | (a) chunks/s | (b) chunks/s | (a)/(b) | (a) TTFC p50/p99 ms | (b) TTFC p50/p99 ms | TTFC p50 (a)/(b) | daemon CPU µs/chunk | reads/call |");
        let _ = writeln!(out, "|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|");
        for row in &self.stream_rows {
            let (a50, a99) = ttfc(&row.daemon);
            let (b50, b99) = ttfc(&row.direct);
            let _ = writeln!(
                out,
                "| {} × {} ms | {} | {:.0} | {:.0} | {:.2} | {} / {} | {} / {} | {:.2} | {:.1} | {:.1} |",
                row.chunks,
                row.sleep_ms,
                row.concurrency,
                chunk_rate(&row.daemon),
                chunk_rate(&row.direct),
                chunk_rate(&row.daemon) / chunk_rate(&row.direct).max(1e-9),
                ms(a50),
                ms(a99),
                ms(b50),
                ms(b99),
                a50.as_secs_f64() / b50.as_secs_f64().max(1e-9),
                row.daemon_cpu.as_secs_f64() * 1e6 / row.daemon.chunks.max(1) as f64,
                row.daemon.reads as f64 / row.daemon.calls.max(1) as f64,
            );
        }

        let _ = writeln!(out, "\n### Install (warm uv cache)\n");
        let _ = writeln!(out, "| plugin | upload ms | upload → installed ms | upload → first successful invoke ms | steps (from the task message) |");
        let _ = writeln!(out, "|---|---:|---:|---:|---|");
        for i in &self.installs {
            let _ = writeln!(
                out,
                "| {} | {} | {} | {} | {} |",
                i.what,
                ms(i.upload),
                ms(i.installed),
                ms(i.first_invoke),
                i.steps.replace('|', "/")
            );
        }

        let _ = writeln!(
            out,
            "\n### Memory and start-up\n\n| measure | value |\n|---|---:|"
        );
        let [before, peak, after] = self.rss_stream_kib;
        let rows = [
            (
                "daemon RSS idle (plugins running, after start-up)".to_owned(),
                mib(self.rss_idle_kib),
            ),
            (
                "daemon RSS peak under tool load (concurrency 1-100)".to_owned(),
                mib(self.rss_load_kib),
            ),
            ("daemon RSS before the streaming workload".to_owned(), mib(before)),
            ("daemon RSS peak during the streaming workload".to_owned(), mib(peak)),
            ("daemon RSS 3 s after the streaming workload".to_owned(), mib(after)),
            (
                "daemon start → first successful invoke of an installed plugin".to_owned(),
                format!("{} ms", ms(self.startup)),
            ),
            (
                format!(
                    "daemon RSS peak with {} callers that never read a {} MB stream each (`PLUGIN_SESSION_BUFFER_SIZE` {})",
                    self.stalled.clients,
                    self.stalled.bytes_each / 1_000_000,
                    self.stalled.buffer_limit
                ),
                mib(self.stalled.rss_peak_kib),
            ),
            (
                "daemon RSS 3 s after those callers went away".to_owned(),
                mib(self.stalled.rss_after_kib),
            ),
        ];
        for (what, value) in rows {
            let _ = writeln!(out, "| {what} | {value} |");
        }

        if let Some(profile) = &self.profile {
            let _ = writeln!(out, "\n### Profile\n\n`perf record -F 1999 -g -p <daemon>` for {} s while 10 callers stream {}-chunk calls; `perf report --no-children --sort symbol` (self time, ≥ 1.5 %):\n", profile.seconds, self.stream_rows.first().map_or(0, |r| r.chunks));
            let _ = writeln!(out, "```");
            for line in &profile.top {
                let _ = writeln!(out, "{line}");
            }
            let _ = writeln!(out, "```");
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn merge_replaces_its_own_section_and_keeps_the_rest() {
        let old = "# Performance\n\nold intro\n\n| a | b |\n";
        let one = merge(old, "before", "## Run `before`\nB1");
        assert!(one.starts_with("# Performance\n\nold intro\n\n| a | b |\n"));
        assert!(one.contains("B1"));
        let two = merge(&one, "after", "## Run `after`\nA1");
        let three = merge(&two, "before", "## Run `before`\nB2");
        assert!(three.contains("A1") && three.contains("B2") && !three.contains("B1"));
        assert!(three.contains("old intro"));
        assert_eq!(three.matches(BEGIN).count(), 2);
    }
}
