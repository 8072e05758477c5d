public import CloudWasteKafka
public import CloudWastePostgres

/// A cost-trend row to publish after its transaction committed.
public struct TrendEmission: Sendable, Equatable {
    public var accountHash: String
    public var month: String
    public var revision: Int
    /// The row as JSON; empty for a deleted row (published as a tombstone).
    public var json: String
    public var key: String { "\(accountHash):\(month)" }
}

/// Counts of what one committed batch wrote, for metrics and the demo's summary.
public struct WriteCounts: Sendable {
    public var rows: [String: Int] = [:]
    public var deadLetters = 0
    public var lateRecords = 0
    public var finalizedMonths = 0
    /// Seconds spent per stage of the transaction (offsets, each table, windows, commit).
    public var stageSeconds: [String: Double] = [:]
}

/// A composite primary key, hashed without concatenating strings.
struct RowKey: Hashable {
    var a: String
    var b: String
    var c: Int64 = 0
}

/// Measures consecutive stages with the monotonic clock.
struct StageClock {
    private var last = ContinuousClock.now
    private(set) var seconds: [String: Double] = [:]

    mutating func mark(_ stage: String) {
        let now = ContinuousClock.now
        let d = now - last
        seconds[stage, default: 0] += Double(d.components.seconds) + Double(d.components.attoseconds) / 1e18
        last = now
    }
}

public enum WriteResult: Sendable {
    case committed(WriteCounts, [TrendEmission])
    /// PostgreSQL says another instance owns these partitions now (or moved their offsets): the
    /// transaction rolled back and their records must be dropped and re-read from the new offset.
    case fenced(Set<TopicPartition>)
}

/// Writes a `PreparedBatch` into PostgreSQL in ONE transaction: the partitions' offsets (fenced by
/// generation and start offset), the rows of every table through COPY into temp staging tables and
/// `INSERT … ON CONFLICT`, consent and erasure filters, privacy requests, window state, recomputed
/// cost-trend rows, and dead letters. Owns its connection; used by one thread.
public final class BatchWriter {
    public struct Settings: Sendable {
        public var schema: String
        public var groupId: String
        public var consentMode: StreamConfig.ConsentMode
        public var windowsEnabled: Bool
        public var graceHours: Int
        public var outOfOrdernessMinutes: Int
        public var idleTimeoutSeconds: Int
        /// Least time between two recomputations of cost_trend_data (0: every batch).
        public var recomputeIntervalSeconds: Double
        /// Topics whose event time drives the window watermark.
        public var windowTopics: [String]

        public init(config: StreamConfig) {
            schema = config.postgresSchema
            groupId = config.groupId
            consentMode = config.consentMode
            windowsEnabled = config.windowsEnabled
            graceHours = config.windowGraceHours
            outOfOrdernessMinutes = config.windowOutOfOrdernessMinutes
            idleTimeoutSeconds = config.windowIdleTimeoutSeconds
            recomputeIntervalSeconds = Double(config.windowRecomputeIntervalMs) / 1000
            windowTopics = [config.topicName(.scanResources), config.topicName(.userActions)]
        }
    }

    public let settings: Settings
    public private(set) var db: PostgresConnection
    let s: String
    private var sessionReady = false
    private var lastRecompute = Date.distantPast
    /// Whether window_dirty_months may hold account-months to recompute. True at start: an
    /// earlier run may have left some.
    public private(set) var hasDeferredMonths = true

    public init(connection: PostgresConnection, settings: Settings) {
        db = connection
        self.settings = settings
        s = PostgresQuery.quoteIdentifier(settings.schema)
    }

    /// Re-opens the connection after a failure (the caller retries with back-off).
    public func reconnect() throws {
        sessionReady = false
        try db.reconnect()
    }

    func prepareSessionForTools() throws { try prepareSession() }

