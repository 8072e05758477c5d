import Dispatch
import Synchronization

/// Sends the wakes `FetcherWake` decides on, off the polling thread. A wake is a request to the
/// leaders (`request`: `KafkaConsumer`'s end offsets of the assigned partitions, answers unused),
/// and its answers come behind the leaders' fetch responses, tens of milliseconds under a backlog:
/// waited for on the polling thread, they took the consumer's wait for Kafka in a 200k run from
/// 0.7 s to 3 s. So each waits on a queue of its own, one at a time.
final class FetcherWaker: Sendable {
    private let request: @Sendable (Set<TopicPartition>) -> Void
    private let requests = DispatchQueue(label: "cloudwaste.kafka.fetcher-wake")
    private let outstanding = Atomic<Bool>(false)
    private let finished = Atomic<Bool>(false)
    private let sentCount = Atomic<Int>(0)

    init(request: @escaping @Sendable (Set<TopicPartition>) -> Void) {
        self.request = request
    }

    /// Whether the last wake's request is still out.
    var isOutstanding: Bool { outstanding.load(ordering: .relaxed) }

    /// Wakes sent so far.
    var sent: Int { sentCount.load(ordering: .relaxed) }

    /// Sends a wake for `assignment`, unless one is still out or the waker is finished.
    func wake(_ assignment: Set<TopicPartition>) {
        guard !assignment.isEmpty, !finished.load(ordering: .relaxed),
              outstanding.compareExchange(expected: false, desired: true, ordering: .relaxed).exchanged else { return }
        sentCount.add(1, ordering: .relaxed)
        requests.async { [self] in
            if !finished.load(ordering: .relaxed) { request(assignment) }
            outstanding.store(false, ordering: .relaxed)
        }
    }

    /// Stops sending and waits for a request that is out: before the consumer's handle is
    /// destroyed. A wake queued but not started is dropped.
    func finish() {
        finished.store(true, ordering: .relaxed)
        requests.sync {}
    }
}
