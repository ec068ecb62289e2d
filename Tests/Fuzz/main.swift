@preconcurrency import Glibc
import Foundation

// netprobe_fuzz: seeded random and mutation fuzzing of the parsers that read untrusted
// bytes. `make fuzz` runs a million inputs through each; a crash is the failure, and the
// printed seed replays it exactly.
//
//   netprobe_fuzz yaml|targetfile|web|http|multicast|querier|icmp|all [--runs N] [--seed S]

var arguments = Array(CommandLine.arguments.dropFirst())
var runs = 1_000_000
var seed: UInt64 = 1
var targets: [String] = []
while !arguments.isEmpty {
  let argument = arguments.removeFirst()
  switch argument {
  case "--runs": runs = Int(arguments.isEmpty ? "" : arguments.removeFirst()) ?? runs
  case "--seed": seed = UInt64(arguments.isEmpty ? "" : arguments.removeFirst()) ?? seed
  case "yaml", "targetfile", "web", "http", "multicast", "querier", "icmp": targets.append(argument)
  case "all": targets += ["yaml", "targetfile", "web", "http", "multicast", "querier", "icmp"]
  default:
    print("usage: netprobe_fuzz yaml|targetfile|web|http|multicast|querier|icmp|all [--runs N] [--seed S]")
    exit(64)
  }
}
if targets.isEmpty { targets = ["yaml", "targetfile", "web", "http", "multicast", "querier", "icmp"] }
// First, so that a crash can be replayed: the per-target lines come only after a run ends.
print("netprobe_fuzz: \(targets.joined(separator: " ")), \(runs) runs each, seed \(seed) (replay: --seed \(seed))")
fflush(stdout)
for target in targets {
  switch target {
  case "icmp": _ = fuzzICMP(iterations: runs, seed: seed)
  case "yaml": _ = fuzzYAML(iterations: runs, seed: seed)
  case "targetfile": _ = fuzzTargetFiles(iterations: runs, seed: seed)
  case "web": _ = fuzzWebConfig(iterations: runs, seed: seed)
  case "multicast": _ = fuzzMulticast(iterations: runs, seed: seed)
  case "querier": _ = fuzzQuerier(iterations: runs, seed: seed)
  default: _ = fuzzHTTP(iterations: runs, seed: seed)
  }
}
