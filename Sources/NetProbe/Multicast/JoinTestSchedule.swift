/// The steps of a group's join latency test: every `interval` leave the group, wait
/// `leaveWait` so the router really prunes it, join again and wait up to `deadline` for
/// the first datagram of each stream.
///
/// Pure (times in monotonic ns are passed in), so the receiver loop only carries out the
/// actions it returns and the schedule is tested without sockets.
struct JoinTestSchedule: Sendable, Equatable {
  enum Phase: Sendable, Equatable {
    /// Joined and receiving normally; the next test leaves at `nextLeave`.
    case steady(nextLeave: Int64)
    /// Left on purpose; join again at `rejoinAt`.
    case leaving(rejoinAt: Int64)
    /// Joined again; streams without a packet by `deadline` count a failure.
    case awaiting(deadline: Int64)
  }

  enum Action: Sendable, Equatable {
    case none
    case leave
    case rejoin
    /// The deadline passed: streams still waiting failed.
    case expire
  }

  let test: JoinLatencyTest
  private(set) var phase: Phase

  /// The first test runs one interval after the group's first join.
  init(test: JoinLatencyTest, joinedAt: Int64) {
    self.test = test
    phase = .steady(nextLeave: joinedAt + test.interval.nanoseconds)
  }

  /// True while the group is left on purpose: the loop must not rejoin it early.
  var isLeft: Bool {
    if case .leaving = phase { return true }
    return false
  }

  /// When `step` next has something to do.
  var nextEvent: Int64 {
    switch phase {
    case .steady(let at), .leaving(let at), .awaiting(let at): at
    }
  }

  /// Advances to `now`. `allArrived` says whether every stream has had its first packet
  /// since the rejoin, which ends a wait before its deadline.
  mutating func step(now: Int64, allArrived: Bool) -> Action {
    switch phase {
    case .steady(let nextLeave):
      guard now >= nextLeave else { return .none }
      phase = .leaving(rejoinAt: now + test.leaveWait.nanoseconds)
      return .leave
    case .leaving(let rejoinAt):
      guard now >= rejoinAt else { return .none }
      phase = .awaiting(deadline: now + test.deadline.nanoseconds)
      return .rejoin
    case .awaiting(let deadline):
      if allArrived {
        phase = .steady(nextLeave: now + test.interval.nanoseconds)
        return .none
      }
      guard now >= deadline else { return .none }
      phase = .steady(nextLeave: now + test.interval.nanoseconds)
      return .expire
    }
  }

  /// A join the loop made for another reason (the interface came back): the test
  /// restarts its interval from there.
  mutating func joinedOutsideTest(at now: Int64) {
    if case .steady = phase { phase = .steady(nextLeave: now + test.interval.nanoseconds) }
  }
}

/// Where a stream's join latency runs from.
extension StreamStats {
  /// A join latency test joins again at `now`: its latency runs from here, whether or not
  /// this join works.
  mutating func joinTestStarted(at now: Int64) {
    joinTestPending = true
    awaitingSince = now
  }

  /// The group's join succeeded; `now` was read right before its first join call. The
  /// first packet is awaited from then, except by a join latency test still waiting for
  /// one: a retry after the test's failed join (or one after an interface flap) keeps the
  /// test's start, so the latency is the user's, not the last attempt's.
  ///
  /// Only a join after the test's own leave (`afterLeave`) resumes the stream: what was
  /// sent while we chose not to listen is not its loss. Any other join (the interface came
  /// back, the kernel lost the membership) keeps the accounting, so what the stream missed
  /// during the outage counts lost, as on a group that stayed joined through it.
  mutating func joined(at now: Int64, afterLeave: Bool) {
    if !joinTestPending || awaitingSince == nil { awaitingSince = now }
    if afterLeave && packets > 0 { analyzer.resume() }
  }
}
