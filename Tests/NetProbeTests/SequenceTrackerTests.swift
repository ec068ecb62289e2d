import Testing
@testable import NetProbe

@Suite struct SequenceTrackerTests {
  /// Records each number and returns the events, for compact expectations.
  func events(_ tracker: inout SequenceTracker, _ sequences: [UInt64]) -> [SequenceEvent] {
    sequences.map { tracker.record($0) }
  }

  @Test func firstThenInOrder() {
    var tracker = SequenceTracker(width: 16)
    #expect(tracker.highestSequence == nil)
    #expect(events(&tracker, [10, 11, 12]) == [.first, .inOrder, .inOrder])
    #expect(tracker.counts == SequenceCounts(received: 3))
    #expect(tracker.highestSequence == 12)
  }

  @Test func wrapsAt16Bits() {
    var tracker = SequenceTracker(width: 16)
    #expect(events(&tracker, [65534, 65535, 0, 1]) == [.first, .inOrder, .inOrder, .inOrder])
    #expect(tracker.lost == 0 && tracker.resets == 0)
    // A gap across the wrap: 65535 → 2 skips 0 and 1.
    var across = SequenceTracker(width: 16)
    #expect(events(&across, [65535, 2]) == [.first, .gap(missing: 2)])
    // Late and duplicate across the wrap: 65534 is behind 3 by 5.
    #expect(events(&across, [65534, 65534]) == [.late, .duplicate])
    // 0 and 1 are still within the reorder horizon: missing, not yet lost.
    #expect(across.counts == SequenceCounts(received: 4, duplicate: 1, late: 1))
  }

  @Test func numbersAreTakenModuloTheWidth() {
    var tracker = SequenceTracker(width: 16)
    #expect(events(&tracker, [0x1_FFFF, 0x2_0000]) == [.first, .inOrder])
    #expect(tracker.highestSequence == 0)
  }

  @Test func aReorderedPacketIsLateNotLost() {
    var tracker = SequenceTracker(width: 16)
    #expect(events(&tracker, [1, 2, 5]) == [.first, .inOrder, .gap(missing: 2)])
    #expect(tracker.lost == 0)
    #expect(events(&tracker, [3, 4]) == [.late, .late])
    #expect(tracker.counts == SequenceCounts(received: 5, late: 2))
    // Once arrived, a late number is a duplicate the next time.
    #expect(tracker.record(3) == .duplicate)
    #expect(tracker.counts == SequenceCounts(received: 6, duplicate: 1, late: 2))
    for sequence in 6...200 { tracker.record(UInt64(sequence)) }
    #expect(tracker.lost == 0)
  }

  @Test func aHoleIsLostOnceItFallsBehindTheHorizon() {
    var tracker = SequenceTracker(width: 16)
    #expect(events(&tracker, [1, 2, 5]) == [.first, .inOrder, .gap(missing: 2)])
    for sequence in 6...66 { tracker.record(UInt64(sequence)) }
    #expect(tracker.lost == 0)
    tracker.record(67)  // 3 is now 64 behind: given up
    #expect(tracker.lost == 1)
    #expect(tracker.record(4) == .late)  // still within the horizon: not lost
    tracker.record(68)
    #expect(tracker.counts == SequenceCounts(received: 67, lost: 1, late: 1))
    // Later than the horizon: counted lost before it came, so it brings no new number
    // and counts duplicate, not late as well.
    #expect(tracker.record(3) == .tooLate)
    #expect(tracker.counts == SequenceCounts(received: 68, lost: 1, duplicate: 1, late: 1))
    // Numbers 1…68, each counted once: 67 received, 1 lost.
    #expect(tracker.lost + tracker.received - tracker.duplicate == 68)
  }

  @Test func aSenderRestartIsOneResetAndNothingElse() {
    var tracker = SequenceTracker(width: 32)
    for sequence in 5000...5100 { tracker.record(UInt64(sequence)) }
    // The sender restarts from 0: a stray, then 1 confirms it.
    #expect(events(&tracker, [0, 1, 2]) == [.stray, .reset, .inOrder])
    #expect(tracker.counts == SequenceCounts(received: 104, resets: 1))
  }

