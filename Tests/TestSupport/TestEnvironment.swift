public import CloudWasteKafka
public import CloudWastePostgres
public import CloudWasteDevTools
public import CloudWasteStream
public import Foundation
public import Logging
import Synchronization

/// One scratch PostgreSQL server per test process (started on first use, stopped at exit) with a
/// fresh database per test, and a fresh mock Kafka cluster per test.
public enum TestPostgres {
    /// Started by the first test that needs it; every later caller awaits the same start.
    private static let server = Task<ScratchPostgres, any Error> {
        let dir = URL(fileURLWithPath: NSTemporaryDirectory()).appendingPathComponent("cloudwaste-tests-\(getpid())")
        let pg = try ScratchPostgres(directory: dir, durable: false)
        try await pg.start()
        running.withLock { $0 = pg }
        atexit { TestPostgres.stopAtExit() }
        return pg
    }
    private static let running = Mutex<ScratchPostgres?>(nil)

    public static func shared() async throws -> ScratchPostgres {
        try await server.value
    }

    static func stopAtExit() {
        running.withLock { $0?.destroy() }
    }

    /// A PostgreSQL server of the caller's own (to stop or freeze it without disturbing other
    /// tests) with one empty database `name`; the caller destroys it.
    public static func ownServer(_ name: String, durable: Bool) async throws -> (server: ScratchPostgres, url: String) {
        let dir = URL(fileURLWithPath: NSTemporaryDirectory()).appendingPathComponent("cw-\(name)-\(UUID().uuidString.prefix(8))")
        let pg = try ScratchPostgres(directory: dir, durable: durable)
        try await pg.start()
        do {
            let admin = try PostgresConnection(connectionString: pg.url())
            try admin.query("CREATE DATABASE \(PostgresIdentifier(name))")
            admin.close()
        } catch {
            pg.destroy()
            throw error
        }
        return (pg, pg.url(database: name))
    }

    /// A new, empty database; returns its libpq URL.
    public static func newDatabase(_ prefix: String = "t") async throws -> String {
        let pg = try await shared()
        let name = "\(prefix)_\(UInt32.random(in: 0...UInt32.max))"
        let admin = try PostgresConnection(connectionString: pg.url())
        try admin.query("CREATE DATABASE \(PostgresIdentifier(name))")
        admin.close()
        return pg.url(database: name)
    }
}

/// A mock Kafka cluster with the project's topics, a database, and a config pointing at both.
public final class TestEnvironment: @unchecked Sendable {
    public let kafka: KafkaMockCluster
    public let databaseURL: String
    public let key: HMACKey
    public var config: StreamConfig

    public init(partitions: [InputTopic: Int] = [.scanResources: 4, .userActions: 3, .resourceLifecycle: 2, .metricSamples: 2, .privacyRequests: 2],
                groupId: String = "test-group") async throws {
        kafka = try KafkaMockCluster(brokers: 3)
        for topic in InputTopic.allCases {
            try kafka.createTopic(topic.name(prefix: "cloudwaste."), partitions: partitions[topic] ?? 2)
        }
        try kafka.createTopic("cloudwaste.cost-trends.v1", partitions: 2)
        try kafka.createTopic("cloudwaste.dead-letters.v1", partitions: 2)
        databaseURL = try await TestPostgres.newDatabase()
        key = try HMACKey(bytes: Array(0..<32))
        var c = StreamConfig()
        c.kafkaBootstrapServers = kafka.bootstrapServers
        c.postgresURL = databaseURL
        c.groupId = groupId
        c.httpPort = 0
        c.batchLingerMs = 50
        c.windowIdleTimeoutSeconds = 5
        c.kafkaProperties["session.timeout.ms"] = "6000"
        c.kafkaProperties["heartbeat.interval.ms"] = "500"
        config = c
    }

    public func connect(_ url: String? = nil) throws -> PostgresConnection {
        try PostgresConnection(connectionString: url ?? databaseURL)
    }

    public static func regions() throws -> RegionTable {
        try RegionTable.load(path: repositoryRoot.appendingPathComponent("config/regions.json").path)
    }

    public static var repositoryRoot: URL {
        URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent()
    }

    /// Publishes raw messages (topic, key, value); nil value is a tombstone.
    public func publish(_ messages: [(InputTopic, String?, [UInt8]?)]) throws {
        let producer = try KafkaProducer(config: KafkaConfig(["bootstrap.servers": kafka.bootstrapServers]), logger: testLogger("test.producer"))
        for (topic, key, value) in messages {
            try producer.send(topic: topic.name(prefix: "cloudwaste."), key: key.map { Array($0.utf8) }, value: value)
        }
        try producer.flush(timeoutMs: 30_000)
    }

    public func publish(_ messages: [TrafficGenerator.Message]) throws {
        try publish(messages.map { ($0.topic, $0.key, $0.value) })
    }

    /// Runs the pipeline in this process until it is caught up and idle for `idleSeconds`.
    @discardableResult
    public func runPipeline(config: StreamConfig? = nil, idleSeconds: Double = 2, timeout: Double = 120) throws -> StreamPipeline {
        let pipeline = StreamPipeline(config: config ?? self.config, key: key, regions: try Self.regions(),
                                      options: .init(untilIdleSeconds: idleSeconds, instanceName: "test-\(UUID().uuidString.prefix(8))"),
                                      logger: testLogger("test.pipeline"))
        try pipeline.start()
        try Self.finish(pipeline, within: timeout)
        if let failure = pipeline.failure { throw TestFailure(failure) }
        return pipeline
    }

