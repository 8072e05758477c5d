import Foundation

/// What writers hand to the output thread after a commit: the dead letters to publish (their raw
/// bytes exist only in memory and in the source topic), and that window state changed.
final class OutputInbox: @unchecked Sendable {
    struct Work {
        var deadLetters: [DeadLetterPublication] = []
        var windowsChanged = false
        /// A privacy request corrected rows: recompute now, not at the next interval.
        var windowsUrgent = false
    }

    private let condition = NSCondition()
    private var pending = Work()
    private var pendingBytes = 0
    /// Raw dead-letter bytes held for publication beyond which new ones are left to the recovery
    /// from the source topic (a long Kafka outage must not grow memory without bound).
    let maxPendingBytes: Int

    init(maxPendingBytes: Int = 64 << 20) { self.maxPendingBytes = maxPendingBytes }

    /// Returns false when the dead letters were not kept (over the memory bound).
    @discardableResult
    func post(deadLetters: [DeadLetterPublication], windowsChanged: Bool, urgent: Bool) -> Bool {
        condition.withLock {
            var kept = true
            if !deadLetters.isEmpty {
                let bytes = deadLetters.reduce(0) { $0 + $1.bytes }
                if pendingBytes + bytes <= maxPendingBytes {
                    pending.deadLetters += deadLetters
                    pendingBytes += bytes
                } else {
                    kept = false
                }
            }
            pending.windowsChanged = pending.windowsChanged || windowsChanged
            pending.windowsUrgent = pending.windowsUrgent || urgent
            condition.broadcast()
            return kept
        }
    }

    /// Waits up to `timeout` seconds for work, then takes all of it.
    func take(timeout: Double) -> Work {
        condition.lock()
        defer { condition.unlock() }
        let deadline = Date(timeIntervalSinceNow: timeout)
        while pending.deadLetters.isEmpty && !pending.windowsChanged && !pending.windowsUrgent {
            if !condition.wait(until: deadline) { break }
        }
        let work = pending
        pending = Work()
        pendingBytes = 0
        return work
    }

    func wake() { condition.withLock { condition.broadcast() } }
}
