import Foundation

/// A bounded FIFO between the consumer thread and the writer thread; `capacity` bounds memory and
/// gives back-pressure (the consumer waits for room, and pauses its partitions if that takes long).
final class BlockingQueue<Element>: @unchecked Sendable {
    private let condition = NSCondition()
    private var items: [Element] = []
    private var inFlight = 0
    let capacity: Int

    init(capacity: Int) { self.capacity = capacity }

    var isFull: Bool { condition.withLock { items.count >= capacity } }

    /// True when nothing is queued and the taker finished its last item.
    var isDrained: Bool { condition.withLock { items.isEmpty && inFlight == 0 } }

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
