import CloudWastePostgres

/// A currency code as the value of a `text` column: its three letters, written in place.
extension PostgresBinaryCopyEncoder {
    mutating func currency(_ code: CurrencyCode) {
        value(byteCount: 3) { code.write(to: $0.baseAddress!) }
    }
}
