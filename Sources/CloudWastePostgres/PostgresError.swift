import CloudWasteSecrets

/// A libpq failure. `description` is deliberately terse (SQLSTATE and the server's primary message)
/// so that row data never reaches logs; `detail` keeps the server's DETAIL line for debugging.
public struct PostgresError: Error, CustomStringConvertible, Sendable {
    public enum Kind: Sendable, Equatable {
        /// The connection could not be made or was lost: an infrastructure fault, retried.
        case connection
        /// The server rejected a statement.
        case query
        /// A result was not what the program expected (a NULL, a missing row, text of another
        /// type): a bug or a schema drift, never retried.
        case unexpectedResult
    }

    public var kind: Kind
    public var sqlState: String?
    public var message: String
    public var detail: String?

    /// `message` and `detail` are redacted here: libpq echoes connection strings, passwords included.
    public init(kind: Kind, sqlState: String? = nil, message: String, detail: String? = nil) {
        self.kind = kind
        self.sqlState = sqlState
        self.message = SecretRedactor.redact(message)
        self.detail = detail.map(SecretRedactor.redact)
    }

    public var description: String {
        if let sqlState { return "PostgreSQL error \(sqlState): \(message)" }
        switch kind {
        case .connection: return "PostgreSQL connection error: \(message)"
        case .query: return "PostgreSQL query error: \(message)"
        case .unexpectedResult: return "unexpected PostgreSQL result: \(message)"
        }
    }

    /// Errors caused by the infrastructure rather than by one row: lost connections, shutdowns,
    /// serialization failures, deadlocks, disk full, too many connections, a primary that became
    /// a read-only standby (failover), lock and statement timeouts. They are retried and never
    /// sent to the dead-letter queue; any other error cannot succeed by waiting.
    public var isTransient: Bool {
        switch kind {
        case .connection: return true
        case .unexpectedResult: return false
        case .query:
            guard let sqlState else { return true }  // libpq's own failure, e.g. a reset connection
            let cls = sqlState.prefix(2)
            return ["08", "40", "53", "57", "58", "XX"].contains(String(cls)) || sqlState == "55P03" || sqlState == "25006"
        }
    }

    /// Errors that one bad row can cause (data exceptions, integrity violations): the batch is bisected.
    public var isDataError: Bool {
        guard kind == .query, let sqlState else { return false }
        return sqlState.hasPrefix("22") || sqlState.hasPrefix("23")
    }
}
