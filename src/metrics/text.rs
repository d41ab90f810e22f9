//! The Prometheus text exposition format (version 0.0.4) of an app's metrics: a `# HELP`
//! and a `# TYPE` line per family, then its samples, label values escaped.

use std::fmt::Write;

use super::{ErrorKind, Metrics, RouteMetrics, BUCKETS_US, BUCKET_LABELS};

/// The `Content-Type` of the text format.
pub const CONTENT_TYPE: &str = "text/plain; version=0.0.4; charset=utf-8";

/// What is read at scrape time rather than counted: the gauges.
#[derive(Debug, Default)]
pub struct Gauges {
    /// Requests held right now (`--max-in-flight` counts the same).
    pub in_flight: usize,
    /// Database connections idle in the pools, and in use.
    pub pool_idle: usize,
    pub pool_busy: usize,
    /// The process's resident memory, when `/proc/self/statm` can be read.
    pub resident_bytes: Option<u64>,
}

/// The whole text of `/metrics`.
pub fn render(metrics: &Metrics, gauges: &Gauges) -> String {
    let routes: Vec<(String, std::sync::Arc<RouteMetrics>)> = metrics
        .routes
        .lock()
        .unwrap_or_else(|e| e.into_inner())
        .iter()
        .map(|(name, route)| (escape(name), std::sync::Arc::clone(route)))
        .collect();
    let mut out = String::with_capacity(4096);
    requests(&mut out, &routes);
    durations(&mut out, &routes);
    family(
        &mut out,
        "rhapi_http_requests_in_flight",
        "gauge",
        "HTTP requests being answered right now.",
    );
    let _ = writeln!(out, "rhapi_http_requests_in_flight {}", gauges.in_flight);
    script_errors(&mut out, &routes);
    jobs(&mut out, metrics);
    family(
        &mut out,
        "rhapi_websocket_connections",
        "gauge",
        "WebSocket connections open right now.",
    );
    let sockets = metrics
        .websockets
        .load(std::sync::atomic::Ordering::Relaxed)
        .max(0);
    let _ = writeln!(out, "rhapi_websocket_connections {sockets}");
    family(
        &mut out,
        "rhapi_db_pool_connections",
        "gauge",
        "Database connections of the app's pools, idle or busy.",
    );
    let _ = writeln!(
        out,
        "rhapi_db_pool_connections{{state=\"idle\"}} {}",
        gauges.pool_idle
    );
    let _ = writeln!(
        out,
        "rhapi_db_pool_connections{{state=\"busy\"}} {}",
        gauges.pool_busy
    );
    family(
        &mut out,
        "process_resident_memory_bytes",
        "gauge",
        "Resident memory size in bytes.",
    );
    if let Some(bytes) = gauges.resident_bytes {
        let _ = writeln!(out, "process_resident_memory_bytes {bytes}");
    }
    out
}

fn family(out: &mut String, name: &str, kind: &str, help: &str) {
    let _ = writeln!(out, "# HELP {name} {help}\n# TYPE {name} {kind}");
}

fn requests(out: &mut String, routes: &[(String, std::sync::Arc<RouteMetrics>)]) {
    family(
        out,
        "rhapi_http_requests_total",
        "counter",
        "HTTP requests answered, by route pattern, method and status.",
    );
    for (route, metrics) in routes {
        for (method, status, count) in metrics.requests() {
            let _ = writeln!(
                out,
                "rhapi_http_requests_total{{route=\"{route}\",method=\"{method}\",status=\"{status}\"}} {count}"
            );
        }
    }
}

fn durations(out: &mut String, routes: &[(String, std::sync::Arc<RouteMetrics>)]) {
    let name = "rhapi_http_request_duration_seconds";
    family(
        out,
        name,
        "histogram",
        "Time from a request's arrival until its response (or a stream's head) was ready.",
    );
    for (route, metrics) in routes {
        let counts: Vec<u64> = metrics
            .buckets
            .iter()
            .map(|b| b.load(std::sync::atomic::Ordering::Relaxed))
            .collect();
        let total: u64 = counts.iter().sum();
        if total == 0 {
            continue;
        }
        let mut cumulative = 0;
        for (i, le) in BUCKET_LABELS.iter().enumerate() {
            cumulative += counts[i];
            let _ = writeln!(
                out,
                "{name}_bucket{{route=\"{route}\",le=\"{le}\"}} {cumulative}"
            );
        }
        let _ = writeln!(
            out,
            "{name}_bucket{{route=\"{route}\",le=\"+Inf\"}} {total}"
        );
        let nanos = metrics.sum_nanos.load(std::sync::atomic::Ordering::Relaxed);
        let _ = writeln!(
            out,
            "{name}_sum{{route=\"{route}\"}} {}",
            nanos as f64 / 1e9
        );
        let _ = writeln!(out, "{name}_count{{route=\"{route}\"}} {total}");
    }
    debug_assert_eq!(BUCKETS_US.len(), BUCKET_LABELS.len());
}