  @Test func aStrayNothingFollowedIsSettledWhenTheStreamEnds() {
    var tracker = SequenceTracker(width: 32)
    #expect(events(&tracker, [1, 2, 90_000]) == [.first, .inOrder, .stray])
    #expect(tracker.counts == SequenceCounts(received: 3))
    tracker.resume()
    #expect(tracker.counts == SequenceCounts(received: 3, duplicate: 1))
    var restarted = SequenceTracker(width: 32)
    #expect(events(&restarted, [1, 2, 90_000]) == [.first, .inOrder, .stray])
    #expect(restarted.restart(at: 7) == .reset)
    #expect(restarted.counts == SequenceCounts(received: 4, duplicate: 1, resets: 1))
  }

  @Test func aReorderedPairAtTheStartIsLate() {
    var tracker = SequenceTracker(width: 16)
    #expect(events(&tracker, [11, 10, 12]) == [.first, .late, .inOrder])
    #expect(tracker.counts == SequenceCounts(received: 3, late: 1))
  }

  /// lost / (lost + received − duplicate) is the share of numbers not received within the
  /// reorder horizon, whatever came late, too late, twice, or as a lone stray: every
  /// number counts once, as lost or as received.
  @Test func lostOverNumbersAccountedIsTheLossRatio() {
    var tracker = SequenceTracker(width: 32)
    var sent: Set<UInt64> = []
    var inTime: Set<UInt64> = []
    for sequence in UInt64(1)...1000 {
      sent.insert(sequence)
      if sequence % 50 == 0 { continue }  // lost for good: 20 numbers
      if sequence % 97 == 0 { continue }  // delivered 200 numbers late, below
      tracker.record(sequence)
      inTime.insert(sequence)
      if sequence % 31 == 0 { tracker.record(sequence) }  // duplicated
      if sequence > 200, (sequence - 200) % 97 == 0, (sequence - 200) % 50 != 0 {
        tracker.record(sequence - 200)  // 200 behind: after its hole was counted lost
      }
      if sequence == 501 { tracker.record(3_000_000) }  // a lone corrupt number
    }
    for sequence in UInt64(1001)...1064 {
      tracker.record(sequence)
      sent.insert(sequence)
      inTime.insert(sequence)
    }
    let counts = tracker.counts
    // 32 copies, 8 of the 10 delayed numbers (873 and 970 never came) and the stray.
    #expect(counts.late == 0 && counts.duplicate == 32 + 8 + 1)
    // 20 never delivered and 10 delayed past the horizon; everything up to 1000 is
    // decided, 64 numbers behind 1064.
    #expect(counts.lost == 30 && counts.lost == UInt64(sent.count - inTime.count))
    #expect(counts.lost + counts.received - counts.duplicate == UInt64(sent.count))
  }

  @Test func aResumedStreamStartsAgainWithoutGapOrReset() {
    var tracker = SequenceTracker(width: 16)
    #expect(events(&tracker, [1, 2, 4]) == [.first, .inOrder, .gap(missing: 1)])
    tracker.resume()  // 3 was missing while we listened: lost
    #expect(tracker.counts == SequenceCounts(received: 3, lost: 1))
    // Numbers 5…299 went by while the group was left: neither a gap nor a reset.
    #expect(events(&tracker, [300, 301]) == [.first, .inOrder])
    #expect(tracker.counts == SequenceCounts(received: 5, lost: 1))
  }

  @Test func holesPendingAtAResetAreLost() {
    var tracker = SequenceTracker(width: 32)
    #expect(events(&tracker, [10, 13, 14]) == [.first, .gap(missing: 2), .inOrder])
    #expect(events(&tracker, [1_000_000, 1_000_001]) == [.stray, .reset])
    #expect(tracker.counts == SequenceCounts(received: 5, lost: 2, resets: 1))
  }

