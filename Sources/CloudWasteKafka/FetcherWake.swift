/// Decides when the consumer wakes librdkafka's fetchers, which librdkafka before 2.3.0 leaves
/// asleep with the backlog on the broker. There a broker thread stops fetching while the
/// consumer's local queue is over its limits and then sleeps out the rest of its fixed one-second
/// wait (`rd_kafka_max_block_ms`): a consumer draining the queue does not wake it, only an
/// operation for that thread (such as a request to send) or I/O on its connection does
/// (librdkafka #2879, fixed in 2.3.0 by `fetch.queue.backoff.ms`). With the daemon's 32 MiB
/// queue, about half a second of consumption, that was a quarter of a 200,000-record run spent
/// waiting for Kafka (docs/performance.md, tenth pass).
///
/// Fetchers go to sleep when the queue reaches its limits, so while it has been near them (half
/// of either, as seen after a poll) within the last second, the broker thread's longest sleep,
/// they are woken every `intervalMs`, and each tops the queue up as soon as there is room instead
/// of after its second. A consumer keeping up with its partitions holds the queue far below its
/// limits and sends nothing, however many records each poll returns. Owned by the polling thread.
struct FetcherWake {
    /// How long after the queue was near its limits a fetcher may still be asleep.
    static let windowMs = 1000
    let intervalMs: Int
    /// `queued.max.messages.kbytes` in bytes and `queued.min.messages`: where fetchers stop.
    let limitBytes: Int
    let limitMessages: Int
    /// Bytes per message of the last poll that returned any, to turn the queue's length (all
    /// librdkafka tells) into bytes.
    private var averageMessageBytes = 0
    private var nearLimitAt: Int?
    private var lastWakeAt: Int?

    init(limitBytes: Int, limitMessages: Int, intervalMs: Int = 25) {
        self.limitBytes = limitBytes
        self.limitMessages = limitMessages
        self.intervalMs = intervalMs
    }

    /// After every poll: what it returned, how many messages are left in the local queue, and
    /// whether the last wake is still out (then none is sent). True when the fetchers are to be
    /// woken now.
    mutating func shouldWake(polledMessages: Int, polledBytes: Int, queuedMessages: Int, requestOutstanding: Bool,
                             nowMs: Int) -> Bool {
        if polledMessages > 0 { averageMessageBytes = polledBytes / polledMessages }
        if queuedMessages * 2 >= limitMessages || queuedMessages * averageMessageBytes * 2 >= limitBytes {
            nearLimitAt = nowMs
        }
        guard let near = nearLimitAt, nowMs - near <= Self.windowMs, !requestOutstanding else { return false }
        if let last = lastWakeAt, nowMs - last < intervalMs { return false }
        lastWakeAt = nowMs
        return true
    }
}
