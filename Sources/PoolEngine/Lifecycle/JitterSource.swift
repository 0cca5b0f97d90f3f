/// Where recycle quotas' jitter comes from: fixed in tests, a seeded generator in the loop, so
/// the core itself stays free of hidden randomness.
enum JitterSource: Hashable, Sendable {
    case fixed(Double)
    /// SplitMix64: small, fast and good enough to spread restarts.
    case generator(state: UInt64)

    /// A value in 0...1.
    mutating func next() -> Double {
        switch self {
        case .fixed(let value):
            return value
        case .generator(var state):
            state &+= 0x9E37_79B9_7F4A_7C15
            var z = state
            z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
            z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
            z ^= z >> 31
            self = .generator(state: state)
            return Double(z >> 11) / Double(1 << 53)
        }
    }
}
