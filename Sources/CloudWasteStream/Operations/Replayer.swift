public import CloudWasteKafka
public import CloudWastePostgres
public import Foundation
public import Logging

/// `cloudwaste-stream replay`: rebuilds the tables from the topics into a shadow schema while the
/// live tables keep serving, verifies, then swaps the shadow tables in with one transaction. An
/// interrupted rebuild leaves the live tables untouched; running it again resumes from the
/// shadow schema's own offsets. Erasures are copied into the shadow first, so erased users never
/// come back. Under a new key (`--new-key-file`) this is how the key is rotated.
public struct Replayer {
    public enum Start: Sendable, Equatable {
        case beginning
        case timestamp(Timestamp)
    }

    /// The tables a replay builds in the shadow schema and swaps in (`StoredTable.all` says
    /// which topics rebuild each; the others are copied over as they are).
    public static var swappedTables: [String] { StoredTable.swapped.map(\.name) }

    public let config: StreamConfig
    public let key: HMACKey
    public let regions: RegionTable
    public let logger: Logger

    public init(config: StreamConfig, key: HMACKey, regions: RegionTable, logger: Logger) {
        self.config = config
        self.key = key
        self.regions = regions
        self.logger = logger
    }

    public var shadowSchema: String { "\(config.postgresSchema)_replay" }
    public var replayGroup: String { "\(config.groupId)-replay" }

    public struct Report: Sendable {
        public var records: Int
        public var seconds: Double
        public var rowCounts: [String: (live: Int, rebuilt: Int)]
    }

    /// Rebuilds into the shadow schema until caught up. `progress` gets a line every few seconds.
    public func rebuild(from start: Start, topics: [InputTopic], progress: @escaping @Sendable (String) -> Void) throws -> Report {
        let db = try PostgresConnection(connectionString: config.postgresURL, logger: logger)
        let live = PostgresIdentifier(config.postgresSchema)
        let shadow = PostgresIdentifier(shadowSchema)
        try Migrator(schema: config.postgresSchema).migrate(db)
        let resuming = try db.query("SELECT EXISTS (SELECT 1 FROM pg_namespace WHERE nspname = \(shadowSchema))").decode(Bool.self)
        try Migrator(schema: shadowSchema).migrate(db)
        if !resuming {
            try db.transaction {
                // Erasures outlive replays; tables of topics that are not re-read are kept as they are.
                try db.query("INSERT INTO \(shadow).erasures SELECT * FROM \(live).erasures ON CONFLICT DO NOTHING")
                for table in StoredTable.swapped where !table.isRebuilt(byAnyOf: topics) {
                    try db.query("INSERT INTO \(shadow.member(table.name)) SELECT * FROM \(live.member(table.name))")
                }
                if StoredTable.named("cost_trend_data")?.isRebuilt(byAnyOf: topics) == true {
                    // Months whose window state was copied (its topic is not re-read) are recomputed
                    // from it, or they would be missing from the rebuilt cost_trend_data.
                    try db.query("""
                        INSERT INTO \(shadow).window_dirty_months (account_hash, month, currency, records)
                        SELECT account_hash, month, NULL, 0 FROM \(shadow).window_resource_costs
                        UNION SELECT account_hash, month, NULL, 0 FROM \(shadow).window_eliminations
                        """)
                }
                if case .timestamp(let t) = start {
                    try seedOffsets(db, shadow: shadow, topics: topics, timestamp: t)
                }
            }
        } else {
            progress("resuming the rebuild in schema \(shadowSchema)")
        }
        var replayConfig = config
        replayConfig.postgresSchema = shadowSchema
        replayConfig.groupId = replayGroup
        replayConfig.kafkaProperties["auto.offset.reset"] = "earliest"
        let pipeline = StreamPipeline(config: replayConfig, key: key, regions: regions,
                                      options: .init(untilIdleSeconds: 3, instanceName: "replay", topics: topics), logger: logger)
        let started = Date()
        try pipeline.start()
        let done = DispatchSemaphore(value: 0)
        DedicatedThread.start(name: "cw-replay-watch") {
            while done.wait(timeout: .now() + 5) == .timedOut {
                let s = pipeline.status
                let left = s.lag.values.reduce(0, +)
                let rate = Double(s.recordsCommitted) / max(1, Date().timeIntervalSince(started))
                let eta = rate > 0 ? Int(Double(left) / rate) : -1
                progress("replay: \(s.recordsCommitted) records done, \(left) left, \(Int(rate)) records/s, ETA \(eta >= 0 ? "\(eta) s" : "unknown")")
            }
        }
        pipeline.waitUntilFinished()
        done.signal()
        if let failure = pipeline.failure { throw ReplayFailure(description: "rebuild failed: \(failure)") }
        var counts: [String: (live: Int, rebuilt: Int)] = [:]
        for table in Self.swappedTables {
            let l = try db.query("SELECT count(*) FROM \(live.member(table))").decode(Int.self)
            let r = try db.query("SELECT count(*) FROM \(shadow.member(table))").decode(Int.self)
            counts[table] = (l, r)
        }
        return Report(records: pipeline.status.recordsCommitted, seconds: Date().timeIntervalSince(started), rowCounts: counts)
    }

