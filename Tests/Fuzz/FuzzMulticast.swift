import NetProbe

/// Tokens the multicast decoders give meaning to: the beacon magic, RTP first bytes and
/// payload types, TS sync bytes, PIDs (PAT, null) and adaptation flags.
private let multicastTokens: [[UInt8]] = [
  Array("NPBC".utf8), [0x4E, 0x50, 0x42, 0x43, 0x01, 0x00, 0x00, 0x00], [0x80, 0x21], [0x80, 0x60], [0x90], [0xA0], [0x8F],
  [0xBE, 0xDE, 0xFF, 0xFF], [0x47], [0x47, 0x40, 0x00, 0x10], [0x47, 0x1F, 0xFF, 0x10], [0x47, 0xC1, 0x00, 0x30],
  [0xB7, 0x80], [0x00, 0x00, 0xB0], [0xFF, 0xFF, 0xFF, 0xFF], [0x00, 0x00, 0x00, 0x00], [0x7F, 0xFF, 0xFF, 0xFF],
]

/// A stream of valid datagrams of every format whose numbers move like a real stream's
/// (mostly in order, with gaps, reordering, duplicates and restarts), so that mutating
/// them reaches every class of the sequence tracker and the continuity check.
private struct MulticastSeeds {
  var beaconSequence: [UInt64] = [0, 0, 0]
  var rtpSequence: UInt16 = 65_500
  var rtpTimestamp: UInt32 = .max - 100_000
  var fieldSequence: UInt64 = 0xFFFF_FF00
  var counters = [UInt8](repeating: 0, count: 3)
  var ssrc: UInt32 = 0x1234_5678

  /// The next number after `value`: +1 mostly, otherwise a gap, a step back or a jump.
  static func step(_ value: UInt64, _ rng: inout SeededGenerator) -> UInt64 {
    switch UInt8.random(in: 0..<20, using: &rng) {
    case 0..<14: value &+ 1
    case 14: value &+ UInt64.random(in: 2...50, using: &rng)
    case 15: value &- UInt64.random(in: 0...40, using: &rng)
    case 16: value
    case 17: value &+ 4000
    case 18: value &- 2000
    default: 0
    }
  }

  mutating func beacon(sendTime: Int64, _ rng: inout SeededGenerator) -> [UInt8] {
    let sender = Int.random(in: 0..<3, using: &rng)
    beaconSequence[sender] = Self.step(beaconSequence[sender], &rng)
    let payload = BeaconPayload(
      streamID: 1, senderID: UInt32(sender) &* 0x0101_0101, sequence: beaconSequence[sender],
      sendTimeNanoseconds: sendTime)
    return payload.encoded(size: Int.random(in: 32...96, using: &rng))
  }

  mutating func rtpHeader(payloadType: UInt8, _ rng: inout SeededGenerator) -> [UInt8] {
    rtpSequence = UInt16(truncatingIfNeeded: Self.step(UInt64(rtpSequence), &rng))
    rtpTimestamp &+= 3600
    if UInt8.random(in: 0..<200, using: &rng) == 0 { ssrc = .random(in: 0...(.max), using: &rng) }
    var header: [UInt8] = [0x80, payloadType, UInt8(rtpSequence >> 8), UInt8(rtpSequence & 0xFF)]
    for shift in stride(from: 24, through: 0, by: -8) { header.append(UInt8(truncatingIfNeeded: rtpTimestamp >> UInt32(shift))) }
    for shift in stride(from: 24, through: 0, by: -8) { header.append(UInt8(truncatingIfNeeded: ssrc >> UInt32(shift))) }
    return header
  }

  /// Seven TS packets: now and then a PAT, a null packet or an adaptation field.
  mutating func transportStream(_ rng: inout SeededGenerator) -> [UInt8] {
    var bytes: [UInt8] = []
    bytes.reserveCapacity(7 * 188)
    for _ in 0..<7 {
      let kind = UInt8.random(in: 0..<10, using: &rng)
      let pid = kind == 0 ? 0 : kind == 1 ? 0x1FFF : 0x100 + Int(kind % 2)
      let slot = kind == 0 ? 0 : kind == 1 ? 2 : 1
      counters[slot] = (counters[slot] &+ 1) & 0x0F
      var packet = [UInt8](repeating: 0xFF, count: 188)
      packet[0] = 0x47
      packet[1] = (kind == 0 ? 0x40 : 0) | UInt8(pid >> 8)
      packet[2] = UInt8(pid & 0xFF)
      let adaptation = kind == 9
      packet[3] = (adaptation ? 0x30 : 0x10) | counters[slot]
      if kind == 0 {
        packet[4] = 0
        packet[5] = 0
      } else if adaptation {
        packet[4] = 7
        packet[5] = UInt8.random(in: 0..<4, using: &rng) == 0 ? 0x80 : 0x10
      }
      bytes += packet
    }
    return bytes
  }

