/// When a periodic job whose cost grows with the data it reads is due again: the cost-trend
/// recompute (it re-aggregates the account-months queued since the last one, under a backlog most
/// of them) and the status snapshot (exact counts over every table). A fixed interval would let
/// such a job take a growing share of PostgreSQL (the recompute took a third of a core in a
/// 1M-record backlog), so the gap after a run is at least `gapFactor` times its duration: with the
/// default 9 the job takes at most a tenth of the time, and its results lag by that gap instead.
/// With work waiting a run is due after `busyInterval`, without after `idleInterval`; callers
/// that must run at once (a privacy correction, the final round) do not ask.
public struct DutyCyclePacing: Sendable {
    public let busyInterval: Duration
    public let idleInterval: Duration
    public let gapFactor: Int
    /// The longest paced gap, however slow a run was.
    public let longestGap: Duration
    private var lastEnd: ContinuousClock.Instant
    private var pacedGap: Duration = .zero

    public init(busyInterval: Duration, idleInterval: Duration, gapFactor: Int = 9, longestGap: Duration = .seconds(60),
                now: ContinuousClock.Instant = .now) {
        self.busyInterval = busyInterval
        self.idleInterval = idleInterval
        self.gapFactor = gapFactor
        self.longestGap = longestGap
        lastEnd = now - .seconds(3600)
    }

    /// Whether a run is due at `now`, with or without work waiting.
    public func isDue(at now: ContinuousClock.Instant, workWaiting: Bool) -> Bool {
        now - lastEnd >= max(workWaiting ? busyInterval : idleInterval, pacedGap)
    }

    /// A run went from `start` to `end`.
    public mutating func ran(from start: ContinuousClock.Instant, to end: ContinuousClock.Instant) {
        lastEnd = end
        pacedGap = min(longestGap, (end - start) * gapFactor)
    }

    /// Nothing ran (another session did the work): ask again after the usual gap.
    public mutating func skipped(at now: ContinuousClock.Instant) {
        lastEnd = now
    }

    /// The run failed: try again `delay` later, not at every round.
    public mutating func failed(at now: ContinuousClock.Instant, retryAfter delay: Duration = .seconds(4)) {
        lastEnd = now
        pacedGap = delay
    }
}
