/// A statement whose interpolated values become `$n` bind parameters, so that SQL injection is
/// impossible by construction (as in postgres-nio). Values are sent in text format.
public struct PostgresQuery: Sendable, ExpressibleByStringInterpolation {
    public var sql: String
    public var binds: [String?]

    public init(unsafeSQL sql: String, binds: [String?] = []) {
        self.sql = sql
        self.binds = binds
    }

    public init(stringLiteral value: String) {
        self.init(unsafeSQL: value)
    }

    public init(stringInterpolation: StringInterpolation) {
        self.init(unsafeSQL: stringInterpolation.sql, binds: stringInterpolation.binds)
    }

    public struct StringInterpolation: StringInterpolationProtocol {
        var sql = ""
        var binds: [String?] = []

        public init(literalCapacity: Int, interpolationCount: Int) {
            sql.reserveCapacity(literalCapacity + interpolationCount * 3)
        }

        public mutating func appendLiteral(_ literal: String) { sql += literal }

        public mutating func appendInterpolation(_ value: some PostgresTextEncodable) {
            binds.append(value.postgresText)
            sql += "$\(binds.count)"
        }

        public mutating func appendInterpolation(_ value: (some PostgresTextEncodable)?) {
            binds.append(value?.postgresText)
            sql += "$\(binds.count)"
        }

        /// An identifier (schema or table name) quoted as such; never a value.
        public mutating func appendInterpolation(identifier: String) {
            sql += PostgresQuery.quoteIdentifier(identifier)
        }

        /// Trusted SQL text written by the program itself.
        public mutating func appendInterpolation(unescaped: String) { sql += unescaped }
    }

    public static func quoteIdentifier(_ name: String) -> String {
        "\"" + name.replacingOccurrences(of: "\"", with: "\"\"") + "\""
    }
}

/// A value with a PostgreSQL text representation, for bind parameters and COPY text rows.
public protocol PostgresTextEncodable: Sendable {
    var postgresText: String { get }
}

extension String: PostgresTextEncodable { public var postgresText: String { self } }
extension Int: PostgresTextEncodable { public var postgresText: String { String(self) } }
extension Int64: PostgresTextEncodable { public var postgresText: String { String(self) } }
extension Int32: PostgresTextEncodable { public var postgresText: String { String(self) } }
extension Bool: PostgresTextEncodable { public var postgresText: String { self ? "t" : "f" } }
extension Double: PostgresTextEncodable {
    public var postgresText: String { "\(self)" }
}

extension Array: PostgresTextEncodable where Element == String {
    /// An array literal such as `{"a","b"}`.
    public var postgresText: String {
        var out = "{"
        for (i, element) in enumerated() {
            if i > 0 { out += "," }
            out += "\""
            for ch in element.unicodeScalars {
                if ch == "\"" || ch == "\\" { out += "\\" }
                out.unicodeScalars.append(ch)
            }
            out += "\""
        }
        return out + "}"
    }
}

private extension String {
    func replacingOccurrences(of target: String, with replacement: String) -> String {
        split(separator: Character(target), omittingEmptySubsequences: false).joined(separator: replacement)
    }
}

/// An array parameter whose elements may be NULL: `{"a",NULL}`.
public struct PostgresNullableArray: PostgresTextEncodable {
    public var elements: [String?]
    public init(_ elements: [String?]) { self.elements = elements }
    public var postgresText: String {
        "{" + elements.map { $0.map { [$0].postgresText.dropFirst().dropLast() }.map(String.init) ?? "NULL" }.joined(separator: ",") + "}"
    }
}