fn script_errors(out: &mut String, routes: &[(String, std::sync::Arc<RouteMetrics>)]) {
    family(
        out,
        "rhapi_script_errors_total",
        "counter",
        "Script errors, by route pattern and kind (error, timeout, panic, load).",
    );
    for (route, metrics) in routes {
        for kind in ErrorKind::ALL {
            let count = metrics.errors[kind as usize].load(std::sync::atomic::Ordering::Relaxed);
            if count > 0 {
                let _ = writeln!(
                    out,
                    "rhapi_script_errors_total{{route=\"{route}\",kind=\"{}\"}} {count}",
                    kind.label()
                );
            }
        }
    }
}

fn jobs(out: &mut String, metrics: &Metrics) {
    family(
        out,
        "rhapi_jobs_total",
        "counter",
        "Job runs that ended, by job name and how (completed, retried, failed).",
    );
    let jobs = metrics.jobs.lock().unwrap_or_else(|e| e.into_inner());
    for ((name, end), count) in jobs.iter() {
        let _ = writeln!(
            out,
            "rhapi_jobs_total{{name=\"{}\",state=\"{}\"}} {count}",
            escape(name),
            end.label()
        );
    }
}

/// A label value as the format writes it: `\`, `"` and line feeds escaped.
pub fn escape(value: &str) -> String {
    let mut out = String::with_capacity(value.len());
    for c in value.chars() {
        match c {
            '\\' => out.push_str("\\\\"),
            '"' => out.push_str("\\\""),
            '\n' => out.push_str("\\n"),
            c => out.push(c),
        }
    }
    out
}

/// The process's resident memory: the second field of `/proc/self/statm`, in pages.
pub fn resident_memory() -> Option<u64> {
    let statm = std::fs::read_to_string("/proc/self/statm").ok()?;
    let pages: u64 = statm.split_whitespace().nth(1)?.parse().ok()?;
    // SAFETY: sysconf has no preconditions.
    let page = unsafe { libc::sysconf(libc::_SC_PAGESIZE) };
    Some(pages * u64::try_from(page).ok().filter(|&p| p > 0)?)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::metrics::{JobEnd, RouteLabel};
    use std::time::Duration;

    #[test]
    fn label_values_are_escaped() {
        assert_eq!(escape("a\"b\\c\nd"), "a\\\"b\\\\c\\nd");
        let metrics = Metrics::default();
        metrics.turn_on();
        metrics.job_ended("say \"hi\"", JobEnd::Completed);
        let text = render(&metrics, &Gauges::default());
        assert!(text.contains("rhapi_jobs_total{name=\"say \\\"hi\\\"\",state=\"completed\"} 1"));
    }

    #[test]
    fn histogram_buckets_add_up() {
        let metrics = Metrics::default();
        metrics.turn_on();
        let route = RouteLabel::Route(metrics.route("/api/a"));
        for ms in [0, 3, 70, 20_000, 40_000] {
            metrics.request(&route, &http::Method::GET, 200, Duration::from_millis(ms));
        }
        let text = render(&metrics, &Gauges::default());
        let line = |needle: &str| {
            text.lines()
                .find(|l| l.starts_with(needle))
                .unwrap_or_else(|| panic!("{needle} in {text}"))
                .to_string()
        };
        let b = "rhapi_http_request_duration_seconds_bucket{route=\"/api/a\"";
        assert!(line(&format!("{b},le=\"0.0005\"}}")).ends_with(" 1"));
        assert!(line(&format!("{b},le=\"0.005\"}}")).ends_with(" 2"));
        assert!(line(&format!("{b},le=\"30\"}}")).ends_with(" 4"));
        assert!(line(&format!("{b},le=\"+Inf\"}}")).ends_with(" 5"));
        assert!(
            line("rhapi_http_request_duration_seconds_count{route=\"/api/a\"}").ends_with(" 5")
        );
        assert!(
            line("rhapi_http_requests_total{route=\"/api/a\",method=\"GET\",status=\"200\"}")
                .ends_with(" 5")
        );
    }

    #[test]
    fn nothing_is_counted_while_off() {
        let metrics = Metrics::default();
        metrics.request(&RouteLabel::None, &http::Method::GET, 404, Duration::ZERO);
        metrics.job_ended("a", JobEnd::Failed);
        let text = render(&metrics, &Gauges::default());
        assert!(!text.contains("status=\"404\""), "{text}");
        assert!(!text.contains("name=\"a\""), "{text}");
    }
}
