// swift-tools-version:6.0
import PackageDescription

/// Settings every Swift target shares: Swift 6 language mode (strict concurrency is its
/// default) plus the upcoming features that make imports and existentials explicit.
let swiftSettings: [SwiftSetting] = [
  .enableUpcomingFeature("ExistentialAny"),
  .enableUpcomingFeature("InternalImportsByDefault"),
]

let package = Package(
  name: "netprobe_exporter",
  platforms: [.macOS(.v15)],
  products: [
    .executable(name: "netprobe_exporter", targets: ["netprobe_exporter"]),
    .library(name: "NetProbe", targets: ["NetProbe"]),
  ],
  dependencies: [
    .package(url: "https://github.com/apple/swift-argument-parser", from: "1.8.0"),
    .package(url: "https://github.com/apple/swift-log", from: "1.16.0"),
  ],
  targets: [
    // Every C macro and GNU-only call Swift cannot import: CMSG_*, accept4, and gzip
    // through ISA-L's igzip (libisal-dev), whose stream state Swift would have to copy.
    .target(
      name: "CNetShims",
      cSettings: [.define("_GNU_SOURCE")],
      linkerSettings: [.linkedLibrary("isal")]
    ),
    // libcurl for the Pushgateway client, opened with dlopen when a push is configured
    // (the headers of libcurl4-openssl-dev at build time, libcurl4 at run time); the
    // wrappers also stand in for the variadic curl_easy_setopt.
    .target(
      name: "CCurl",
      linkerSettings: [.linkedLibrary("dl")]
    ),
    // OpenSSL 3 (libssl-dev) for TLS on the HTTP server's own event loop, and libcrypt's
    // crypt_r for bcrypt basic auth: linked, not opened with dlopen (see README, "Securing the
    // endpoints"): libssl3 is on every host that has libcurl4, and libcrypt1 is essential.
    .target(
      name: "CTLS",
      linkerSettings: [.linkedLibrary("ssl"), .linkedLibrary("crypto"), .linkedLibrary("crypt")]
    ),
    .target(
      name: "NetProbe",
      dependencies: [
        "CNetShims",
        "CCurl",
        "CTLS",
        .product(name: "Logging", package: "swift-log"),
      ],
      swiftSettings: swiftSettings
    ),
    .executableTarget(
      name: "netprobe_exporter",
      dependencies: [
        "NetProbe",
        .product(name: "ArgumentParser", package: "swift-argument-parser"),
        .product(name: "Logging", package: "swift-log"),
      ],
      swiftSettings: swiftSettings
    ),
    // Seeded random and mutation fuzzing of every parser that reads untrusted bytes:
    // `make fuzz` runs a million inputs per parser in a release build.
    .executableTarget(
      name: "netprobe_fuzz",
      dependencies: ["NetProbe"],
      path: "Tests/Fuzz",
      swiftSettings: swiftSettings
    ),
    .testTarget(
      name: "NetProbeTests",
      dependencies: ["NetProbe"],
      resources: [.copy("Fixtures")],
      swiftSettings: swiftSettings
    ),
  ],
  swiftLanguageModes: [.v6]
)
