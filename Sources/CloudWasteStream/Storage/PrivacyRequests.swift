import Foundation
public import CloudWastePostgres

/// What an erasure deleted, per table.
public struct ErasureReport: Sendable, CustomStringConvertible {
    public var userHash: Pseudonym
    public var deleted: [String: Int]
    public var description: String {
        deleted.sorted { $0.key < $1.key }.map { "\($0.key)=\($0.value)" }.joined(separator: " ")
    }
}

/// Consent changes and erasures (SPEC §7), inside the caller's transaction, which must hold the
/// user's `PrivacyLocks` bucket exclusively (batches hold their users' buckets shared). The user's
/// window state of the months whose rows were deleted is rebuilt here and the months are queued
/// for the recomputer.
public struct PrivacyRequests {
    let db: PostgresConnection
    let schema: String
    let s: PostgresIdentifier
    let consent: ConsentRules
    let windowsEnabled: Bool

    public init(connection: PostgresConnection, schema: String, consentMode: StreamConfig.ConsentMode, windowsEnabled: Bool) {
        db = connection
        self.schema = schema
        s = PostgresIdentifier(schema)
        consent = ConsentRules(schema: schema, mode: consentMode)
        self.windowsEnabled = windowsEnabled
    }

    /// Applies one privacy request. Consent is recorded as history (so records are judged by the
    /// consent in force at their event time), and rows that an opt-out now forbids are removed.
    func apply(_ row: PrivacyRow, keyId: String, source: String) throws {
        switch row.request {
        case .erase:
            _ = try erase(userHash: row.userHash, at: row.requestedAt, eventHash: row.eventHash, keyId: keyId, source: source)
        case .optIn, .optOut:
            let value = row.request == .optIn ? "collect" : "opted_out"
            // After an erasure an opt-in admits only records after it: the erasure filter keeps
            // everything up to the erasure out, whatever the consent history says.
            try db.query("""
                INSERT INTO \(s).consent_events (user_hash, effective_at, event_hash, consent)
                VALUES (\(row.userHash), \(row.requestedAt.postgresText)::timestamptz, \(row.eventHash), \(value))
                ON CONFLICT DO NOTHING
                """)
            try db.query("""
                INSERT INTO \(s).user_preferences AS p (user_hash, consent, updated_at, key_id)
                VALUES (\(row.userHash), \(value), \(row.requestedAt.postgresText)::timestamptz, \(keyId))
                ON CONFLICT (user_hash) DO UPDATE SET consent = EXCLUDED.consent, updated_at = EXCLUDED.updated_at,
                    key_id = EXCLUDED.key_id
                 WHERE EXCLUDED.updated_at >= p.updated_at
                """)
            if row.request == .optOut {
                try removeRowsNoLongerAllowed(userHash: row.userHash)
            }
        }
    }

    /// Deletes the user's rows whose event time now falls under an opt-out (a request that arrived
    /// after records it covers), then corrects the affected months.
    private func removeRowsNoLongerAllowed(userHash: Pseudonym) throws {
        let allowedTraining = consent.allows(user: "t.user_hash", at: "t.detected_at")
        let allowedAction = consent.allows(user: "t.user_hash", at: "t.action_at")
        try db.query("""
            WITH d1 AS (
                DELETE FROM \(s).ml_training_data t WHERE t.user_hash = \(userHash) AND NOT (\(allowedTraining))
                RETURNING account_hash, date_trunc('month', detected_at AT TIME ZONE 'UTC')::date AS month
            ), d2 AS (
                DELETE FROM \(s).user_action_patterns t WHERE t.user_hash = \(userHash) AND NOT (\(allowedAction))
                RETURNING account_hash, date_trunc('month', action_at AT TIME ZONE 'UTC')::date AS month
            )
            INSERT INTO touched_months (account_hash, month, records)
            SELECT DISTINCT account_hash, month, 0 FROM (SELECT * FROM d1 UNION ALL SELECT * FROM d2) x
            """)
        try rebuildWindowState(userHash: userHash)
    }

    /// Deletes every row that carries the user's pseudonym, records the erasure (it outlives
    /// replays) and queues the cost-trend rows that counted the user for correction.
    func erase(userHash: Pseudonym, at time: Timestamp, eventHash: Pseudonym, keyId: String, source: String) throws -> ErasureReport {
        var deleted: [String: Int] = [:]
        for table in StoredTable.erased {
            let statement: PostgresQuery
            let rows = s.member(table.name)
            if table.erasure?.touchesMonths == true, let time = table.eventTime {
                let column = PostgresIdentifier(time.name)
                let month: PostgresQuery = time.kind == .instant ? "date_trunc('month', \(column) AT TIME ZONE 'UTC')::date" : "\(column)"
                statement = """
                    WITH d AS (DELETE FROM \(rows) WHERE user_hash = \(userHash) RETURNING account_hash, \(month) AS month)
                    INSERT INTO touched_months (account_hash, month, records) SELECT DISTINCT account_hash, month, 0 FROM d
                    """
            } else {
                statement = "DELETE FROM \(rows) WHERE user_hash = \(userHash)"
            }
            deleted[table.name] = try db.query(statement).affectedRows
        }
        // From now on the user counts as opted out until an explicit opt-in.
        try db.query("""
            INSERT INTO \(s).consent_events (user_hash, effective_at, event_hash, consent)
            VALUES (\(userHash), \(time.postgresText)::timestamptz, \(eventHash), 'opted_out') ON CONFLICT DO NOTHING
            """)
        try db.query("""
            INSERT INTO \(s).user_preferences AS p (user_hash, consent, updated_at, erased_at, key_id)
            VALUES (\(userHash), 'opted_out', \(time.postgresText)::timestamptz, \(time.postgresText)::timestamptz, \(keyId))
            ON CONFLICT (user_hash) DO UPDATE SET consent = 'opted_out',
                updated_at = GREATEST(p.updated_at, EXCLUDED.updated_at), erased_at = GREATEST(p.erased_at, EXCLUDED.erased_at)
            """)
        let report = ErasureReport(userHash: userHash, deleted: deleted)
        let countsJSON = String(decoding: JSONCoding.bytes(deleted), as: UTF8.self)
        try db.query("""
            INSERT INTO \(s).erasures AS e (user_hash, erased_at, deleted_rows, source)
            VALUES (\(userHash), \(time.postgresText)::timestamptz, \(countsJSON)::jsonb, \(source))
            ON CONFLICT (user_hash) DO UPDATE SET erased_at = GREATEST(e.erased_at, EXCLUDED.erased_at),
                recorded_at = now(), deleted_rows = EXCLUDED.deleted_rows, source = EXCLUDED.source
            """)
        try rebuildWindowState(userHash: userHash)
        return report
    }

