import Foundation

/// State shared between threads with a condition to wait on: `Mutex` plus wait and broadcast,
/// which the Synchronization module does not offer. The one `@unchecked Sendable` of the
/// project's own thread plumbing: `state` is only ever touched while `condition` is locked, in
/// the methods below, so the types built on it (`BlockingQueue`, `OutputInbox`, the pipeline's
/// stop request) are plainly `Sendable`.
final class Guarded<State>: @unchecked Sendable {
    private let condition = NSCondition()
    private var state: State

    init(_ state: State) { self.state = state }

    /// Runs `body` with the state, under the lock; with `broadcast`, then wakes every waiter (the
    /// state changed).
    func withLock<R>(broadcast: Bool = false, _ body: (inout State) throws -> R) rethrows -> R {
        condition.lock()
        defer {
            if broadcast { condition.broadcast() }
            condition.unlock()
        }
        return try body(&state)
    }

    /// Waits until `ready` holds or `deadline` (if any) passes, then runs `body` under the lock with
    /// whether `ready` held (and wakes the other waiters after it, with `broadcast`). Waiters wake
    /// at every broadcast.
    func wait<R>(until deadline: Date?, for ready: (State) -> Bool, broadcast: Bool = false,
                 then body: (inout State, Bool) throws -> R) rethrows -> R {
        condition.lock()
        defer {
            if broadcast { condition.broadcast() }
            condition.unlock()
        }
        var isReady = ready(state)
        while !isReady {
            if let deadline {
                guard condition.wait(until: deadline) else { break }
            } else {
                condition.wait()  // (a distant deadline overflows the time the condition computes)
            }
            isReady = ready(state)
        }
        return try body(&state, isReady || ready(state))
    }

}
