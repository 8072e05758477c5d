/// When the output thread's next cost-trend recompute is due. A recompute costs what it
/// re-aggregates: the account-months queued since the last one. Under a backlog that is most of
/// them, and a fixed interval would then let the recompute take a large share of PostgreSQL
/// (a third of a core in a 1M-record backlog), so the gap after a recompute is at least
/// `gapFactor` times its duration: it takes at most a tenth of the time, and the rows lag by that
/// gap instead of the interval. Queued months wait at least `interval`; an idle round (nothing
/// queued, months to finalize) comes every `finalizeTick`. Privacy corrections and the final
/// round do not wait (the caller asks for those at once).
struct RecomputePacing {
    static let gapFactor = 9
    static let finalizeTick: Duration = .seconds(5)
    /// The longest paced gap, however slow a recompute was.
    static let longestGap: Duration = .seconds(60)

    let interval: Duration
    private var lastEnd: ContinuousClock.Instant
    private var pacedGap: Duration = .zero

    init(interval: Duration, now: ContinuousClock.Instant = .now) {
        self.interval = interval
        lastEnd = now - .seconds(3600)
    }

    /// Whether a recompute is due at `now`, with or without account-months queued.
    func isDue(at now: ContinuousClock.Instant, queued: Bool) -> Bool {
        now - lastEnd >= max(queued ? interval : Self.finalizeTick, pacedGap)
    }

    /// A recompute ran from `start` to `end`.
    mutating func ran(from start: ContinuousClock.Instant, to end: ContinuousClock.Instant) {
        lastEnd = end
        pacedGap = min(Self.longestGap, (end - start) * Self.gapFactor)
    }

    /// Another session is the recomputer right now (it takes the queue): ask again after the usual gap.
    mutating func skipped(at now: ContinuousClock.Instant) {
        lastEnd = now
    }

    /// The recompute failed: try again `delay` later, not at every round.
    mutating func failed(at now: ContinuousClock.Instant, retryAfter delay: Duration = .seconds(4)) {
        lastEnd = now
        pacedGap = delay
    }
}
