@testable import CloudWasteStream
import Foundation
import Testing

struct DedicatedThreadTests {
    /// The name reaches the kernel (what `top -H`, `perf` and /proc show); names of 16 bytes or
    /// more used to be refused there silently.
    @Test func aThreadCarriesItsNameToTheSystem() async throws {
        let name = "cw-writer-12345"  // 15 bytes, the most Linux keeps
        let seen = try await DedicatedThread.run(name: name) {
            try String(contentsOfFile: "/proc/thread-self/comm", encoding: .utf8)
        }
        #expect(seen == name + "\n")
        #expect(name.utf8.count == DedicatedThread.maxNameBytes)
    }
}