    /// Starting offsets for a rebuild from a point in time (librdkafka's offsets-for-times).
    private func seedOffsets(_ db: PostgresConnection, shadow: PostgresIdentifier, topics: [InputTopic], timestamp: Timestamp) throws {
        var kc = config.kafkaConfig
        kc["group.id"] = replayGroup
        let consumer = try KafkaConsumer(config: kc, logger: logger)
        defer { consumer.close(timeoutMs: 1000) }
        var partitions: [TopicPartition] = []
        for topic in topics {
            let name = config.topicName(topic)
            partitions += try consumer.partitions(of: name).map { TopicPartition(topic: name, partition: $0) }
        }
        let offsets = try consumer.offsets(forTimestampMs: timestamp.micros / 1000, partitions: partitions)
        for (tp, found) in offsets {
            // -1: no record at or after the timestamp, so nothing to re-read: start at the end
            // (not at auto.offset.reset, which would replay the whole partition).
            let offset = found >= 0 ? found : try consumer.queryWatermarks(tp).high
            try db.query("""
                INSERT INTO \(shadow).stream_offsets (consumer_group, topic, partition, next_offset, generation)
                VALUES (\(replayGroup), \(tp.topic), \(Int(tp.partition)), \(offset), 0)
                """)
        }
    }

    /// Swaps the rebuilt tables in, in one transaction; the live group's offsets become the
    /// replay's, with a new generation, so running daemons are fenced, re-claim and continue from
    /// where the rebuild stopped. The previous tables stay in `<schema>_old_<time>`.
    @discardableResult
    public func swap() throws -> String {
        let db = try PostgresConnection(connectionString: config.postgresURL, logger: logger)
        let live = PostgresIdentifier(config.postgresSchema)
        let shadow = PostgresIdentifier(shadowSchema)
        let oldName = "\(config.postgresSchema)_old_\(Int(Date().timeIntervalSince1970))"
        let old = PostgresIdentifier(oldName)
        try db.transaction {
            try db.query("SET LOCAL lock_timeout = '30s'")
            try db.query("SELECT 1 FROM \(live).stream_offsets WHERE consumer_group = \(config.groupId) FOR UPDATE")
            try db.query("CREATE SCHEMA \(old)")
            for table in Self.swappedTables {
                try db.query("ALTER TABLE \(live.member(table)) SET SCHEMA \(old)")
                try db.query("ALTER TABLE \(shadow.member(table)) SET SCHEMA \(live)")
            }
            // Erasures recorded while the rebuild ran still apply.
            try db.query("INSERT INTO \(live).erasures SELECT * FROM \(shadow).erasures ON CONFLICT DO NOTHING")
            try db.query("""
                INSERT INTO \(live).stream_offsets AS so (consumer_group, topic, partition, next_offset, generation, owner, max_event_time, last_record_at)
                SELECT \(config.groupId), topic, partition, next_offset, 1, 'replay', max_event_time, last_record_at
                  FROM \(shadow).stream_offsets WHERE consumer_group = \(replayGroup)
                ON CONFLICT (consumer_group, topic, partition) DO UPDATE
                   SET next_offset = EXCLUDED.next_offset, generation = so.generation + 1, owner = 'replay',
                       max_event_time = EXCLUDED.max_event_time, last_record_at = EXCLUDED.last_record_at
                """)
            try db.query("DROP SCHEMA \(shadow) CASCADE")
        }
        return oldName
    }

    public struct ReplayFailure: Error, CustomStringConvertible { public var description: String }
}
