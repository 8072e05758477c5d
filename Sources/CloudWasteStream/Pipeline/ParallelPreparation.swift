public import CloudWasteKafka
import Dispatch
import Synchronization

/// Prepares a poll's messages on several threads at once. Decoding, validating, anonymizing and
/// encoding are most of the work per record (`bench-decode`) and the part of it that does not
/// depend on order, so this is what keeps one core's speed from capping the pipeline; the results
/// are handed on in the messages' order, on the calling thread. Messages go in groups bounded by
/// count and payload bytes, so that the encoded rows held at once stay small (one metric-samples
/// record can be ten thousand rows): a worker's rows buffer keeps the capacity of the largest
/// group it prepared, a few MiB at most. Owned by the consumer thread; during a group, worker `w`
/// alone uses preparer `w`.
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

    /// Calls `body` for each message in order, with its prepared record and the rows it was
    /// prepared into, or nil for a message that `wanted` declined (asked of a group's messages
    /// before the group is prepared).
    public func forEach(_ messages: [KafkaMessage], wanted: (KafkaMessage) -> Bool,
                        _ body: (KafkaMessage, PreparedRecord?, PreparedRows) -> Void) {
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
            var i = group.startIndex
            for (w, prepared) in prepare(group, wanted: group.map(wanted)).enumerated() {
                guard let prepared else { preconditionFailure("every worker hands its range back") }
                for record in prepared.records {
                    body(messages[i], record, prepared.rows)
                    i += 1
                }
                preparers[w].recycle(prepared)
            }
            start = end
        }
    }

    /// The records of `group`, as consecutive ranges (one per worker, none nil), each with its rows.
    private func prepare(_ group: ArraySlice<KafkaMessage>, wanted: [Bool]) -> [PreparedRange?] {
        let workers = min(preparers.count, max(1, group.count / Self.minMessagesPerWorker))
        if workers == 1 { return [preparers[0].prepare(group, range: 0..<group.count, wanted: wanted)] }
        // Each worker prepares its own range with its own preparer and hands the range back whole.
        let ranges = Mutex([PreparedRange?](repeating: nil, count: workers))
        let preparers = self.preparers
        DispatchQueue.concurrentPerform(iterations: workers) { w in
            let range = (group.count * w / workers)..<(group.count * (w + 1) / workers)
            let prepared = preparers[w].prepare(group, range: range, wanted: wanted)
            ranges.withLock { $0[w] = prepared }
        }
        return ranges.withLock { ranges in
            var out: [PreparedRange?] = []
            swap(&out, &ranges)
            return out
        }
    }
}

/// One worker's share of a group: its records in order and the rows they were prepared into.
private struct PreparedRange: Sendable {
    var records: [PreparedRecord?] = []
    var rows = PreparedRows()
}

/// One worker's preparer and its range's buffers. A preparer is not thread-safe; a group's worker
/// `w` alone takes slot `w`, so its lock is never contended and only makes that rule checkable
/// (`Sendable` without `@unchecked`). The range goes to the consumer thread and comes back
/// (`recycle`) once its records are in their batches, so that a group allocates no rows buffer
/// or records array (the group's small arrays of ranges and flags remain).
private final class PreparerSlot: Sendable {
    private struct State {
        var preparer: RecordPreparer
        var spare: PreparedRange?
    }

    private let state: Mutex<State>

    init(_ preparer: sending RecordPreparer) { state = Mutex(State(preparer: preparer)) }

    /// The records of `group[range]` (nil where `wanted` declined), in order, with their rows.
    func prepare(_ group: ArraySlice<KafkaMessage>, range: Range<Int>, wanted: [Bool]) -> PreparedRange {
        state.withLock { state in
            var out = state.spare.take() ?? PreparedRange()
            out.rows.removeAll()
            out.records.removeAll(keepingCapacity: true)
            out.records.reserveCapacity(range.count)
            for i in range {
                out.records.append(wanted[i] ? state.preparer.prepare(group[group.startIndex + i], into: &out.rows) : nil)
            }
            return out
        }
    }

    /// Takes a range's buffers back for the next group.
    func recycle(_ range: sending PreparedRange) {
        state.withLock { $0.spare = range }
    }
}