  @Test func duplicatesWithinTheWindow() {
    var tracker = SequenceTracker(width: 32)
    for sequence in 1...100 { tracker.record(UInt64(sequence)) }
    #expect(events(&tracker, [100, 50, 1]) == [.duplicate, .duplicate, .duplicate])
    #expect(tracker.counts == SequenceCounts(received: 103, duplicate: 3))
  }

  @Test func theWindowIs1024NumbersBehindTheHighest() {
    var tracker = SequenceTracker(width: 16)
    for sequence in 0...2000 { tracker.record(UInt64(sequence)) }
    // 977 is 1023 behind 2000: still in the window and received.
    #expect(tracker.record(977) == .duplicate)
    // 976 is 1024 behind: too old to tell, a stray until the next number decides.
    #expect(tracker.record(976) == .stray)
    #expect(tracker.counts == SequenceCounts(received: 2003, duplicate: 1))
    #expect(tracker.highestSequence == 2000)
    #expect(tracker.record(2001) == .inOrder)
    #expect(tracker.counts == SequenceCounts(received: 2004, duplicate: 2))
  }

  @Test func aSingleStrayIsNoRestartAndNoLoss() {
    var tracker = SequenceTracker(width: 16)
    for sequence in 3000...5000 { tracker.record(UInt64(sequence)) }
    // A very old datagram (replayed, or from a slow path), then the stream goes on.
    #expect(events(&tracker, [3000, 5001, 5002]) == [.stray, .inOrder, .inOrder])
    #expect(tracker.counts == SequenceCounts(received: 2004, duplicate: 1))
    // A corrupt number far ahead: the same.
    #expect(events(&tracker, [40000, 5003]) == [.stray, .inOrder])
    for sequence in 5004...5100 { tracker.record(UInt64(sequence)) }
    #expect(tracker.counts == SequenceCounts(received: 2103, duplicate: 2))
  }

  @Test func slotsThatTheWindowSlidesPastAreForgotten() {
    var tracker = SequenceTracker(width: 16)
    #expect(events(&tracker, [0, 600, 1200]) == [.first, .gap(missing: 599), .gap(missing: 599)])
    // 1024 shares its bitmap slot with 0, which was received but has left the window: not
    // received, and already counted lost (it is 176 behind).
    #expect(tracker.record(1024) == .tooLate)
    #expect(tracker.record(600) == .duplicate)
    #expect(tracker.record(300) == .tooLate)
    #expect(tracker.record(1150) == .late)
    // 1…599 and 601…1136 are beyond the horizon and lost (1024 and 300 among them: they
    // came too late to change that); 1137…1199 are still pending, 1150 came in time.
    #expect(tracker.counts == SequenceCounts(received: 7, lost: 1135, duplicate: 3, late: 1))
  }

  @Test func aGapWiderThanTheWindowClearsIt() {
    var tracker = SequenceTracker(width: 16)
    #expect(events(&tracker, [0, 1500, 1499, 1499]) == [.first, .gap(missing: 1499), .late, .duplicate])
  }

  @Test func resetsForwardAndBackward() {
    var tracker = SequenceTracker(width: 16)
    // Exactly the largest jump is still loss.
    #expect(events(&tracker, [100, 3100]) == [.first, .gap(missing: 2999)])
    // One more is a stray; the next number following it confirms a restart, with no
    // loss counted for the distance.
    #expect(events(&tracker, [6101, 6102, 6103]) == [.stray, .reset, .inOrder])
    #expect(tracker.counts == SequenceCounts(received: 5, lost: 2999, resets: 1))
    // Far behind: a restart too, once confirmed.
    #expect(events(&tracker, [10, 11]) == [.stray, .reset])
    #expect(tracker.counts == SequenceCounts(received: 7, lost: 2999, resets: 2))
    // The old stream's numbers are forgotten: 6102 is now far ahead of 11.
    #expect(tracker.record(6102) == .stray)
  }

