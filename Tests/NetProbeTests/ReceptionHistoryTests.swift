import Foundation
import Testing
@testable import NetProbe

private let second: Int64 = 1_000_000_000
private let epoch: Int64 = 1_700_000_000

/// `count` arrivals `spacing` ns apart from `start` (ns), each in order.
private func steady(_ history: inout ReceptionHistory, from start: Int64, count: Int, spacing: Int64) {
  for index in 0..<count { history.record(arrival: start + Int64(index) * spacing, event: .inOrder) }
}

@Suite struct ReceptionHistoryTests {
  @Test func countsPacketsPerSecondAndKnowsWhereItBegan() {
    var history = ReceptionHistory()
    steady(&history, from: epoch * second, count: 50, spacing: second / 10)
    let window = history.seconds(through: epoch + 5)
    #expect(window.count == ReceptionHistory.capacity)
    // Seconds before the first packet are unknown; the five seconds received, ten each;
    // the second after, silent (zero, not unknown).
    #expect(window[..<94].allSatisfy { $0 == nil })
    #expect(window[94..<99].map { $0?.packets } == [10, 10, 10, 10, 10])
    #expect(window[99] == ReceptionHistory.Second())
    #expect(abs(Double(window[95]!.longestSilence) - 0.1) < 1e-6)
    #expect(window.compactMap { $0 }.allSatisfy { $0.lost == 0 && $0.gaps == 0 })
  }

  @Test func aJoinStartsTheHistoryBeforeTheFirstPacket() {
    var history = ReceptionHistory()
    history.start(atSecond: epoch)
    history.record(arrival: (epoch + 3) * second, event: nil)
    let window = history.seconds(through: epoch + 3)
    #expect(window[96..<100].map { $0?.packets } == [0, 0, 0, 1])
    #expect(window[95] == nil)
  }

  @Test func aGapIsPlacedInTheSecondsItsNumbersWereDue() {
    var history = ReceptionHistory()
    // Ten a second until 0.9 s, then nothing until 3.0 s: the 20 numbers between were due
    // at 1.0, 1.1, … 2.9 s — ten in each of the two silent seconds.
    steady(&history, from: epoch * second, count: 10, spacing: second / 10)
    history.record(arrival: (epoch + 3) * second, event: .gap(missing: 20))
    let window = history.seconds(through: epoch + 3)
    let last4 = window[96...].map { $0! }
    #expect(last4.map(\.packets) == [10, 0, 0, 1])
    #expect(last4.map(\.lost) == [0, 10, 10, 0])
    // One hole, counted where it began; its silence where it ended.
    #expect(last4.map(\.gaps) == [0, 1, 0, 0])
    #expect(abs(Double(last4[3].longestSilence) - 2.1) < 1e-6)
  }

  @Test func aLateFillTakesOneBackAndASmallGapStaysInItsSecond() {
    var history = ReceptionHistory()
    steady(&history, from: epoch * second, count: 5, spacing: second / 10)
    history.record(arrival: epoch * second + 600_000_000, event: .gap(missing: 2))
    #expect(history.seconds(through: epoch).last??.lost == 2)
    history.record(arrival: epoch * second + 650_000_000, event: .late)
    let now = history.seconds(through: epoch).last!!
    #expect(now.lost == 1 && now.gaps == 1 && now.packets == 7)
  }

  @Test func theRingForgetsWhatIsOlderThanItsCapacity() {
    var history = ReceptionHistory()
    let capacity = Int64(ReceptionHistory.capacity)
    for offset in 0..<(capacity + 20) {
      for packet in 0..<Int64(offset % 5 + 1) { history.record(arrival: (epoch + offset) * second + packet * 1000, event: nil) }
    }
    let end = epoch + capacity + 19
    let window = history.seconds(through: end)
    #expect(window.allSatisfy { $0 != nil })
    for (index, entry) in window.enumerated() {
      let offset = end - capacity + 1 + Int64(index) - epoch
      #expect(entry?.packets == UInt32(offset % 5 + 1))
    }
    // A long silence clears the ring, and a gap spanning it keeps only what the ring holds.
    history.record(arrival: (end + 500) * second, event: .gap(missing: 10_000))
    let after = history.seconds(through: end + 500)
    #expect(after.dropLast().allSatisfy { $0?.packets == 0 })
    let kept = after.compactMap { $0?.lost }.reduce(0, +)
    #expect(kept > 0 && kept < 10_000)
  }

  @Test func streamsAreSummedSecondBySecond() {
    var a = ReceptionHistory()
    var b = ReceptionHistory()
    steady(&a, from: epoch * second, count: 20, spacing: second / 10)
    steady(&b, from: (epoch + 1) * second, count: 5, spacing: second / 5)
    b.record(arrival: (epoch + 1) * second + 900_000_000, event: .gap(missing: 3))
    let merged = ReceptionHistory.merge([a.seconds(through: epoch + 1), b.seconds(through: epoch + 1)])
    #expect(merged[98]?.packets == 10 && merged[99]?.packets == 16)
    #expect(merged[99]?.lost == 3 && merged[99]?.gaps == 1)
    #expect(ReceptionHistory.merge([]).isEmpty)
  }
}

extension ReceptionHistoryTests {
  /// What the receive path pays per datagram, printed (not asserted: debug builds and a
  /// shared machine): a million datagrams at 10,000 a second, one number in 100 missing.
  @Test func aMillionDatagrams() {
    var history = ReceptionHistory()
    var meter = RateMeter()
    let spacing = second / 10_000
    let start = ContinuousClock.now
    for index in 0..<1_000_000 {
      let arrival = epoch * second + Int64(index) * spacing
      history.record(arrival: arrival, event: index % 100 == 99 ? .gap(missing: 1) : .inOrder)
    }
    let recorded = ContinuousClock.now
    for index in 0..<1_000_000 { meter.record(atSecond: (epoch * second + Int64(index) * spacing) / second) }
    let metered = ContinuousClock.now
    let window = history.seconds(through: epoch + 99)
    #expect(window.allSatisfy { $0?.packets == 10_000 && $0?.lost == 100 && $0?.gaps == 100 })
    print("reception history, 1,000,000 datagrams: \(recorded - start) (the rate meter beside it: \(metered - recorded))")
  }
}
