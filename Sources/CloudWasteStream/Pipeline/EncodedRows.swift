public import CloudWastePostgres

/// The tables a batch writes rows into through COPY, in the order the transaction writes them.
public enum BatchTable: Int, CaseIterable, Sendable {
    case training, actions, lifecycle, metrics, billed, deadLetters

    public var name: String {
        switch self {
        case .training: "ml_training_data"
        case .actions: "user_action_patterns"
        case .lifecycle: "resource_lifecycle_events"
        case .metrics: "cloudwatch_metrics_history"
        case .billed: "resource_billed_costs"
        case .deadLetters: "dead_letters"
        }
    }
}

/// One table's rows of a batch, already encoded as binary COPY tuples where the records were
/// decoded (the preparation threads), so that a writer only streams bytes. Each row remembers the
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
    /// For detections (ml_training_data): what each row contributes to the window state, so the
    /// batch can hand PostgreSQL its reduced window rows. Empty for the other tables.
    private(set) var detections: [WindowDetection] = []
    private var superseded = 0

    public init() {}

    /// Empty, with room for as many rows and bytes as `other` holds.
    init(capacityLike other: EncodedRows) {
        encoder = PostgresBinaryCopyEncoder(capacity: other.byteCount)
        slots.reserveCapacity(other.slots.count)
        detections.reserveCapacity(other.detections.count)
    }

    /// Rows that will be written.
    public var count: Int { slots.count - superseded }
    /// Encoded size in bytes (rows left out included).
    public var byteCount: Int { encoder.count }
    public var isEmpty: Bool { count == 0 }

    /// Appends a row of batch item `item` that `encode` writes; returns its slot index.
    @discardableResult
    mutating func append(item: Int, _ encode: (inout PostgresBinaryCopyEncoder) -> Void) -> Int {
        let start = encoder.count
        encode(&encoder)
        slots.append(Slot(item: Int32(item), start: Int32(start), length: Int32(encoder.count - start)))
        return slots.count - 1
    }

    /// The window rows of the rows that will be written, reduced to the latest per resource and month.
    var windowDetections: [WindowDetection] {
        if superseded == 0 { return WindowDetection.reduce(detections) }
        return WindowDetection.reduce(zip(slots, detections).filter { $0.0.length >= 0 }.map(\.1))
    }

    /// Marks a row as replaced by a later one with the same key.
    mutating func supersede(slot: Int) {
        guard slots[slot].length >= 0 else { return }
        slots[slot].length = -1
        superseded += 1
    }

    /// Calls `body` with the tuples of the rows that will be written (COPY's rows without header
    /// and trailer), in order and in place: once per run of consecutive ones (rows that are not
    /// written, superseded or on the other side of a `partitioned` split, end a run).
    public func forEachRun(_ body: (UnsafeRawBufferPointer) throws -> Void) throws {
        try encoder.withUnsafeBytes { bytes in
            var run = 0..<0
            for slot in slots where slot.length >= 0 {
                let start = Int(slot.start), end = Int(slot.start) + Int(slot.length)
                if start == run.upperBound && !run.isEmpty {
                    run = run.lowerBound..<end
                    continue
                }
                if !run.isEmpty { try body(UnsafeRawBufferPointer(rebasing: bytes[run])) }
                run = start..<end
            }
            if !run.isEmpty { try body(UnsafeRawBufferPointer(rebasing: bytes[run])) }
        }
    }

    /// The rows of items that `keep` accepts, with item numbers mapped by it (nil drops the row).
    func filtered(_ keep: (Int) -> Int?) -> EncodedRows {
        var out = EncodedRows()
        encoder.withUnsafeBytes { bytes in
            for (i, slot) in slots.enumerated() where slot.length >= 0 {
                guard let item = keep(Int(slot.item)) else { continue }
                out.appendRow(item: Int32(item), tuple: Self.tuple(of: slot, in: bytes), detection: detections.isEmpty ? nil : detections[i])
            }
        }
        return out
    }

    /// The rows whose detection `first` accepts, and the others (for detections only). Nothing is
    /// copied: both share these tuples, each with the other's rows left out (`forEachRun`).
    func partitioned(_ first: (WindowDetection) -> Bool) -> (EncodedRows, EncodedRows) {
        var a = self, b = self
        for i in slots.indices where slots[i].length >= 0 {
            if first(detections[i]) { b.supersede(slot: i) } else { a.supersede(slot: i) }
        }
        return (a, b)
    }

    private static func tuple(of slot: Slot, in bytes: UnsafeRawBufferPointer) -> UnsafeRawBufferPointer {
        UnsafeRawBufferPointer(rebasing: bytes[Int(slot.start)..<(Int(slot.start) + Int(slot.length))])
    }

    /// Appends a row of batch item `item` encoded already (with its detection, for detections);
    /// returns its slot index.
    @discardableResult
    mutating func appendRow(item: Int32, tuple: UnsafeRawBufferPointer, detection: WindowDetection?) -> Int {
        slots.append(Slot(item: item, start: Int32(encoder.count), length: Int32(tuple.count)))
        encoder.appendBytes(tuple)
        if let detection { detections.append(detection) }
        return slots.count - 1
    }

    /// Item numbers of the rows, in order (for tests and diagnostics).
    var items: [Int] { slots.filter { $0.length >= 0 }.map { Int($0.item) } }

    /// The encoded tuple of each row, in order (for tests).
    var rows: [ArraySlice<UInt8>] {
        encoder.withUnsafeBytes { bytes in slots.filter { $0.length >= 0 }.map { Array(Self.tuple(of: $0, in: bytes))[...] } }
    }
}
