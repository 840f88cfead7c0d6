//! The `otel` feature: an enqueue puts the trace context it runs in into each request's
//! metadata, as W3C Trace Context (`traceparent`, and `tracestate` when not empty), for
//! the worker's attempt span to continue (workq-worker's `otel` feature).

use std::collections::{BTreeMap, HashMap};

use opentelemetry::propagation::TextMapPropagator;
use opentelemetry::trace::TraceContextExt;
use opentelemetry_sdk::propagation::TraceContextPropagator;
use tracing_opentelemetry::OpenTelemetrySpanExt;

const TRACEPARENT: &str = "traceparent";
const TRACESTATE: &str = "tracestate";

/// The current trace context's W3C fields: from the current `tracing` span when a
/// tracing-opentelemetry layer gives it a valid span context, else from OpenTelemetry's
/// current context; empty outside any trace.
pub(crate) fn current() -> Vec<(String, String)> {
    let mut cx = tracing::Span::current().context();
    if !cx.span().span_context().is_valid() {
        cx = opentelemetry::Context::current();
    }
    let mut fields: HashMap<String, String> = HashMap::new();
    TraceContextPropagator::new().inject_context(&cx, &mut fields);
    let mut out = Vec::with_capacity(2);
    if let Some(parent) = fields.remove(TRACEPARENT) {
        out.push((TRACEPARENT.to_owned(), parent));
        if let Some(state) = fields.remove(TRACESTATE).filter(|s| !s.is_empty()) {
            out.push((TRACESTATE.to_owned(), state));
        }
    }
    out
}

/// Adds `fields` (from [`current`]) to a request's metadata, unless it has a `traceparent`
/// of its own (set by the caller: kept as it is). What would take the metadata past its
/// bounds is left out, `tracestate` first, and said at debug level.
pub(crate) fn inject(metadata: &mut BTreeMap<String, String>, fields: &[(String, String)]) {
    if fields.is_empty() || metadata.contains_key(TRACEPARENT) {
        return;
    }
    for (k, v) in fields {
        metadata.insert(k.clone(), v.clone());
    }
    for drop in [TRACESTATE, TRACEPARENT] {
        let problem = workq_common::limits::metadata_problem(
            metadata.iter().map(|(k, v)| (k.as_str(), v.as_str())),
        );
        let Some(problem) = problem else {
            return;
        };
        if metadata.remove(drop).is_some() {
            tracing::debug!(%problem, "trace context: {drop} left out of the request's metadata");
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn fields() -> Vec<(String, String)> {
        vec![
            (
                TRACEPARENT.to_owned(),
                "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01".to_owned(),
            ),
            (TRACESTATE.to_owned(), "congo=t61rcWkgMzE".to_owned()),
        ]
    }

    #[test]
    fn a_traceparent_the_caller_set_is_kept() {
        let mut m: BTreeMap<String, String> = [(TRACEPARENT.to_owned(), "mine".to_owned())].into();
        inject(&mut m, &fields());
        assert_eq!(m.len(), 1);
        assert_eq!(m[TRACEPARENT], "mine");
    }

    #[test]
    fn what_would_break_the_bounds_is_left_out_tracestate_first() {
        let mut m = BTreeMap::new();
        inject(&mut m, &fields());
        assert_eq!(m.len(), 2);
        // 15 entries of the caller's: room for one more, the traceparent.
        let mut m: BTreeMap<String, String> =
            (0..15).map(|i| (format!("k{i}"), "v".to_owned())).collect();
        inject(&mut m, &fields());
        assert!(m.contains_key(TRACEPARENT) && !m.contains_key(TRACESTATE));
        let mut full: BTreeMap<String, String> =
            (0..16).map(|i| (format!("k{i}"), "v".to_owned())).collect();
        inject(&mut full, &fields());
        assert_eq!(full.len(), 16);
    }

    #[test]
    fn outside_any_trace_there_is_nothing_to_add() {
        assert!(current().is_empty());
    }
}
