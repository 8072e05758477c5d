public import CoreMetrics
public import Prometheus

/// The pipeline's metrics, reported through swift-metrics and rendered by swift-prometheus. Each
/// is created in the pipeline's own registry with its help text (which says its unit), and wrapped
/// in the swift-metrics type the code records through; libraries that report through the global
/// `MetricsSystem` land in the same registry when the daemon bootstraps it with `factory`.
/// Labels carry topic names, table names, reason codes and providers only: never an identifier
/// from a record. The names are the operators' dashboards' names: they do not change.
public final class PipelineMetrics: Sendable {
    public let registry: PrometheusCollectorRegistry
    /// For `MetricsSystem.bootstrap`, so that libraries report into the same registry.
    public var factory: PrometheusMetricsFactory { PrometheusMetricsFactory(registry: registry) }

    let batchesCommitted: CoreMetrics.Counter
    let batchRecords: Recorder
    let commitSeconds: CoreMetrics.Timer
    let fencedBatches: CoreMetrics.Counter
    let postgresErrors: CoreMetrics.Counter
    let kafkaErrors: CoreMetrics.Counter
    let kafkaClientErrors: CoreMetrics.Counter
    let kafkaFetcherWakes: CoreMetrics.Counter
    let partitionRestarts: CoreMetrics.Counter
    let lateRecords: CoreMetrics.Counter
    let trendsEmitted: CoreMetrics.Counter
    let windowsFinalized: CoreMetrics.Counter
    let ready: Meter
    let residentMemory: Meter
    let postgresUp: Meter
    let windowWatermark: Meter
    let kafkaUp: Meter
    let assignedPartitions: Meter

    public init(registry: PrometheusCollectorRegistry = PrometheusCollectorRegistry()) {
        self.registry = registry
        func counter(_ name: String, _ help: String) -> CoreMetrics.Counter {
            CoreMetrics.Counter(label: name, dimensions: [], handler: registry.makeCounter(name: name, help: help))
        }
        func gauge(_ name: String, _ help: String) -> Meter {
            Meter(label: name, dimensions: [], handler: registry.makeGauge(name: name, help: help))
        }
        batchesCommitted = counter("cloudwaste_batches_committed_total", "Batches committed to PostgreSQL (count)")
        batchRecords = Recorder(label: "cloudwaste_batch_records", dimensions: [], aggregate: true, handler: registry.makeValueHistogram(
            name: "cloudwaste_batch_records", buckets: [1, 10, 100, 500, 1000, 2500, 5000, 10000, 25000],
            help: "Records per committed batch (records)"))
        commitSeconds = CoreMetrics.Timer(label: "cloudwaste_commit_seconds", dimensions: [], handler: registry.makeDurationHistogram(
            name: "cloudwaste_commit_seconds",
            buckets: [.milliseconds(5), .milliseconds(10), .milliseconds(25), .milliseconds(50), .milliseconds(100), .milliseconds(250),
                      .milliseconds(500), .seconds(1), .milliseconds(2500), .seconds(5), .seconds(10)],
            help: "Time to write and commit one batch (seconds)"))
        fencedBatches = counter("cloudwaste_fenced_batches_total", "Batches rolled back because another instance owns a partition (count)")
        postgresErrors = counter("cloudwaste_postgres_errors_total", "PostgreSQL failures, each retried (count)")
        kafkaErrors = counter("cloudwaste_kafka_errors_total", "Kafka publication failures, each retried (count)")
        kafkaClientErrors = counter("cloudwaste_kafka_client_errors_total", "Errors the Kafka consumer reported: brokers unreachable, transport, authentication (count)")
        kafkaFetcherWakes = counter("cloudwaste_kafka_fetcher_wakes_total", "Requests sent to wake librdkafka's fetchers, every 25 ms while a backlog fills the local queue; librdkafka before 2.3.0 only (count)")
        partitionRestarts = counter("cloudwaste_partition_restarts_total", "Lagging partitions that delivered nothing and were re-seeked (count)")
        lateRecords = counter("cloudwaste_window_late_records_total", "Records applied to an already finalized month (records)")
        trendsEmitted = counter("cloudwaste_cost_trends_emitted_total", "Cost-trend rows published (rows)")
        windowsFinalized = counter("cloudwaste_windows_finalized_total", "Months finalized by the watermark (account-months)")
        residentMemory = gauge("process_resident_memory_bytes", "Resident memory of the daemon, VmRSS (bytes)")
        ready = gauge("cloudwaste_ready", "1 when connected to Kafka and PostgreSQL with partitions assigned (boolean)")
        postgresUp = gauge("cloudwaste_postgres_up", "1 when every writer can write to PostgreSQL: none is retrying a batch (boolean)")
        kafkaUp = gauge("cloudwaste_kafka_up", "1 unless librdkafka reported every broker down and none answered since (boolean)")
        windowWatermark = gauge("cloudwaste_window_watermark_seconds", "Event-time watermark of the consumer group's cost-trend windows, Unix time; months end once it passes their end plus the grace period (seconds)")
        assignedPartitions = gauge("cloudwaste_assigned_partitions", "Partitions assigned to this instance; 0 while it has none, see /readyz for why (partitions)")
    }

