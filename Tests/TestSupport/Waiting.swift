public import Foundation

/// Polls `condition` every 50 ms until it holds (true) or `seconds` passed (false): for states a
/// test cannot be told about (a child process's progress, a server's readiness).
public func waitFor(_ seconds: Double, _ condition: () -> Bool) -> Bool {
    let deadline = Date(timeIntervalSinceNow: seconds)
    while Date() < deadline {
        if condition() { return true }
        Thread.sleep(forTimeInterval: 0.05)
    }
    return false
}
