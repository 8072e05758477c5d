import Synchronization

/// The latest time a decoder read from its clock. A timestamp within the allowed skew of a time
/// the clock has already passed is within it of now, so the clock is read again only for a
/// timestamp that is not (a clock read per record was 0.7 % of the daemon's CPU, issue #19).
/// Should the wall clock step back, the bound stays that of the last reading until the clock
/// passes it again: a future-timestamp limit of hours moves by the size of the step.
final class ClockReading: Sendable {
    private let clock: @Sendable () -> Timestamp
    /// Microseconds since 1970 of the latest reading; `Int64.min` before the first.
    private let latest = Atomic<Int64>(.min)

    init(_ clock: @escaping @Sendable () -> Timestamp) { self.clock = clock }

    /// The latest reading, without reading the clock.
    var known: Int64 { latest.load(ordering: .relaxed) }

    /// Reads the clock and keeps the reading.
    func read() -> Int64 {
        let now = clock().micros
        latest.store(now, ordering: .relaxed)
        return now
    }
}
