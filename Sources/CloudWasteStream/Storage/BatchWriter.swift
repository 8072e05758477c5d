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
/// 1. in one round trip (libpq's pipeline mode): `BEGIN`, the `PrivacyLocks` of the batch's users
///    (shared; exclusive for the users of its privacy requests, which must not interleave with
///    batches that store those users), the partitions' offsets, fenced by generation and start
///    offset (`OffsetStore.advanceStatement`), and which of the batch's users have consent history;
/// 2. the fencing verdict: a fenced batch rolls back;
/// 3. privacy requests;
/// 4. one binary COPY per table into its staging table (bytes encoded where the records were prepared);
/// 5. one multi-statement round trip: each table's upsert (with the consent filter and, for
///    detections, eliminations and billed days, the window state and the recompute queue), then
///    `COMMIT`.
///
/// Detections, most of the volume, take a faster path when none of the batch's users has any
/// consent history or erasure (the usual case in opt-out mode): their rows are copied straight
/// into ml_training_data, and the window state is folded from the batch's own reduced detections
/// (`WindowDetection`), without staging, upsert or RETURNING. PostgreSQL alone takes such a COPY
/// about half again as fast as the staging upsert (`bench-upsert`). A row that exists already (a
/// record delivered twice) makes that COPY fail; the transaction is then redone through staging,
/// and the writer stays on staging for a while.
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
    private let s: PostgresIdentifier
    private let offsets: OffsetStore
    private let privacy: PrivacyRequests
    private let consent: ConsentRules
    private let privacyLocks: PrivacyLocks
    private var sessionReady = false
    /// Batches to write through staging before trying the straight COPY again (after a conflict).
    private var stagingOnlyBatches = 0
    /// Each table's upsert (by `BatchTable.rawValue`) and the straight COPY's window statement:
    /// fixed for the writer's settings, so built once.
    private var upserts: [PostgresQuery] = []
    private let directWindowState: PostgresQuery

    public init(connection: PostgresConnection, settings: Settings) {
        db = connection
        self.settings = settings
        s = PostgresIdentifier(settings.schema)
        offsets = OffsetStore(connection: connection, schema: settings.schema, groupId: settings.groupId, owner: "")
        privacy = PrivacyRequests(connection: connection, schema: settings.schema, consentMode: settings.consentMode,
                                  windowsEnabled: settings.windowsEnabled)
        consent = ConsentRules(schema: settings.schema, mode: settings.consentMode)
        privacyLocks = PrivacyLocks(schema: settings.schema)
        directWindowState = Self.detectionWindowState(schema: s)
        upserts = BatchTable.allCases.map(upsert)
    }

    /// Re-opens the connection after a failure (the caller retries with back-off).
    public func reconnect() throws {
        sessionReady = false
        try db.reconnect()
    }

    public func write(_ batch: PreparedBatch) throws -> WriteResult {
        do {
            return try write(batch, direct: stagingOnlyBatches == 0 && settings.consentMode == .optOut)
        } catch is DirectCopyConflict {
            // A detection that is already stored: redo the batch through the staging upsert.
            stagingOnlyBatches = 100
            return try write(batch, direct: false)
        }
    }

    private struct DirectCopyConflict: Error {}

    private func write(_ batch: PreparedBatch, direct allowDirect: Bool) throws -> WriteResult {
        if !sessionReady {
            try SessionTables.prepare(db)
            sessionReady = true
        }
        if stagingOnlyBatches > 0 { stagingOnlyBatches -= 1 }
        var clock = StageClock()
        let requests = batch.privacyRequests
        // New detections may take the straight COPY; those of users with consent history may not.
        let checkConsent = allowDirect && requests.isEmpty && !batch[.training].isEmpty
        var opening: [PostgresQuery] = [
            "BEGIN",
            privacyLocks.statement(shared: batch.users, exclusive: requests.map(\.userHash)),
            offsets.advanceStatement(batch.spans),
        ]
        if checkConsent { opening.append(consentHistoryStatement(batch[.training].detections)) }
        do {
            // One round trip: BEGIN, the privacy locks, the fenced offsets and the consent check.
            let opened = try db.pipeline(opening)
            let (offsetsResult, consentResult) = (opened[2], checkConsent ? opened[3] : nil)
            let fenced = try offsets.fenced(batch.spans, by: offsetsResult)
            clock.mark("offsets")
            if !fenced.isEmpty {
                try db.query("ROLLBACK")
                return .fenced(fenced)
            }
            let flagged = try consentResult.map { r throws(PostgresError) in Set(try r.decodeColumn(as: String.self).compactMap(Pseudonym.init(hex:))) } ?? []
            var counts = WriteCounts()
            for request in requests { try privacy.apply(request, keyId: batch.keyId, source: "topic") }
            counts.privacyRequests = requests.count
            counts.rows["user_preferences"] = requests.count
            clock.mark("privacy")
            var statements: [(table: BatchTable, sql: PostgresQuery)] = []
            var directRows = 0
            for table in BatchTable.allCases where !batch[table].isEmpty {
                var rows = batch[table]
                if table == .training, checkConsent {
                    // Users with consent history go through the filtered upsert; the rest straight in.
                    let (plain, filtered) = flagged.isEmpty ? (rows, EncodedRows()) : rows.partitioned { !flagged.contains($0.userHash) }
                    if !plain.isEmpty {
                        directRows = try copyDetectionsDirectly(plain)
                        if settings.windowsEnabled { statements.append((table, directWindowState)) }
                    }
                    rows = filtered
                    if rows.isEmpty { continue }
                }
                try copy(table, rows)
                statements.append((table, upserts[table.rawValue]))
            }
            clock.mark("copy")
            let results = try db.queryAll(PostgresQuery.joined(statements.map(\.sql) + ["COMMIT"], separator: ";\n"))
            clock.mark("upsert_commit")
            counts.rows[BatchTable.training.name] = directRows
            for (i, statement) in statements.enumerated() {
                let n = try results[i].decode(Int.self)
                switch statement.table {
                case .deadLetters: counts.deadLetters = n
                // The window statement of the straight COPY counts staged window rows, not records.
                case .training where i == 0 && directRows > 0 && settings.windowsEnabled: break
                default: counts.rows[statement.table.name, default: 0] += n
                }
            }
            counts.stageSeconds = clock.seconds
            return .committed(counts)
        } catch {
            if db.isConnected { _ = try? db.query("ROLLBACK") }
            throw error
        }
    }

    /// The users of these detections with consent history or an erasure (one column): their rows
    /// need the per-row consent filter of the staging upsert.
    private func consentHistoryStatement(_ detections: [WindowDetection]) -> PostgresQuery {
        let users = Array(Set(detections.map(\.userHash)))
        return """
            SELECT encode(u.user_hash, 'hex') FROM unnest(\(users)::bytea[]) AS u(user_hash)
             WHERE EXISTS (SELECT 1 FROM \(s).erasures e WHERE e.user_hash = u.user_hash)
                OR EXISTS (SELECT 1 FROM \(s).consent_events c WHERE c.user_hash = u.user_hash)
            """
    }

    /// COPY of new detections straight into ml_training_data, plus their reduced window rows into
    /// staging. Returns the rows copied; a row that exists already throws `DirectCopyConflict`.
    private func copyDetectionsDirectly(_ rows: EncodedRows) throws -> Int {
        let copied: Int
        do {
            copied = try db.copyIn(TableDescription.mlTrainingData.directCopyStatement(schema: s), binaryTupleRuns: rows.forEachRun)
        } catch let error as PostgresError where error.sqlState == "23505" {
            throw DirectCopyConflict()
        }
        if settings.windowsEnabled {
            var encoder = PostgresBinaryCopyEncoder()
            for d in rows.windowDetections { TableDescription.windowDetections.encode(d, into: &encoder) }
            _ = try encoder.withUnsafeBytes { try db.copyIn(TableDescription.windowDetections.copyStatement, binaryTuples: $0) }
        }
        return copied
    }

    /// The window state of a batch's reduced detections (staged by `copyDetectionsDirectly`).
    private static func detectionWindowState(schema s: PostgresIdentifier) -> PostgresQuery {
        let rows = PostgresIdentifier("rows")
        return """
            WITH \(rows) AS (SELECT * FROM \(TableDescription.windowDetections.stagingTable)),
            \(CostTrendWindows.detectionState(schema: s, from: rows, records: "sum(records)", unique: true)) SELECT count(*) FROM \(rows)
            """
    }

    private func copy(_ table: BatchTable, _ rows: EncodedRows) throws {
        let statement = switch table {
        case .training: TableDescription.mlTrainingData.copyStatement
        case .actions: TableDescription.userActionPatterns.copyStatement
        case .lifecycle: TableDescription.resourceLifecycleEvents.copyStatement
        case .metrics: TableDescription.cloudwatchMetricsHistory.copyStatement
        case .billed: TableDescription.resourceBilledCosts.copyStatement
        case .deadLetters: TableDescription.deadLetters.copyStatement
        }
        _ = try db.copyIn(statement, binaryTupleRuns: rows.forEachRun)
    }

    /// The statement that moves a table's staged rows into place; its one result is the row count.
    func upsert(_ table: BatchTable) -> PostgresQuery {
        switch table {
        case .training:
            let t = TableDescription.mlTrainingData
            let filter = consent.allowsStaged(t.stagingTable, user: "s.user_hash", at: "s.detected_at")
            return counted({ t.upsert(schema: s, filter: filter, returning: $0) },
                           windows: (CostTrendWindows.detectionColumns, { CostTrendWindows.detectionState(schema: $0, from: $1) }))
        case .actions:
            let t = TableDescription.userActionPatterns
            let filter = consent.allowsStaged(t.stagingTable, user: "s.user_hash", at: "s.action_at")
            return counted({ t.upsert(schema: s, filter: filter, returning: $0) },
                           windows: (CostTrendWindows.eliminationColumns, { CostTrendWindows.eliminationState(schema: $0, from: $1) }))
        case .lifecycle: return counted { TableDescription.resourceLifecycleEvents.upsert(schema: s, returning: $0) }
        case .metrics: return counted { TableDescription.cloudwatchMetricsHistory.upsert(schema: s, returning: $0) }
        case .billed:
            return counted({ TableDescription.resourceBilledCosts.upsert(schema: s, returning: $0) },
                           windows: (CostTrendWindows.billedColumns, { CostTrendWindows.billedState(schema: $0, from: $1) }))
        case .deadLetters: return counted { TableDescription.deadLetters.upsert(schema: s, returning: $0) }
        }
    }

    /// An upsert as one statement whose one result is the row count. With windows on, the rows it
    /// returns (`windows.columns`) are folded into the window state (`windows.state(schema, "ins")`)
    /// by the same statement.
    private func counted(
        _ upsert: (_ returning: PostgresQuery) -> PostgresQuery,
        windows: (columns: PostgresQuery, state: (_ schema: PostgresIdentifier, _ rows: PostgresIdentifier) -> PostgresQuery)? = nil
    ) -> PostgresQuery {
        let inserted = PostgresIdentifier("ins")
        guard let windows, settings.windowsEnabled else { return "WITH \(inserted) AS (\(upsert("1"))) SELECT count(*) FROM \(inserted)" }
        return "WITH \(inserted) AS (\(upsert(windows.columns))), \(windows.state(s, inserted)) SELECT count(*) FROM \(inserted)"
    }
}
