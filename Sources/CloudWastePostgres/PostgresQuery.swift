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
    /// Appends the value as an element of an array literal (quoted and escaped where it needs
    /// to be): a batch binds arrays of thousands of values, and a String per element cost more
    /// than the statement. By default, `postgresText` quoted.
    func appendArrayElement(to literal: inout [UInt8])
}

extension PostgresTextEncodable {
    public func appendArrayElement(to literal: inout [UInt8]) { PostgresArrayLiteral.appendQuoted(postgresText, to: &literal) }
}

extension String: PostgresTextEncodable { public var postgresText: String { self } }
extension Int: PostgresTextEncodable {
    public var postgresText: String { String(self) }
    public func appendArrayElement(to literal: inout [UInt8]) { PostgresArrayLiteral.appendDecimal(Int64(self), to: &literal) }
}
extension Int64: PostgresTextEncodable {
    public var postgresText: String { String(self) }
    public func appendArrayElement(to literal: inout [UInt8]) { PostgresArrayLiteral.appendDecimal(self, to: &literal) }
}
extension Int32: PostgresTextEncodable {
    public var postgresText: String { String(self) }
    public func appendArrayElement(to literal: inout [UInt8]) { PostgresArrayLiteral.appendDecimal(Int64(self), to: &literal) }
}
extension Bool: PostgresTextEncodable {
    public var postgresText: String { self ? "t" : "f" }
    public func appendArrayElement(to literal: inout [UInt8]) { literal.append(self ? UInt8(ascii: "t") : UInt8(ascii: "f")) }
}
extension Double: PostgresTextEncodable {
    public var postgresText: String { "\(self)" }
}

extension Array: PostgresTextEncodable where Element: PostgresTextEncodable {
    /// An array literal such as `{"a","b"}` or `{1,2}`. By index: this generic code is not
    /// specialized for its callers in other modules, and there `enumerated()` looked up its
    /// tuple type's metadata, with an allocation, per element.
    public var postgresText: String {
        PostgresArrayLiteral.make(reservingCapacity: 2 + 21 * count) { literal in
            for i in indices {
                if i > startIndex { literal.append(UInt8(ascii: ",")) }
                self[i].appendArrayElement(to: &literal)
            }
        }
    }
}

/// An array parameter whose elements may be NULL: `{"a",NULL}`.
public struct PostgresNullableArray: PostgresTextEncodable {
    public var elements: [String?]
    public init(_ elements: [String?]) { self.elements = elements }
    public var postgresText: String {
        PostgresArrayLiteral.make(reservingCapacity: elements.reduce(2) { $0 + ($1?.utf8.count ?? 4) + 3 }) { literal in
            for (i, element) in elements.enumerated() {
                if i > 0 { literal.append(UInt8(ascii: ",")) }
                if let element {
                    PostgresArrayLiteral.appendQuoted(element, to: &literal)
                } else {
                    literal.append(contentsOf: "NULL".utf8)
                }
            }
        }
    }
}

/// The text form of an array bind, written into one byte buffer.
enum PostgresArrayLiteral {
    /// `{`, what `elements` appends, `}`, as a String.
    static func make(reservingCapacity capacity: Int, _ elements: (inout [UInt8]) -> Void) -> String {
        var literal: [UInt8] = []
        literal.reserveCapacity(capacity)
        literal.append(UInt8(ascii: "{"))
        elements(&literal)
        literal.append(UInt8(ascii: "}"))
        return String(decoding: literal, as: UTF8.self)
    }

    /// `text` in double quotes, its quotes and backslashes escaped: byte by byte, since no byte
    /// of a multi-byte UTF-8 character is either.
    static func appendQuoted(_ text: String, to literal: inout [UInt8]) {
        literal.append(UInt8(ascii: "\""))
        for b in text.utf8 {
            if b == UInt8(ascii: "\"") || b == UInt8(ascii: "\\") { literal.append(UInt8(ascii: "\\")) }
            literal.append(b)
        }
        literal.append(UInt8(ascii: "\""))
    }

    /// An integer's decimal digits (no quotes needed).
    static func appendDecimal(_ value: Int64, to literal: inout [UInt8]) {
        if value < 0 { literal.append(UInt8(ascii: "-")) }
        var magnitude = value.magnitude
        withUnsafeTemporaryAllocation(of: UInt8.self, capacity: 20) { digits in
            var n = 0
            repeat {
                digits[n] = UInt8(ascii: "0") + UInt8(magnitude % 10)
                magnitude /= 10
                n += 1
            } while magnitude > 0
            for i in stride(from: n - 1, through: 0, by: -1) { literal.append(digits[i]) }
        }
    }
}
