import Glibc
import PoolFuzzing

// libFuzzer's driver, for a binary that has a main of its own (the toolchain's libFuzzer,
// linked by -sanitize=fuzzer).
@_silgen_name("LLVMFuzzerRunDriver")
private func runDriver(
    _ argc: UnsafeMutablePointer<CInt>, _ argv: UnsafeMutablePointer<UnsafeMutablePointer<UnsafeMutablePointer<CChar>?>>,
    _ body: @convention(c) (UnsafePointer<UInt8>?, Int) -> CInt
) -> CInt

/// The harness chosen by the first argument; libFuzzer gets the rest.
// nonisolated(unsafe): set once in `main` before the driver starts, then only read by the
// driver's callback, which libFuzzer runs on the same thread.
nonisolated(unsafe) private var harness = FuzzHarness.control

/// `PoolFuzz HARNESS [libFuzzer options] [CORPUS...]`, built only by `make fuzz` (POOLTOP_FUZZ=1).
@main
struct PoolFuzz {
    static func main() {
        let arguments = CommandLine.arguments
        guard arguments.count >= 2, let chosen = FuzzHarness(rawValue: arguments[1]) else {
            let names = FuzzHarness.allCases.map(\.rawValue).joined(separator: "|")
            print("usage: PoolFuzz \(names) [libFuzzer options] [corpus directories]")
            exit(2)
        }
        harness = chosen
        // libFuzzer reads argv[0] as the program and the rest as its own: drop the harness name.
        var argv: [UnsafeMutablePointer<CChar>?] = ([arguments[0]] + arguments.dropFirst(2)).map { strdup($0) } + [nil]
        var argc = CInt(argv.count - 1)
        let status = argv.withUnsafeMutableBufferPointer { buffer in
            var base = buffer.baseAddress!
            return runDriver(&argc, &base) { data, size in
                let bytes = size == 0 ? [] : Array(UnsafeBufferPointer(start: data, count: size))
                do {
                    try harness.run(bytes)
                } catch {
                    // A crash is how libFuzzer learns of a finding, and it saves the input.
                    fatalError("\(harness.rawValue): \(error)")
                }
                return 0
            }
        }
        exit(status)
    }
}