    private func prepareSession() throws {
        guard !sessionReady else { return }
        try db.execute("""
            SET TIME ZONE 'UTC';
            CREATE TEMP TABLE IF NOT EXISTS stage_training (
                scan_hash text, resource_hash text, account_hash text, user_hash text, event_hash text,
                provider text, region_bucket text, resource_type text, scenario text, confidence text,
                estimated_monthly_cost float8, currency text, resource_age_days int, created_hour_utc smallint,
                created_dow smallint, metrics jsonb, tag_keys text[], env_class text, parent_hash text,
                detected_at timestamptz, key_id text, source_topic text, source_partition int, source_offset bigint
            ) ON COMMIT DELETE ROWS;
            CREATE TEMP TABLE IF NOT EXISTS stage_actions (
                event_hash text, user_hash text, account_hash text, resource_hash text, provider text,
                resource_type text, action text, detected_at timestamptz, action_at timestamptz,
                time_to_action_hours float8, cost_saved_monthly float8, key_id text,
                source_topic text, source_partition int, source_offset bigint
            ) ON COMMIT DELETE ROWS;
            CREATE TEMP TABLE IF NOT EXISTS stage_lifecycle (
                event_hash text, account_hash text, resource_hash text, provider text, resource_type text,
                from_state text, to_state text, occurred_at timestamptz, key_id text,
                source_topic text, source_partition int, source_offset bigint
            ) ON COMMIT DELETE ROWS;
            CREATE TEMP TABLE IF NOT EXISTS stage_metrics (
                resource_hash text, metric text, ts timestamptz, account_hash text, provider text, unit text,
                value float8, key_id text, source_topic text, source_partition int, source_offset bigint
            ) ON COMMIT DELETE ROWS;
            CREATE TEMP TABLE IF NOT EXISTS touched_months (
                account_hash text, month date, records int
            ) ON COMMIT DELETE ROWS;
            """)
        sessionReady = true
    }

    var defaultConsent: String { settings.consentMode == .optOut ? "collect" : "opted_out" }

    /// Set per statement: true when no user of the staged rows has any consent history or
    /// erasure and the default is to collect, so the per-row consent subqueries can be skipped.
    private var skipConsentFilter = false

    /// Whether any user in `stage` has consent history or an erasure (one hash join per batch).
    private func stagedUsersNeedConsentCheck(_ stage: String) throws -> Bool {
        guard settings.consentMode == .optOut else { return true }
        return try db.execute("""
            SELECT EXISTS (SELECT 1 FROM \(s).erasures e WHERE e.user_hash IN (SELECT user_hash FROM \(stage)))
                OR EXISTS (SELECT 1 FROM \(s).consent_events c WHERE c.user_hash IN (SELECT user_hash FROM \(stage)))
            """).bool(0, 0) ?? true
    }

    /// SQL condition: the row's user may be stored at its event time (consent then in force, and
    /// no erasure at or after it).
    func consentAllows(user: String, at time: String) -> String {
        if skipConsentFilter { return "true" }
        return """
        NOT EXISTS (SELECT 1 FROM \(s).erasures e WHERE e.user_hash = \(user) AND \(time) <= e.erased_at)
        AND COALESCE((SELECT c.consent FROM \(s).consent_events c WHERE c.user_hash = \(user) AND c.effective_at <= \(time)
                      ORDER BY c.effective_at DESC, c.event_hash DESC LIMIT 1), '\(defaultConsent)') = 'collect'
        """
    }

    // MARK: - The batch transaction

