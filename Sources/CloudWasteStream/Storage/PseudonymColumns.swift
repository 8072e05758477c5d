public import CloudWastePostgres

/// How a pseudonym reaches PostgreSQL: the pseudonym columns hold its 64 hex digits as text, in
/// COPY rows (written in place from the 32-byte value) and in binds alike.
extension PostgresBinaryCopyEncoder {
    mutating func pseudonym(_ p: Pseudonym?) {
        guard let p else { return null() }
        value(byteCount: 64) { p.writeHex(into: $0) }
    }
}

extension Pseudonym: PostgresTextEncodable {
    public var postgresText: String { hex }
}

extension PostgresBinaryCopyEncoder: ByteSink {}
