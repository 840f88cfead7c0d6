//! The `otel` feature: an attempt's span continues the trace its job was enqueued in,
//! read with the W3C Trace Context propagator from the job's metadata (`traceparent`,
//! `tracestate`; workq-producer's `otel` feature writes them).

use std::collections::BTreeMap;

use opentelemetry::propagation::{Extractor, TextMapPropagator};
use opentelemetry::trace::TraceContextExt;
use opentelemetry_sdk::propagation::TraceContextPropagator;
use tracing_opentelemetry::OpenTelemetrySpanExt;

/// A job's metadata, read as a carrier of W3C fields.
struct Carrier<'a>(&'a BTreeMap<String, String>);

impl Extractor for Carrier<'_> {
    fn get(&self, key: &str) -> Option<&str> {
        self.0.get(key).map(String::as_str)
    }

    fn keys(&self) -> Vec<&str> {
        self.0.keys().map(String::as_str).collect()
    }
}

/// Makes the trace context in `metadata`, if any, the OpenTelemetry parent of `span`,
/// which must not have been entered yet. Without a tracing-opentelemetry layer (or
/// without a valid `traceparent`) the span stays as it is.
pub(crate) fn continue_trace(span: &tracing::Span, metadata: &BTreeMap<String, String>) {
    if !metadata.contains_key("traceparent") {
        return;
    }
    let cx = TraceContextPropagator::new()
        .extract_with_context(&opentelemetry::Context::new(), &Carrier(metadata));
    if !cx.span().span_context().is_valid() {
        tracing::debug!(traceparent = %metadata["traceparent"], "the job's traceparent does not parse: its attempt starts a trace of its own");
        return;
    }
    if let Err(e) = span.set_parent(cx) {
        tracing::trace!(error = %e, "the attempt's span does not continue the job's trace");
    }
}