    public func write(_ batch: PreparedBatch) throws -> WriteResult {
        try prepareSession()
        try db.execute("BEGIN")
        do {
            var clock = StageClock()
            let fenced = try advanceOffsets(batch.spans)
            clock.mark("offsets")
            if !fenced.isEmpty {
                try db.execute("ROLLBACK")
                return .fenced(fenced)
            }
            var counts = WriteCounts()
            var training: [RowKey: (TrainingRow, SourcePosition)] = [:]
            var actions: [String: (ActionRow, SourcePosition)] = [:]
            var lifecycle: [String: (LifecycleRow, SourcePosition)] = [:]
            var metrics: [RowKey: (MetricPointRow, SourcePosition)] = [:]
            training.reserveCapacity(batch.items.count)
            var privacy: [(PrivacyRow, SourcePosition)] = []
            var deadLetters: [(DeadLetter, SourcePosition)] = []
            // Reduce to the last record per primary key: one statement cannot update a row twice.
            for item in batch.items {
                switch item.outcome {
                case .row(.training(let r)): training[RowKey(a: r.scanHash, b: r.resourceHash)] = (r, item.source)
                case .row(.action(let r)): actions[r.eventHash] = (r, item.source)
                case .row(.lifecycle(let r)): lifecycle[r.eventHash] = (r, item.source)
                case .row(.metricPoints(let points)):
                    for p in points { metrics[RowKey(a: p.resourceHash, b: p.metric, c: p.ts.micros)] = (p, item.source) }
                case .row(.privacy(let r)): privacy.append((r, item.source))
                case .deadLetter(let d): deadLetters.append((d, item.source))
                }
            }
            var emissions: [TrendEmission] = []
            clock.mark("reduce")
            for (row, _) in privacy { try applyPrivacy(row, keyId: batch.keyId, source: "topic") }
            counts.rows["user_preferences"] = privacy.count
            clock.mark("privacy")
            counts.rows["ml_training_data"] = try writeTraining(training.values.sorted { $0.1.offset < $1.1.offset }, keyId: batch.keyId)
            clock.mark("ml_training_data")
            counts.rows["user_action_patterns"] = try writeActions(actions.values.sorted { $0.1.offset < $1.1.offset }, keyId: batch.keyId)
            clock.mark("user_action_patterns")
            counts.rows["resource_lifecycle_events"] = try writeLifecycle(Array(lifecycle.values), keyId: batch.keyId)
            counts.rows["cloudwatch_metrics_history"] = try writeMetrics(Array(metrics.values), keyId: batch.keyId)
            counts.deadLetters = try writeDeadLetters(deadLetters)
            clock.mark("other_tables")
            // Recompute cost_trend_data at most every recomputeIntervalSeconds (a batch with
            // privacy requests always does, so corrections are never deferred); in between, the
            // touched account-months wait in window_dirty_months, in this same transaction.
            let recompute = settings.windowsEnabled
                && (!privacy.isEmpty || Date().timeIntervalSince(lastRecompute) >= settings.recomputeIntervalSeconds)
            if recompute {
                let windows = try recomputeAndFinalize(keyId: batch.keyId)
                counts.lateRecords = windows.late
                counts.finalizedMonths = windows.finalized.count
                emissions = windows.recomputed + windows.finalized
                clock.mark("window_recompute")
            } else if settings.windowsEnabled {
                try deferTouchedMonths()
                clock.mark("window_recompute")
            }
            try db.execute("COMMIT")
            clock.mark("commit")
            if settings.windowsEnabled { noteWindows(recomputed: recompute) }
            counts.stageSeconds = clock.seconds
            return .committed(counts, Self.latestPerKey(emissions))
        } catch {
            if db.isConnected { _ = try? db.execute("ROLLBACK") }
            throw error
        }
    }

    /// Moves every span's offset forward, only where this instance's generation and start offset
    /// still match. Returns the partitions that did not match (fenced).
    func advanceOffsets(_ spans: [PartitionSpan]) throws -> Set<TopicPartition> {
        guard !spans.isEmpty else { return [] }
        let sorted = spans.sorted { $0.partition < $1.partition }
        let result = try db.query("""
            UPDATE \(unescaped: s).stream_offsets AS so
               SET next_offset = v.next_offset,
                   max_event_time = GREATEST(so.max_event_time, v.max_event_time),
                   last_record_at = CASE WHEN v.max_event_time IS NULL THEN so.last_record_at ELSE now() END,
                   updated_at = now()
              FROM unnest(\(sorted.map(\.partition.topic))::text[], \(sorted.map { String($0.partition.partition) })::int[],
                          \(sorted.map { String($0.generation) })::bigint[], \(sorted.map { String($0.startOffset) })::bigint[],
                          \(sorted.map { String($0.nextOffset) })::bigint[],
                          \(PostgresNullableArray(sorted.map { $0.maxEventTime?.postgresText }))::timestamptz[])
                   AS v(topic, partition, generation, start_offset, next_offset, max_event_time)
             WHERE so.consumer_group = \(settings.groupId) AND so.topic = v.topic AND so.partition = v.partition
               AND so.generation = v.generation AND so.next_offset = v.start_offset
            RETURNING so.topic, so.partition
            """)
        var matched = Set<TopicPartition>()
        for r in 0..<result.rowCount {
            matched.insert(TopicPartition(topic: result.string(r, 0)!, partition: Int32(result.int(r, 1)!)))
        }
        return Set(spans.map(\.partition)).subtracting(matched)
    }

    private func copy(_ table: String, _ encoder: CopyTextEncoder) throws {
        try db.copyIn("COPY \(table) FROM STDIN") { writer in
            try writer.withBuffer { $0.append(contentsOf: encoder.buffer) }
        }
    }