  @Test func theForwardLimitIsConfigurable() {
    var tracker = SequenceTracker(width: 64, maxForwardJump: 10)
    #expect(events(&tracker, [0, 10, 21, 22]) == [.first, .gap(missing: 9), .stray, .reset])
  }

  @Test func sixtyFourBitsWrapAndReset() {
    var tracker = SequenceTracker(width: 64)
    #expect(events(&tracker, [.max - 1, .max, 0, 5]) == [.first, .inOrder, .inOrder, .gap(missing: 4)])
    #expect(events(&tracker, [3, 3, .max]) == [.late, .duplicate, .duplicate])
    #expect(events(&tracker, [1 << 63, 1 << 63 + 1]) == [.stray, .reset])
    // 1, 2 and 4 never came: lost at the reset. 3 came late; the stray began the new stream.
    #expect(tracker.counts == SequenceCounts(received: 9, lost: 3, duplicate: 2, late: 1, resets: 1))
  }

  @Test func anOutsideRestartCountsAResetAndRestartsTracking() {
    var tracker = SequenceTracker(width: 16)
    tracker.record(7)
    tracker.record(8)
    #expect(tracker.restart(at: 8) == .reset)
    #expect(tracker.record(9) == .inOrder)
    #expect(tracker.counts == SequenceCounts(received: 4, resets: 1))
  }

  @Test func advancesTellsForwardFromBackward() {
    var tracker = SequenceTracker(width: 16)
    #expect(tracker.advances(42))
    tracker.record(100)
    #expect(tracker.advances(101) && tracker.advances(3100))
    #expect(!tracker.advances(100) && !tracker.advances(99) && !tracker.advances(3101))
  }

  @Test func theHostsDropsAreNotLoss() {
    var tracker = SequenceTracker(width: 32)
    for sequence in 1...10 { tracker.record(UInt64(sequence)) }
    // The socket dropped 11…19 (its drop count grew by 9 when 20 was queued).
    #expect(tracker.record(20, hostDropped: 9) == .inOrder)
    // 21…29 missing: 5 dropped by the host, 4 lost on the way.
    #expect(tracker.record(30, hostDropped: 5) == .gap(missing: 4))
    // More drops than the gap (another stream's, or a count that lagged): only the gap.
    #expect(tracker.record(36, hostDropped: 50) == .inOrder)
    for sequence in 37...200 { tracker.record(UInt64(sequence)) }
    #expect(tracker.counts == SequenceCounts(received: 177, lost: 4))
    // A dropped number that arrives after all brings nothing new.
    #expect(tracker.record(150, hostDropped: 0) == .duplicate)
    #expect(tracker.record(15) == .duplicate)
    // Drops wider than the horizon and the window: none of them lost.
    #expect(tracker.record(3000, hostDropped: 2799) == .inOrder)
    #expect(tracker.record(3300, hostDropped: 100) == .gap(missing: 199))
    for sequence in 3301...3400 { tracker.record(UInt64(sequence)) }
    #expect(tracker.lost == 4 + 199)
  }

