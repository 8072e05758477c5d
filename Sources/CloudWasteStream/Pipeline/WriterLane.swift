import CloudWastePostgres
import Synchronization

/// What the consumer thread and one writer thread share: the bounded queue of sealed batches, the
/// writer's status, and the means to break its connection at a shutdown deadline.
final class WriterLane: Sendable {
    let index: Int
    let queue: BlockingQueue<PreparedBatch>
    private let statusBox: Mutex<WriterStatus>
    private let interrupterBox = Mutex<PostgresInterrupter?>(nil)

    init(index: Int, capacity: Int) {
        self.index = index
        queue = BlockingQueue(capacity: capacity)
        statusBox = Mutex(WriterStatus(index: index))
    }

    var status: WriterStatus { statusBox.withLock { $0 } }

    func update(_ change: (inout WriterStatus) -> Void) { statusBox.withLock { change(&$0) } }

    var interrupter: PostgresInterrupter? {
        get { interrupterBox.withLock { $0 } }
        set { interrupterBox.withLock { $0 = newValue } }
    }
}
