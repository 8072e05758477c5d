import CLibPQ

/// Owns one `PGresult` and frees it exactly once. `@unchecked Sendable`: a C pointer to a result
/// that is never written after libpq returned it.
public final class PostgresResult: @unchecked Sendable {
    private let handle: OpaquePointer

    init(handle: OpaquePointer) { self.handle = handle }
    deinit { PQclear(handle) }

    public var rowCount: Int { Int(PQntuples(handle)) }
    public var columnCount: Int { Int(PQnfields(handle)) }

    /// Rows touched by INSERT/UPDATE/DELETE/COPY (`PQcmdTuples`).
    public var affectedRows: Int { Int(String(cString: PQcmdTuples(handle))) ?? 0 }

    public func columnName(_ column: Int) -> String { String(cString: PQfname(handle, Int32(column))) }

    public func string(_ row: Int, _ column: Int) -> String? {
        if PQgetisnull(handle, Int32(row), Int32(column)) == 1 { return nil }
        return String(cString: PQgetvalue(handle, Int32(row), Int32(column)))
    }

    public func int(_ row: Int, _ column: Int) -> Int? { string(row, column).flatMap { Int($0) } }
    public func double(_ row: Int, _ column: Int) -> Double? { string(row, column).flatMap { Double($0) } }
    public func bool(_ row: Int, _ column: Int) -> Bool? { string(row, column).map { $0 == "t" } }

    /// All rows as arrays of optional strings, for small results.
    public var rows: [[String?]] {
        (0..<rowCount).map { r in (0..<columnCount).map { c in string(r, c) } }
    }
}