    func writeTraining(_ rows: [(TrainingRow, SourcePosition)], keyId: String) throws -> Int {
        guard !rows.isEmpty else { return 0 }
        var e = CopyTextEncoder(capacity: rows.count * 700)
        for (r, src) in rows {
            e.plain(r.scanHash); e.plain(r.resourceHash); e.plain(r.accountHash); e.plain(r.userHash); e.plain(r.eventHash)
            e.plain(r.provider.rawValue); e.text(r.regionBucket); e.text(r.resourceType); e.text(r.scenario); e.text(r.confidence)
            e.double(r.estimatedMonthlyCost); e.text(r.currency); e.int(r.resourceAgeDays); e.int(r.createdHourUTC)
            e.int(r.createdDOW); e.text(r.metricsJSON); e.textArray(r.tagKeys); e.text(r.envClass); e.text(r.parentHash)
            e.timestamp(r.detectedAt); e.plain(keyId); e.text(src.topic); e.int(Int(src.partition)); e.int64(src.offset)
            e.endRow()
        }
        try copy("stage_training", e)
        skipConsentFilter = !(try stagedUsersNeedConsentCheck("stage_training"))
        defer { skipConsentFilter = false }
        let columns = """
            scan_hash, resource_hash, account_hash, user_hash, event_hash, provider, region_bucket, resource_type,
            scenario, confidence, estimated_monthly_cost, currency, resource_age_days, created_hour_utc, created_dow,
            metrics, tag_keys, env_class, parent_hash, detected_at, key_id, source_topic, source_partition, source_offset
            """
        let updates = columns.split(separator: ",").map { $0.trimmingCharacters(in: .whitespacesAndNewlines) }
            .filter { $0 != "scan_hash" && $0 != "resource_hash" }.map { "\($0) = EXCLUDED.\($0)" }.joined(separator: ", ")
        let upsert = """
            INSERT INTO \(s).ml_training_data (\(columns))
            SELECT \(columns) FROM stage_training s WHERE \(consentAllows(user: "s.user_hash", at: "s.detected_at"))
            ON CONFLICT (scan_hash, resource_hash) DO UPDATE SET \(updates), ingested_at = now()
            """
        guard settings.windowsEnabled else { return try db.execute(upsert).affectedRows }
        let result = try db.execute("""
            WITH ins AS (
                \(upsert)
                RETURNING account_hash, resource_hash, user_hash, provider, resource_type, estimated_monthly_cost,
                          detected_at, source_partition, source_offset,
                          date_trunc('month', detected_at AT TIME ZONE 'UTC')::date AS month
            ), win AS (
                INSERT INTO \(s).window_resource_costs AS w
                    (account_hash, month, resource_hash, user_hash, provider, resource_type, cost, detected_at, source_partition, source_offset)
                SELECT DISTINCT ON (account_hash, month, resource_hash)
                       account_hash, month, resource_hash, user_hash, provider, resource_type,
                       estimated_monthly_cost::numeric(18,4), detected_at, source_partition, source_offset
                  FROM ins
                 ORDER BY account_hash, month, resource_hash, detected_at DESC, source_partition DESC, source_offset DESC
                ON CONFLICT (account_hash, month, resource_hash) DO UPDATE
                   SET user_hash = EXCLUDED.user_hash, provider = EXCLUDED.provider, resource_type = EXCLUDED.resource_type,
                       cost = EXCLUDED.cost, detected_at = EXCLUDED.detected_at,
                       source_partition = EXCLUDED.source_partition, source_offset = EXCLUDED.source_offset
                 WHERE (EXCLUDED.detected_at, EXCLUDED.source_partition, EXCLUDED.source_offset)
                       >= (w.detected_at, w.source_partition, w.source_offset)
                RETURNING 1
            )
            INSERT INTO touched_months (account_hash, month, records)
            SELECT account_hash, month, count(*) FROM ins GROUP BY account_hash, month
            RETURNING records
            """)
        return (0..<result.rowCount).reduce(0) { $0 + (result.int($1, 0) ?? 0) }
    }

