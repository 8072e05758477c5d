@testable import CloudWasteKafka
import Testing

/// When the consumer wakes librdkafka 2.0–2.2's fetchers: while a backlog is being read (within a
/// second of a poll that came back full), not more often than the interval, and never at the head
/// of the partitions.
@Suite struct FetcherWakeTests {
    /// The times (ms) of the polls that wake the fetchers, for polls at `times`, full where `full`.
    static func wakes(at times: [Int], full: (Int) -> Bool, intervalMs: Int = 25) -> [Int] {
        var wake = FetcherWake(intervalMs: intervalMs)
        return times.filter { wake.shouldWake(pollWasFull: full($0), nowMs: $0) }
    }

    @Test func aFullPollWakesTheFetchers() {
        #expect(Self.wakes(at: [1_000], full: { _ in true }) == [1_000])
    }

    /// At the head of the partitions every poll is short: nothing is sent however long it lasts.
    @Test func aConsumerThatNeverPolledAFullBatchNeverWakesThem() {
        #expect(Self.wakes(at: Array(stride(from: 0, through: 10_000, by: 5)), full: { _ in false }) == [])
    }

    /// Full or short, the polls of a backlog wake the fetchers once per interval.
    @Test func wakesAreSpacedByTheInterval() {
        #expect(Self.wakes(at: Array(stride(from: 0, through: 100, by: 5)), full: { $0 < 50 }) == [0, 25, 50, 75, 100])
    }

    /// librdkafka's broker thread sleeps at most a second: past that nothing is asleep because of
    /// the full queue, and a new full poll opens the window again.
    @Test func theWindowClosesASecondAfterTheLastFullPoll() {
        #expect(Self.wakes(at: [0, 1_000, 1_030, 1_900, 2_000, 2_030], full: { $0 == 0 || $0 == 2_000 }) == [0, 1_000, 2_000, 2_030])
    }
}
