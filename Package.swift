// swift-tools-version:6.2
import PackageDescription

let strictSettings: [SwiftSetting] = [
    .swiftLanguageMode(.v6),
    .enableUpcomingFeature("ExistentialAny"),
    // Generic types are built through their metadata accessors, not from mangled names: a
    // mangled name's conformances (WorkerID: Hashable in a Dictionary) are looked up by a scan
    // of the binary's 8,000 conformance records, about 0.1 ms each, several of them in every
    // worker's start (decision 0020).
    .unsafeFlags(["-Xfrontend", "-disable-concrete-type-metadata-mangled-name-accessors"]),
]

// How pooltop's own binaries link on Linux (decision 0019). Every worker is a fresh exec of
// such a binary, so what the loader does before `main` is paid at every start and restart:
// lld with packed relative relocations (DT_RELR: 19 KB of table to read instead of 2.3 MB),
// no exported symbols (19,000 of them made each `dladdr` of the runtime's backtracer scan
// them all), and the C++ runtime from libstdc++.a (scripts/link: the loader no longer looks
// up libstdc++.so's thousands of symbols). Measured by callgrind on a worker binary run to its
// first byte: 4.76 M → 1.74 M instructions. docs/deploy.md shows how to link your own app so.
// And the functions a worker and a starting watcher run go first, packed together, in the
// order of scripts/link/symbol-order.txt (decision 0022; the Makefile's release builds emit a
// section per function, which is what lets lld move them): a worker maps about 5 MiB of the
// binary instead of 9.2.
let leanExecutable: [LinkerSetting] = [
    .unsafeFlags(
        [
            "-use-ld=lld", "-Xlinker", "-z", "-Xlinker", "pack-relative-relocs", "-Xlinker", "--no-export-dynamic",
            "-L\(Context.packageDirectory)/scripts/link",
            "-Xlinker", "--symbol-ordering-file=\(Context.packageDirectory)/scripts/link/symbol-order.txt",
            "-Xlinker", "--no-warn-symbol-ordering",
        ],
        .when(platforms: [.linux]))
]