    func writeActions(_ rows: [(ActionRow, SourcePosition)], keyId: String) throws -> Int {
        guard !rows.isEmpty else { return 0 }
        var e = CopyTextEncoder(capacity: rows.count * 500)
        for (r, src) in rows {
            e.plain(r.eventHash); e.plain(r.userHash); e.plain(r.accountHash); e.plain(r.resourceHash); e.plain(r.provider.rawValue)
            e.text(r.resourceType); e.plain(r.action.rawValue); e.timestamp(r.detectedAt); e.timestamp(r.actionAt)
            e.double(r.timeToActionHours); e.double(r.costSavedMonthly); e.plain(keyId)
            e.text(src.topic); e.int(Int(src.partition)); e.int64(src.offset)
            e.endRow()
        }
        try copy("stage_actions", e)
        skipConsentFilter = !(try stagedUsersNeedConsentCheck("stage_actions"))
        defer { skipConsentFilter = false }
        let columns = """
            event_hash, user_hash, account_hash, resource_hash, provider, resource_type, action, detected_at, action_at,
            time_to_action_hours, cost_saved_monthly, key_id, source_topic, source_partition, source_offset
            """
        let updates = columns.split(separator: ",").map { $0.trimmingCharacters(in: .whitespacesAndNewlines) }
            .filter { $0 != "event_hash" }.map { "\($0) = EXCLUDED.\($0)" }.joined(separator: ", ")
        let upsert = """
            INSERT INTO \(s).user_action_patterns (\(columns))
            SELECT \(columns) FROM stage_actions s WHERE \(consentAllows(user: "s.user_hash", at: "s.action_at"))
            ON CONFLICT (event_hash) DO UPDATE SET \(updates), ingested_at = now()
            """
        guard settings.windowsEnabled else { return try db.execute(upsert).affectedRows }
        let result = try db.execute("""
            WITH ins AS (
                \(upsert)
                RETURNING account_hash, resource_hash, user_hash, provider, action, action_at, cost_saved_monthly,
                          source_partition, source_offset, date_trunc('month', action_at AT TIME ZONE 'UTC')::date AS month
            ), win AS (
                INSERT INTO \(s).window_eliminations AS w
                    (account_hash, month, resource_hash, user_hash, provider, cost_saved, action_at, source_partition, source_offset)
                SELECT DISTINCT ON (account_hash, month, resource_hash)
                       account_hash, month, resource_hash, user_hash, provider, COALESCE(cost_saved_monthly, 0)::numeric(18,4),
                       action_at, source_partition, source_offset
                  FROM ins WHERE action = 'deleted'
                 ORDER BY account_hash, month, resource_hash, action_at DESC, source_partition DESC, source_offset DESC
                ON CONFLICT (account_hash, month, resource_hash) DO UPDATE
                   SET user_hash = EXCLUDED.user_hash, provider = EXCLUDED.provider, cost_saved = EXCLUDED.cost_saved,
                       action_at = EXCLUDED.action_at, source_partition = EXCLUDED.source_partition,
                       source_offset = EXCLUDED.source_offset
                 WHERE (EXCLUDED.action_at, EXCLUDED.source_partition, EXCLUDED.source_offset)
                       >= (w.action_at, w.source_partition, w.source_offset)
                RETURNING 1
            ), touched AS (
                INSERT INTO touched_months (account_hash, month, records)
                SELECT account_hash, month, count(*) FROM ins WHERE action = 'deleted' GROUP BY account_hash, month
            )
            SELECT count(*) FROM ins
            """)
        return result.int(0, 0) ?? 0
    }

    func writeLifecycle(_ rows: [(LifecycleRow, SourcePosition)], keyId: String) throws -> Int {
        guard !rows.isEmpty else { return 0 }
        var e = CopyTextEncoder(capacity: rows.count * 400)
        for (r, src) in rows {
            e.plain(r.eventHash); e.plain(r.accountHash); e.plain(r.resourceHash); e.plain(r.provider.rawValue)
            e.text(r.resourceType); e.text(r.fromState); e.text(r.toState); e.timestamp(r.occurredAt); e.plain(keyId)
            e.text(src.topic); e.int(Int(src.partition)); e.int64(src.offset)
            e.endRow()
        }
        try copy("stage_lifecycle", e)
        return try db.execute("""
            INSERT INTO \(s).resource_lifecycle_events
                (event_hash, account_hash, resource_hash, provider, resource_type, from_state, to_state, occurred_at,
                 key_id, source_topic, source_partition, source_offset)
            SELECT * FROM stage_lifecycle
            ON CONFLICT (event_hash) DO UPDATE SET account_hash = EXCLUDED.account_hash, resource_hash = EXCLUDED.resource_hash,
                provider = EXCLUDED.provider, resource_type = EXCLUDED.resource_type, from_state = EXCLUDED.from_state,
                to_state = EXCLUDED.to_state, occurred_at = EXCLUDED.occurred_at, key_id = EXCLUDED.key_id,
                source_topic = EXCLUDED.source_topic, source_partition = EXCLUDED.source_partition,
                source_offset = EXCLUDED.source_offset, ingested_at = now()
            """).affectedRows
    }

