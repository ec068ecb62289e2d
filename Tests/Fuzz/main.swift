import Foundation

// netprobe_fuzz: seeded random and mutation fuzzing of the parsers that read untrusted
// bytes. `make fuzz` runs a million inputs through each; a crash is the failure, and the
// printed seed replays it exactly.
//
//   netprobe_fuzz yaml|http|multicast|querier|all [--runs N] [--seed S]

var arguments = Array(CommandLine.arguments.dropFirst())
var runs = 1_000_000
var seed: UInt64 = 1
var targets: [String] = []
while !arguments.isEmpty {
  let argument = arguments.removeFirst()
  switch argument {
  case "--runs": runs = Int(arguments.isEmpty ? "" : arguments.removeFirst()) ?? runs
  case "--seed": seed = UInt64(arguments.isEmpty ? "" : arguments.removeFirst()) ?? seed
  case "yaml", "http", "multicast", "querier": targets.append(argument)
  case "all": targets += ["yaml", "http", "multicast", "querier"]
  default:
    print("usage: netprobe_fuzz yaml|http|multicast|querier|all [--runs N] [--seed S]")
    exit(64)
  }
}
if targets.isEmpty { targets = ["yaml", "http", "multicast", "querier"] }
for target in targets {
  switch target {
  case "yaml": _ = fuzzYAML(iterations: runs, seed: seed)
  case "multicast": _ = fuzzMulticast(iterations: runs, seed: seed)
  case "querier": _ = fuzzQuerier(iterations: runs, seed: seed)
  default: _ = fuzzHTTP(iterations: runs, seed: seed)
  }
}
