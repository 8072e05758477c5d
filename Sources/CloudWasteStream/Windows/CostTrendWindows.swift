public import CloudWastePostgres
import Foundation

/// The monthly cost-trend windows (SPEC §6) in PostgreSQL. Writers maintain the window state
/// (each resource's latest estimate per account and month, each deleted resource's latest saving)
/// in their batch transactions and append the account-months they touched to
/// `window_dirty_months`; one recomputer at a time per schema (an advisory lock) turns that queue
/// into `cost_trend_data` rows and finalizes months past the watermark. So several writers, and
/// several instances, never update one cost-trend row concurrently, and the rows are the same as
/// with one writer. Used by the pipeline's output thread, `forget` and replay.
public struct CostTrendWindows {
    public struct Settings: Sendable {
        public var schema: String
        public var groupId: String
        public var graceHours: Int
        public var outOfOrdernessMinutes: Int
        public var idleTimeoutSeconds: Int
        /// Topics whose event time drives the watermark.
        public var watermarkTopics: [String]

        public init(config: StreamConfig) {
            schema = config.postgresSchema
            groupId = config.groupId
            graceHours = config.windowGraceHours
            outOfOrdernessMinutes = config.windowOutOfOrdernessMinutes
            idleTimeoutSeconds = config.windowIdleTimeoutSeconds
            watermarkTopics = [config.topicName(.scanResources), config.topicName(.userActions)]
        }
    }

    /// What one recompute changed.
    public struct Recomputed: Sendable {
        /// Rows to publish (newest revision per key).
        public var emissions: [TrendEmission]
        /// Records that landed in already finalized months.
        public var lateRecords: Int
        public var finalizedMonths: Int
    }

    let db: PostgresConnection
    public let settings: Settings
    let s: String

    public init(connection: PostgresConnection, settings: Settings) {
        db = connection
        self.settings = settings
        s = PostgresQuery.quoteIdentifier(settings.schema)
    }

    /// The advisory-lock key that makes one session at a time the recomputer of a schema.
    static func recomputeLockKey(schema: String) -> Int64 { stableLockKey("cloudwaste-stream/windows/\(schema)") }

    // MARK: - Window state, inside a writer's batch transaction

    /// Columns a detection upsert must return for `detectionState(from:)`.
    static let detectionColumns = """
        account_hash, resource_hash, user_hash, provider, resource_type, estimated_monthly_cost, detected_at,
        source_partition, source_offset, date_trunc('month', detected_at AT TIME ZONE 'UTC')::date AS month
        """

    /// CTEs that fold the detections in `rows` (an upsert's RETURNING with `detectionColumns`, or
    /// a batch's reduced `WindowDetection`s with a `records` column) into the window state (latest
    /// estimate per resource and month) and queue their account-months for a recompute, with
    /// `records` (an aggregate) records each; `s` is the quoted schema.
    static func detectionState(schema s: String, from rows: String, records: String = "count(*)") -> String {
        """
        win_detect AS (
            INSERT INTO \(s).window_resource_costs AS w
                (account_hash, month, resource_hash, user_hash, provider, resource_type, cost, detected_at, source_partition, source_offset)
            SELECT DISTINCT ON (account_hash, month, resource_hash)
                   account_hash, month, resource_hash, user_hash, provider, resource_type,
                   estimated_monthly_cost::numeric(18,4), detected_at, source_partition, source_offset
              FROM \(rows)
             ORDER BY account_hash, month, resource_hash, detected_at DESC, source_partition DESC, source_offset DESC
            ON CONFLICT (account_hash, month, resource_hash) DO UPDATE
               SET user_hash = EXCLUDED.user_hash, provider = EXCLUDED.provider, resource_type = EXCLUDED.resource_type,
                   cost = EXCLUDED.cost, detected_at = EXCLUDED.detected_at,
                   source_partition = EXCLUDED.source_partition, source_offset = EXCLUDED.source_offset
             WHERE (EXCLUDED.detected_at, EXCLUDED.source_partition, EXCLUDED.source_offset)
                   >= (w.detected_at, w.source_partition, w.source_offset)
        ), dirty_detect AS (
            INSERT INTO \(s).window_dirty_months (account_hash, month, records)
            SELECT account_hash, month, \(records) FROM \(rows) GROUP BY account_hash, month
        )
        """
    }

    /// Columns an action upsert must return for `eliminationState(from:)`.
    static let eliminationColumns = """
        account_hash, resource_hash, user_hash, provider, action, action_at, cost_saved_monthly,
        source_partition, source_offset, date_trunc('month', action_at AT TIME ZONE 'UTC')::date AS month
        """

