import CRdKafka
import Dispatch
import Synchronization

/// Decides when the consumer wakes librdkafka's fetchers, which librdkafka before 2.3.0 leaves
/// asleep with the backlog on the broker. There a broker thread stops fetching while the
/// consumer's local queue is over its limits and then sleeps out the rest of its fixed one-second
/// wait (`rd_kafka_max_block_ms`): a consumer draining the queue does not wake it, only a request,
/// a reply or an operation for that thread does (librdkafka #2879, fixed in 2.3.0 by
/// `fetch.queue.backoff.ms`). With a queue of half a second of consumption, that was a quarter of
/// a 200,000-record run spent waiting for Kafka (docs/performance.md, tenth pass).
///
/// While a backlog is being read (a poll came back full within the last second: the local queue
/// was at its limits, where fetchers go to sleep) the fetchers are woken every `intervalMs`, so
/// that each tops the queue up as soon as there is room instead of after its second. A consumer
/// at the head of its partitions never polls a full batch, so nothing is sent then.
struct FetcherWake {
    /// How long after a full poll a fetcher may still be asleep: the broker thread's longest sleep.
    static let windowMs = 1000
    let intervalMs: Int
    private var lastFullAt: Int?
    private var lastWakeAt: Int?

    init(intervalMs: Int = 25) {
        self.intervalMs = intervalMs
    }

    /// Called after every poll; true when the fetchers are to be woken now.
    mutating func shouldWake(pollWasFull: Bool, nowMs: Int) -> Bool {
        if pollWasFull { lastFullAt = nowMs }
        guard let full = lastFullAt, nowMs - full <= Self.windowMs else { return false }
        if let last = lastWakeAt, nowMs - last < intervalMs { return false }
        lastWakeAt = nowMs
        return true
    }
}

/// Wakes the fetchers when `FetcherWake` says so, off the polling thread. The wake is a request
/// for the end offsets of the assigned partitions, one per leader, whose answers are not used: the
/// request is what wakes each leader's broker thread, which then finds room in the local queue
/// and fetches. The answers come behind the leaders' fetch responses, tens of milliseconds under
/// a backlog, so the request waits on a queue of its own, one at a time: a wake due while one is
/// out is skipped. `@unchecked Sendable`: it holds the consumer's handle (librdkafka's calls are
/// thread-safe); `decision` and `sent` belong to the polling thread.
final class FetcherWaker: @unchecked Sendable {
    private let rk: OpaquePointer
    private var decision: FetcherWake
    private let requests = DispatchQueue(label: "cloudwaste.kafka.fetcher-wake")
    private let outstanding = Atomic<Bool>(false)
    /// Wakes sent so far.
    private(set) var sent = 0

    init(rk: OpaquePointer, decision: FetcherWake = FetcherWake()) {
        self.rk = rk
        self.decision = decision
    }

    /// After every poll, on the polling thread.
    func polled(full: Bool, assignment: Set<TopicPartition>) {
        guard decision.shouldWake(pollWasFull: full, nowMs: monotonicMs()), !assignment.isEmpty,
              outstanding.compareExchange(expected: false, desired: true, ordering: .acquiring).exchanged else { return }
        sent += 1
        requests.async { [self] in
            let list = TopicPartitionList(capacity: assignment.count)
            for tp in assignment { list.add(tp, offset: KafkaOffset.end) }
            _ = rd_kafka_offsets_for_times(rk, list.pointer, 1000)
            outstanding.store(false, ordering: .releasing)
        }
    }

    /// Waits for the request that is out, if any: before the handle is destroyed.
    func finish() {
        requests.sync {}
    }
}
