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

    /// A cell's text, nil for NULL.
    public func string(_ row: Int, _ column: Int) -> String? {
        if PQgetisnull(handle, Int32(row), Int32(column)) == 1 { return nil }
        return String(cString: PQgetvalue(handle, Int32(row), Int32(column)))
    }

    /// All rows as arrays of optional strings, for small results shown as they are.
    public var rows: [[String?]] {
        (0..<rowCount).map { r in (0..<columnCount).map { c in string(r, c) } }
    }

    /// One cell as `T` (`Int?`, say, where NULL is expected); throws, naming the column, when the
    /// cell is missing, NULL for a non-optional type, or not text of that type.
    public func decode<T: PostgresDecodable>(_ type: T.Type, row: Int = 0, column: Int = 0) throws(PostgresError) -> T {
        guard row < rowCount, column < columnCount else {
            throw PostgresError(kind: .unexpectedResult,
                                message: "no cell (\(row), \(column)) in a result of \(rowCount) rows and \(columnCount) columns")
        }
        let text = string(row, column)
        guard let value = T.decode(postgresText: text) else {
            throw PostgresError(kind: .unexpectedResult,
                                message: "column \(columnName(column)) of row \(row) is \(text == nil ? "NULL" : "not text of") \(T.self)")
        }
        return value
    }

    /// Row `row` as a tuple of the given types, column by column.
    public func decodeRow<each T: PostgresDecodable>(_ row: Int, as types: (repeat each T).Type) throws(PostgresError) -> (repeat each T) {
        var column = 0
        func next<U: PostgresDecodable>(_ type: U.Type) throws(PostgresError) -> U {
            defer { column += 1 }
            return try decode(type, row: row, column: column)
        }
        return (repeat try next((each T).self))
    }

    /// One column of every row.
    public func decodeColumn<T: PostgresDecodable>(_ column: Int = 0, as type: T.Type) throws(PostgresError) -> [T] {
        var out: [T] = []
        out.reserveCapacity(rowCount)
        for row in 0..<rowCount { out.append(try decode(type, row: row, column: column)) }
        return out
    }

    /// Every row as a tuple of the given types.
    public func decodeRows<each T: PostgresDecodable>(as types: (repeat each T).Type) throws(PostgresError) -> [(repeat each T)] {
        var out: [(repeat each T)] = []
        out.reserveCapacity(rowCount)
        for row in 0..<rowCount { out.append(try decodeRow(row, as: types)) }
        return out
    }
}

/// A Swift value read from a result cell's text (results come in text format). Optional types
/// accept NULL; the others refuse it.
public protocol PostgresDecodable {
    /// `text` is nil for NULL; the result is nil when the text is not this type.
    static func decode(postgresText text: String?) -> Self?
}

extension Optional: PostgresDecodable where Wrapped: PostgresDecodable {
    public static func decode(postgresText text: String?) -> Self? {
        guard let text else { return .some(.none) }
        return Wrapped.decode(postgresText: text).map { .some($0) }
    }
}

extension String: PostgresDecodable {
    public static func decode(postgresText text: String?) -> String? { text }
}

extension Int: PostgresDecodable {
    public static func decode(postgresText text: String?) -> Int? { text.flatMap { Int($0) } }
}

extension Int64: PostgresDecodable {
    public static func decode(postgresText text: String?) -> Int64? { text.flatMap { Int64($0) } }
}

extension Int32: PostgresDecodable {
    public static func decode(postgresText text: String?) -> Int32? { text.flatMap { Int32($0) } }
}

extension Double: PostgresDecodable {
    public static func decode(postgresText text: String?) -> Double? { text.flatMap { Double($0) } }
}

extension Bool: PostgresDecodable {
    public static func decode(postgresText text: String?) -> Bool? {
        switch text {
        case "t": true
        case "f": false
        default: nil
        }
    }
}
