/// A schema, table or column name, quoted once where it is made: the way a name enters a
/// `PostgresQuery`'s text (values enter as binds). A name may be qualified (`schema.table`).
public struct PostgresIdentifier: Sendable, Hashable, CustomStringConvertible {
    /// The quoted SQL text, e.g. `"cloudwaste"."ml_training_data"`.
    public let sql: String
    /// The last part unquoted, as the catalogs (`pg_class.relname`, `pg_namespace.nspname`) hold it.
    public let name: String

    public init(_ name: String) {
        self.name = name
        sql = Self.quote(name)
    }

    private init(sql: String, name: String) {
        self.sql = sql
        self.name = name
    }

    /// A member of this schema (a table, a sequence, a function): `schema.name`.
    public func member(_ name: String) -> PostgresIdentifier {
        PostgresIdentifier(sql: sql + "." + Self.quote(name), name: name)
    }

    public var description: String { sql }

    private static func quote(_ name: String) -> String {
        var out = "\""
        for ch in name.unicodeScalars {
            if ch == "\"" { out += "\"" }
            out.unicodeScalars.append(ch)
        }
        return out + "\""
    }
}