    /// CTEs that fold the `deleted` actions returned by CTE `rows` into the window state (latest
    /// saving per deleted resource and month) and queue their account-months.
    static func eliminationState(schema s: String, from rows: String) -> String {
        """
        win_elim AS (
            INSERT INTO \(s).window_eliminations AS w
                (account_hash, month, resource_hash, user_hash, provider, cost_saved, action_at, source_partition, source_offset)
            SELECT DISTINCT ON (account_hash, month, resource_hash)
                   account_hash, month, resource_hash, user_hash, provider, COALESCE(cost_saved_monthly, 0)::numeric(18,4),
                   action_at, source_partition, source_offset
              FROM \(rows) WHERE action = 'deleted'
             ORDER BY account_hash, month, resource_hash, action_at DESC, source_partition DESC, source_offset DESC
            ON CONFLICT (account_hash, month, resource_hash) DO UPDATE
               SET user_hash = EXCLUDED.user_hash, provider = EXCLUDED.provider, cost_saved = EXCLUDED.cost_saved,
                   action_at = EXCLUDED.action_at, source_partition = EXCLUDED.source_partition,
                   source_offset = EXCLUDED.source_offset
             WHERE (EXCLUDED.action_at, EXCLUDED.source_partition, EXCLUDED.source_offset)
                   >= (w.action_at, w.source_partition, w.source_offset)
        ), dirty_elim AS (
            INSERT INTO \(s).window_dirty_months (account_hash, month, records)
            SELECT account_hash, month, count(*) FROM \(rows) WHERE action = 'deleted' GROUP BY account_hash, month
        )
        """
    }

    // MARK: - Recompute, in a transaction of its own

    /// Recomputes every queued account-month and finalizes due months, as the schema's only
    /// recomputer. `wait: false` returns nil at once when another session holds that role (its
    /// recompute will take the queue); `wait: true` waits up to `lockTimeoutSeconds`.
    public func recompute(keyId: String, wait: Bool, lockTimeoutSeconds: Int = 10) throws -> Recomputed? {
        try SessionTables.prepare(db)
        let lock = Self.recomputeLockKey(schema: settings.schema)
        return try db.transaction { () throws -> Recomputed? in
            if wait {
                try db.execute("SET LOCAL lock_timeout = '\(max(1, lockTimeoutSeconds))s'; SELECT pg_advisory_xact_lock(\(lock))")
            } else if try db.execute("SELECT pg_try_advisory_xact_lock(\(lock))").bool(0, 0) != true {
                return nil
            }
            try db.execute("""
                WITH d AS (DELETE FROM \(s).window_dirty_months RETURNING account_hash, month, records)
                INSERT INTO touched_months (account_hash, month, records)
                SELECT account_hash, month, sum(records)::int FROM d GROUP BY account_hash, month
                """)
            let (recomputed, late) = try recomputeTouchedMonths(keyId: keyId)
            let finalized = try finalizeMonths()
            return Recomputed(emissions: TrendEmission.latestPerKey(recomputed + finalized), lateRecords: late,
                              finalizedMonths: finalized.count)
        }
    }

    /// Whether account-months wait in the queue.
    public func hasQueuedMonths() throws -> Bool {
        try db.execute("SELECT EXISTS (SELECT 1 FROM \(s).window_dirty_months)").bool(0, 0) ?? false
    }

    /// The currency of a cost-trend row, as SQL.
    static let currencyColumnSQL = "'USD'"

    static let trendJSON = """
        jsonb_build_object('account_hash', account_hash, 'month', to_char(month, 'YYYY-MM-DD'), 'provider', provider,
            'resources_detected', resources_detected, 'waste_detected_monthly_cost', waste_detected_monthly_cost,
            'resources_eliminated', resources_eliminated, 'waste_eliminated_monthly_cost', waste_eliminated_monthly_cost,
            'top_categories', top_categories, 'late_records', late_records, 'revision', revision,
            'finalized', finalized, 'updated_at', updated_at, 'key_id', key_id)::text
        """

    /// Recomputes every account-month in `touched_months` from the window state and upserts the
    /// cost-trend row where it changed (or where a late record reached a finalized month). A month
    /// left without any resource (after an erasure or opt-out) is deleted and a tombstone emitted.
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
                 ORDER BY g.account_hash, g.month
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
    /// is the smallest latest-event-time over the watermark topics' partitions that saw a record
    /// within the idle timeout (or the largest, when every partition is idle), minus the allowed
    /// out-of-orderness. Stored in PostgreSQL, so every instance of the group sees the same one.
    func finalizeMonths() throws -> [TrendEmission] {
        let result = try db.query("""
            WITH parts AS (
                SELECT max_event_time, last_record_at > now() - make_interval(secs => \(settings.idleTimeoutSeconds)) AS active
                  FROM \(unescaped: s).stream_offsets
                 WHERE consumer_group = \(settings.groupId) AND topic = ANY(\(settings.watermarkTopics)::text[])
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

    // MARK: - Publication bookkeeping

    /// Rows changed but not yet published (after a crash or a Kafka outage between commit and publish).
    public func unpublishedTrends(limit: Int = 10_000) throws -> [TrendEmission] {
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
        let rows = emissions.filter { !$0.json.isEmpty }
        guard !rows.isEmpty else { return }
        try db.query("""
            UPDATE \(unescaped: s).cost_trend_data c SET emitted_revision = v.revision
              FROM unnest(\(rows.map(\.accountHash))::text[], \(rows.map(\.month))::date[],
                          \(rows.map { String($0.revision) })::int[]) AS v(account_hash, month, revision)
             WHERE c.account_hash = v.account_hash AND c.month = v.month AND c.emitted_revision < v.revision
            """)
    }
}
