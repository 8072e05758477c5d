public import CloudWasteKafka
public import CloudWastePostgres
import Foundation

/// Counts of what one committed batch wrote, for metrics and the demo's summary.
public struct WriteCounts: Sendable {
    public var rows: [String: Int] = [:]
    public var deadLetters = 0
    public var privacyRequests = 0
    /// Seconds per stage of the transaction (offsets, privacy, copy, upsert, commit).
    public var stageSeconds: [String: Double] = [:]
}

public enum WriteResult: Sendable {
    case committed(WriteCounts)
    /// PostgreSQL says another instance owns these partitions now (or moved their offsets): the
    /// transaction rolled back and their records must be dropped and re-read from the new offset.
    case fenced(Set<TopicPartition>)
}

/// Measures consecutive stages with the monotonic clock.
struct StageClock {
    private var last = ContinuousClock.now
    private(set) var seconds: [String: Double] = [:]

    mutating func mark(_ stage: String) {
        let now = ContinuousClock.now
        seconds[stage, default: 0] += (now - last).seconds
        last = now
    }
}

extension Duration {
    var seconds: Double { Double(components.seconds) + Double(components.attoseconds) / 1e18 }
}

/// Writes a `PreparedBatch` into PostgreSQL in ONE transaction:
///
/// 1. `BEGIN` and the schema's privacy lock (shared; exclusive when the batch carries privacy
///    requests, which must not interleave with other batches' consent checks);
/// 2. the partitions' offsets, fenced by generation and start offset (`OffsetStore.advance`);
/// 3. privacy requests;
/// 4. one binary COPY per table into its staging table (bytes encoded on the consumer thread);
/// 5. one multi-statement round trip: each table's upsert (with the consent filter and, for
///    detections and eliminations, the window state and the recompute queue), then `COMMIT`.
///
/// Owns its connection; used by one writer thread.
public final class BatchWriter {
    public struct Settings: Sendable {
        public var schema: String
        public var groupId: String
        public var consentMode: StreamConfig.ConsentMode
        public var windowsEnabled: Bool

        public init(config: StreamConfig) {
            schema = config.postgresSchema
            groupId = config.groupId
            consentMode = config.consentMode
            windowsEnabled = config.windowsEnabled
        }
    }

    public let settings: Settings
    public let db: PostgresConnection
    private let s: String
    private let offsets: OffsetStore
    private let privacy: PrivacyRequests
    private let consent: ConsentRules
    private let privacyLock: Int64
    private var sessionReady = false

    public init(connection: PostgresConnection, settings: Settings) {
        db = connection
        self.settings = settings
        s = PostgresQuery.quoteIdentifier(settings.schema)
        offsets = OffsetStore(connection: connection, schema: settings.schema, groupId: settings.groupId, owner: "")
        privacy = PrivacyRequests(connection: connection, schema: settings.schema, consentMode: settings.consentMode,
                                  windowsEnabled: settings.windowsEnabled)
        consent = ConsentRules(schema: settings.schema, mode: settings.consentMode)
        privacyLock = PrivacyRequests.lockKey(schema: settings.schema)
    }

    /// Re-opens the connection after a failure (the caller retries with back-off).
    public func reconnect() throws {
        sessionReady = false
        try db.reconnect()
    }

    public func write(_ batch: PreparedBatch) throws -> WriteResult {
        if !sessionReady {
            try SessionTables.prepare(db)
            sessionReady = true
        }
        var clock = StageClock()
        let requests = batch.privacyRequests
        try db.execute("BEGIN; SELECT \(requests.isEmpty ? "pg_advisory_xact_lock_shared" : "pg_advisory_xact_lock")(\(privacyLock))")
        do {
            let fenced = try offsets.advance(batch.spans)
            clock.mark("offsets")
            if !fenced.isEmpty {
                try db.execute("ROLLBACK")
                return .fenced(fenced)
            }
            var counts = WriteCounts()
            for request in requests { try privacy.apply(request, keyId: batch.keyId, source: "topic") }
            counts.privacyRequests = requests.count
            counts.rows["user_preferences"] = requests.count
            clock.mark("privacy")
            var statements: [(table: BatchTable, sql: String)] = []
            for table in BatchTable.allCases where !batch[table].isEmpty {
                try copy(table, batch[table])
                statements.append((table, upsert(table)))
            }
            clock.mark("copy")
            let results = try db.executeAll((statements.map(\.sql) + ["COMMIT"]).joined(separator: ";\n"))
            clock.mark("upsert_commit")
            for (i, statement) in statements.enumerated() {
                let n = results[i].int(0, 0) ?? 0
                if statement.table == .deadLetters { counts.deadLetters = n } else { counts.rows[statement.table.name] = n }
            }
            counts.stageSeconds = clock.seconds
            return .committed(counts)
        } catch {
            if db.isConnected { _ = try? db.execute("ROLLBACK") }
            throw error
        }
    }

    private func copy(_ table: BatchTable, _ rows: EncodedRows) throws {
        let statement = switch table {
        case .training: TableDescription.mlTrainingData.copyStatement
        case .actions: TableDescription.userActionPatterns.copyStatement
        case .lifecycle: TableDescription.resourceLifecycleEvents.copyStatement
        case .metrics: TableDescription.cloudwatchMetricsHistory.copyStatement
        case .deadLetters: TableDescription.deadLetters.copyStatement
        }
        try db.copyIn(statement, binaryTuples: rows.tuples)
    }

    /// The statement that moves a table's staged rows into place; its one result is the row count.
    func upsert(_ table: BatchTable) -> String {
        switch table {
        case .training:
            let t = TableDescription.mlTrainingData
            let filter = consent.allowsStaged(t.stagingTable, user: "s.user_hash", at: "s.detected_at")
            guard settings.windowsEnabled else { return counted(t.upsert(schema: s, filter: filter, returning: "1")) }
            return "WITH ins AS (\(t.upsert(schema: s, filter: filter, returning: CostTrendWindows.detectionColumns))), "
                + CostTrendWindows.detectionState(schema: s, from: "ins") + " SELECT count(*) FROM ins"
        case .actions:
            let t = TableDescription.userActionPatterns
            let filter = consent.allowsStaged(t.stagingTable, user: "s.user_hash", at: "s.action_at")
            guard settings.windowsEnabled else { return counted(t.upsert(schema: s, filter: filter, returning: "1")) }
            return "WITH ins AS (\(t.upsert(schema: s, filter: filter, returning: CostTrendWindows.eliminationColumns))), "
                + CostTrendWindows.eliminationState(schema: s, from: "ins") + " SELECT count(*) FROM ins"
        case .lifecycle: return counted(TableDescription.resourceLifecycleEvents.upsert(schema: s, returning: "1"))
        case .metrics: return counted(TableDescription.cloudwatchMetricsHistory.upsert(schema: s, returning: "1"))
        case .deadLetters: return counted(TableDescription.deadLetters.upsert(schema: s, returning: "1"))
        }
    }

    private func counted(_ upsert: String) -> String { "WITH ins AS (\(upsert)) SELECT count(*) FROM ins" }
}