    func writeMetrics(_ rows: [(MetricPointRow, SourcePosition)], keyId: String) throws -> Int {
        guard !rows.isEmpty else { return 0 }
        var e = CopyTextEncoder(capacity: rows.count * 250)
        for (r, src) in rows {
            e.plain(r.resourceHash); e.text(r.metric); e.timestamp(r.ts); e.plain(r.accountHash); e.plain(r.provider.rawValue)
            e.text(r.unit); e.double(r.value); e.plain(keyId); e.text(src.topic); e.int(Int(src.partition)); e.int64(src.offset)
            e.endRow()
        }
        try copy("stage_metrics", e)
        return try db.execute("""
            INSERT INTO \(s).cloudwatch_metrics_history
                (resource_hash, metric, ts, account_hash, provider, unit, value, key_id, source_topic, source_partition, source_offset)
            SELECT * FROM stage_metrics
            ON CONFLICT (resource_hash, metric, ts) DO UPDATE SET account_hash = EXCLUDED.account_hash,
                provider = EXCLUDED.provider, unit = EXCLUDED.unit, value = EXCLUDED.value, key_id = EXCLUDED.key_id,
                source_topic = EXCLUDED.source_topic, source_partition = EXCLUDED.source_partition,
                source_offset = EXCLUDED.source_offset, ingested_at = now()
            """).affectedRows
    }

    func writeDeadLetters(_ letters: [(DeadLetter, SourcePosition)]) throws -> Int {
        guard !letters.isEmpty else { return 0 }
        return try db.query("""
            INSERT INTO \(unescaped: s).dead_letters
                (source_topic, source_partition, source_offset, reason, reason_code, payload_sha256, payload_bytes, key_sha256, consumer_group)
            SELECT * , \(settings.groupId) FROM unnest(
                \(letters.map(\.1.topic))::text[], \(letters.map { String($0.1.partition) })::int[],
                \(letters.map { String($0.1.offset) })::bigint[], \(letters.map { $0.0.rejection.description })::text[],
                \(letters.map { $0.0.rejection.code.rawValue })::text[],
                \(PostgresNullableArray(letters.map { $0.0.value.map(sha256Hex) }))::text[],
                \(letters.map { String($0.0.value?.count ?? 0) })::int[],
                \(PostgresNullableArray(letters.map { $0.0.key.map(sha256Hex) }))::text[])
            ON CONFLICT DO NOTHING
            """).affectedRows
    }

    // MARK: - Windows

    static let trendJSON = """
        jsonb_build_object('account_hash', account_hash, 'month', to_char(month, 'YYYY-MM-DD'), 'provider', provider,
            'resources_detected', resources_detected, 'waste_detected_monthly_cost', waste_detected_monthly_cost,
            'resources_eliminated', resources_eliminated, 'waste_eliminated_monthly_cost', waste_eliminated_monthly_cost,
            'top_categories', top_categories, 'late_records', late_records, 'revision', revision,
            'finalized', finalized, 'updated_at', updated_at, 'key_id', key_id)::text
        """