    /// Rebuilds the user's window state for the months in `touched_months` from the user's
    /// remaining fact rows, and queues those months for the recomputer. The state keeps each
    /// user's latest detection and saving, so other users' rows need no correction, and the work
    /// follows the user's rows (the user indexes), not the months' (docs/windows.md). After an
    /// erasure the user's rows are gone already, so its statements find nothing and only the
    /// queueing counts (one path for both kinds of request: a few index probes).
    private func rebuildWindowState(userHash: Pseudonym) throws {
        guard windowsEnabled else { return }
        try SessionTables.analyzeTouchedMonths(db)
        let months: PostgresQuery = "WITH g AS (SELECT DISTINCT account_hash, month FROM touched_months)"
        let deleteUsersRows = { (table: String) -> PostgresQuery in
            """
            \(months) DELETE FROM \(self.s.member(table)) w USING g
             WHERE w.user_hash = \(userHash) AND w.account_hash = g.account_hash AND w.month = g.month
            """
        }
        // One round trip; inside the caller's transaction.
        _ = try db.pipeline([
            deleteUsersRows("window_resource_costs"),
            deleteUsersRows("window_eliminations"),
            """
            \(months)
            INSERT INTO \(s).window_resource_costs
                (account_hash, month, resource_hash, currency, user_hash, provider, resource_type, cost, detected_at,
                 source_partition, source_offset)
            SELECT DISTINCT ON (m.account_hash, g.month, m.resource_hash, m.currency)
                   m.account_hash, g.month, m.resource_hash, m.currency, m.user_hash, m.provider, m.resource_type,
                   m.estimated_monthly_cost::numeric(18,4), m.detected_at, m.source_partition, m.source_offset
              FROM \(s).ml_training_data m JOIN g ON m.account_hash = g.account_hash
               AND m.detected_at >= g.month::timestamp AT TIME ZONE 'UTC'
               AND m.detected_at < (g.month + interval '1 month')::timestamp AT TIME ZONE 'UTC'
             WHERE m.user_hash = \(userHash)
             ORDER BY m.account_hash, g.month, m.resource_hash, m.currency, m.detected_at DESC, m.source_partition DESC, m.source_offset DESC
            """,
            """
            \(months)
            INSERT INTO \(s).window_eliminations
                (account_hash, month, resource_hash, currency, user_hash, provider, cost_saved, action_at, source_partition, source_offset)
            SELECT DISTINCT ON (a.account_hash, g.month, a.resource_hash, a.currency)
                   a.account_hash, g.month, a.resource_hash, a.currency, a.user_hash, a.provider,
                   COALESCE(a.cost_saved_monthly, 0)::numeric(18,4), a.action_at, a.source_partition, a.source_offset
              FROM \(s).user_action_patterns a JOIN g ON a.account_hash = g.account_hash AND a.action = 'deleted'
               AND a.action_at >= g.month::timestamp AT TIME ZONE 'UTC'
               AND a.action_at < (g.month + interval '1 month')::timestamp AT TIME ZONE 'UTC'
             WHERE a.user_hash = \(userHash)
             ORDER BY a.account_hash, g.month, a.resource_hash, a.currency, a.action_at DESC, a.source_partition DESC, a.source_offset DESC
            """,
            """
            INSERT INTO \(s).window_dirty_months (account_hash, month, currency, records)
            SELECT account_hash, month, currency, sum(records)::int FROM touched_months GROUP BY account_hash, month, currency
            """,
        ])
    }

    /// `cloudwaste-stream forget --user ID`: an erasure in a transaction of its own, under the
    /// exclusive privacy lock. The affected cost-trend rows are queued; the caller recomputes.
    /// The request has no record of its own: its consent event is named by the SHA-256 of
    /// `forget:<micros>` (what migration 8 made of the text such events held before).
    public func forget(userHash: Pseudonym, keyId: String) throws -> ErasureReport {
        try SessionTables.prepare(db)
        return try db.transaction {
            let locks = PrivacyLocks(schema: schema)
            try db.query(locks.statement(shared: [], exclusive: [userHash]))
            let now = Timestamp.now()
            let eventHash = Pseudonym(sha256Of: Array("forget:\(now.micros)".utf8))
            return try erase(userHash: userHash, at: now, eventHash: eventHash, keyId: keyId, source: "forget")
        }
    }
}
