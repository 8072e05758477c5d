public import CloudWastePostgres

/// The tables a batch writes rows into through COPY, in the order the transaction writes them.
public enum BatchTable: Int, CaseIterable, Sendable {
    case training, actions, lifecycle, metrics, deadLetters

    public var name: String {
        switch self {
        case .training: "ml_training_data"
        case .actions: "user_action_patterns"
        case .lifecycle: "resource_lifecycle_events"
        case .metrics: "cloudwatch_metrics_history"
        case .deadLetters: "dead_letters"
        }
    }
}

/// One table's rows of a batch, already encoded as binary COPY tuples where the records were
/// decoded (the consumer thread), so that a writer only streams bytes. Each row remembers the
/// batch item it came from: a batch can still be split (bisection) or lose a partition (fencing)
/// after encoding, and a row superseded by a later record with the same key is skipped.
public struct EncodedRows: Sendable {
    struct Slot: Sendable {
        var item: Int32
        var start: Int32
        /// -1: superseded by a later row with the same key in this batch.
        var length: Int32
    }

    private var encoder = PostgresBinaryCopyEncoder()
    private(set) var slots: [Slot] = []
    private var superseded = 0

    public init() {}

    /// Rows that will be written.
    public var count: Int { slots.count - superseded }
    /// Encoded size in bytes (superseded rows included until `compacted()`).
    public var byteCount: Int { encoder.count }
    public var isEmpty: Bool { count == 0 }

    /// Appends a row of batch item `item`; returns its slot index.
    @discardableResult
    mutating func append(item: Int, _ encode: (inout PostgresBinaryCopyEncoder) -> Void) -> Int {
        let start = encoder.count
        encode(&encoder)
        slots.append(Slot(item: Int32(item), start: Int32(start), length: Int32(encoder.count - start)))
        return slots.count - 1
    }

    /// Marks a row as replaced by a later one with the same key.
    mutating func supersede(slot: Int) {
        guard slots[slot].length >= 0 else { return }
        slots[slot].length = -1
        superseded += 1
    }

    /// The tuples to stream to COPY (without header and trailer).
    public var tuples: ArraySlice<UInt8> {
        precondition(superseded == 0, "compact before writing")
        return encoder.bytes[...]
    }

    /// The rows of items that `keep` accepts, with item numbers mapped by it (nil drops the row).
    func filtered(_ keep: (Int) -> Int?) -> EncodedRows {
        var out = EncodedRows()
        for slot in slots where slot.length >= 0 {
            guard let item = keep(Int(slot.item)) else { continue }
            let start = Int(slot.start)
            out.slots.append(Slot(item: Int32(item), start: Int32(out.encoder.count), length: slot.length))
            out.encoder.append(tuples: encoder.bytes[start..<(start + Int(slot.length))])
        }
        return out
    }

    /// Without superseded rows (a no-op when there are none).
    func compacted() -> EncodedRows { superseded == 0 ? self : filtered { $0 } }

    /// Item numbers of the rows, in order (for tests and diagnostics).
    var items: [Int] { slots.filter { $0.length >= 0 }.map { Int($0.item) } }

    /// The encoded tuple of each row, in order (for tests).
    var rows: [ArraySlice<UInt8>] {
        slots.filter { $0.length >= 0 }.map { encoder.bytes[Int($0.start)..<Int($0.start + $0.length)] }
    }
}
