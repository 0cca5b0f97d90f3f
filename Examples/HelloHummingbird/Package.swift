// swift-tools-version:6.2
import PackageDescription

// A Hummingbird 2 app under pooltop: its router served by reactor workers on the sockets the
// watcher opens. `HummingbirdReactor` is the part to take into an app of your own: it serves a
// Hummingbird responder on an inherited socket, which Hummingbird's own server cannot do.
let package = Package(
    name: "HelloHummingbird",
    platforms: [.macOS(.v15)],
    products: [
        .library(name: "HummingbirdReactor", targets: ["HummingbirdReactor"])
    ],
    dependencies: [
        // Named: a path package is otherwise known by its folder's name, which a clone may change.
        .package(name: "pooltop", path: "../.."),
        // No traits: `FullFoundation` would link all of Foundation (and its ICU data) into every
        // worker, `ConfigurationSupport` swift-configuration; this app needs neither.
        .package(url: "https://github.com/hummingbird-project/hummingbird.git", from: "2.28.1", traits: []),
        .package(url: "https://github.com/apple/swift-nio.git", from: "2.101.2"),
        .package(url: "https://github.com/apple/swift-nio-extras.git", from: "1.35.2"),
        .package(url: "https://github.com/apple/swift-log.git", from: "1.16.2"),
    ],
    targets: [
        .target(
            name: "HummingbirdReactor",
            dependencies: [
                .product(name: "PoolEngine", package: "pooltop"),
                .product(name: "Hummingbird", package: "hummingbird"),
                .product(name: "HummingbirdCore", package: "hummingbird"),
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "NIOHTTP1", package: "swift-nio"),
                .product(name: "NIOHTTPTypes", package: "swift-nio-extras"),
                .product(name: "Logging", package: "swift-log"),
            ],
            swiftSettings: [.swiftLanguageMode(.v6)]
        ),
        .executableTarget(
            name: "HelloHummingbird",
            dependencies: [
                "HummingbirdReactor",
                .product(name: "PoolTopCLI", package: "pooltop"),
                .product(name: "PoolEngine", package: "pooltop"),
                .product(name: "Hummingbird", package: "hummingbird"),
                .product(name: "NIOPosix", package: "swift-nio"),
                .product(name: "Logging", package: "swift-log"),
            ],
            swiftSettings: [.swiftLanguageMode(.v6)],
            // Every worker is a new exec of this binary: link it as pooltop links its own, so the
            // loader writes and reads less at each start (docs/deploy.md, pooltop's decision 0019).
            linkerSettings: [
                .unsafeFlags(
                    [
                        "-use-ld=lld", "-Xlinker", "-z", "-Xlinker", "pack-relative-relocs", "-Xlinker", "--no-export-dynamic",
                        "-L\(Context.packageDirectory)/../../scripts/link",
                    ],
                    .when(platforms: [.linux]))
            ]
        ),
    ]
)
