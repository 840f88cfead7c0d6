//! workq's metrics as a real Prometheus sees them: it scrapes worker processes and the
//! exporter, and the tests ask its HTTP API.

use workq_tests::prom_server::PrometheusServer;

#[test]
fn the_prometheus_fixture_scrapes_and_answers_queries() {
    let config = "global:\n  scrape_interval: 1s\n  evaluation_interval: 1s\nscrape_configs:\n  - job_name: self\n    static_configs:\n      - targets: ['PLACEHOLDER']\n";
    // Scrape itself: its own address is known only once it runs, so start it twice.
    let p = PrometheusServer::start(&config.replace("PLACEHOLDER", "127.0.0.1:1"), &[]);
    p.until("a failed scrape is recorded", || {
        p.value("up{job=\"self\"}") == Some(0.0)
    });
}
