import Foundation

/// A bounded FIFO between the consumer thread and one writer thread. `capacity` bounds memory and
/// gives back-pressure; `isDrained` (nothing queued, nothing being written) is what adaptive
/// batching watches: a batch is handed over as soon as its writer has nothing to do.
final class BlockingQueue<Element>: @unchecked Sendable {
    private let condition = NSCondition()
    private var items: [Element] = []
    private var inFlight = 0
    let capacity: Int

    init(capacity: Int) { self.capacity = max(1, capacity) }

    var hasRoom: Bool { condition.withLock { items.count < capacity } }

    var isFull: Bool { !hasRoom }

    /// True when nothing is queued and the taker finished its last item.
    var isDrained: Bool { condition.withLock { items.isEmpty && inFlight == 0 } }

    /// Appends even beyond capacity (a revocation or the last batch at shutdown must be handed over).
    func put(_ item: Element) {
        condition.withLock {
            items.append(item)
            condition.broadcast()
        }
    }

    /// Waits up to `timeout` seconds; the taker calls `done()` when it finished the item.
    func take(timeout: Double) -> Element? {
        condition.lock()
        defer { condition.unlock() }
        let deadline = Date(timeIntervalSinceNow: timeout)
        while items.isEmpty {
            if !condition.wait(until: deadline) { return nil }
        }
        inFlight += 1
        let item = items.removeFirst()
        condition.broadcast()
        return item
    }

    /// Waits up to `timeout` seconds for room; returns whether there is room.
    func waitForRoom(timeout: Double) -> Bool {
        condition.lock()
        defer { condition.unlock() }
        let deadline = Date(timeIntervalSinceNow: timeout)
        while items.count >= capacity {
            if !condition.wait(until: deadline) { return items.count < capacity }
        }
        return true
    }

    func done() {
        condition.withLock {
            inFlight -= 1
            condition.broadcast()
        }
    }

    /// Removes what is queued (not what is being written): the batches dropped at a shutdown
    /// whose deadline passed.
    func removeAll() -> [Element] {
        condition.withLock {
            let out = items
            items.removeAll()
            condition.broadcast()
            return out
        }
    }

    /// Waits until drained or `timeout` seconds passed; returns whether it drained.
    func waitUntilDrained(timeout: Double) -> Bool {
        condition.lock()
        defer { condition.unlock() }
        let deadline = Date(timeIntervalSinceNow: timeout)
        while !(items.isEmpty && inFlight == 0) {
            if !condition.wait(until: deadline) { return items.isEmpty && inFlight == 0 }
        }
        return true
    }
}
