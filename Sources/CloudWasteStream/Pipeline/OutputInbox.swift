import Foundation

/// What writers hand to the output thread after a commit: the dead letters to publish (their raw
/// bytes exist only in memory and in the source topic), and that window state changed.
final class OutputInbox: Sendable {
    struct Work: Sendable {
        var deadLetters: [DeadLetterPublication] = []
        var windowsChanged = false
        /// A privacy request corrected rows: recompute now, not at the next interval.
        var windowsUrgent = false

        var isEmpty: Bool { deadLetters.isEmpty && !windowsChanged && !windowsUrgent }
    }

    private let pending = Guarded((work: Work(), bytes: 0))
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

    /// Waits up to `timeout` seconds for work, then takes all of it.
    func take(timeout: Double) -> Work {
        pending.wait(until: Date(timeIntervalSinceNow: timeout), for: { !$0.work.isEmpty }) { p, _ in
            defer { p = (Work(), 0) }
            return p.work
        }
    }

    func wake() { pending.withLock(broadcast: true) { _ in } }
}