  mutating func field(_ rng: inout SeededGenerator) -> [UInt8] {
    fieldSequence = Self.step(fieldSequence, &rng)
    let little = (0..<4).map { UInt8(truncatingIfNeeded: fieldSequence >> (8 * UInt64($0))) }
    return little + [0x00, UInt8(truncatingIfNeeded: fieldSequence >> 8), UInt8(truncatingIfNeeded: fieldSequence)]
      + [UInt8](repeating: 0x5A, count: 6)
  }

  /// Transport packets as ffmpeg's default udp:// output sends them: a byte stream cut
  /// into datagrams whatever the packet boundaries (1,472 bytes mostly), now and then with
  /// 204-byte packets (16 Reed-Solomon bytes after each).
  var byteStream: [UInt8] = []

  mutating func straddled(_ rng: inout SeededGenerator) -> [UInt8] {
    while byteStream.count < 1500 {
      var packets = transportStream(&rng)
      if UInt8.random(in: 0..<8, using: &rng) == 0 {
        packets = stride(from: 0, to: packets.count, by: 188).flatMap {
          packets[$0..<($0 + 188)] + [UInt8](repeating: UInt8.random(in: 0...255, using: &rng), count: 16)
        }
      }
      byteStream += packets
    }
    let size = UInt8.random(in: 0..<4, using: &rng) == 0 ? Int.random(in: 1...1500, using: &rng) : 1472
    defer { byteStream.removeFirst(size) }
    return Array(byteStream.prefix(size))
  }

  mutating func next(sendTime: Int64, _ rng: inout SeededGenerator) -> [UInt8] {
    switch UInt8.random(in: 0..<6, using: &rng) {
    case 0: beacon(sendTime: sendTime, &rng)
    case 1: rtpHeader(payloadType: 33, &rng) + transportStream(&rng)
    case 2: transportStream(&rng)
    case 3: field(&rng)
    case 4: (UInt8.random(in: 0..<3, using: &rng) == 0 ? rtpHeader(payloadType: 33, &rng) : []) + straddled(&rng)
    default: rtpHeader(payloadType: 0, &rng) + [UInt8](repeating: 0xD5, count: 160)
    }
  }
}

/// One analyzer under test, with what it may do.
private struct Subject {
  let name: String
  var analyzer: PayloadAnalyzer
  var previous: PayloadSnapshot
  /// The verdict on a datagram, decided apart from the analyzer; nil when only the
  /// analyzer knows (mpegts: RTP or plain TS).
  let expectAccepted: (ArraySlice<UInt8>) -> Bool?
  /// Each accepted datagram adds exactly one to `received` (0 or 1 when nil).
  let receivedStep: UInt64?
  let delay: Bool

  init(
    _ name: String, _ analyzer: PayloadAnalyzer, receivedStep: UInt64?, delay: Bool = false,
    expectAccepted: @escaping (ArraySlice<UInt8>) -> Bool?
  ) {
    self.name = name
    self.analyzer = analyzer
    previous = analyzer.snapshot
    self.receivedStep = receivedStep
    self.delay = delay
    self.expectAccepted = expectAccepted
  }

  /// The stream declared silent: only pending holes may be settled, as lost (or a stray as
  /// a duplicate); nothing else moves and nothing goes down.
  mutating func settle(input: Int, seed: UInt64) {
    analyzer.settle()
    let now = analyzer.snapshot
    precondition(
      now.lost >= previous.lost && now.duplicate >= previous.duplicate
        && now.lost - previous.lost <= 64 * 64 && now.duplicate - previous.duplicate <= 64,
      "multicast: \(name): settling moved loss wrongly at input \(input) (seed \(seed))")
    var unchanged = now
    unchanged.lost = previous.lost
    unchanged.duplicate = previous.duplicate
    precondition(unchanged == previous, "multicast: \(name): settling moved more than loss at input \(input) (seed \(seed))")
    previous = now
  }

