// netprobe-bench: figures for the README, printed, never asserted.
//
// 1. Exposition: rendering the series a 5,000-target agent will carry (a labelled gauge and a
//    16-bucket RTT histogram per target) with our catalogue-driven writer and with
//    swift-prometheus 2.x, the alternative ARCHITECTURE.md weighs.
// 2. HTTP: the release binary serving /metrics to wrk on loopback, and its idle memory.
import Foundation
import NetProbe
import Prometheus

let targets = 5_000
let rounds = 20
let bounds = (0..<16).map { 0.00005 * Double(1 << $0) }

func median(_ values: [Double]) -> Double { values.sorted()[values.count / 2] }

func measure(_ body: () -> Int) -> (seconds: Double, bytes: Int) {
  var times: [Double] = []
  var bytes = 0
  for _ in 0..<rounds {
    let start = ContinuousClock.now
    bytes = body()
    let elapsed = ContinuousClock.now - start
    times.append(Double(elapsed.components.seconds) + Double(elapsed.components.attoseconds) / 1e18)
  }
  return (median(times), bytes)
}

// Our writer: label sets rendered once, samples written at scrape time.
let lossFamily = MetricFamily("bench_loss_ratio", .gauge, "Loss.", labels: ["target", "host", "address", "family"])
let rttFamily = MetricFamily("bench_rtt_seconds", .histogram, "RTT.", labels: ["target", "host", "address", "family"])
let labelSets = (0..<targets).map { index in
  LabelSet([
    ("target", "t\(index)"), ("host", "198.18.\(index / 256).\(index % 256)"),
    ("address", "198.18.\(index / 256).\(index % 256)"), ("family", "ip4"),
  ])
}
let snapshot = HistogramSnapshot(upperBounds: bounds, bucketCounts: bounds.indices.map { UInt64($0) }, sum: 1.5, count: 120)
let ours = measure {
  var exposition = Exposition()
  for labels in labelSets {
    exposition.add(lossFamily, labels, 0.01)
    exposition.addHistogram(rttFamily, labels, snapshot)
  }
  return exposition.render().count
}

// swift-prometheus 2.x: one registered gauge and histogram per target.
let registry = PrometheusCollectorRegistry()
for index in 0..<targets {
  let labels = [
    ("target", "t\(index)"), ("host", "198.18.\(index / 256).\(index % 256)"),
    ("address", "198.18.\(index / 256).\(index % 256)"), ("family", "ip4"),
  ]
  registry.makeGauge(descriptor: MetricNameDescriptor(metricName: "bench_loss", unitName: "ratio", helpText: "Loss."), labels: labels).set(
    to: 0.01)
  let histogram = registry.makeValueHistogram(
    descriptor: MetricNameDescriptor(metricName: "bench_rtt", unitName: "seconds", helpText: "RTT."), labels: labels, buckets: bounds)
  for bucket in bounds { histogram.record(bucket) }
}
var buffer: [UInt8] = []
let theirs = measure {
  buffer.removeAll(keepingCapacity: true)
  registry.emit(into: &buffer)
  return buffer.count
}

print("Exposition of \(targets) targets (one gauge + one 16-bucket histogram each), median of \(rounds) renders:")
print("| writer | ms per scrape | bytes |")
print("|---|---|---|")
print(String(format: "| netprobe Exposition | %.1f | %d |", ours.seconds * 1000, ours.bytes))
print(String(format: "| swift-prometheus 2.x | %.1f | %d |", theirs.seconds * 1000, theirs.bytes))
print("")

// HTTP: the release binary under wrk.
let binary = URL(fileURLWithPath: FileManager.default.currentDirectoryPath)
  .deletingLastPathComponent().appendingPathComponent(".build/release/netprobe_exporter").path
guard FileManager.default.isExecutableFile(atPath: binary) else {
  print("HTTP: \(binary) not built; run `make bench` from the top directory")
  exit(0)
}
let port = 19469
let exporter = Process()
exporter.executableURL = URL(fileURLWithPath: binary)
exporter.arguments = ["--web.listen-address=127.0.0.1:\(port)", "--log.level=warn"]
try exporter.run()
defer { exporter.terminate() }
Thread.sleep(forTimeInterval: 1)

func rssMiB(_ pid: Int32) -> Double {
  let status = (try? String(contentsOfFile: "/proc/\(pid)/status", encoding: .utf8)) ?? ""
  let line = status.split(separator: "\n").first { $0.hasPrefix("VmRSS:") } ?? ""
  return (Double(line.split(separator: " ").dropFirst().first ?? "0") ?? 0) / 1024
}
print(String(format: "Exporter idle RSS on the default config: %.1f MiB", rssMiB(exporter.processIdentifier)))

let wrkPath = ["/usr/bin/wrk", "/usr/local/bin/wrk"].first { FileManager.default.isExecutableFile(atPath: $0) }
if let wrkPath {
  for (label, extra) in [("plain", [String]()), ("gzip", ["-H", "Accept-Encoding: gzip"])] {
    let wrk = Process()
    wrk.executableURL = URL(fileURLWithPath: wrkPath)
    wrk.arguments = ["-t2", "-c16", "-d5s"] + extra + ["http://127.0.0.1:\(port)/metrics"]
    let pipe = Pipe()
    wrk.standardOutput = pipe
    try wrk.run()
    let output = String(decoding: pipe.fileHandleForReading.readDataToEndOfFile(), as: UTF8.self)
    wrk.waitUntilExit()
    let rate = output.split(separator: "\n").first { $0.hasPrefix("Requests/sec") } ?? "Requests/sec: ?"
    let latency = output.split(separator: "\n").first { $0.contains("Latency") } ?? "Latency ?"
    print(
      "wrk -t2 -c16 -d5s /metrics (\(label)): \(rate.trimmingCharacters(in: .whitespaces)); \(latency.split(separator: " ", omittingEmptySubsequences: true).prefix(3).joined(separator: " "))"
    )
  }
  print(String(format: "Exporter RSS after the load: %.1f MiB", rssMiB(exporter.processIdentifier)))
} else {
  print("HTTP: wrk not installed (apt-get install wrk)")
}
