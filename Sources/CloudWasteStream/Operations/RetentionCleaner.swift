public import CloudWastePostgres
#if canImport(Glibc)
import Glibc
#endif

/// `cloudwaste-stream retention` and the daily scheduled clean-up: deletes rows whose time column
/// is older than the configured age (`retention.days`, or `retention.tables.<table>`).
///
/// Deletes go in bounded batches, each its own short transaction
/// (`DELETE … WHERE ctid = ANY(ARRAY(SELECT ctid … LIMIT n))`), so that no statement holds row
/// locks on many rows or runs for long while the pipeline keeps writing, and an interrupted run
/// has kept what it already did. The cutoff is fixed once per run, so a long run cannot chase
/// rows that age while it works.
///
/// Some tables are never cleaned, on purpose: `user_preferences` and `consent_events` are users'
/// consent decisions (deleting an old opt-out would start storing that user again), `erasures`
/// must outlive every replay (SPEC §7), and the ops tables (offsets, migrations, schedule runs)
/// are state, not data.
public struct RetentionCleaner: Sendable {
    /// Cleaned tables, in the order they are cleaned (`StoredTable.all` says which and by what
    /// column). A table's rows age by its event time: an instant by itself, a day or a month by the
    /// whole UTC month it falls in. Window state (`.followsCostTrends`) is what a month's
    /// cost_trend_data row is recomputed from, and it carries user pseudonyms: it follows
    /// cost_trend_data's age unless given its own. Billed days are window state too (a month's
    /// billed figures are recomputed from them when a late record arrives), so they go by whole
    /// months as well: a kept month keeps all its days.
    public static var tables: [StoredTable] { StoredTable.cleaned }

    public struct TableResult: Sendable, Equatable {
        public var table: String
        public var days: Int
        /// Rows older than this were deleted (for monthly tables: months that ended before it).
        public var cutoff: Timestamp
        public var deletedRows: Int
        /// DELETE statements (transactions) it took.
        public var batches: Int
    }

    public struct Invalid: Error, CustomStringConvertible, Sendable {
        public var description: String
    }

    public var schema: String
    public var defaultDays: Int
    public var tableDays: [String: Int]
    public var batchRows: Int
    /// A batch waiting longer than this for a row lock fails and is retried, instead of queueing
    /// behind (and in front of) the pipeline's writers.
    public var lockTimeoutMs = 5000
    /// Polled between batches; a cancelled run stops cleanly after its current batch.
    public var isCancelled: @Sendable () -> Bool = { false }

    public init(schema: String, defaultDays: Int, tableDays: [String: Int] = [:], batchRows: Int) {
        self.schema = schema
        self.defaultDays = defaultDays
        self.tableDays = tableDays
        self.batchRows = batchRows
    }

    public init(config: StreamConfig) {
        self.init(schema: config.postgresSchema, defaultDays: config.retentionDays,
                  tableDays: config.retentionTableDays, batchRows: config.retentionBatchRows)
    }

    /// Rejects ages for tables that are not cleaned (a typo, or a protected table) and bad numbers.
    public func validate() throws(Invalid) {
        let known = Set(Self.tables.map(\.name))
        for (table, days) in tableDays.sorted(by: { $0.key < $1.key }) {
            guard known.contains(table) else {
                throw Invalid(description: "retention.tables.\(table): not a table that retention cleans; choose from \(Self.tables.map(\.name).joined(separator: ", "))")
            }
            guard days > 0 else { throw Invalid(description: "retention.tables.\(table) must be at least 1 day, not \(days)") }
        }
        guard defaultDays > 0 else { throw Invalid(description: "retention.days must be at least 1, not \(defaultDays)") }
        guard batchRows > 0 else { throw Invalid(description: "retention.batch_rows must be at least 1, not \(batchRows)") }
    }

    public func days(for table: String) -> Int {
        if let d = tableDays[table] { return d }
        if StoredTable.named(table)?.retention == .followsCostTrends, let d = tableDays["cost_trend_data"] { return d }
        return defaultDays
    }

    /// Deletes old rows from every cleaned table; returns what it did per table.
    public func run(_ db: PostgresConnection) throws -> [TableResult] {
        try validate()
        let now = try db.transactionStart()
        var results: [TableResult] = []
        for table in Self.tables {
            if isCancelled() { break }
            results.append(try clean(db, table, now: now))
        }
        return results
    }

    /// Counts what `run` would delete, deleting nothing (`retention --dry-run`).
    public func count(_ db: PostgresConnection) throws -> [TableResult] {
        try validate()
        let now = try db.transactionStart()
        return try Self.tables.map { table in
            let (cutoff, condition) = self.condition(table, now: now)
            let n = try db.query("SELECT count(*) FROM \(relation(table)) WHERE \(condition)").decode(Int.self)
            return TableResult(table: table.name, days: days(for: table.name), cutoff: cutoff, deletedRows: n, batches: 0)
        }
    }

    private func clean(_ db: PostgresConnection, _ table: StoredTable, now: Timestamp) throws -> TableResult {
        let (cutoff, condition) = self.condition(table, now: now)
        let rel = relation(table)
        let delete: PostgresQuery = "DELETE FROM \(rel) WHERE ctid = ANY(ARRAY(SELECT ctid FROM \(rel) WHERE \(condition) LIMIT \(batchRows)))"
        var result = TableResult(table: table.name, days: days(for: table.name), cutoff: cutoff, deletedRows: 0, batches: 0)
        var lockTimeouts = 0
        while !isCancelled() {
            let deleted: Int
            do {
                deleted = try db.transaction {
                    try db.query("SELECT set_config('lock_timeout', \(String(max(1, lockTimeoutMs))), true)")
                    return try db.query(delete).affectedRows
                }
            } catch let error as PostgresError where error.sqlState == "55P03" && lockTimeouts < 5 {
                lockTimeouts += 1  // a writer holds one of the rows: let it finish, then try again
                usleep(UInt32(200_000 * lockTimeouts))
                continue
            }
            result.batches += 1
            result.deletedRows += deleted
            if deleted < batchRows { break }
        }
        return result
    }

    private func relation(_ table: StoredTable) -> PostgresIdentifier {
        PostgresIdentifier(schema).member(table.name)
    }

    /// The cutoff and the predicate on it. A daily or monthly row goes once its day or month ended
    /// before the cutoff, i.e. it is before the cutoff's UTC day or month. The cutoff is written
    /// as a literal so that the predicate can be a fragment of several statements.
    private func condition(_ table: StoredTable, now: Timestamp) -> (Timestamp, PostgresQuery) {
        let cutoff = Timestamp(micros: now.micros - Int64(days(for: table.name)) * 86_400_000_000)
        guard let time = table.eventTime else { preconditionFailure("\(table) is cleaned but has no event-time column") }
        let col = PostgresIdentifier(time.name)
        let sql: PostgresQuery = switch time.kind {
        case .instant: "\(col) < \(literal: cutoff.postgresText)::timestamptz"
        case .day, .month: "\(col) < date_trunc('month', \(literal: cutoff.postgresText)::timestamptz AT TIME ZONE 'UTC')::date"
        }
        return (cutoff, sql)
    }
}