  mutating func check(_ datagram: ArraySlice<UInt8>, arrival: Int64, hostDropped: UInt64, input: Int, seed: UInt64) -> Bool {
    let verdict = analyzer.analyze(datagram, arrival: arrival, hostDropped: hostDropped)
    let now = analyzer.snapshot
    let before = previous
    previous = now
    func require(_ condition: Bool, _ what: String) {
      precondition(condition, "multicast: \(name): \(what) at input \(input) (seed \(seed))")
    }
    for (new, old) in [
      (now.received, before.received), (now.lost, before.lost), (now.duplicate, before.duplicate),
      (now.late, before.late), (now.resets, before.resets),
    ] {
      require(new >= old, "a counter went down")
    }
    if let errors = now.mpegtsErrors {
      let old = before.mpegtsErrors ?? MPEGTSErrorCounts()
      for type in MPEGTSErrorType.allCases { require(errors[type] >= old[type], "\(type.rawValue) went down") }
    }
    if let discontinuities = now.mpegtsDiscontinuities {
      let old = before.mpegtsDiscontinuities ?? MPEGTSDiscontinuityCounts()
      for reason in MPEGTSDiscontinuityReason.allCases {
        require(discontinuities[reason] >= old[reason], "discontinuity \(reason.rawValue) went down")
      }
    }
    require((now.mpegtsDiscontinuities != nil) == (analyzer.format == .mpegts), "discontinuities for the wrong format")
    require((now.mpegtsErrors != nil) == (analyzer.format == .mpegts), "TS errors for the wrong format")
    if let jitter = now.jitterSeconds { require(jitter.isFinite && jitter >= 0, "jitter \(jitter)") }
    switch verdict {
    case .malformed:
      require(analyzer.format != .raw, "raw called a datagram malformed")
      require(now == before, "a malformed datagram moved a statistic")
      if let expected = expectAccepted(datagram) { require(!expected, "valid datagram called malformed") }
      return false
    case .accepted(let oneWayDelay):
      if let expected = expectAccepted(datagram) { require(expected, "invalid datagram accepted") }
      require((oneWayDelay != nil) == delay, "one-way delay where none belongs, or none where it does")
      if let oneWayDelay { require(oneWayDelay.isFinite, "one-way delay \(oneWayDelay)") }
      let step = now.received - before.received
      require(receivedStep.map { step == $0 } ?? (step <= 1), "received moved by \(step)")
      // Each packet in at most one class, over the stream: no more classes than datagrams.
      // A stray's class waits for the packet after it, so with one sequence (the
      // configured field) a datagram settles at most two: the stray's and its own. Formats
      // with a sequence per sender (RTP's SSRCs, beacon senders) settle every other
      // sender's stray when one restarts. Loss is decided as holes leave the reorder
      // horizon, so it moves only with a packet that moves the stream on (or a reset).
      let classes = (now.duplicate - before.duplicate) + (now.late - before.late) + (now.resets - before.resets)
      require(now.duplicate + now.late + now.resets <= now.received, "more classes than datagrams")
      if analyzer.format == .sequence { require(classes <= 2, "one packet settled \(classes) classes") }
      // A late packet never moves loss, and a duplicate only as the stray it settles.
      if now.lost != before.lost && now.resets == before.resets && analyzer.format == .sequence {
        require(now.late == before.late && now.duplicate - before.duplicate <= 1, "loss from a late or duplicate packet")
      }
      require(now.lost - before.lost <= 100_000, "a gap of \(now.lost - before.lost)")
      require(now.sequenced || now.counts == SequenceCounts(), "sequence counters on an unsequenced stream")
      return true
    }
  }
}

