import Testing
@testable import CloudWasteStream

/// Threads are sized by the CPUs the process may use, not by the machine's.
@Suite struct UsableCPUsTests {
    @Test func cgroupQuotaIsRoundedUpToWholeCPUs() {
        #expect(UsableCPUs.quota(fromCPUMax: "max 100000\n") == nil)
        #expect(UsableCPUs.quota(fromCPUMax: "100000 100000\n") == 1)
        #expect(UsableCPUs.quota(fromCPUMax: "150000 100000\n") == 2)
        #expect(UsableCPUs.quota(fromCPUMax: "50000 100000") == 1)
        #expect(UsableCPUs.quota(fromCPUMax: "garbage") == nil)
    }

    @Test func affinityListsAreCounted() {
        #expect(UsableCPUs.cpuCount(fromList: "0-1\n") == 2)
        #expect(UsableCPUs.cpuCount(fromList: "\t1") == 1)
        #expect(UsableCPUs.cpuCount(fromList: "0-3,6,8-9") == 7)
        #expect(UsableCPUs.cpuCount(fromList: "3-1") == nil)
    }

    @Test func theCountIsWithinTheAffinityMask() {
        let affinity = UsableCPUs.affinityCount()
        #expect(affinity != nil)
        #expect(UsableCPUs.count >= 1 && UsableCPUs.count <= (affinity ?? 1))
    }
}