    /// Waits for an --until-idle pipeline to end; a pipeline that never gets idle is stopped and
    /// the test fails with its status instead of hanging the suite.
    public static func finish(_ pipeline: StreamPipeline, within seconds: Double = 120) throws {
        if pipeline.waitUntilFinished(timeout: seconds) { return }
        let status = pipeline.status
        pipeline.requestStop()
        _ = pipeline.waitUntilFinished(timeout: 60)
        throw TestFailure("pipeline not idle after \(Int(seconds)) s: consumed \(status.recordsConsumed), committed \(status.recordsCommitted), assigned \(status.assignedPartitions), lag \(status.lag.values.reduce(0, +))")
    }

    /// A consumer of every partition of `topic`, assigned at their beginning (no group
    /// membership), with `properties` on top of the cluster's address.
    public func consumerFromTheBeginning(of topic: String, properties: [String: String] = [:],
                                         readsHeaders: Bool = true) throws -> (KafkaConsumer, [TopicPartition]) {
        let consumer = try KafkaConsumer(config: KafkaConfig(properties.merging([
            "bootstrap.servers": kafka.bootstrapServers, "group.id": "reader-\(UUID().uuidString)",
        ]) { $1 }), logger: testLogger("test.reader"), readsHeaders: readsHeaders)
        let partitions = try consumer.partitions(of: topic).map { TopicPartition(topic: topic, partition: $0) }
        try consumer.assign(Dictionary(uniqueKeysWithValues: partitions.map { ($0, KafkaOffset.beginning) }))
        return (consumer, partitions)
    }

    /// Reads every message of a topic from the beginning (until `idleMs` of silence).
    public func readTopic(_ name: String, idleMs: Int32 = 3000, readsHeaders: Bool = true) throws -> [KafkaMessage] {
        let (consumer, _) = try consumerFromTheBeginning(of: name, readsHeaders: readsHeaders)
        var out: [KafkaMessage] = []
        while true {
            let batch = try consumer.poll(maxMessages: 10_000, timeoutMs: idleMs)
            if batch.isEmpty { break }
            out += batch
        }
        consumer.close(timeoutMs: 1000)
        return out
    }
}

/// A logger at CLOUDWASTE_LOG_LEVEL (default warning), so CI output stays readable.
public func testLogger(_ label: String) -> Logger {
    var logger = Logger(label: label)
    logger.logLevel = ProcessInfo.processInfo.environment["CLOUDWASTE_LOG_LEVEL"].flatMap(Logger.Level.init(rawValue:)) ?? .warning
    return logger
}

public struct TestFailure: Error, CustomStringConvertible {
    public var description: String
    public init(_ d: String) { description = d }
}

/// Order-independent fingerprints of the tables' content, for "same rows as a clean run" checks.
/// Columns that legitimately differ between runs (ingestion time, revision counters) are left out.
public enum TableChecksums {
    public static let columns: [String: String] = [
        "ml_training_data": "scan_hash, resource_hash, account_hash, user_hash, event_hash, provider, region_bucket, resource_type, scenario, confidence, estimated_monthly_cost, currency, resource_age_days, created_hour_utc, created_dow, metrics, tag_keys, env_class, parent_hash, detected_at, key_id, source_topic, source_partition, source_offset",
        "user_action_patterns": "event_hash, user_hash, account_hash, resource_hash, provider, resource_type, action, detected_at, action_at, time_to_action_hours, cost_saved_monthly, currency, key_id, source_topic, source_partition, source_offset",
        "resource_lifecycle_events": "event_hash, account_hash, resource_hash, provider, resource_type, from_state, to_state, occurred_at, key_id",
        "cloudwatch_metrics_history": "resource_hash, metric, ts, account_hash, provider, unit, value, key_id",
        "resource_billed_costs": "resource_hash, usage_date, cost_type, account_hash, event_hash, provider, currency, amount, source, key_id, source_topic, source_partition, source_offset",
        "user_preferences": "user_hash, consent, updated_at, erased_at",
        "cost_trend_data": "account_hash, month, currency, provider, resources_detected, waste_detected_monthly_cost, resources_eliminated, waste_eliminated_monthly_cost, top_categories, billed_resources, billed_waste_monthly_cost",
        "dead_letters": "source_topic, source_partition, source_offset, reason, reason_code, payload_sha256, payload_bytes",
        "erasures": "user_hash, erased_at",
    ]

    /// `withSources: false` leaves out where rows came from (topic, partition, offset), for runs
    /// that read the same records at different offsets.
    public static func compute(_ db: PostgresConnection, withSources: Bool = true) throws -> [String: String] {
        var out: [String: String] = [:]
        for (table, all) in columns {
            let cols = withSources ? all : all.split(separator: ",").map { $0.trimmingCharacters(in: .whitespaces) }
                .filter { !$0.hasPrefix("source_") }.joined(separator: ", ")
            let r = try db.query("""
                SELECT count(*) || ':' || coalesce(md5(string_agg(t::text, '|' ORDER BY t::text)), '')
                  FROM (SELECT \(PostgresQuery(unsafeSQL: cols)) FROM \(PostgresIdentifier(table))) t
                """)
            out[table] = r.string(0, 0)
        }
        return out
    }

    public static func count(_ db: PostgresConnection, _ table: String) throws -> Int {
        try db.query("SELECT count(*) FROM \(PostgresIdentifier(table))").decode(Int.self)
    }
}