/// Feeds valid, mutated and random datagrams (as slices of a larger buffer, like the
/// receive engine's) to a `PayloadAnalyzer` of every format, checking after each one that
/// counters never go down, that a malformed datagram moves nothing, that each packet lands
/// in one class, and that the verdict matches what the decoders say on their own.
func fuzzMulticast(iterations: Int, seed: UInt64) -> Int {
  var mutator = Mutator(seed: seed, tokens: multicastTokens)
  var rng = SeededGenerator(seed: seed ^ 0x6D75_6C74_6963_6173)
  var seeds = MulticastSeeds()
  let little32 = SequenceField(offset: 0, width: 4, endianness: .little)
  let big16 = SequenceField(offset: 5, width: 2, endianness: .big)
  let big64 = SequenceField(offset: 3, width: 8, endianness: .big)
  func fits(_ field: SequenceField) -> (ArraySlice<UInt8>) -> Bool? { { $0.count >= field.offset + field.width } }
  var subjects = [
    Subject("raw", PayloadAnalyzer(format: .raw), receivedStep: 0) { _ in true },
    Subject("beacon", PayloadAnalyzer(format: .beacon), receivedStep: 1) { BeaconPayload(parsing: $0) != nil },
    Subject("beacon-synchronised", PayloadAnalyzer(format: .beacon, clockSynchronized: true), receivedStep: 1, delay: true) {
      BeaconPayload(parsing: $0) != nil
    },
    Subject("rtp", PayloadAnalyzer(format: .rtp), receivedStep: 1) { RTPPacket(parsing: $0) != nil },
    Subject("rtp-90k", PayloadAnalyzer(format: .rtp, clockRate: 90000), receivedStep: 1) { RTPPacket(parsing: $0) != nil },
    Subject("mpegts", PayloadAnalyzer(format: .mpegts), receivedStep: nil) { _ in nil },
    Subject("sequence-le32", PayloadAnalyzer(format: .sequence, sequenceField: little32), receivedStep: 1, expectAccepted: fits(little32)),
    Subject("sequence-be16", PayloadAnalyzer(format: .sequence, sequenceField: big16), receivedStep: 1, expectAccepted: fits(big16)),
    Subject("sequence-be64", PayloadAnalyzer(format: .sequence, sequenceField: big64), receivedStep: 1, expectAccepted: fits(big64)),
  ]
  var arrival: Int64 = 1_700_000_000_000_000_000
  var accepted = [Int](repeating: 0, count: subjects.count)
  for index in 0..<iterations {
    switch UInt16.random(in: 0..<1000, using: &rng) {
    case 0..<980: arrival += Int64.random(in: 0...20_000_000, using: &rng)
    case 980..<995: arrival += 700_000_000
    default: arrival -= 1_000_000_000  // the wall clock stepped back
    }
    let valid = seeds.next(sendTime: arrival - Int64.random(in: -1_000_000...5_000_000, using: &rng), &rng)
    let datagram =
      switch index % 4 {
      case 0: valid
      case 1, 2: mutator.mutate(valid)
      default: mutator.randomInput(maxLength: 1400)
      }
    // At a random offset in a larger buffer, so the slice's indices do not start at 0.
    let offset = Int.random(in: 0...64, using: &rng)
    let buffer = [UInt8](repeating: 0xA5, count: offset) + datagram + [0x5A, 0x5A]
    let slice = buffer[offset..<(offset + datagram.count)]
    if let packet = RTPPacket(parsing: slice) {
      precondition(
        packet.payloadOffsets.lowerBound >= RTPPacket.fixedHeaderSize && packet.payloadOffsets.upperBound <= slice.count,
        "multicast: RTP payload outside its datagram at input \(index) (seed \(seed))")
    }
    // Now and then the socket dropped datagrams just before this one (SO_RXQ_OVFL): they
    // may excuse part of a gap, never make a counter go down or a class count twice.
    let hostDropped = index % 16 == 5 ? UInt64.random(in: 1...2000, using: &rng) : 0
    if index % 101 == 50 {
      for subject in subjects.indices { subjects[subject].settle(input: index, seed: seed) }
    }
    for subject in subjects.indices
    where subjects[subject].check(slice, arrival: arrival, hostDropped: hostDropped, input: index, seed: seed) {
      accepted[subject] += 1
    }
  }
  let summary = zip(subjects, accepted).map { "\($0.name) \($1)" }.joined(separator: ", ")
  print("multicast: \(iterations) inputs, accepted by \(summary), no crash (seed \(seed))")
  // How deep the inputs reached: every class of the tracker and every TS error should be non-zero.
  for subject in subjects where subject.previous.sequenced || subject.previous.mpegtsErrors != nil {
    let counts = subject.previous.counts
    var line = "  \(subject.name): lost \(counts.lost), duplicate \(counts.duplicate), late \(counts.late), resets \(counts.resets)"
    if let errors = subject.previous.mpegtsErrors {
      line += MPEGTSErrorType.allCases.map { ", \($0.rawValue) \(errors[$0])" }.joined()
    }
    if let discontinuities = subject.previous.mpegtsDiscontinuities {
      line += MPEGTSDiscontinuityReason.allCases.map { ", discontinuity \($0.rawValue) \(discontinuities[$0])" }.joined()
    }
    print(line)
  }
  return iterations
}
