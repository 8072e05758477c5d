import CloudWastePostgres

/// SQL conditions for "this user's record may be stored" (SPEC §7): no erasure at or after the
/// record's event time, and the consent in force at that time is `collect` (history in
/// `consent_events`; without any, the mode's default).
struct ConsentRules: Sendable {
    let schema: PostgresIdentifier
    let mode: StreamConfig.ConsentMode

    init(schema: String, mode: StreamConfig.ConsentMode) {
        self.schema = PostgresIdentifier(schema)
        self.mode = mode
    }

    var defaultConsent: String { mode == .optOut ? "collect" : "opted_out" }

    /// The per-row check for user column `user` at event-time column `time` (column references).
    func allows(user: PostgresQuery, at time: PostgresQuery) -> PostgresQuery {
        """
        NOT EXISTS (SELECT 1 FROM \(schema).erasures e WHERE e.user_hash = \(user) AND \(time) <= e.erased_at)
        AND COALESCE((SELECT c.consent FROM \(schema).consent_events c WHERE c.user_hash = \(user) AND c.effective_at <= \(time)
                      ORDER BY c.effective_at DESC, c.event_hash DESC LIMIT 1), \(literal: defaultConsent)) = 'collect'
        """
    }

    /// The check for the rows of staging table `stage`: in opt-out mode, when none of its users
    /// has any consent history or erasure (the usual case), one uncorrelated test per statement
    /// decides and the per-row subqueries are never evaluated.
    func allowsStaged(_ stage: PostgresIdentifier, user: PostgresQuery, at time: PostgresQuery) -> PostgresQuery {
        guard mode == .optOut else { return allows(user: user, at: time) }
        return """
            (NOT EXISTS (SELECT 1 FROM \(stage) x WHERE x.user_hash IN (SELECT user_hash FROM \(schema).erasures
                                                                          UNION ALL SELECT user_hash FROM \(schema).consent_events))
             OR (\(allows(user: user, at: time))))
            """
    }
}