    /// Recomputes every (account, month) touched in this transaction from the window state and
    /// upserts the cost-trend row where it changed (or where a late record reached a finalized month).
    func recomputeTouchedMonths(keyId: String) throws -> ([TrendEmission], Int) {
        let result = try db.query("""
            WITH g AS (
                SELECT account_hash, month, sum(records)::int AS records FROM touched_months GROUP BY account_hash, month
            ), det AS (
                SELECT w.account_hash, w.month, min(w.provider) AS provider, count(*)::int AS n, sum(w.cost) AS cost
                  FROM \(unescaped: s).window_resource_costs w JOIN g USING (account_hash, month) GROUP BY 1, 2
            ), cat AS (
                SELECT account_hash, month,
                       jsonb_agg(jsonb_build_object('resource_type', resource_type, 'cost', cost, 'count', n)
                                 ORDER BY cost DESC, resource_type) AS top
                  FROM (SELECT w.account_hash, w.month, w.resource_type, sum(w.cost) AS cost, count(*)::int AS n,
                               row_number() OVER (PARTITION BY w.account_hash, w.month ORDER BY sum(w.cost) DESC, w.resource_type) AS rn
                          FROM \(unescaped: s).window_resource_costs w JOIN g USING (account_hash, month)
                         GROUP BY 1, 2, 3) t
                 WHERE rn <= 5 GROUP BY 1, 2
            ), elim AS (
                SELECT w.account_hash, w.month, min(w.provider) AS provider, count(*)::int AS n, sum(w.cost_saved) AS cost
                  FROM \(unescaped: s).window_eliminations w JOIN g USING (account_hash, month) GROUP BY 1, 2
            ), upserted AS (
                INSERT INTO \(unescaped: s).cost_trend_data AS c
                    (account_hash, month, provider, resources_detected, waste_detected_monthly_cost, resources_eliminated,
                     waste_eliminated_monthly_cost, top_categories, late_records, revision, finalized, key_id)
                SELECT g.account_hash, g.month, COALESCE(det.provider, elim.provider, 'unknown'), COALESCE(det.n, 0),
                       COALESCE(det.cost, 0), COALESCE(elim.n, 0), COALESCE(elim.cost, 0), COALESCE(cat.top, '[]'::jsonb),
                       0, 1, false, \(keyId)
                  FROM g LEFT JOIN det USING (account_hash, month) LEFT JOIN elim USING (account_hash, month)
                         LEFT JOIN cat USING (account_hash, month)
                 WHERE det.n IS NOT NULL OR elim.n IS NOT NULL
                ON CONFLICT (account_hash, month) DO UPDATE SET
                    provider = EXCLUDED.provider, resources_detected = EXCLUDED.resources_detected,
                    waste_detected_monthly_cost = EXCLUDED.waste_detected_monthly_cost,
                    resources_eliminated = EXCLUDED.resources_eliminated,
                    waste_eliminated_monthly_cost = EXCLUDED.waste_eliminated_monthly_cost,
                    top_categories = EXCLUDED.top_categories,
                    late_records = c.late_records + CASE WHEN c.finalized
                        THEN (SELECT g2.records FROM g g2 WHERE g2.account_hash = c.account_hash AND g2.month = c.month) ELSE 0 END,
                    revision = c.revision + 1, updated_at = now(), key_id = EXCLUDED.key_id
                WHERE (c.finalized AND EXISTS (SELECT 1 FROM g g2 WHERE g2.account_hash = c.account_hash
                                                AND g2.month = c.month AND g2.records > 0))
                   OR (c.resources_detected, c.waste_detected_monthly_cost, c.resources_eliminated,
                       c.waste_eliminated_monthly_cost, c.top_categories, c.provider)
                      IS DISTINCT FROM
                      (EXCLUDED.resources_detected, EXCLUDED.waste_detected_monthly_cost, EXCLUDED.resources_eliminated,
                       EXCLUDED.waste_eliminated_monthly_cost, EXCLUDED.top_categories, EXCLUDED.provider)
                RETURNING account_hash, month, revision, finalized, \(unescaped: Self.trendJSON) AS json
            )
            SELECT u.account_hash, to_char(u.month, 'YYYY-MM-DD'), u.revision, u.json,
                   CASE WHEN u.finalized THEN g.records ELSE 0 END
              FROM upserted u JOIN g USING (account_hash, month)
            """)
        var late = 0
        var out: [TrendEmission] = []
        // A month left without any resource (after an erasure or opt-out) disappears: its row is
        // deleted and a tombstone (null value) is published for its key.
        let emptied = try db.execute("""
            WITH g AS (SELECT DISTINCT account_hash, month FROM touched_months)
            DELETE FROM \(s).cost_trend_data c USING g
             WHERE c.account_hash = g.account_hash AND c.month = g.month
               AND NOT EXISTS (SELECT 1 FROM \(s).window_resource_costs w WHERE w.account_hash = g.account_hash AND w.month = g.month)
               AND NOT EXISTS (SELECT 1 FROM \(s).window_eliminations w WHERE w.account_hash = g.account_hash AND w.month = g.month)
            RETURNING c.account_hash, to_char(c.month, 'YYYY-MM-DD'), c.revision + 1
            """)
        for r in 0..<emptied.rowCount {
            out.append(TrendEmission(accountHash: emptied.string(r, 0)!, month: emptied.string(r, 1)!, revision: emptied.int(r, 2)!, json: ""))
        }
        for r in 0..<result.rowCount {
            out.append(TrendEmission(accountHash: result.string(r, 0)!, month: result.string(r, 1)!,
                                     revision: result.int(r, 2)!, json: result.string(r, 3)!))
            late += result.int(r, 4) ?? 0
        }
        return (out, late)
    }

