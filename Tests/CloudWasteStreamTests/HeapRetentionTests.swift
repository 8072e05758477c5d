@testable import CloudWasteStream
import Glibc
import Testing

@Suite struct HeapRetentionTests {
    /// This thread's minor page faults so far (RUSAGE_THREAD: other tests' threads do not count).
    private func threadMinorFaults() -> Int {
        var usage = rusage()
        getrusage(__rusage_who_t(1), &usage)  // RUSAGE_THREAD (Linux), hidden without _GNU_SOURCE
        return usage.ru_minflt
    }

    /// Minor faults while a block the size of a large batch buffer is allocated, written and freed.
    private func faultsOfOneBlock(bytes: Int) -> Int {
        let before = threadMinorFaults()
        let block = malloc(bytes)!
        memset(block, 1, bytes)
        free(block)
        return threadMinorFaults() - before
    }

    @Test func aFreedBatchSizedBlockIsReusedWithoutFaultingItsPagesInAgain() {
        #expect(HeapRetention.apply())
        let bytes = 8 << 20  // 2,048 pages
        _ = faultsOfOneBlock(bytes: bytes)
        // Mapped afresh (glibc's default for a block this size), every page would fault again.
        #expect(faultsOfOneBlock(bytes: bytes) < 256)
    }
}
