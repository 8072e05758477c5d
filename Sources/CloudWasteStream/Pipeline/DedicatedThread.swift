import Foundation

/// The one way this project runs blocking work (librdkafka polls, libpq calls, child processes)
/// off Swift's cooperative pool: on a thread of its own, awaited from async code when needed.
public enum DedicatedThread {
    /// Starts `body` on a new thread named `name`.
    public static func start(name: String, _ body: @escaping @Sendable () -> Void) {
        let thread = Thread { body() }
        thread.name = name
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
