public import CloudWasteKafka
import Dispatch
import Synchronization

/// Prepares a poll's messages on several threads at once. Decoding, validating and anonymizing
/// are most of the consumer thread's work per record (`bench-decode`) and the only part of it
/// that does not depend on order, so this is what keeps one core's decoding speed from capping
/// the pipeline; the results are handed on in the messages' order, on the calling thread.
/// Messages go in groups bounded by count and payload bytes, so that the decoded records held at
/// once stay small (one metric-samples record can decode to ten thousand rows). Owned by the
/// consumer thread; during a group, worker `w` alone uses preparer `w`.
public final class ParallelPreparation {
    private let preparers: [PreparerSlot]
    static let maxGroupMessages = 512
    static let maxGroupBytes = 1 << 20
    /// Fewer messages than this per worker are not worth handing to another thread.
    static let minMessagesPerWorker = 32

    /// `workers` preparers made by `makePreparer`, each owned by this object alone.
    public init(workers: Int, makePreparer: () throws -> sending RecordPreparer) rethrows {
        precondition(workers > 0, "at least one preparer")
        var slots: [PreparerSlot] = []
        for _ in 0..<workers { slots.append(PreparerSlot(try makePreparer())) }
        preparers = slots
    }

    /// Calls `body` for each message in order, with its prepared record, or nil for a message
    /// that `wanted` declined (asked of a group's messages before the group is prepared).
    public func forEach(_ messages: [KafkaMessage], wanted: (KafkaMessage) -> Bool, _ body: (KafkaMessage, PreparedRecord?) -> Void) {
        var start = 0
        while start < messages.count {
            var end = start
            var bytes = 0
            while end < messages.count, end - start < Self.maxGroupMessages,
                  end == start || bytes + messages[end].valueCount <= Self.maxGroupBytes {
                bytes += messages[end].valueCount
                end += 1
            }
            let group = messages[start..<end]
            var ranges = prepare(group, wanted: group.map(wanted))
            // Moved out, not copied: a record's Strings are not retained and released once more.
            var i = group.startIndex
            for w in ranges.indices {
                for j in ranges[w].indices {
                    body(messages[i], ranges[w][j].take())
                    i += 1
                }
            }
            start = end
        }
    }

    /// The records of `group`, as consecutive ranges (one per worker), in order.
    private func prepare(_ group: ArraySlice<KafkaMessage>, wanted: [Bool]) -> [[PreparedRecord?]] {
        let workers = min(preparers.count, max(1, group.count / Self.minMessagesPerWorker))
        if workers == 1 { return [preparers[0].prepare(group, range: 0..<group.count, wanted: wanted)] }
        // Each worker prepares its own range with its own preparer and hands the range back whole.
        let ranges = Mutex([[PreparedRecord?]](repeating: [], count: workers))
        let preparers = self.preparers
        DispatchQueue.concurrentPerform(iterations: workers) { w in
            let range = (group.count * w / workers)..<(group.count * (w + 1) / workers)
            let prepared = preparers[w].prepare(group, range: range, wanted: wanted)
            ranges.withLock { $0[w] = prepared }
        }
        return ranges.withLock { ranges in
            var out: [[PreparedRecord?]] = []
            swap(&out, &ranges)
            return out
        }
    }
}

/// One worker's preparer. A preparer is not thread-safe; a group's worker `w` alone takes slot `w`,
/// so its lock is never contended and only makes that rule checkable (`Sendable` without
/// `@unchecked`).
private final class PreparerSlot: Sendable {
    private let preparer: Mutex<RecordPreparer>

    init(_ preparer: sending RecordPreparer) { self.preparer = Mutex(preparer) }

    /// The records of `group[range]` (nil where `wanted` declined), in order.
    func prepare(_ group: ArraySlice<KafkaMessage>, range: Range<Int>, wanted: [Bool]) -> [PreparedRecord?] {
        preparer.withLock { preparer in
            var out = [PreparedRecord?]()
            out.reserveCapacity(range.count)
            for i in range { out.append(wanted[i] ? preparer.prepare(group[group.startIndex + i]) : nil) }
            return out
        }
    }
}
