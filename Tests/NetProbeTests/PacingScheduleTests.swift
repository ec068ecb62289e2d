import Testing

@testable import NetProbe

@Suite struct PacingScheduleTests {
  @Test func packetsAreDueOnAFixedGrid() {
    var schedule = PacingSchedule(rate: 100, start: 0)  // every 10 ms
    #expect(schedule.interval == 10_000_000)
    #expect(schedule.take(now: 0) == true)
    #expect(schedule.take(now: 9_999_999) == false)
    // A little late: the next is still due on the grid, not 10 ms after this one.
    #expect(schedule.take(now: 12_000_000) == true)
    #expect(schedule.nextDue == 20_000_000)
  }

  @Test func aLateSenderCatchesUpWithinTheSlackOnly() {
    var schedule = PacingSchedule(rate: 1000, start: 0)  // every 1 ms
    #expect(schedule.take(now: 0) == true)
    // 20 ms late (within the 50 ms slack): the missed packets are still sent, one per call.
    var sent = 0
    while schedule.take(now: 20_000_000) { sent += 1 }
    #expect(sent == 20)
  }

  @Test func aStallMovesTheGridInsteadOfBursting() {
    var schedule = PacingSchedule(rate: 1000, start: 0)
    #expect(schedule.take(now: 0) == true)
    // 200 ms stalled: one packet now, the next one interval later, no burst of 200.
    #expect(schedule.take(now: 200_000_000) == true)
    #expect(schedule.take(now: 200_000_000) == false)
    #expect(schedule.nextDue == 201_000_000)
  }

  @Test func highRatesKeepANonZeroInterval() {
    let schedule = PacingSchedule(rate: 3e9, start: 0)
    #expect(schedule.interval == 1)
  }
}
