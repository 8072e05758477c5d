import Foundation

/// The one way this project runs blocking work (librdkafka polls, libpq calls, child processes)
/// off Swift's cooperative pool: on a thread of its own, awaited from async code when needed.
public enum DedicatedThread {
    /// Linux keeps 15 bytes of a thread's name and refuses a longer one, which left the thread
    /// with its creator's name (a dispatch queue's): short names are what `top -H`, `perf` and
    /// /proc show.
    public static let maxNameBytes = 15

    /// Starts `body` on a new thread named `name`.
    public static func start(name: String, _ body: @escaping @Sendable () -> Void) {
        precondition(name.utf8.count <= maxNameBytes, "a thread name longer than \(maxNameBytes) bytes: \(name)")
        let thread = Thread {
            Thread.current.name = name  // swift-corelibs-foundation names the OS thread only from itself
            body()
        }
        thread.start()
    }

    /// Runs blocking `body` on a new thread and awaits its result.
    public static func run<T: Sendable>(name: String, _ body: @escaping @Sendable () throws -> T) async throws -> T {
        try await withCheckedThrowingContinuation { (continuation: CheckedContinuation<T, any Error>) in
            start(name: name) {
                do { continuation.resume(returning: try body()) } catch { continuation.resume(throwing: error) }
            }
        }
    }
}
