/// SplitMix64: a tiny, fast, seedable generator, so that a failing fuzz run is replayed
/// exactly from the seed it printed.
struct SeededGenerator: RandomNumberGenerator {
  private var state: UInt64

  init(seed: UInt64) { state = seed }

  mutating func next() -> UInt64 {
    state &+= 0x9E37_79B9_7F4A_7C15
    var z = state
    z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
    z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
    return z ^ (z >> 31)
  }
}

/// Turns valid seed inputs into near-valid ones: the inputs that reach deep parser states.
struct Mutator {
  var rng: SeededGenerator
  /// Tokens the parsers give meaning to; splicing them in reaches more branches than
  /// random bytes alone.
  let dictionary: [[UInt8]]

  init(seed: UInt64, dictionary: [String]) {
    self.init(seed: seed, tokens: dictionary.map { Array($0.utf8) })
  }

  /// Binary tokens, for formats whose meaningful bytes are not text (sync bytes, headers).
  init(seed: UInt64, tokens: [[UInt8]]) {
    rng = SeededGenerator(seed: seed)
    dictionary = tokens
  }

  /// Purely random bytes, biased towards printable ASCII and the separators parsers split on.
  mutating func randomInput(maxLength: Int) -> [UInt8] {
    let count = Int.random(in: 0...maxLength, using: &rng)
    let alphabet = Array(" \t\r\n:-#[]{},'\"\\&*!|>%@`?aZ09.".utf8)
    return (0..<count).map { _ in
      switch UInt8.random(in: 0..<10, using: &rng) {
      case 0..<6: alphabet.randomElement(using: &rng)!
      case 6..<9: UInt8.random(in: 0x20...0x7E, using: &rng)
      default: UInt8.random(in: 0...255, using: &rng)
      }
    }
  }

  /// One to four edits of `input`: flip, insert, delete, duplicate a range, or splice a token.
  mutating func mutate(_ input: [UInt8]) -> [UInt8] {
    var bytes = input
    for _ in 0..<Int.random(in: 1...4, using: &rng) {
      let position = bytes.isEmpty ? 0 : Int.random(in: 0..<bytes.count, using: &rng)
      switch UInt8.random(in: 0..<6, using: &rng) {
      case 0 where !bytes.isEmpty:
        bytes[position] ^= 1 << UInt8.random(in: 0..<8, using: &rng)
      case 1:
        bytes.insert(UInt8.random(in: 0...255, using: &rng), at: position)
      case 2 where !bytes.isEmpty:
        let end = min(bytes.count, position + Int.random(in: 1...8, using: &rng))
        bytes.removeSubrange(position..<end)
      case 3 where !bytes.isEmpty:
        let end = min(bytes.count, position + Int.random(in: 1...32, using: &rng))
        bytes.insert(contentsOf: bytes[position..<end], at: position)
      case 4 where !dictionary.isEmpty:
        bytes.insert(contentsOf: dictionary.randomElement(using: &rng)!, at: position)
      default:
        if !bytes.isEmpty { bytes[position] = UInt8.random(in: 0...255, using: &rng) }
      }
    }
    return bytes
  }
}
