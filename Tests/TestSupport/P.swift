public let p3 = 0
