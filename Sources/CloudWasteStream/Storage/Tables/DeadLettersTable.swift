import CloudWastePostgres

/// What the dead_letters table keeps of a rejected record: where it was, why, and digests of its
/// bytes. Never the bytes themselves (SPEC §3); those reach the dead-letter topic only.
public struct DeadLetterRow: Sendable {
    public var source: SourcePosition
    public var rejection: RecordRejection
    public var payloadSHA256: String?
    public var payloadBytes: Int
    public var keySHA256: String?
    public var consumerGroup: String
}

extension TableDescription where Row == DeadLetterRow {
    /// dead_letters: one row per rejected record, keyed by its source position (a re-read of the
    /// same offset changes nothing).
    public static let deadLetters = TableDescription(name: "dead_letters", key: ["source_topic", "source_partition", "source_offset"], columns: [
        .init("source_topic", .text) { r, e in e.text(r.source.topic) },
        .init("source_partition", .int4) { r, e in e.int4(Int(r.source.partition)) },
        .init("source_offset", .int8) { r, e in e.int8(r.source.offset) },
        .init("reason", .text) { r, e in e.text(r.rejection.description) },
        .init("reason_code", .text) { r, e in e.text(r.rejection.code.rawValue) },
        .init("payload_sha256", .text) { r, e in e.text(r.payloadSHA256) },
        .init("payload_bytes", .int4) { r, e in e.int4(r.payloadBytes) },
        .init("key_sha256", .text) { r, e in e.text(r.keySHA256) },
        .init("consumer_group", .text) { r, e in e.text(r.consumerGroup) },
    ], storesProvenance: false, extraUpdates: [], updatesOnConflict: false)
}
