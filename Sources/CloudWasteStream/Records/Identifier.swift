/// An id that a record names something by (an event, a scan, a user, an account, a resource).
/// The pipeline decodes with the pseudonymizer at hand and keeps only the pseudonym, hashed from
/// the message's bytes where they stand: no String, no copy, and the raw id never outlives the
/// decode call. A decoder without a pseudonymizer (tests, tools) keeps the text, which the
/// anonymizer hashes the same way.
public enum Identifier: Hashable, Sendable, ExpressibleByStringLiteral, CustomStringConvertible {
    case text(String)
    case pseudonym(Pseudonym)

    public init(stringLiteral value: String) { self = .text(value) }

    public var description: String {
        switch self {
        case .text(let s): s
        case .pseudonym(let p): p.hex
        }
    }
}
