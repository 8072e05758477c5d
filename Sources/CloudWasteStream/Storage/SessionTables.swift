import CloudWastePostgres

/// The temp tables a session works with: one staging table per COPY target, and `touched_months`
/// for privacy corrections and recomputes. `ON COMMIT DELETE ROWS`, so every transaction starts
/// with them empty. Created once per connection (idempotent).
enum SessionTables {
    static func prepare(_ db: PostgresConnection) throws {
        try db.query(PostgresQuery.joined([
            "SET TIME ZONE 'UTC'",
            TableDescription.mlTrainingData.stagingDDL,
            TableDescription.userActionPatterns.stagingDDL,
            TableDescription.resourceLifecycleEvents.stagingDDL,
            TableDescription.cloudwatchMetricsHistory.stagingDDL,
            TableDescription.resourceBilledCosts.stagingDDL,
            TableDescription.deadLetters.stagingDDL,
            TableDescription.windowDetections.stagingDDL,
            "CREATE TEMP TABLE IF NOT EXISTS touched_months (account_hash bytea, month date, currency text, records int) ON COMMIT DELETE ROWS",
        ], separator: ";\n"))
    }

    /// Gives the planner `touched_months`' size once it is filled. A temp table has no statistics
    /// of its own, so without this PostgreSQL guesses a thousand-odd rows and joins the window
    /// tables by scanning them whole, even for a handful of account-months: a cost that grew with
    /// the state, not with what changed (docs/performance.md).
    static func analyzeTouchedMonths(_ db: PostgresConnection) throws {
        try db.query("ANALYZE touched_months")
    }
}
