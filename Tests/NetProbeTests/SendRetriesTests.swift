@preconcurrency import Glibc
import Testing

@testable import NetProbe

/// The tracer's rule for a probe the kernel refused: which refusals send it again.
@Suite struct SendRetriesTests {
  let unreachable = SystemError("sendto", errno: EHOSTUNREACH)
  let tooLong = SystemError("sendto", errno: EMSGSIZE)

  @Test func pendingAnswersAreReadAndTheProbeSentAgainTwiceAtMost() {
    var retries = SendRetries()
    var drained = 0
    var answers: [Bool] = []
    for _ in 0..<3 {
      answers.append(
        retries.again(
          after: unreachable,
          drainPending: {
            drained += 1
            return 1
          }, resize: { false }))
    }
    #expect(answers == [true, true, false])
    #expect(drained == 2)
  }

  @Test func aRefusalWithNothingPendingIsTheProbesOwn() {
    var retries = SendRetries()
    let again = retries.again(after: unreachable, drainPending: { 0 }, resize: { true })
    #expect(!again)
  }

  @Test func aSmallerPathMTUIsTakenOnce() {
    var retries = SendRetries()
    let first = retries.again(after: tooLong, drainPending: { 0 }, resize: { true })
    let second = retries.again(after: tooLong, drainPending: { 0 }, resize: { true })
    #expect(first && !second)
    var unchanged = SendRetries()
    let sameMTU = unchanged.again(after: tooLong, drainPending: { 0 }, resize: { false })
    #expect(!sameMTU)
  }
}
