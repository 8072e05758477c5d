/// When something that failed may be tried again: at once the first time and after a success,
/// else once `interval` has passed since the last attempt. The output thread keeps one per
/// concern (reconnecting, recovering old dead letters, publishing dead letters, re-publishing
/// trend rows), so that one failing steadily never delays the others.
struct RetryTimer {
    let interval: Duration
    private var nextAttempt: ContinuousClock.Instant?

    init(every interval: Duration) { self.interval = interval }

    func isDue(at now: ContinuousClock.Instant) -> Bool { nextAttempt.map { now >= $0 } ?? true }

    /// An attempt starts: the next one waits `interval`, unless this one `succeeded()`.
    mutating func attempted(at now: ContinuousClock.Instant) { nextAttempt = now + interval }

    mutating func succeeded() { nextAttempt = nil }
}
