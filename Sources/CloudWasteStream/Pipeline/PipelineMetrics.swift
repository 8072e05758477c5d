/// The pipeline's Prometheus metrics. Labels carry topic names, table names and reason codes
/// only: never an identifier from a record.
public final class PipelineMetrics: Sendable {
    public let registry: MetricsRegistry
    let batchesCommitted: MetricCounter
    let batchRecords: MetricHistogram
    let commitSeconds: MetricHistogram
    let fencedBatches: MetricCounter
    let postgresErrors: MetricCounter
    let kafkaErrors: MetricCounter
    let partitionRestarts: MetricCounter
    let lateRecords: MetricCounter
    let trendsEmitted: MetricCounter
    let windowsFinalized: MetricCounter
    let ready: MetricGauge
    let residentMemory: MetricGauge
    let postgresUp: MetricGauge
    let assignedPartitions: MetricGauge

    public init(registry: MetricsRegistry = MetricsRegistry()) {
        self.registry = registry
        batchesCommitted = registry.counter("cloudwaste_batches_committed_total", help: "Batches committed to PostgreSQL")
        batchRecords = registry.histogram("cloudwaste_batch_records", help: "Records per committed batch",
                                          buckets: [1, 10, 100, 500, 1000, 2500, 5000, 10000, 25000])
        commitSeconds = registry.histogram("cloudwaste_commit_seconds", help: "Time to write and commit one batch",
                                           buckets: [0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10])
        fencedBatches = registry.counter("cloudwaste_fenced_batches_total", help: "Batches rolled back because another instance owns a partition")
        postgresErrors = registry.counter("cloudwaste_postgres_errors_total", help: "PostgreSQL failures (retried)")
        kafkaErrors = registry.counter("cloudwaste_kafka_errors_total", help: "Kafka failures (retried)")
        partitionRestarts = registry.counter("cloudwaste_partition_restarts_total", help: "Lagging partitions that delivered nothing and were re-seeked")
        lateRecords = registry.counter("cloudwaste_window_late_records_total", help: "Records applied to an already finalized month")
        trendsEmitted = registry.counter("cloudwaste_cost_trends_emitted_total", help: "Cost-trend rows published")
        windowsFinalized = registry.counter("cloudwaste_windows_finalized_total", help: "Months finalized by the watermark")
        residentMemory = registry.gauge("process_resident_memory_bytes", help: "Resident memory of the daemon (VmRSS)")
        ready = registry.gauge("cloudwaste_ready", help: "1 when connected to Kafka and PostgreSQL with partitions assigned")
        postgresUp = registry.gauge("cloudwaste_postgres_up", help: "1 when the last PostgreSQL operation succeeded")
        assignedPartitions = registry.gauge("cloudwaste_assigned_partitions", help: "Partitions assigned to this instance (0 while it has none: see /readyz for why)")
    }

    func recordsIn(topic: String) -> MetricCounter {
        registry.counter("cloudwaste_records_in_total", help: "Records consumed", labels: ["topic": topic])
    }

    func rowsWritten(table: String) -> MetricCounter {
        registry.counter("cloudwaste_rows_written_total", help: "Rows inserted or updated", labels: ["table": table])
    }

    func deadLetters(reason: String) -> MetricCounter {
        registry.counter("cloudwaste_dead_letters_total", help: "Records sent to the dead-letter topic and table", labels: ["reason": reason])
    }

    func unknownRegions(provider: String) -> MetricCounter {
        registry.counter("cloudwaste_unknown_regions_total", help: "Records whose region is not in the region table", labels: ["provider": provider])
    }

    func partitionLag(topic: String, partition: Int32) -> MetricGauge {
        registry.gauge("cloudwaste_partition_lag", help: "High watermark minus committed offset",
                       labels: ["topic": topic, "partition": String(partition)])
    }

    func eventFreshness(table: String) -> MetricGauge {
        registry.gauge("cloudwaste_event_time_freshness_seconds", help: "Now minus the newest event time committed",
                       labels: ["table": table])
    }
}
