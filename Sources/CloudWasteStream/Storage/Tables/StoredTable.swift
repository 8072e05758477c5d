/// One table of the schema, as the parts of the program that work across tables know it:
/// retention, export, replay, erasure and stats derive their lists from `StoredTable.all`
/// instead of keeping their own. The migrations create the tables; `StoredTableTests` checks this
/// registry against the catalog (`pg_attribute`, the primary keys) for every table.
public struct StoredTable: Sendable, Hashable, CustomStringConvertible {
    /// How a time column measures: an instant (`timestamptz`), a UTC day or a month's first day (`date`).
    public enum TimeKind: Sendable, Hashable { case instant, day, month }

    public struct TimeColumn: Sendable, Hashable {
        public let name: String
        public let kind: TimeKind
    }

    /// What `retention` does with the table.
    public enum Retention: Sendable, Hashable {
        /// Never cleaned: consent decisions, erasures and the daemon's own state (the type's list says why).
        case kept
        /// Rows older than `retention.days` (or `retention.tables.<name>`) by the event-time column.
        case cleaned
        /// Window state that a month's cost_trend_data row is recomputed from: it follows that
        /// table's age unless given its own.
        case followsCostTrends
    }

    /// What `replay` does with the table.
    public enum Replay: Sendable, Hashable {
        /// Left where it is (offsets, dead letters, erasures, the daemon's state).
        case kept
        /// Rebuilt in the shadow schema from these topics and swapped in; copied over as it is
        /// when none of them is re-read.
        case rebuilt(from: Set<InputTopic>)
    }

    public let name: String
    /// Every column (for the tables that records are copied into: the COPY columns first).
    public let columns: [String]
    /// The primary key; empty for an append-only queue.
    public let key: [String]
    /// When a row's event happened: what `export --days` selects by and `retention` ages rows by.
    public let eventTime: TimeColumn?
    /// When the row was stored or last changed, for the tables `stats` counts.
    public let storedAt: String?
    public let retention: Retention
    /// Whether `export` writes it (in this registry's order when no table is named).
    public let exported: Bool
    public let replay: Replay
    /// Whether an erasure deletes the user's rows (by `user_hash`); `touchesMonths`: the deleted
    /// rows' account-months are recomputed.
    public let erasure: Erasure?

    public struct Erasure: Sendable, Hashable {
        public let touchesMonths: Bool
    }

    init(_ name: String, columns: [String], key: [String], eventTime: TimeColumn? = nil, storedAt: String? = nil,
         retention: Retention = .kept, exported: Bool = false, replay: Replay = .kept, erasure: Erasure? = nil) {
        self.name = name
        self.columns = columns
        self.key = key
        self.eventTime = eventTime
        self.storedAt = storedAt
        self.retention = retention
        self.exported = exported
        self.replay = replay
        self.erasure = erasure
    }

    /// A table that records are copied into: its name, key and leading columns come from its
    /// `TableDescription`, so that they are written once.
    init<Row>(copiedBy description: TableDescription<Row>, laterColumns: [String] = ["ingested_at"], eventTime: TimeColumn?,
              storedAt: String? = "ingested_at", retention: Retention, exported: Bool, replay: Replay, erasure: Erasure? = nil) {
        self.init(description.name, columns: description.storedColumns.map(\.name) + laterColumns, key: description.key,
                  eventTime: eventTime, storedAt: storedAt, retention: retention, exported: exported, replay: replay, erasure: erasure)
    }

    public var description: String { name }

    /// Whether the rows of `topics` rebuild it in a replay.
    func isRebuilt(byAnyOf topics: some Sequence<InputTopic>) -> Bool {
        guard case .rebuilt(let sources) = replay else { return false }
        return topics.contains(where: sources.contains)
    }

    public static func named(_ name: String) -> StoredTable? { all.first { $0.name == name } }
}

extension StoredTable.TimeColumn {
    static func instant(_ name: String) -> Self { .init(name: name, kind: .instant) }
    static func day(_ name: String) -> Self { .init(name: name, kind: .day) }
    static func month(_ name: String) -> Self { .init(name: name, kind: .month) }
}
