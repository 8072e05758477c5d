/// Why a record was not accepted: a stable code for machines and metrics, and the field it is
/// about. Never contains a value from the record (reasons are stored and logged).
public struct RecordRejection: Error, Equatable, Sendable, CustomStringConvertible {
    public enum Code: String, Sendable, CaseIterable {
        case emptyPayload = "empty_payload"
        case payloadTooLarge = "payload_too_large"
        case invalidUTF8 = "invalid_utf8"
        case malformedJSON = "malformed_json"
        case nestingTooDeep = "nesting_too_deep"
        case duplicateField = "duplicate_field"
        case notAnObject = "not_an_object"
        case missingField = "missing_field"
        case wrongType = "wrong_type"
        case invalidValue = "invalid_value"
        case invalidTimestamp = "invalid_timestamp"
        case futureTimestamp = "future_timestamp"
        case invalidMoney = "invalid_money"
        case invalidNumber = "invalid_number"
        case unknownProvider = "unknown_provider"
        case inconsistentRecord = "inconsistent_record"
        case unknownTopic = "unknown_topic"
        case rejectedByDatabase = "rejected_by_database"
    }

    public var code: Code
    public var field: String?

    public init(_ code: Code, field: String? = nil) {
        self.code = code
        self.field = field
    }

    /// A field named by a literal (the decoder's names), made a String only now that it is needed.
    init(_ code: Code, field: StaticString) {
        self.init(code, field: field.description)
    }

    /// `missing_field: detected_at`, or the code alone.
    public var description: String { field.map { "\(code.rawValue): \($0)" } ?? code.rawValue }
}
