public import CloudWasteKafka
import Dispatch

/// Prepares a poll's messages on several threads at once. Decoding, validating and anonymizing
/// are most of the consumer thread's work per record (`bench-decode`) and the only part of it
/// that does not depend on order, so this is what keeps one core's decoding speed from capping
/// the pipeline; the results are handed on in the messages' order, on the calling thread.
/// Messages go in groups bounded by count and payload bytes, so that the decoded records held at
/// once stay small (one metric-samples record can decode to ten thousand rows). Owned by the
/// consumer thread; during a group, worker `w` alone uses preparer `w`.
public final class ParallelPreparation {
    private let preparers: [RecordPreparer]
    static let maxGroupMessages = 512
    static let maxGroupBytes = 1 << 20
    /// Fewer messages than this per worker are not worth handing to another thread.
    static let minMessagesPerWorker = 32

    public init(preparers: [RecordPreparer]) {
        precondition(!preparers.isEmpty, "at least one preparer")
        self.preparers = preparers
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
            var prepared = prepare(group, wanted: group.map(wanted))
            // Moved out, not copied: a record's Strings are not retained and released once more.
            for (i, m) in group.enumerated() { body(m, prepared[i].take()) }
            start = end
        }
    }

    private func prepare(_ group: ArraySlice<KafkaMessage>, wanted: [Bool]) -> [PreparedRecord?] {
        let workers = min(preparers.count, max(1, group.count / Self.minMessagesPerWorker))
        var out = [PreparedRecord?](repeating: nil, count: group.count)
        if workers == 1 {
            for (i, m) in group.enumerated() where wanted[i] { out[i] = preparers[0].prepare(m) }
            return out
        }
        out.withUnsafeMutableBufferPointer { results in
            let work = GroupWork(preparers: preparers, results: results, group: group, wanted: wanted)
            DispatchQueue.concurrentPerform(iterations: workers) { w in work.run(worker: w, of: workers) }
        }
        return out
    }
}

/// What the workers of one group share. Worker `w` uses only preparer `w` and writes only its own
/// range of the results, and the caller waits for all of them: no state is touched by two threads.
/// `@unchecked Sendable`: a raw buffer of results and preparers that are not thread-safe, shared
/// under that rule.
private struct GroupWork: @unchecked Sendable {
    let preparers: [RecordPreparer]
    let results: UnsafeMutableBufferPointer<PreparedRecord?>
    let group: ArraySlice<KafkaMessage>
    let wanted: [Bool]

    func run(worker w: Int, of workers: Int) {
        let preparer = preparers[w]
        for i in (group.count * w / workers)..<(group.count * (w + 1) / workers) where wanted[i] {
            results[i] = preparer.prepare(group[group.startIndex + i])
        }
    }
}