    /// `cloudwaste_build_info{version,librdkafka}` = 1: which build and which librdkafka (the one
    /// loaded at run time) an instance runs, for dashboards and the old-librdkafka alert.
    public func recordBuildInfo(version: String, librdkafka: String) {
        let labels = [("librdkafka", librdkafka), ("version", version)]
        Meter(label: "cloudwaste_build_info", dimensions: labels, handler: registry.makeGauge(
            name: "cloudwaste_build_info", labels: labels, help: "1 for the running build and the librdkafka it loaded (info)")).set(1)
    }

    func recordsIn(topic: String) -> CoreMetrics.Counter {
        labeledCounter("cloudwaste_records_in_total", ["topic": topic], "Records consumed, per topic (records)")
    }

    func rowsWritten(table: String) -> CoreMetrics.Counter {
        labeledCounter("cloudwaste_rows_written_total", ["table": table], "Rows inserted or updated, per table (rows)")
    }

    func deadLetters(reason: String) -> CoreMetrics.Counter {
        labeledCounter("cloudwaste_dead_letters_total", ["reason": reason], "Records sent to the dead-letter topic and table, per reason (records)")
    }

    func unknownRegions(provider: String) -> CoreMetrics.Counter {
        labeledCounter("cloudwaste_unknown_regions_total", ["provider": provider], "Records whose region is not in the region table (records)")
    }

    func partitionLag(topic: String, partition: Int32) -> Meter {
        let labels = [("partition", String(partition)), ("topic", topic)]
        return Meter(label: "cloudwaste_partition_lag", dimensions: labels, handler: registry.makeGauge(
            name: "cloudwaste_partition_lag", labels: labels, help: "High watermark minus committed offset (records)"))
    }

    private func labeledCounter(_ name: String, _ labels: [String: String], _ help: String) -> CoreMetrics.Counter {
        let pairs = labels.sorted { $0.key < $1.key }.map { ($0.key, $0.value) }
        return CoreMetrics.Counter(label: name, dimensions: pairs, handler: registry.makeCounter(name: name, labels: pairs, help: help))
    }

    /// The Prometheus exposition text (/metrics).
    public func render() -> String { registry.emitToString() }

    /// The current value of a series, read back from the exposition (the status page, tests).
    public func value(_ name: String, labels: [String: String] = [:]) -> Double? {
        MetricsExposition(render()).value(name, labels: labels)
    }
}

/// Samples read back from Prometheus exposition text.
public struct MetricsExposition: Sendable {
    public struct Sample: Sendable {
        public var name: String
        public var labels: [String: String]
        public var value: Double
    }

    public let samples: [Sample]

    public init(_ text: String) {
        var out: [Sample] = []
        for line in text.split(separator: "\n") where !line.hasPrefix("#") {
            guard let space = line.lastIndex(of: " "), let value = Double(line[line.index(after: space)...]) else { continue }
            let series = line[..<space]
            var labels: [String: String] = [:]
            var name = String(series)
            if let open = series.firstIndex(of: "{"), series.last == "}" {
                name = String(series[..<open])
                for pair in series[series.index(after: open)..<series.index(before: series.endIndex)].split(separator: ",") {
                    let kv = pair.split(separator: "=", maxSplits: 1)
                    if kv.count == 2 { labels[String(kv[0])] = String(kv[1].hasPrefix("\"") && kv[1].hasSuffix("\"") ? kv[1].dropFirst().dropLast() : kv[1]) }
                }
            }
            out.append(Sample(name: name, labels: labels, value: value))
        }
        samples = out
    }

    /// The sample whose labels include `labels` (the sum when several match).
    public func value(_ name: String, labels: [String: String] = [:]) -> Double? {
        let matching = samples.filter { s in s.name == name && labels.allSatisfy { s.labels[$0.key] == $0.value } }
        return matching.isEmpty ? nil : matching.reduce(0) { $0 + $1.value }
    }

    /// Per value of `label`, for the series of `name`.
    public func values(_ name: String, by label: String) -> [String: Double] {
        var out: [String: Double] = [:]
        for s in samples where s.name == name { if let v = s.labels[label] { out[v, default: 0] += s.value } }
        return out
    }
}
