import Foundation
import Testing
@testable import CloudWasteStream

/// The queues between the pipeline's threads: what is handed over arrives in order, and a queue
/// that is finished hands over what is left, then tells its taker to stop (no polled stop flag).
@Suite struct HandOffQueuesTests {
    @Test func aFinishedQueueHandsOverWhatIsLeftThenNil() {
        let queue = BlockingQueue<Int>(capacity: 2)
        queue.put(1)
        queue.put(2)
        queue.put(3)  // beyond capacity: still taken
        #expect(queue.isFull && !queue.isDrained)
        queue.finish()
        #expect(queue.take() == 1)
        queue.done()
        #expect(queue.take() == 2)
        queue.done()
        #expect(queue.take() == 3)
        #expect(!queue.isDrained)  // 3 is being written
        queue.done()
        #expect(queue.isDrained)
        #expect(queue.take() == nil)
        #expect(queue.take() == nil)
    }

    @Test func aTakerWaitsForTheNextItemOrTheFinish() async throws {
        let queue = BlockingQueue<Int>(capacity: 1)
        // Threads of their own, as the pipeline's: a blocked taker must not hold a pool thread.
        async let taken = DedicatedThread.run(name: "test-taker") { () -> [Int] in
            var out: [Int] = []
            while let item = queue.take() {
                out.append(item)
                queue.done()
            }
            return out
        }
        try await DedicatedThread.run(name: "test-putter") {
            for i in 0..<50 {
                #expect(queue.waitForRoom(timeout: 5))
                queue.put(i)
            }
            #expect(queue.waitUntilDrained(timeout: 5))
            queue.finish()
        }
        #expect(try await taken == Array(0..<50))
    }

    @Test func theOutputInboxHandsOverEverythingPostedBeforeItsFinish() {
        let inbox = OutputInbox(maxPendingBytes: 1 << 20)
        #expect(inbox.take(timeout: 0.01)?.isEmpty == true)  // nothing yet: an empty round, not the end
        inbox.post(deadLetters: [], windowsChanged: true, urgent: false)
        inbox.post(deadLetters: [], windowsChanged: false, urgent: true)
        inbox.finish()
        let work = inbox.take(timeout: 0.01)
        #expect(work?.windowsChanged == true && work?.windowsUrgent == true)
        #expect(inbox.take(timeout: 0.01) == nil)
    }
}
