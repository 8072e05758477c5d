import Foundation
import Testing
@testable import CloudWasteStream

/// Checks the exact exposition text and that updates stay correct under contention.
@Suite struct MetricsRegistryTests {
    @Test func rendersFamiliesAndSeriesSorted() {
        let registry = MetricsRegistry()
        registry.counter("requests_total", help: "Requests served.", labels: ["path": "/b", "code": "200"]).increment(by: 2)
        registry.counter("requests_total", help: "Requests served.", labels: ["path": "/a", "code": "200"]).increment()
        registry.counter("requests_total", help: "Requests served.", labels: ["code": "500"]).increment(by: 0)
        registry.gauge("consumer_lag_seconds", help: "Seconds behind.").set(1.5)
        let latency = registry.histogram("latency_seconds", help: "Latency.", buckets: [1, 0.1], labels: ["op": "flush"])
        for value in [0.0625, 0.09375, 0.5, 3] { latency.observe(value) }

        #expect(registry.render() == """
            # HELP consumer_lag_seconds Seconds behind.
            # TYPE consumer_lag_seconds gauge
            consumer_lag_seconds 1.5
            # HELP latency_seconds Latency.
            # TYPE latency_seconds histogram
            latency_seconds_bucket{op="flush",le="0.1"} 2
            latency_seconds_bucket{op="flush",le="1"} 3
            latency_seconds_bucket{op="flush",le="+Inf"} 4
            latency_seconds_sum{op="flush"} 3.65625
            latency_seconds_count{op="flush"} 4
            # HELP requests_total Requests served.
            # TYPE requests_total counter
            requests_total{code="200",path="/a"} 1
            requests_total{code="200",path="/b"} 2
            requests_total{code="500"} 0

            """)
        #expect(latency.count == 4)
        #expect(latency.sum == 3.65625)
    }

    @Test func sameNameAndLabelsReturnSameInstance() {
        let registry = MetricsRegistry()
        let a = registry.counter("events_total", help: "Events.", labels: ["kind": "x"])
        #expect(a === registry.counter("events_total", help: "Events.", labels: ["kind": "x"]))
        #expect(a !== registry.counter("events_total", help: "Events.", labels: ["kind": "y"]))
        #expect(registry.gauge("g", help: "G.") === registry.gauge("g", help: "G."))
        #expect(registry.histogram("h", help: "H.", buckets: [1]) === registry.histogram("h", help: "H.", buckets: [1]))
    }

    @Test func gaugeSetAndAdd() {
        let gauge = MetricsRegistry().gauge("queue_depth", help: "Queued.")
        gauge.set(10)
        gauge.add(-2.5)
        #expect(gauge.value == 7.5)
    }

    @Test func escapesLabelValuesAndHelp() {
        let registry = MetricsRegistry()
        registry.gauge("info", help: "Line one\nback\\slash \"quoted\"", labels: ["v": "a\\b\"c\nd"]).set(1)
        #expect(registry.render() == """
            # HELP info Line one\\nback\\\\slash "quoted"
            # TYPE info gauge
            info{v="a\\\\b\\"c\\nd"} 1

            """)
    }

    @Test func formatsSpecialValues() {
        #expect(MetricsRegistry.format(.infinity) == "+Inf")
        #expect(MetricsRegistry.format(-.infinity) == "-Inf")
        #expect(MetricsRegistry.format(.nan) == "NaN")
        #expect(MetricsRegistry.format(2) == "2")
        #expect(MetricsRegistry.format(0.25) == "0.25")
    }

    @Test func concurrentUpdatesSumCorrectly() {
        let registry = MetricsRegistry()
        let done = DispatchGroup()
        for _ in 0..<4 {
            done.enter()
            Thread {
                // Each thread looks the metrics up itself, racing on registration too.
                let counter = registry.counter("ops_total", help: "Ops.")
                let gauge = registry.gauge("level", help: "Level.")
                let histogram = registry.histogram("sizes", help: "Sizes.", buckets: [10])
                for i in 0..<10_000 {
                    counter.increment()
                    gauge.add(1)
                    histogram.observe(Double(i % 20))
                }
                done.leave()
            }.start()
        }
        done.wait()
        #expect(registry.counter("ops_total", help: "Ops.").value == 40_000)
        #expect(registry.gauge("level", help: "Level.").value == 40_000)
        let histogram = registry.histogram("sizes", help: "Sizes.", buckets: [10])
        #expect(histogram.count == 40_000)
        #expect(histogram.sum == 4 * 500 * 190)
        #expect(registry.render().contains("sizes_bucket{le=\"10\"} 22000\n"))
    }

    @Test func rejectsInvalidNames() async {
        await #expect(processExitsWith: .failure) { _ = MetricsRegistry().counter("1_bad", help: "") }
        await #expect(processExitsWith: .failure) { _ = MetricsRegistry().gauge("ok", help: "", labels: ["bad-label": "x"]) }
        await #expect(processExitsWith: .failure) { _ = MetricsRegistry().gauge("ok", help: "", labels: ["__reserved": "x"]) }
        await #expect(processExitsWith: .failure) {
            let registry = MetricsRegistry()
            _ = registry.counter("twice", help: "")
            _ = registry.gauge("twice", help: "")
        }
    }
}