    /// Marks months final once the watermark passed their end plus the grace period. The watermark
    /// is the smallest latest-event-time over the window topics' partitions that saw a record
    /// within the idle timeout (or the largest, when every partition is idle), minus the allowed
    /// out-of-orderness. Stored in PostgreSQL, so every instance of the group sees the same one.
    public func finalizeMonths() throws -> [TrendEmission] {
        let result = try db.query("""
            WITH parts AS (
                SELECT max_event_time, last_record_at > now() - make_interval(secs => \(settings.idleTimeoutSeconds)) AS active
                  FROM \(unescaped: s).stream_offsets
                 WHERE consumer_group = \(settings.groupId) AND topic = ANY(\(settings.windowTopics)::text[])
                   AND max_event_time IS NOT NULL
            ), wm AS (
                SELECT CASE WHEN bool_or(active) THEN min(max_event_time) FILTER (WHERE active) ELSE max(max_event_time) END
                       - make_interval(mins => \(settings.outOfOrdernessMinutes)) AS watermark
                  FROM parts
            )
            UPDATE \(unescaped: s).cost_trend_data c
               SET finalized = true, revision = c.revision + 1, updated_at = now()
              FROM wm
             WHERE NOT c.finalized AND wm.watermark IS NOT NULL
               AND (c.month + interval '1 month' + make_interval(hours => \(settings.graceHours))) <= wm.watermark
            RETURNING c.account_hash, to_char(c.month, 'YYYY-MM-DD'), c.revision,
                      \(unescaped: Self.trendJSON.replacingOccurrences(of: "account_hash,", with: "c.account_hash,"))
            """)
        return (0..<result.rowCount).map { r in
            TrendEmission(accountHash: result.string(r, 0)!, month: result.string(r, 1)!,
                          revision: result.int(r, 2)!, json: result.string(r, 3)!)
        }
    }

    /// Recomputes deferred account-months and finalizes due months in a transaction of its own
    /// (idle ticks and shutdown, no batch to ride on). Returns the rows to publish and how many
    /// records landed in already finalized months.
    public func recomputeAndFinalizeNow(keyId: String) throws -> (emissions: [TrendEmission], late: Int, finalized: Int) {
        try prepareSession()
        let windows = try db.transaction { try recomputeAndFinalize(keyId: keyId) }
        noteWindows(recomputed: true)
        return (Self.latestPerKey(windows.recomputed + windows.finalized), windows.late, windows.finalized.count)
    }

    /// Inside a transaction: recomputes the deferred and touched account-months, then finalizes
    /// due months (always in this order, so late-record accounting sees the state before).
    private func recomputeAndFinalize(keyId: String) throws -> (recomputed: [TrendEmission], late: Int, finalized: [TrendEmission]) {
        try db.execute("""
            WITH d AS (DELETE FROM \(s).window_dirty_months RETURNING account_hash, month, records)
            INSERT INTO touched_months (account_hash, month, records) SELECT account_hash, month, records FROM d
            """)
        let (recomputed, late) = try recomputeTouchedMonths(keyId: keyId)
        return (recomputed, late, try finalizeMonths())
    }

    /// After a commit: whether account-months now wait in window_dirty_months.
    private func noteWindows(recomputed: Bool) {
        if recomputed { lastRecompute = Date() }
        hasDeferredMonths = !recomputed
    }

    /// Keeps this transaction's touched account-months (with their record counts, for late-record
    /// accounting) for a later recomputation.
    private func deferTouchedMonths() throws {
        try db.execute("""
            INSERT INTO \(s).window_dirty_months AS d (account_hash, month, records)
            SELECT account_hash, month, sum(records)::int FROM touched_months GROUP BY account_hash, month
            ON CONFLICT (account_hash, month) DO UPDATE SET records = d.records + EXCLUDED.records
            """)
    }


    /// Rows changed but not yet published (after a crash between commit and publish).
    public func unpublishedTrends(limit: Int = 10_000) throws -> [TrendEmission] {
        try prepareSession()
        let result = try db.query("""
            SELECT account_hash, to_char(month, 'YYYY-MM-DD'), revision, \(unescaped: Self.trendJSON)
              FROM \(unescaped: s).cost_trend_data WHERE emitted_revision < revision
             ORDER BY account_hash, month LIMIT \(limit)
            """)
        return (0..<result.rowCount).map { r in
            TrendEmission(accountHash: result.string(r, 0)!, month: result.string(r, 1)!,
                          revision: result.int(r, 2)!, json: result.string(r, 3)!)
        }
    }

    /// Records that these revisions reached the cost-trend topic.
    public func markPublished(_ emissions: [TrendEmission]) throws {
        guard !emissions.isEmpty else { return }
        try db.query("""
            UPDATE \(unescaped: s).cost_trend_data c SET emitted_revision = v.revision
              FROM unnest(\(emissions.map(\.accountHash))::text[], \(emissions.map(\.month))::date[],
                          \(emissions.map { String($0.revision) })::int[]) AS v(account_hash, month, revision)
             WHERE c.account_hash = v.account_hash AND c.month = v.month AND c.emitted_revision < v.revision
            """)
    }

    static func latestPerKey(_ emissions: [TrendEmission]) -> [TrendEmission] {
        var latest: [String: TrendEmission] = [:]
        for e in emissions where latest[e.key].map({ e.revision > $0.revision }) ?? true { latest[e.key] = e }
        return latest.values.sorted { $0.key < $1.key }
    }
}

import Foundation
