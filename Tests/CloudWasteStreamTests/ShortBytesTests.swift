import Testing
@testable import CloudWasteStream

/// `ShortBytes.equal` compares a word at a time with overlapping last words: every length from 0
/// to 40, with one byte changed at every position, and runs placed flush against the end of their
/// buffer (a read past `count` would take the next buffer's bytes or trip AddressSanitizer).
@Suite struct ShortBytesTests {
    @Test func aDifferenceAtAnyPositionOfAnyLengthIsFound() {
        for count in 0...40 {
            let a = (0..<count).map { UInt8(truncatingIfNeeded: $0 &* 37 &+ 11) }
            #expect(Self.equal(a, a), "length \(count)")
            for position in 0..<count {
                for flip: UInt8 in [0x01, 0x80, 0xFF] {
                    var b = a
                    b[position] ^= flip
                    #expect(!Self.equal(a, b), "length \(count), byte \(position)")
                }
            }
        }
    }

    @Test func buffersOfDifferentLengthsDiffer() {
        let long: [UInt8] = Array("resource_type".utf8)
        for count in 0..<long.count {
            #expect(!Self.equal(Array(long.prefix(count)), long))
        }
        #expect(Self.equal([], []))
    }

    /// Each side is copied to the end of a buffer of its own, so nothing follows its last byte.
    private static func equal(_ a: [UInt8], _ b: [UInt8]) -> Bool {
        let pa = UnsafeMutableBufferPointer<UInt8>.allocate(capacity: max(a.count, 1))
        let pb = UnsafeMutableBufferPointer<UInt8>.allocate(capacity: max(b.count, 1))
        defer { pa.deallocate(); pb.deallocate() }
        _ = pa.initialize(from: a)
        _ = pb.initialize(from: b)
        let byCount = a.count == b.count
            ? ShortBytes.equal(UnsafeRawPointer(pa.baseAddress!), UnsafeRawPointer(pb.baseAddress!), count: a.count) : false
        let byBuffer = ShortBytes.equal(UnsafeBufferPointer(rebasing: pa[..<a.count]), UnsafeBufferPointer(rebasing: pb[..<b.count]))
        #expect(byCount == byBuffer)
        return byBuffer
    }
}
