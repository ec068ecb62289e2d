import Testing

@testable import NetProbe

@Suite struct PacingScheduleTests {
  @Test func packetsAreDueOnAFixedGrid() {
    var schedule = PacingSchedule(rate: 100, start: 0)  // every 10 ms
    #expect(schedule.interval == 10_000_000)
    #expect(schedule.take(now: 0) == .init(skipped: 0))
    #expect(schedule.take(now: 9_999_999) == nil)
    // A little late: the next is still due on the grid, not 10 ms after this one.
    #expect(schedule.take(now: 12_000_000) == .init(skipped: 0))
    #expect(schedule.nextDue == 20_000_000)
  }

  @Test func oneIntervalLateMakesUpThatPacketOnly() {
    var schedule = PacingSchedule(rate: 1000, start: 0)  // every 1 ms
    #expect(schedule.take(now: 0) != nil)
    // 1.5 ms late: the packets of 1 ms and 2 ms are both due; both are sent, one per call.
    #expect(schedule.take(now: 2_500_000) == .init(skipped: 0))
    #expect(schedule.take(now: 2_500_000) == .init(skipped: 0))
    #expect(schedule.take(now: 2_500_000) == nil)
    #expect(schedule.nextDue == 3_000_000)
  }

  @Test func aLateSenderNeverBurstsAndCountsWhatItSkipped() {
    // 100,000 packets/s, 50 ms behind: the 5,000 grid points since are due; two packets go
    // out (5,000 back to back before), the rest are skipped.
    var schedule = PacingSchedule(rate: 100_000, start: 0)  // every 10 µs
    #expect(schedule.take(now: 0) == .init(skipped: 0))
    var sent = 0
    var skipped: Int64 = 0
    while let due = schedule.take(now: 50_000_000) {
      sent += 1
      skipped += due.skipped
    }
    #expect(sent == 2)
    #expect(skipped == 4_998)
    #expect(Int64(sent) + skipped == 50_000_000 / 10_000, "every grid point up to now is sent or skipped, once")
    // The grid did not move: the next packet is due on it, right after now.
    #expect(schedule.nextDue == 50_010_000)
    #expect(schedule.take(now: 50_009_999) == nil)
    #expect(schedule.take(now: 50_010_000) == .init(skipped: 0))
  }

  @Test func aLongStallSendsTwoPacketsNotTheBacklog() {
    var schedule = PacingSchedule(rate: 1000, start: 0)
    #expect(schedule.take(now: 0) != nil)
    // 200 ms stalled: 200 packets due, two sent, 198 skipped.
    #expect(schedule.take(now: 200_000_000) == .init(skipped: 198))
    #expect(schedule.take(now: 200_000_000) == .init(skipped: 0))
    #expect(schedule.take(now: 200_000_000) == nil)
    #expect(schedule.nextDue == 201_000_000)
  }

  @Test func beaconsAtOneRateStartAtDifferentPhases() {
    let interval: Int64 = 100_000_000
    #expect(PacingSchedule(rate: 10, start: 5, index: 0).nextDue == 5)
    #expect(PacingSchedule(rate: 10, start: 5, index: 1).nextDue == 5 + 61_803_398)
    for count in 2...64 {
      let phases = (0..<count).map { PacingSchedule.phase(index: $0, interval: interval) }.sorted()
      #expect(phases.allSatisfy { $0 >= 0 && $0 < interval })
      let gaps = zip(phases.dropFirst(), phases).map { $0 - $1 } + [interval - phases.last! + phases.first!]
      #expect(gaps.min()! >= interval / Int64(3 * count), "\(count) beacons: a gap of \(gaps.min()!) ns")
    }
    // An interval of 1 ns leaves no room: every phase is 0, none beyond the interval.
    #expect(PacingSchedule.phase(index: 7, interval: 1) == 0)
  }

  @Test func highRatesKeepANonZeroInterval() {
    let schedule = PacingSchedule(rate: 3e9, start: 0)
    #expect(schedule.interval == 1)
  }
}
