public import CloudWastePostgres
import Foundation

/// The monthly cost-trend windows (SPEC §6) in PostgreSQL. Writers maintain the window state
/// (each user's latest estimate of a resource per account, month and currency, each user's latest
/// saving of a deleted resource; billed days are read from resource_billed_costs itself; kept per
/// user so that a privacy request corrects it from that user's rows alone) in their batch
/// transactions and append the account-months they touched to
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
        /// The event-time watermark the months were finalized against (nil before any record).
        public var watermark: Timestamp?
    }

    let db: PostgresConnection
    public let settings: Settings
    let s: PostgresIdentifier

    public init(connection: PostgresConnection, settings: Settings) {
        db = connection
        self.settings = settings
        s = PostgresIdentifier(settings.schema)
    }

    /// The advisory-lock key that makes one session at a time the recomputer of a schema.
    static func recomputeLockKey(schema: String) -> Int64 { stableLockKey("cloudwaste-stream/windows/\(schema)") }

    // MARK: - Window state, inside a writer's batch transaction

    /// Columns a detection upsert must return for `detectionState(from:)`.
    static let detectionColumns: PostgresQuery = """
        account_hash, resource_hash, user_hash, provider, resource_type, estimated_monthly_cost, currency, detected_at,
        source_partition, source_offset, date_trunc('month', detected_at AT TIME ZONE 'UTC')::date AS month
        """

    /// CTEs that fold the detections in `rows` (an upsert's RETURNING with `detectionColumns`, or
    /// a batch's reduced `WindowDetection`s with a `records` column) into the window state (each
    /// user's latest estimate per resource, month and currency) and queue their account-months for
    /// a recompute, with `records` (an aggregate) records each.
    /// `unique`: `rows` holds one detection per key already (a batch's `WindowDetection.reduce`d
    /// rows), so no sort is needed to pick each key's latest.
    static func detectionState(schema s: PostgresIdentifier, from rows: PostgresIdentifier, records: PostgresQuery = "count(*)",
                               unique: Bool = false) -> PostgresQuery {
        let latestPerKey: PostgresQuery = unique ? "" : "DISTINCT ON (account_hash, month, resource_hash, currency, user_hash)"
        let order: PostgresQuery = unique
            ? "" : "ORDER BY account_hash, month, resource_hash, currency, user_hash, detected_at DESC, source_partition DESC, source_offset DESC"
        return """
        win_detect AS (
            INSERT INTO \(s).window_resource_costs AS w
                (account_hash, month, resource_hash, currency, user_hash, provider, resource_type, cost, detected_at,
                 source_partition, source_offset)
            SELECT \(latestPerKey)
                   account_hash, month, resource_hash, currency, user_hash, provider, resource_type,
                   estimated_monthly_cost::numeric(18,4), detected_at, source_partition, source_offset
              FROM \(rows)
             \(order)
            ON CONFLICT (account_hash, month, resource_hash, currency, user_hash) DO UPDATE
               SET provider = EXCLUDED.provider, resource_type = EXCLUDED.resource_type,
                   cost = EXCLUDED.cost, detected_at = EXCLUDED.detected_at,
                   source_partition = EXCLUDED.source_partition, source_offset = EXCLUDED.source_offset
             WHERE (EXCLUDED.detected_at, EXCLUDED.source_partition, EXCLUDED.source_offset)
                   >= (w.detected_at, w.source_partition, w.source_offset)
        ), dirty_detect AS (
            INSERT INTO \(s).window_dirty_months (account_hash, month, currency, records)
            SELECT account_hash, month, currency, \(records) FROM \(rows) GROUP BY account_hash, month, currency
        )
        """
    }

    /// Columns an action upsert must return for `eliminationState(from:)`.
    static let eliminationColumns: PostgresQuery = """
        account_hash, resource_hash, user_hash, provider, action, action_at, cost_saved_monthly, currency,
        source_partition, source_offset, date_trunc('month', action_at AT TIME ZONE 'UTC')::date AS month
        """

    /// CTEs that fold the `deleted` actions returned by CTE `rows` into the window state (each
    /// user's latest saving per deleted resource, month and currency) and queue their
    /// account-months.
    static func eliminationState(schema s: PostgresIdentifier, from rows: PostgresIdentifier) -> PostgresQuery {
        """
        win_elim AS (
            INSERT INTO \(s).window_eliminations AS w
                (account_hash, month, resource_hash, currency, user_hash, provider, cost_saved, action_at,
                 source_partition, source_offset)
            SELECT DISTINCT ON (account_hash, month, resource_hash, currency, user_hash)
                   account_hash, month, resource_hash, currency, user_hash, provider,
                   COALESCE(cost_saved_monthly, 0)::numeric(18,4), action_at, source_partition, source_offset
              FROM \(rows) WHERE action = 'deleted'
             ORDER BY account_hash, month, resource_hash, currency, user_hash, action_at DESC, source_partition DESC, source_offset DESC
            ON CONFLICT (account_hash, month, resource_hash, currency, user_hash) DO UPDATE
               SET provider = EXCLUDED.provider, cost_saved = EXCLUDED.cost_saved,
                   action_at = EXCLUDED.action_at, source_partition = EXCLUDED.source_partition,
                   source_offset = EXCLUDED.source_offset
             WHERE (EXCLUDED.action_at, EXCLUDED.source_partition, EXCLUDED.source_offset)
                   >= (w.action_at, w.source_partition, w.source_offset)
        ), dirty_elim AS (
            INSERT INTO \(s).window_dirty_months (account_hash, month, currency, records)
            SELECT account_hash, month, currency, count(*) FROM \(rows) WHERE action = 'deleted'
             GROUP BY account_hash, month, currency
        )
        """
    }

    /// Columns a billed-cost upsert must return for `billedState(from:)`.
    static let billedColumns: PostgresQuery = """
        account_hash, resource_hash, currency, cost_type, date_trunc('month', usage_date)::date AS month
        """

    /// A CTE that queues the account-months of the unblended billed days in CTE `rows` (the
    /// billed-cost table itself is the window state: the recompute joins it with the month's
    /// detected resources). Every such day is queued, detected or not, because the scan that
    /// detects its resource may be committing at the same moment in another writer; only days of
    /// resources already detected in that month count as records (for `late_records`).
    static func billedState(schema s: PostgresIdentifier, from rows: PostgresIdentifier) -> PostgresQuery {
        """
        dirty_billed AS (
            INSERT INTO \(s).window_dirty_months (account_hash, month, currency, records)
            SELECT i.account_hash, i.month, i.currency,
                   sum(CASE WHEN EXISTS (SELECT 1 FROM \(s).window_resource_costs w WHERE w.account_hash = i.account_hash
                                           AND w.month = i.month AND w.resource_hash = i.resource_hash) THEN 1 ELSE 0 END)::int
              FROM \(rows) i WHERE i.cost_type = 'unblended' GROUP BY 1, 2, 3
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
                try db.query("SELECT set_config('lock_timeout', \("\(max(1, lockTimeoutSeconds))s"), true)")
                try db.query("SELECT pg_advisory_xact_lock(\(lock))")
            } else if try !db.query("SELECT pg_try_advisory_xact_lock(\(lock))").decode(Bool.self) {
                return nil
            }
            // The tombstone check hashes the recomputed keys (NOT IN over a hashed subplan); beyond
            // work_mem PostgreSQL would scan them once per row instead. 64 MB holds about half a
            // million account-months (a replay's first recompute).
            try db.query("SET LOCAL work_mem = '64MB'")
            try db.query("""
                WITH d AS (DELETE FROM \(s).window_dirty_months RETURNING account_hash, month, currency, records)
                INSERT INTO touched_months (account_hash, month, currency, records)
                SELECT account_hash, month, currency, sum(records)::int FROM d GROUP BY account_hash, month, currency
                """)
            try SessionTables.analyzeTouchedMonths(db)
            let (recomputed, late) = try recomputeTouchedMonths(keyId: keyId)
            let watermark = try watermark()
            let finalized = try finalizeMonths(watermark: watermark)
            return Recomputed(emissions: TrendEmission.latestPerKey(recomputed + finalized), lateRecords: late,
                              finalizedMonths: finalized.count, watermark: watermark)
        }
    }

    /// Whether account-months wait in the queue.
    public func hasQueuedMonths() throws -> Bool {
        try db.query("SELECT EXISTS (SELECT 1 FROM \(s).window_dirty_months)").decode(Bool.self)
    }

    static let trendJSON: PostgresQuery = """
        jsonb_build_object('account_hash', encode(account_hash, 'hex'), 'month', to_char(month, 'YYYY-MM-DD'), 'currency', currency,
            'provider', provider, 'resources_detected', resources_detected,
            'waste_detected_monthly_cost', waste_detected_monthly_cost,
            'resources_eliminated', resources_eliminated, 'waste_eliminated_monthly_cost', waste_eliminated_monthly_cost,
            'top_categories', top_categories, 'billed_resources', billed_resources,
            'billed_waste_monthly_cost', billed_waste_monthly_cost, 'late_records', late_records, 'revision', revision,
            'finalized', finalized, 'updated_at', updated_at, 'key_id', key_id)::text
        """

    /// Recomputes every account-month in `touched_months`, in every currency, from the window
    /// state and upserts each (account, month, currency) row where it changed (or where a late
    /// record reached a finalized one). A currency left without any figure in a month (after an
    /// erasure or an opt-out) loses its row, and a tombstone is emitted for it.
    func recomputeTouchedMonths(keyId: String) throws -> ([TrendEmission], Int) {
        let result = try db.query("""
            WITH q AS (
                SELECT account_hash, month, currency, sum(records)::int AS records
                  FROM touched_months WHERE currency IS NOT NULL GROUP BY 1, 2, 3
            ), g AS (
                SELECT DISTINCT account_hash, month FROM touched_months
            ), wr AS MATERIALIZED (
                -- The state keeps each user's latest detection; a resource counts with the latest of all.
                SELECT DISTINCT ON (w.account_hash, w.month, w.resource_hash, w.currency)
                       w.account_hash, w.month, w.currency, w.resource_hash, w.provider, w.resource_type, w.cost
                  FROM \(s).window_resource_costs w JOIN g USING (account_hash, month)
                 ORDER BY w.account_hash, w.month, w.resource_hash, w.currency,
                          w.detected_at DESC, w.source_partition DESC, w.source_offset DESC
            ), det AS (
                SELECT account_hash, month, currency, min(provider) AS provider, count(*)::int AS n, sum(cost) AS cost
                  FROM wr GROUP BY 1, 2, 3
            ), cat AS (
                SELECT account_hash, month, currency,
                       jsonb_agg(jsonb_build_object('resource_type', resource_type, 'cost', cost, 'count', n)
                                 ORDER BY cost DESC, resource_type) AS top
                  FROM (SELECT account_hash, month, currency, resource_type, sum(cost) AS cost, count(*)::int AS n,
                               row_number() OVER (PARTITION BY account_hash, month, currency
                                                  ORDER BY sum(cost) DESC, resource_type) AS rn
                          FROM wr GROUP BY 1, 2, 3, 4) t
                 WHERE rn <= 5 GROUP BY 1, 2, 3
            ), elim AS (
                SELECT account_hash, month, currency, min(provider) AS provider, count(*)::int AS n, sum(cost_saved) AS cost
                  FROM (SELECT DISTINCT ON (w.account_hash, w.month, w.resource_hash, w.currency)
                               w.account_hash, w.month, w.currency, w.provider, w.cost_saved
                          FROM \(s).window_eliminations w JOIN g USING (account_hash, month)
                         ORDER BY w.account_hash, w.month, w.resource_hash, w.currency,
                                  w.action_at DESC, w.source_partition DESC, w.source_offset DESC) e
                 GROUP BY 1, 2, 3
            ), bill AS (
                -- One index range scan of the billed days per detected resource and month (OFFSET 0
                -- keeps it a per-resource lookup: joined, the planner misjudges the ranges badly).
                SELECT r.account_hash, r.month, b.currency, min(b.provider) AS provider,
                       count(DISTINCT r.resource_hash)::int AS n, sum(b.amount::numeric)::numeric(18,4) AS cost
                  FROM (SELECT DISTINCT account_hash, month, resource_hash FROM wr) r
                 CROSS JOIN LATERAL (
                       SELECT c.currency, c.provider, c.amount FROM \(s).resource_billed_costs c
                        WHERE c.resource_hash = r.resource_hash AND c.usage_date >= r.month
                          AND c.usage_date < (r.month + interval '1 month')::date AND c.cost_type = 'unblended'
                          AND c.account_hash = r.account_hash OFFSET 0) b
                 GROUP BY 1, 2, 3
            ), k AS (
                SELECT account_hash, month, currency FROM det
                UNION SELECT account_hash, month, currency FROM elim
                UNION SELECT account_hash, month, currency FROM bill
            ), upserted AS (
                INSERT INTO \(s).cost_trend_data AS c
                    (account_hash, month, currency, provider, resources_detected, waste_detected_monthly_cost,
                     resources_eliminated, waste_eliminated_monthly_cost, top_categories, billed_resources,
                     billed_waste_monthly_cost, late_records, revision, finalized, key_id)
                SELECT k.account_hash, k.month, k.currency, COALESCE(det.provider, elim.provider, bill.provider, 'unknown'),
                       COALESCE(det.n, 0), COALESCE(det.cost, 0), COALESCE(elim.n, 0), COALESCE(elim.cost, 0),
                       COALESCE(cat.top, '[]'::jsonb), COALESCE(bill.n, 0), COALESCE(bill.cost, 0),
                       -- A currency's first row in a month that is final already: its records are late.
                       CASE WHEN fin.finalized THEN COALESCE(q.records, 0) ELSE 0 END, 1, COALESCE(fin.finalized, false), \(keyId)
                  FROM k LEFT JOIN det USING (account_hash, month, currency) LEFT JOIN elim USING (account_hash, month, currency)
                         LEFT JOIN bill USING (account_hash, month, currency) LEFT JOIN cat USING (account_hash, month, currency)
                         LEFT JOIN q USING (account_hash, month, currency)
                         LEFT JOIN (SELECT f.account_hash, f.month, bool_or(f.finalized) AS finalized
                                      FROM \(s).cost_trend_data f JOIN g USING (account_hash, month) GROUP BY 1, 2) fin
                                USING (account_hash, month)
                 ORDER BY k.account_hash, k.month, k.currency
                ON CONFLICT (account_hash, month, currency) DO UPDATE SET
                    provider = EXCLUDED.provider, resources_detected = EXCLUDED.resources_detected,
                    waste_detected_monthly_cost = EXCLUDED.waste_detected_monthly_cost,
                    resources_eliminated = EXCLUDED.resources_eliminated,
                    waste_eliminated_monthly_cost = EXCLUDED.waste_eliminated_monthly_cost,
                    top_categories = EXCLUDED.top_categories, billed_resources = EXCLUDED.billed_resources,
                    billed_waste_monthly_cost = EXCLUDED.billed_waste_monthly_cost,
                    -- When c is final, so is its month in fin (c was there when the statement began:
                    -- one recomputer at a time), and EXCLUDED.late_records holds q's records. (A
                    -- lookup of q per updated row was a linear scan of q each time.)
                    late_records = c.late_records + CASE WHEN c.finalized THEN EXCLUDED.late_records ELSE 0 END,
                    revision = c.revision + 1, updated_at = now(), key_id = EXCLUDED.key_id
                WHERE (c.finalized AND EXCLUDED.late_records > 0)
                   OR (c.resources_detected, c.waste_detected_monthly_cost, c.resources_eliminated,
                       c.waste_eliminated_monthly_cost, c.top_categories, c.provider, c.billed_resources,
                       c.billed_waste_monthly_cost)
                      IS DISTINCT FROM
                      (EXCLUDED.resources_detected, EXCLUDED.waste_detected_monthly_cost, EXCLUDED.resources_eliminated,
                       EXCLUDED.waste_eliminated_monthly_cost, EXCLUDED.top_categories, EXCLUDED.provider,
                       EXCLUDED.billed_resources, EXCLUDED.billed_waste_monthly_cost)
                RETURNING account_hash, month, currency, revision, finalized, \(Self.trendJSON) AS json
            ), deleted AS (
                DELETE FROM \(s).cost_trend_data c USING g
                 WHERE c.account_hash = g.account_hash AND c.month = g.month
                   AND (c.account_hash, c.month, c.currency) NOT IN (SELECT account_hash, month, currency FROM k)
                RETURNING c.account_hash, c.month, c.currency, c.revision + 1 AS revision
            )
            SELECT encode(u.account_hash, 'hex'), to_char(u.month, 'YYYY-MM-DD'), u.currency, u.revision, u.json,
                   CASE WHEN u.finalized THEN COALESCE(q.records, 0) ELSE 0 END
              FROM upserted u LEFT JOIN q USING (account_hash, month, currency)
            UNION ALL
            SELECT encode(account_hash, 'hex'), to_char(month, 'YYYY-MM-DD'), currency, revision, '', 0 FROM deleted
            """)
        var late = 0
        var out: [TrendEmission] = []
        for (account, month, currency, revision, json, lateRecords) in try result.decodeRows(as: (String, String, String, Int, String?, Int?).self) {
            out.append(TrendEmission(accountHash: account, month: month, currency: currency, revision: revision, json: json ?? ""))
            late += lateRecords ?? 0
        }
        return (out, late)
    }

    /// The event-time watermark: the smallest latest-event-time over the watermark topics'
    /// partitions that saw a record within the idle timeout (or the largest, when every partition
    /// is idle), minus the allowed out-of-orderness; nil before any record. Stored in PostgreSQL,
    /// so every instance of the group sees the same one (and exports it as a metric).
    public func watermark() throws -> Timestamp? {
        let result = try db.query("""
            WITH parts AS (
                SELECT max_event_time, last_record_at > now() - make_interval(secs => \(settings.idleTimeoutSeconds)) AS active
                  FROM \(s).stream_offsets
                 WHERE consumer_group = \(settings.groupId) AND topic = ANY(\(settings.watermarkTopics)::text[])
                   AND max_event_time IS NOT NULL
            )
            SELECT (extract(epoch FROM
                       CASE WHEN bool_or(active) THEN min(max_event_time) FILTER (WHERE active) ELSE max(max_event_time) END
                       - make_interval(mins => \(settings.outOfOrdernessMinutes))) * 1000000)::bigint
              FROM parts
            """)
        return try result.decode(Int64?.self).map { Timestamp(micros: $0) }
    }

    /// Marks months final once `watermark` passed their end plus the grace period.
    func finalizeMonths(watermark: Timestamp?) throws -> [TrendEmission] {
        guard let watermark else { return [] }
        let result = try db.query("""
            UPDATE \(s).cost_trend_data c
               SET finalized = true, revision = c.revision + 1, updated_at = now()
             WHERE NOT c.finalized
               AND (c.month + interval '1 month' + make_interval(hours => \(settings.graceHours))) <= \(watermark.postgresText)::timestamptz
            RETURNING encode(c.account_hash, 'hex'), to_char(c.month, 'YYYY-MM-DD'), c.currency, c.revision,
                      \(Self.trendJSON)
            """)
        return try Self.emissions(result)
    }

    /// Rows of (account_hash as hex, month, currency, revision, json) as emissions.
    static func emissions(_ result: PostgresResult) throws(PostgresError) -> [TrendEmission] {
        try result.decodeRows(as: (String, String, String, Int, String).self).map {
            TrendEmission(accountHash: $0, month: $1, currency: $2, revision: $3, json: $4)
        }
    }

    // MARK: - Publication bookkeeping

    /// Rows changed but not yet published (after a crash or a Kafka outage between commit and publish).
    public func unpublishedTrends(limit: Int = 10_000) throws -> [TrendEmission] {
        let result = try db.query("""
            SELECT encode(account_hash, 'hex'), to_char(month, 'YYYY-MM-DD'), currency, revision, \(Self.trendJSON)
              FROM \(s).cost_trend_data WHERE emitted_revision < revision
             ORDER BY account_hash, month, currency LIMIT \(limit)
            """)
        return try Self.emissions(result)
    }

    /// Keys of the cost-trend topic from before SPEC v1.1 (`account_hash:month`) that still need
    /// their one tombstone (migration 5).
    public func legacyTrendKeys(limit: Int = 10_000) throws -> [String] {
        let result = try db.query("SELECT key FROM \(s).legacy_trend_keys ORDER BY key LIMIT \(limit)")
        return try result.decodeColumn(as: String.self)
    }

    /// Records that these legacy keys' tombstones reached the topic.
    public func retireLegacyTrendKeys(_ keys: [String]) throws {
        guard !keys.isEmpty else { return }
        try db.query("DELETE FROM \(s).legacy_trend_keys WHERE key = ANY(\(keys)::text[])")
    }

    /// Records that these revisions reached the cost-trend topic.
    public func markPublished(_ emissions: [TrendEmission]) throws {
        let rows = emissions.filter { !$0.json.isEmpty }
        guard !rows.isEmpty else { return }
        try db.query("""
            UPDATE \(s).cost_trend_data c SET emitted_revision = v.revision
              FROM unnest(\(rows.map(\.accountHash))::text[], \(rows.map(\.month))::date[], \(rows.map(\.currency))::text[],
                          \(rows.map(\.revision))::int[]) AS v(account_hash, month, currency, revision)
             WHERE c.account_hash = decode(v.account_hash, 'hex') AND c.month = v.month AND c.currency = v.currency
               AND c.emitted_revision < v.revision
            """)
    }
}
