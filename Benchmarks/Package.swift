// swift-tools-version:6.0
// Benchmarks live in a package of their own so that swift-prometheus (measured here against
// our exposition writer) never becomes a dependency of the exporter.
import PackageDescription

let package = Package(
  name: "netprobe-benchmarks",
  platforms: [.macOS(.v15)],
  dependencies: [
    // Named explicitly: a path package is otherwise identified by its directory name.
    .package(name: "netprobe_exporter", path: ".."),
    .package(url: "https://github.com/swift-server/swift-prometheus", from: "2.4.0"),
  ],
  targets: [
    .executableTarget(
      name: "netprobe-bench",
      dependencies: [
        .product(name: "NetProbe", package: "netprobe_exporter"),
        .product(name: "Prometheus", package: "swift-prometheus"),
      ]
    )
  ],
  swiftLanguageModes: [.v6]
)
