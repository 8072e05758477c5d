@testable import CloudWasteKafka
import Foundation
import Synchronization
import Testing

/// When the consumer wakes librdkafka 2.0–2.2's fetchers: while the local queue has been near its
/// limits within the last second, not more often than the interval, not while a wake is still out,
/// and never while the queue stays far below its limits, however full the polls.
@Suite struct FetcherWakeTests {
    /// One poll: what it returned and how many messages it left in the queue.
    struct Poll {
        var atMs: Int
        var messages = 2_000
        var bytes = 1_400_000
        var queued: Int
        var outstanding = false
    }

    /// The times (ms) of the polls that wake the fetchers, with the daemon's limits (32 MiB,
    /// 500,000 messages).
    static func wakes(_ polls: [Poll]) -> [Int] {
        var wake = FetcherWake(limitBytes: 32_768 * 1024, limitMessages: 500_000, intervalMs: 25)
        return polls.filter {
            wake.shouldWake(polledMessages: $0.messages, polledBytes: $0.bytes, queuedMessages: $0.queued,
                            requestOutstanding: $0.outstanding, nowMs: $0.atMs)
        }.map(\.atMs)
    }

    /// 24,000 records of 700 B are half of the 32 MiB.
    @Test func aQueueAtHalfItsByteLimitWakesTheFetchers() {
        #expect(Self.wakes([Poll(atMs: 0, queued: 24_000)]) == [0])
        #expect(Self.wakes([Poll(atMs: 0, queued: 23_000)]) == [])
    }

    /// Small records reach the count limit first.
    @Test func aQueueAtHalfItsMessageLimitWakesTheFetchers() {
        #expect(Self.wakes([Poll(atMs: 0, messages: 2_000, bytes: 20_000, queued: 250_000)]) == [0])
        #expect(Self.wakes([Poll(atMs: 0, messages: 2_000, bytes: 20_000, queued: 240_000)]) == [])
    }

    /// A consumer keeping up with a busy topic polls full batches from a nearly empty queue:
    /// nothing is sent however long that lasts.
    @Test func aConsumerKeepingUpNeverWakesThem() {
        #expect(Self.wakes(stride(from: 0, through: 10_000, by: 5).map { Poll(atMs: $0, queued: 3_000) }) == [])
    }

    /// Near the limits or drained, the polls of a backlog wake the fetchers once per interval.
    @Test func wakesAreSpacedByTheInterval() {
        let polls = stride(from: 0, through: 100, by: 5).map { Poll(atMs: $0, queued: $0 < 50 ? 40_000 : 0) }
        #expect(Self.wakes(polls) == [0, 25, 50, 75, 100])
    }

    /// A wake still out is not doubled; the next poll after it came back sends one.
    @Test func noWakeWhileOneIsOut() {
        #expect(Self.wakes([Poll(atMs: 0, queued: 40_000), Poll(atMs: 30, queued: 40_000, outstanding: true),
                            Poll(atMs: 35, queued: 40_000)]) == [0, 35])
    }

    /// librdkafka's broker thread sleeps at most a second: past that nothing is asleep because of
    /// the full queue, and the queue near its limits again opens the window again.
    @Test func theWindowClosesASecondAfterTheQueueWasLastNearItsLimits() {
        let polls = [Poll(atMs: 0, queued: 40_000), Poll(atMs: 1_000, queued: 0), Poll(atMs: 1_030, queued: 0),
                     Poll(atMs: 1_900, queued: 0), Poll(atMs: 2_000, queued: 40_000), Poll(atMs: 2_030, queued: 0)]
        #expect(Self.wakes(polls) == [0, 1_000, 2_000, 2_030])
    }

    /// The waker sends one request at a time (a wake due while one is out is skipped), and none
    /// once finished.
    @Test func theWakerSendsOneRequestAtATimeAndNoneAfterItFinished() {
        let started = DispatchSemaphore(value: 0)
        let release = DispatchSemaphore(value: 0)
        let requests = Mutex(0)
        let waker = FetcherWaker { _ in
            requests.withLock { $0 += 1 }
            started.signal()
            release.wait()
        }
        let assignment: Set = [TopicPartition(topic: "t", partition: 0)]
        waker.wake(assignment)
        started.wait()
        #expect(waker.isOutstanding)
        waker.wake(assignment)
        #expect(waker.sent == 1)
        release.signal()
        for _ in 0..<5_000 where waker.isOutstanding { usleep(1_000) }
        #expect(!waker.isOutstanding)
        waker.wake([])
        #expect(waker.sent == 1)
        waker.wake(assignment)
        started.wait()
        release.signal()
        waker.finish()
        waker.wake(assignment)
        #expect(waker.sent == 2)
        #expect(requests.withLock { $0 } == 2)
    }
}
