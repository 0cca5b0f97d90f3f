// swift-tools-version:6.2
import PackageDescription

// A small app under pooltop: an HTTP API served by reactor workers on the sockets the watcher
// opens, with a job group behind it, and the whole pooltop CLI and console in its own binary.
let package = Package(
    name: "WordsAPI",
    platforms: [.macOS(.v15)],
    dependencies: [
        // Named: a path package is otherwise known by its folder's name, which a clone may change.
        .package(name: "pooltop", path: "../.."),
        .package(url: "https://github.com/apple/swift-nio.git", from: "2.101.2"),
    ],
    targets: [
        .executableTarget(
            name: "WordsAPI",
            dependencies: [
                .product(name: "PoolTopCLI", package: "pooltop"),
                .product(name: "PoolEngine", package: "pooltop"),
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "NIOHTTP1", package: "swift-nio"),
            ],
            swiftSettings: [.swiftLanguageMode(.v6)],
            // Every worker is a new exec of this binary: link it as pooltop links its own, so the
            // loader writes and reads less at each start (docs/deploy.md, pooltop's decision 0019).
            linkerSettings: [
                .unsafeFlags(
                    [
                        "-use-ld=lld", "-Xlinker", "-z", "-Xlinker", "pack-relative-relocs", "-Xlinker", "--no-export-dynamic",
                        // pooltop's one-line linker script that takes the C++ runtime from
                        // libstdc++.a; a copy in your own package does the same.
                        "-L\(Context.packageDirectory)/../../scripts/link",
                    ],
                    .when(platforms: [.linux]))
            ]
        )
    ]
)
