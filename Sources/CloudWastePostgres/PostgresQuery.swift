/// A statement whose interpolated values become `$n` bind parameters, so that SQL injection is
/// impossible by construction (as in postgres-nio). Names enter as `PostgresIdentifier`s, program
/// fragments as bind-free `PostgresQuery`s; values are sent in text format.
public struct PostgresQuery: Sendable, ExpressibleByStringInterpolation {
    public var sql: String
    public var binds: [String?]

    /// SQL text made by the program itself; the caller vouches that no value is pasted into it.
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

    /// Fragments joined with `separator` (e.g. a column list); fragments carry no binds.
    public static func joined(_ fragments: [PostgresQuery], separator: String = ", ") -> PostgresQuery {
        precondition(fragments.allSatisfy(\.binds.isEmpty), "only bind-free fragments can be joined")
        return PostgresQuery(unsafeSQL: fragments.map(\.sql).joined(separator: separator))
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

        /// A schema, table or column name, quoted.
        public mutating func appendInterpolation(_ identifier: PostgresIdentifier) {
            sql += identifier.sql
        }

        /// Names, quoted and separated by commas (a column list).
        public mutating func appendInterpolation(_ identifiers: [PostgresIdentifier]) {
            sql += identifiers.map(\.sql).joined(separator: ", ")
        }

        /// A fragment the program wrote (an expression, a column list); it carries no binds, so
        /// that the numbering of this statement's own binds stays right.
        public mutating func appendInterpolation(_ fragment: PostgresQuery) {
            precondition(fragment.binds.isEmpty, "a fragment interpolated into a query carries no binds")
            sql += fragment.sql
        }

        /// A string constant quoted as a SQL literal, for the statements that take no binds
        /// (DDL, COPY, several statements in one string).
        public mutating func appendInterpolation(literal: String) {
            sql += PostgresQuery.quoteLiteral(literal)
        }

        /// An integer constant written into the text, for the same statements.
        public mutating func appendInterpolation(literal: some BinaryInteger) {
            sql += "\(literal)"
        }
    }

    /// `'text'` with quotes doubled; `E'…'` with backslashes doubled when it holds any, so the
    /// result does not depend on `standard_conforming_strings` (libpq's `PQescapeLiteral` rule).
    public static func quoteLiteral(_ text: String) -> String {
        var body = ""
        var hasBackslash = false
        for ch in text.unicodeScalars {
            if ch == "'" { body += "'" }
            if ch == "\\" { body += "\\"; hasBackslash = true }
            body.unicodeScalars.append(ch)
        }
        return (hasBackslash ? " E'" : "'") + body + "'"
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

extension Array: PostgresTextEncodable where Element: PostgresTextEncodable {
    /// An array literal such as `{"a","b"}`.
    public var postgresText: String { PostgresNullableArray(map(\.postgresText)).postgresText }
}

/// An array parameter whose elements may be NULL: `{"a",NULL}`.
public struct PostgresNullableArray: PostgresTextEncodable {
    public var elements: [String?]
    public init(_ elements: [String?]) { self.elements = elements }
    /// Each element quoted, its quotes and backslashes escaped: byte by byte, since no byte of a
    /// multi-byte UTF-8 character is either (a batch's arrays have thousands of elements).
    public var postgresText: String {
        var out: [UInt8] = []
        out.reserveCapacity(elements.reduce(2) { $0 + ($1?.utf8.count ?? 4) + 3 })
        out.append(UInt8(ascii: "{"))
        for (i, element) in elements.enumerated() {
            if i > 0 { out.append(UInt8(ascii: ",")) }
            guard let element else {
                out.append(contentsOf: "NULL".utf8)
                continue
            }
            out.append(UInt8(ascii: "\""))
            for b in element.utf8 {
                if b == UInt8(ascii: "\"") || b == UInt8(ascii: "\\") { out.append(UInt8(ascii: "\\")) }
                out.append(b)
            }
            out.append(UInt8(ascii: "\""))
        }
        out.append(UInt8(ascii: "}"))
        return String(decoding: out, as: UTF8.self)
    }
}
