import CloudWasteSecrets

/// A libpq failure. `description` is deliberately terse (SQLSTATE and the server's primary message)
/// so that row data never reaches logs; `detail` keeps the server's DETAIL line for debugging.
public struct PostgresError: Error, CustomStringConvertible, Sendable {
    public enum Kind: Sendable, Equatable {
        /// The connection could not be made or was lost: an infrastructure fault, retried.
        case connection
        /// The server rejected a statement.
        case query
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
        return "PostgreSQL \(kind == .connection ? "connection" : "query") error: \(message)"
    }

    /// Errors caused by the infrastructure rather than by one row: lost connections, shutdowns,
    /// serialization failures, deadlocks, disk full, too many connections. They are retried and
    /// never sent to the dead-letter queue.
    public var isTransient: Bool {
        if kind == .connection { return true }
        guard let sqlState else { return true }
        let cls = sqlState.prefix(2)
        return ["08", "40", "53", "57", "58", "XX"].contains(String(cls)) || sqlState == "55P03"
    }

    /// Errors that one bad row can cause (data exceptions, integrity violations): the batch is bisected.
    public var isDataError: Bool {
        guard kind == .query, let sqlState else { return false }
        return sqlState.hasPrefix("22") || sqlState.hasPrefix("23")
    }
}
