import Foundation

/// A bounded FIFO between the consumer thread and one writer thread. `capacity` bounds memory and
/// gives back-pressure; `isDrained` (nothing queued, nothing being written) is what adaptive
/// batching watches: a batch is handed over as soon as its writer has nothing to do. The producer
/// `finish`es it when it hands over nothing more; the taker's `take()` then returns nil once the
/// queue is empty, which is how a writer learns that it may stop.
final class BlockingQueue<Element: Sendable>: Sendable {
    private struct Contents {
        var items: [Element] = []
        var inFlight = 0
        var finished = false
        var isDrained: Bool { items.isEmpty && inFlight == 0 }
    }

    private let contents = Guarded(Contents())
    let capacity: Int

    init(capacity: Int) { self.capacity = max(1, capacity) }

    var hasRoom: Bool { contents.withLock { $0.items.count < capacity } }

    var isFull: Bool { !hasRoom }

    /// True when nothing is queued and the taker finished its last item.
    var isDrained: Bool { contents.withLock { $0.isDrained } }

    /// Appends even beyond capacity (a revocation or the last batch at shutdown must be handed over).
    func put(_ item: Element) {
        contents.withLock(broadcast: true) { $0.items.append(item) }
    }

    /// Waits for the next item; nil once the queue is finished and empty. The taker calls
    /// `done()` when it finished the item.
    func take() -> Element? {
        contents.wait(until: nil, for: { !$0.items.isEmpty || $0.finished }, broadcast: true) { c, _ in
            guard !c.items.isEmpty else { return nil }
            c.inFlight += 1
            return c.items.removeFirst()
        }
    }

    /// Nothing more will be put: `take()` returns what is queued, then nil.
    func finish() {
        contents.withLock(broadcast: true) { $0.finished = true }
    }

    /// Waits up to `timeout` seconds for room; returns whether there is room.
    func waitForRoom(timeout: Double) -> Bool {
        let capacity = capacity
        return contents.wait(until: Date(timeIntervalSinceNow: timeout), for: { $0.items.count < capacity }) { _, ready in ready }
    }

    func done() {
        contents.withLock(broadcast: true) { $0.inFlight -= 1 }
    }

    /// Removes what is queued (not what is being written): the batches dropped at a shutdown
    /// whose deadline passed.
    func removeAll() -> [Element] {
        contents.withLock(broadcast: true) { c in
            defer { c.items.removeAll() }
            return c.items
        }
    }

    /// Waits until drained or `timeout` seconds passed; returns whether it drained.
    func waitUntilDrained(timeout: Double) -> Bool {
        contents.wait(until: Date(timeIntervalSinceNow: timeout), for: \.isDrained) { _, drained in drained }
    }
}
