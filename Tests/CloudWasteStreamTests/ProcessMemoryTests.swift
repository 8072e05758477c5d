@testable import CloudWasteStream
import Foundation
import Testing

@Suite struct ProcessMemoryTests {
    @Test func residentAndPeakAreReadFromProc() throws {
        let rss = try #require(ProcessMemory.residentBytes)
        let peak = try #require(ProcessMemory.peakResidentBytes)
        #expect(rss > 1_048_576)
        #expect(peak >= rss)
    }

    @Test func touchingMemoryRaisesThePeak() throws {
        let before = try #require(ProcessMemory.peakResidentBytes)
        let size = before + 64 * 1_048_576  // more than the peak so far, so the peak must move
        let buffer = UnsafeMutableRawPointer.allocate(byteCount: size, alignment: 4096)
        defer { buffer.deallocate() }
        for page in stride(from: 0, to: size, by: 4096) { buffer.storeBytes(of: UInt8(1), toByteOffset: page, as: UInt8.self) }
        let after = try #require(ProcessMemory.peakResidentBytes)
        #expect(after >= before + 64 * 1_048_576)
    }
}
