import Testing
@testable import NetProbe

/// The ICMP identifier rotates on the clock, once per interval, whoever asks.
@Suite struct ProbeIdentityTests {
  let second: Int64 = 1_000_000_000

  @Test func rotatesOncePerIntervalHoweverManyLoopsAsk() {
    let identity = ProbeIdentity()
    identity.setRotation(every: .seconds(10), now: 0)
    let first = identity.pingIdentifiers
    #expect(identity.rotateIfDue(now: 5 * second) == 10 * second)
    #expect(identity.pingIdentifiers == first)
    // Both family loops' timers fire at the same due time: one rotation.
    #expect(identity.rotateIfDue(now: 10 * second) == 20 * second)
    #expect(identity.rotateIfDue(now: 10 * second) == 20 * second)
    let rotated = identity.pingIdentifiers
    #expect(rotated.0 != first.0 && rotated.1 == first.0, "the old identifier stays valid for replies in flight")
  }

  @Test func aLateTimerDoesNotRotateInABurst() {
    let identity = ProbeIdentity()
    identity.setRotation(every: .seconds(10), now: 0)
    // The loop was stalled for three intervals: one rotation, and the next interval from now.
    let next = identity.rotateIfDue(now: 35 * second)
    #expect(next == 35 * second + 1)
    #expect(identity.rotateIfDue(now: 35 * second + 1) == 45 * second + 1)
  }

  @Test func noRotationConfiguredMeansNoTimer() {
    let identity = ProbeIdentity()
    let first = identity.pingIdentifiers
    #expect(identity.rotateIfDue(now: 1_000 * second) == nil)
    identity.setRotation(every: .seconds(10), now: 0)
    identity.setRotation(every: nil, now: 0)
    #expect(identity.rotateIfDue(now: 1_000 * second) == nil)
    #expect(identity.pingIdentifiers == first)
  }
}

/// Slots are reused once given back, so reloads never grow them.
@Suite struct SlotAllocatorTests {
  @Test func reusesReleasedSlotsBeforeNewOnes() {
    var slots = SlotAllocator()
    #expect([slots.take(), slots.take(), slots.take()] == [0, 1, 2])
    slots.release(1)
    slots.release(0)
    #expect(slots.take() == 0, "the slot given back last comes first")
    #expect(slots.take() == 1)
    #expect(slots.take() == 3)
  }
}
