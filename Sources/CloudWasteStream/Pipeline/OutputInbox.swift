import Foundation

/// What writers hand to the output thread after a commit: the dead letters to publish (their raw
/// bytes exist only in memory and in the source topic), and that window state changed. Finished
/// when the last writer stopped: `take` then hands over what is left, then nil.
final class OutputInbox: Sendable {
    struct Work: Sendable {
        var deadLetters: [DeadLetterPublication] = []
        var windowsChanged = false
        /// A privacy request corrected rows: recompute now, not at the next interval.
        var windowsUrgent = false

        var isEmpty: Bool { deadLetters.isEmpty && !windowsChanged && !windowsUrgent }
    }

    private let pending = Guarded((work: Work(), bytes: 0, finished: false))
    /// Raw dead-letter bytes held for publication beyond which new ones are left to the recovery
    /// from the source topic (a long Kafka outage must not grow memory without bound).
    let maxPendingBytes: Int

    init(maxPendingBytes: Int = 64 << 20) { self.maxPendingBytes = maxPendingBytes }

    /// Returns false when the dead letters were not kept (over the memory bound).
    @discardableResult
    func post(deadLetters: [DeadLetterPublication], windowsChanged: Bool, urgent: Bool) -> Bool {
        pending.withLock(broadcast: true) { p in
            var kept = true
            if !deadLetters.isEmpty {
                let bytes = deadLetters.reduce(0) { $0 + $1.bytes }
                if p.bytes + bytes <= maxPendingBytes {
                    p.work.deadLetters += deadLetters
                    p.bytes += bytes
                } else {
                    kept = false
                }
            }
            p.work.windowsChanged = p.work.windowsChanged || windowsChanged
            p.work.windowsUrgent = p.work.windowsUrgent || urgent
            return kept
        }
    }

    /// Waits up to `timeout` seconds for work, then takes all of it (perhaps none); nil once
    /// finished and empty.
    func take(timeout: Double) -> Work? {
        pending.wait(until: Date(timeIntervalSinceNow: timeout), for: { !$0.work.isEmpty || $0.finished }) { p, _ in
            if p.work.isEmpty && p.finished { return nil }
            defer { (p.work, p.bytes) = (Work(), 0) }
            return p.work
        }
    }

    /// No writer will post again.
    func finish() { pending.withLock(broadcast: true) { $0.finished = true } }
}
