import Synchronization

/// A decoder's clock and its latest reading. A timestamp within the allowed skew of a time the
/// clock has already passed is within it of now, so the clock is read again only for a timestamp
/// that is not (a clock read per record was 0.7 % of the daemon's CPU, issue #19). Should the
/// wall clock step back, the limit stays that of the latest reading until the clock passes it
/// again: a future-timestamp limit of hours moves by the size of the step.
final class CachedClock: Sendable {
    private let clock: @Sendable () -> Timestamp
    /// Microseconds since 1970 of the latest reading; `Int64.min` before the first.
    private let latest = Atomic<Int64>(.min)

    init(_ clock: @escaping @Sendable () -> Timestamp) { self.clock = clock }

    /// The latest reading (`Int64.min`: none yet), without reading the clock.
    var latestReading: Int64 { latest.load(ordering: .relaxed) }

    /// Reads the clock; the latest reading becomes the later of it and the one before (another
    /// thread sharing the decoder may have read a later time meanwhile).
    func read() -> Int64 {
        let now = clock().micros
        latest.max(now, ordering: .relaxed)
        return now
    }
}