  /// A random walk of numbers (mostly in order, with gaps, reordering, duplicates and
  /// jumps) against a model that remembers every number in a Set, 16 and 64 bits.
  @Test(arguments: [16, 64]) func agreesWithASetModel(width: Int) {
    var random = TestRandom(seed: UInt64(width))
    var tracker = SequenceTracker(width: width)
    var model = TrackerModel(width: width)
    var position: Int64 = 60_000
    var counts = SequenceCounts()
    var events: Set<SequenceEvent> = []
    for _ in 0..<200_000 {
      switch random.next(below: 100) {
      case 0..<70: position += 1
      case 70..<80: position += Int64(random.next(below: 40)) + 2
      case 80..<90: position -= Int64(random.next(below: 60))
      case 90..<99: position -= Int64(random.next(below: 1100))
      default: position += random.next(below: 2) == 0 ? 5000 : -5000
      }
      // Now and then the socket dropped some datagrams before this one.
      let dropped = random.next(below: 20) == 0 ? random.next(below: 80) : 0
      let expected = model.record(position, hostDropped: dropped)
      let mask: UInt64 = width == 64 ? .max : (1 << UInt64(width)) - 1
      let event = tracker.record(UInt64(bitPattern: position) & mask, hostDropped: dropped)
      events.insert(event)
      #expect(event == expected, "at \(position)")
      if event != expected { return }
      // Counters only growing, each as the model counts it.
      let before = counts
      counts = tracker.counts
      #expect(counts.received == before.received + 1)
      #expect(counts.lost >= before.lost && counts.duplicate >= before.duplicate && counts.late >= before.late)
      #expect(counts == model.counts, "counts at \(position)")
      if counts != model.counts { return }
      // After a stray, go on from it half the time (a sender restart the next number
      // confirms), else back to the stream (a single stray packet).
      if event != .stray || random.next(below: 2) == 0 { position = model.highest ?? position }
    }
    #expect(counts.lost > 0 && counts.late > 0 && counts.duplicate > 0 && counts.resets > 0)
    #expect(events.contains(.tooLate) && events.contains(.stray))
  }
}

/// The tracker's rules over unbounded integers and a Set of everything received since
/// the last reset: no bitmap, no modular arithmetic, loss decided number by number.
struct TrackerModel {
  let width: Int
  var highest: Int64?
  var received: Set<Int64> = []
  var probation: Int64?
  /// The first number tracked since the last (re)start.
  var first: Int64 = 0
  /// Numbers up to here are decided (counted lost or received).
  var decided: Int64 = 0
  var counts = SequenceCounts()
  var lost: UInt64 { counts.lost }

  init(width: Int) { self.width = width }

  mutating func record(_ sequence: Int64, hostDropped: UInt64 = 0) -> SequenceEvent {
    counts.received += 1
    guard let highest else { return restart(sequence, .first) }
    if let expected = probation {
      probation = nil
      if sequence == expected {
        decide(upTo: highest)
        counts.resets += 1
        _ = restart(sequence - 1, .reset)
        self.highest = sequence
        received.insert(sequence)
        return .reset
      }
      counts.duplicate += 1  // the stray stood alone
    }
    let ahead = sequence - highest
    if ahead == 0 {
      counts.duplicate += 1
      return .duplicate
    }
    if ahead >= 1 && ahead <= 3000 {
      self.highest = sequence
      received.insert(sequence)
      // The newest numbers of the gap are the host's drops: as good as received.
      let excused = min(Int64(hostDropped), ahead - 1)
      if excused > 0 { for number in (sequence - excused)..<sequence { received.insert(number) } }
      decide(upTo: sequence - 64)
      let missing = ahead - 1 - excused
      return missing == 0 ? .inOrder : .gap(missing: UInt64(missing))
    }
    if ahead < 0 && -ahead < 1024 {
      guard received.insert(sequence).inserted else {
        counts.duplicate += 1
        return .duplicate
      }
      if sequence >= first && sequence <= decided {
        counts.duplicate += 1  // counted lost before it came
        return .tooLate
      }
      counts.late += 1
      return .late
    }
    probation = sequence + 1
    return .stray
  }

  private mutating func decide(upTo limit: Int64) {
    guard limit > decided else { return }
    for number in (decided + 1)...limit where !received.contains(number) { counts.lost += 1 }
    decided = limit
  }

  private mutating func restart(_ sequence: Int64, _ event: SequenceEvent) -> SequenceEvent {
    highest = sequence
    received = [sequence]
    first = sequence
    decided = sequence
    return event
  }
}

/// SplitMix64, so that the property tests are the same at every run.
struct TestRandom {
  private var state: UInt64
  init(seed: UInt64) { state = seed }

  mutating func next() -> UInt64 {
    state &+= 0x9E37_79B9_7F4A_7C15
    var z = state
    z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
    z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
    return z ^ (z >> 31)
  }

  mutating func next(below bound: UInt64) -> UInt64 { next() % bound }
}