let package = Package(
    name: "pooltop",
    platforms: [.macOS(.v15)],
    products: [
        .library(name: "PoolEngine", targets: ["PoolEngine"]),
        .library(name: "PoolDemo", targets: ["PoolDemo"]),
        .library(name: "PoolConsole", targets: ["PoolConsole"]),
        // Every pooltop command for your own binary: `PoolTopCLI.main(entryPoints:defaultConfiguration:)`.
        .library(name: "PoolTopCLI", targets: ["PoolTopCLI"]),
        .executable(name: "pooltop", targets: ["PoolTop"]),
        // The PostgreSQL job queue (docs/queue.md); builds only with the PostgresQueue trait.
        .library(name: "PoolQueue", targets: ["PoolQueue"]),
    ],
    traits: [
        // Off by default: postgres-nio adds minutes to a first build on 2 cores, and a pool that
        // does not use the queue must not pay for it. `make test`, `make bench` and `make run QUEUE=1`
        // turn it on; a package of your own with `.package(path:…, traits: ["PostgresQueue"])`.
        .trait(name: "PostgresQueue", description: "The postgres-queue service group and the queue commands"),
    ],
    dependencies: [
        .package(url: "https://github.com/apple/swift-log.git", from: "1.16.2"),
        .package(url: "https://github.com/apple/swift-argument-parser.git", from: "1.8.2"),
        .package(url: "https://github.com/swift-server/swift-service-lifecycle.git", from: "2.13.0"),
        .package(url: "https://github.com/jpsim/Yams.git", from: "6.2.2"),
        .package(url: "https://github.com/apple/swift-nio.git", from: "2.101.2"),
        // Already resolved through swift-nio; named here for `Errno` and `FileDescriptor` in our API.
        .package(url: "https://github.com/apple/swift-system.git", from: "1.6.0"),
        // Only with the PostgresQueue trait (see `traits`): resolved always, built only then.
        .package(url: "https://github.com/vapor/postgres-nio.git", from: "1.33.2"),
    ],
    targets: [
        // Only what Swift cannot express: pidfd and epoll syscalls, closefrom for
        // posix_spawn, an async-signal-safe signal handler, siginfo accessors.
        // libdispatch: its main-queue drain for `TaskThreads`' main run loop (decision 0015).
        .target(name: "CPoolShims", linkerSettings: [.linkedLibrary("dispatch")]),
        .target(
            name: "PoolEngine",
            dependencies: [
                "CPoolShims",
                .product(name: "Logging", package: "swift-log"),
                .product(name: "ServiceLifecycle", package: "swift-service-lifecycle"),
                .product(name: "Yams", package: "Yams"),
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "NIOPosix", package: "swift-nio"),
                .product(name: "NIOHTTP1", package: "swift-nio"),
                .product(name: "SystemPackage", package: "swift-system"),
            ],
            swiftSettings: strictSettings
        ),
        // Debian's libncurses-dev, wide-character build.
        .systemLibrary(name: "CNcursesw", path: "Sources/CNcursesw"),
        .target(
            name: "PoolConsole",
            dependencies: ["PoolEngine", "CNcursesw"],
            swiftSettings: strictSettings
        ),
        .target(
            name: "PoolDemo",
            dependencies: [
                "PoolEngine", .product(name: "Logging", package: "swift-log"),
                .product(name: "NIOCore", package: "swift-nio"), .product(name: "NIOPosix", package: "swift-nio"),
                .product(name: "NIOHTTP1", package: "swift-nio"),
            ],
            swiftSettings: strictSettings
        ),
        // Without the trait its sources compile to nothing (`#if PostgresQueue`), and nothing
        // depends on it, so postgres-nio is never built.
        .target(
            name: "PoolQueue",
            dependencies: [
                "PoolEngine",
                .product(name: "PostgresNIO", package: "postgres-nio", condition: .when(traits: ["PostgresQueue"])),
                .product(name: "Logging", package: "swift-log"),
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "NIOPosix", package: "swift-nio"),
            ],
            swiftSettings: strictSettings
        ),
        .target(
            name: "PoolTopCLI",
            dependencies: [
                "PoolEngine",
                "PoolConsole",
                .target(name: "PoolQueue", condition: .when(traits: ["PostgresQueue"])),
                .product(name: "ArgumentParser", package: "swift-argument-parser"),
                .product(name: "Logging", package: "swift-log"),
            ],
            swiftSettings: strictSettings
        ),
        .executableTarget(
            name: "PoolTop",
            dependencies: ["PoolTopCLI", "PoolDemo", "PoolEngine"],
            swiftSettings: strictSettings,
            linkerSettings: leanExecutable
        ),
        // Entry points used only by the integration tests: a real worker binary
        // the in-process test watcher spawns, and a standalone watcher.
        .executableTarget(
            name: "PoolFixtures",
            dependencies: [
                "PoolEngine", "PoolDemo", "PoolTopCLI", .product(name: "Logging", package: "swift-log"),
                .product(name: "NIOCore", package: "swift-nio"), .product(name: "NIOPosix", package: "swift-nio"),
            ],
            path: "Tests/Fixtures/PoolFixtures",
            swiftSettings: strictSettings,
            linkerSettings: leanExecutable
        ),
        .executableTarget(
            name: "PoolBench",
            dependencies: [
                "PoolEngine", "PoolDemo", "PoolConsole", .product(name: "Logging", package: "swift-log"),
                .product(name: "NIOCore", package: "swift-nio"), .product(name: "NIOPosix", package: "swift-nio"),
                .product(name: "NIOHTTP1", package: "swift-nio"),
            ],
            path: "bench/PoolBench",
            swiftSettings: strictSettings,
            linkerSettings: leanExecutable
        ),
        // The fuzz harnesses: a library, so the test suite replays their corpus and every input
        // that once failed (FuzzCorpusTests); the fuzzer binary over it is added below.
        .target(
            name: "PoolFuzzing",
            dependencies: ["PoolEngine", "PoolConsole", "PoolDemo", .product(name: "NIOCore", package: "swift-nio")],
            path: "Tests/Fuzz/PoolFuzzing",
            swiftSettings: strictSettings
        ),
        .testTarget(
            name: "PoolEngineTests",
            dependencies: [
                "PoolEngine", "PoolDemo", "PoolFuzzing", .product(name: "Logging", package: "swift-log"),
                .product(name: "NIOCore", package: "swift-nio"),
            ],
            swiftSettings: strictSettings
        ),
        // Compiled only with the PostgresQueue trait (`#if PostgresQueue`), like its target.
        .testTarget(
            name: "PoolQueueTests",
            dependencies: [
                "PoolEngine", .target(name: "PoolQueue", condition: .when(traits: ["PostgresQueue"])),
                .product(name: "NIOCore", package: "swift-nio"),
            ],
            swiftSettings: strictSettings
        ),
        .testTarget(
            name: "PoolConsoleTests",
            dependencies: ["PoolConsole", "PoolEngine"],
            // Expected frames, read by path from the tests.
            exclude: ["Snapshots"],
            swiftSettings: strictSettings
        ),
        .testTarget(
            name: "PoolIntegrationTests",
            dependencies: [
                "PoolEngine", "PoolFixtures", "PoolTop",
                .product(name: "ServiceLifecycle", package: "swift-service-lifecycle"),
                .product(name: "Logging", package: "swift-log"),
                .product(name: "NIOCore", package: "swift-nio"),
            ],
            swiftSettings: strictSettings
        ),
    ]
)

// `make fuzz` only (POOLTOP_FUZZ=1): the libFuzzer binary. It links only with -sanitize=fuzzer,
// which `make fuzz` passes, so a normal build must not see it.
if Context.environment["POOLTOP_FUZZ"] == "1" {
    package.targets.append(
        .executableTarget(
            name: "PoolFuzz", dependencies: ["PoolFuzzing"], path: "Tests/Fuzz/PoolFuzz", swiftSettings: strictSettings))
}
