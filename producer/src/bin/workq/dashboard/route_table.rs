// The dashboard's routes: (method, path pattern), a `{name}` standing for one path
// segment. The router dispatches on exactly these, and the integration tests include
// this file to check that docs/dashboard-openapi.json documents exactly these.
// (HEAD is answered wherever GET is.)

/// Every route `workq serve` answers.
pub(crate) const ROUTES: &[(&str, &str)] = &[
    // The exporter's, unauthenticated (Prometheus scrapes them).
    ("GET", "/metrics"),
    ("GET", "/healthz"),
    // Sign-in: sets the session cookie.
    ("GET", "/login"),
    // The pages: one HTML shell, rendered by app.js from the API.
    ("GET", "/"),
    ("GET", "/queues/{queue}"),
    ("GET", "/jobs/{id}"),
    ("GET", "/workers"),
    ("GET", "/periodic"),
    ("GET", "/assets/app.js"),
    ("GET", "/assets/app.css"),
    // The JSON API.
    ("GET", "/api/openapi.json"),
    ("GET", "/api/queues"),
    ("GET", "/api/queues/{queue}/jobs"),
    ("GET", "/api/jobs/{id}"),
    ("GET", "/api/workers"),
    ("GET", "/api/periodic"),
    ("GET", "/api/history"),
    ("GET", "/api/events"),
    ("POST", "/api/jobs/{id}/retry"),
    ("POST", "/api/jobs/{id}/run-now"),
    ("POST", "/api/jobs/{id}/cancel"),
    ("POST", "/api/jobs/{id}/delete"),
    ("POST", "/api/queues/{queue}/pause"),
    ("POST", "/api/queues/{queue}/resume"),
    ("POST", "/api/queues/{queue}/retry-failed"),
    ("POST", "/api/queues/{queue}/purge"),
];
