@preconcurrency import Glibc
import FoundationEssentials
import Logging

/// The multicast receiver's loop logic: joins, receives and attributes datagrams, and once a
/// second maintains the memberships. Its state belongs to the loop's thread; what scrapes
/// read lives in the groups' locks.
struct MulticastReceiverEngine: LoopEngine {
  /// The whole new list of groups.
  typealias Command = [MulticastGroup]

  enum Timer {
    /// The once-a-second maintenance; one of an earlier chain is stale.
    case maintenance(chain: UInt64)
  }

  private let shared: MulticastShared
  private var logger: Logger { shared.logger }
  private var groups: [MulticastGroup] = []
  /// Sockets per group (by identity): several when its sources exceed igmp_max_msf.
  private var sockets: [ObjectIdentifier: [MulticastSocket]] = [:]
  private var owners: [Int32: (group: MulticastGroup, socket: MulticastSocket)] = [:]
  /// SO_RXQ_OVFL is cumulative per socket: the last value seen, to count increases.
  private var lastDrops: [Int32: UInt32] = [:]
  /// Socket drops not yet set against a stream's gap: they wait for the next datagram the
  /// stream accepts (one that is rejected or malformed opens no gap).
  private var pendingDrops: [Int32: UInt64] = [:]
  /// Join latency tests of the groups that have one.
  private var joinTests: [ObjectIdentifier: JoinTestSchedule] = [:]
  /// Groups a join latency test left and no join has brought back yet: their next join
  /// resumes the streams' accounting (`StreamStats.joined`).
  private var leftByTest: Set<ObjectIdentifier> = []
  /// The last link state seen of each interface that carries a group, to log changes.
  private var links: [String: LinkState] = [:]
  private var buffer = [UInt8](repeating: 0, count: 65_536)
  private var control = [UInt8](repeating: 0, count: 512)
  /// The maintenance timers in force: a new configuration starts a new chain at once.
  private var maintenanceChain: UInt64 = 0
  /// Sources per socket: the kernel refuses more than net.ipv4.igmp_max_msf (10) per
  /// socket and group, so a long source list is spread over several sockets.
  private let sourcesPerSocket = max(1, FileContents.sysctl("net.ipv4.igmp_max_msf") ?? 10)

  init(shared: MulticastShared) { self.shared = shared }

  mutating func handle(_ commands: [Command], loop: inout LoopRegistrations<Timer>) {
    guard let latest = commands.last else { return }
    reconcile(latest, loop: &loop)
    maintenanceChain &+= 1
    loop.schedule(.maintenance(chain: maintenanceChain), at: Clocks.monotonicNanoseconds())
  }

  mutating func fire(_ timer: Timer, now: Int64, loop: inout LoopRegistrations<Timer>) {
    guard case .maintenance(let chain) = timer, chain == maintenanceChain else { return }
    maintain(now: now, loop: &loop)
    loop.schedule(.maintenance(chain: chain), at: now + 1_000_000_000)
  }

  /// After the maintenance, which may have taken a while: the tests' phases and deadlines
  /// run from when they really step.
  mutating func endOfPass(now: Int64, loop: inout LoopRegistrations<Timer>) {
    stepJoinTests(now: now, loop: &loop)
    for test in joinTests.values { loop.wake(by: test.nextEvent) }
  }

  mutating func ready(_ descriptor: Int32, events: PollEvents, loop: inout LoopRegistrations<Timer>) {
    guard let owner = owners[descriptor] else { return }
    receiveAll(owner.socket, for: owner.group)
  }

  mutating func stopped() {
    var ignored: [Int32] = []
    for group in groups { close(group, unwatched: &ignored) }
  }

  /// Leaves the groups no longer configured; new ones are joined by `maintain`.
  private mutating func reconcile(_ next: [MulticastGroup], loop: inout LoopRegistrations<Timer>) {
    for group in groups where !next.contains(where: { $0 === group }) {
      close(group, loop: &loop)
      joinTests[ObjectIdentifier(group)] = nil
      leftByTest.remove(ObjectIdentifier(group))
    }
    groups = next
  }

  /// Closing the sockets leaves their groups (the kernel sends the leave or the report).
  private mutating func close(_ group: MulticastGroup, loop: inout LoopRegistrations<Timer>) {
    var closed: [Int32] = []
    close(group, unwatched: &closed)
    for descriptor in closed { loop.unwatch(descriptor) }
  }

  /// Closes the group's sockets; `unwatched` gets their descriptors.
  private mutating func close(_ group: MulticastGroup, unwatched: inout [Int32]) {
    for socket in sockets.removeValue(forKey: ObjectIdentifier(group)) ?? [] {
      unwatched.append(socket.fileDescriptor)
      owners[socket.fileDescriptor] = nil
      lastDrops[socket.fileDescriptor] = nil
      pendingDrops[socket.fileDescriptor] = nil
      socket.close()
    }
    group.join.withLock { $0.joined = false }
  }

  /// Once a second: interfaces that vanished, came back or changed index; joins to retry;
  /// memberships the kernel lost; the kernel's membership tables.
  private mutating func maintain(now: Int64, loop: inout LoopRegistrations<Timer>) {
    watchLinks()
    var kernel = ProcNet.membership()
    var joinedAny = false
    for group in groups where !(joinTests[ObjectIdentifier(group)]?.isLeft ?? false) {
      let index = NetworkInterface.index(of: group.config.interface)
      let state = group.join.withLock { $0 }
      guard let index else {
        // Counted and logged once per disappearance, as the ENODEV a join would get.
        if state.lastError != "ENODEV" {
          logger.warning(
            "interface missing; the group is joined when it appears",
            metadata: ["group": "\(group.config.name)", "interface": "\(group.config.interface)"])
          close(group, loop: &loop)
          group.join.withLock { state in
            state.interfaceIndex = nil
            _ = state.recordFailure("ENODEV")
          }
        }
        continue
      }
      if state.joined && state.interfaceIndex == index {
        // Joined, but gone from the kernel's table (an interface recreated under the same
        // index, say): joined again once it has been missing a while. A table that does not
        // list the interface at all cannot tell.
        let config = group.config
        let listed =
          !kernel.lists(interface: config.interface, family: config.group.family)
          || kernel.isMember(config.group, interface: config.interface)
        guard group.join.withLock({ $0.kernelCheck(listed: listed) }) else { continue }
        logger.warning(
          "the kernel no longer lists the membership; joining again",
          metadata: [
            "group": "\(group.config.name)", "address": "\(group.config.group)", "interface": "\(group.config.interface)",
          ])
      }
      close(group, loop: &loop)
      joinedAny = true
      if join(group, interface: index, loop: &loop), let test = group.config.joinLatencyTest {
        let key = ObjectIdentifier(group)
        if joinTests[key] == nil {
          joinTests[key] = JoinTestSchedule(test: test, joinedAt: now)
        } else {
          joinTests[key]!.joinedOutsideTest(at: now)
        }
      }
    }
    if joinedAny { kernel = ProcNet.membership() }
    shared.membership.withLock { $0 = kernel }
  }

  /// Logs an interface of our groups going down and coming back up, once per change, with
  /// the groups it carries. Nothing else changes: the kernel keeps memberships across a
  /// link down/up (it re-sends their reports when the link returns), and what the streams
  /// missed meanwhile counts lost. An interface that vanishes is the join path's to log.
  private mutating func watchLinks() {
    guard let states = try? NetworkInterface.linkStates() else { return }
    let byInterface = Dictionary(grouping: groups, by: \.config.interface)
    links = links.filter { byInterface[$0.key] != nil && states[$0.key] != nil }
    for (interface, members) in byInterface.sorted(by: { $0.key < $1.key }) {
      guard let state = states[interface] else { continue }
      // Down is down, whatever the flags say on the way back (no carrier for a moment
      // after an administrative up): one line each way.
      let wasUp = links.updateValue(state, forKey: interface).map { $0 == .up }
      guard wasUp != (state == .up), !(wasUp == nil && state == .up) else { continue }
      let metadata: Logger.Metadata = [
        "interface": "\(interface)", "groups": "\(members.map(\.config.name).sorted().joined(separator: ","))",
      ]
      if state == .up {
        logger.info("interface up", metadata: metadata)
      } else {
        logger.warning("interface down", metadata: metadata.merging(["state": "\(state.rawValue)"]) { $1 })
      }
    }
  }

  /// Carries out what the join latency tests ask for.
  private mutating func stepJoinTests(now: Int64, loop: inout LoopRegistrations<Timer>) {
    guard !joinTests.isEmpty else { return }
    for group in groups {
      let key = ObjectIdentifier(group)
      guard var schedule = joinTests[key] else { continue }
      let allArrived = group.streams.values.allSatisfy { !$0.stats.withLock { $0.joinTestPending } }
      switch schedule.step(now: now, allArrived: allArrived) {
      case .none:
        break
      case .leave:
        logger.debug("join latency test: leaving", metadata: ["group": "\(group.config.name)"])
        close(group, loop: &loop)
        leftByTest.insert(key)
      case .rejoin:
        // Pending whether or not the join works: a failed join is a failed test, counted
        // at the deadline (maintain retries the join meanwhile, and the test's latency
        // still runs from here). The clock is read now, not at the top of the pass: the
        // maintenance before may have taken a while.
        let startedAt = Clocks.monotonicNanoseconds()
        for stream in group.streams.values { stream.stats.withLock { $0.joinTestStarted(at: startedAt) } }
        if let index = NetworkInterface.index(of: group.config.interface) { _ = join(group, interface: index, loop: &loop) }
      case .expire:
        for stream in group.streams.values {
          stream.stats.withLock { stats in
            guard stats.joinTestPending else { return }
            stats.joinTestPending = false
            stats.joinTestFailures += 1
          }
        }
        logger.warning(
          "join latency test: no datagram before the deadline",
          metadata: ["group": "\(group.config.name)", "deadline": "\(schedule.test.deadline)"])
      }
      joinTests[key] = schedule
    }
  }

  /// Joins every source of `group` (or the group alone) on `interface`; false on failure,
  /// which is counted and logged once per episode (`JoinState.recordFailure`) and retried
  /// every second by `maintain`.
  private mutating func join(_ group: MulticastGroup, interface: UInt32, loop: inout LoopRegistrations<Timer>) -> Bool {
    let config = group.config
    var opened: [MulticastSocket] = []
    // The join latency runs from the first join call (the report leaves with it), read
    // here rather than at the top of the loop's pass, which other groups' joins and the
    // kernel's membership tables may have taken.
    var joinedAt: Int64?
    do {
      let chunks: [[IPAddress?]] =
        config.sources.isEmpty
        ? [[nil]]
        : stride(from: 0, to: config.sources.count, by: sourcesPerSocket).map {
          Array(config.sources[$0..<min($0 + sourcesPerSocket, config.sources.count)])
        }
      for chunk in chunks {
        let socket = try MulticastSocket(family: config.group.family, port: UInt16(config.port), receiveBuffer: config.receiveBuffer)
        opened.append(socket)
        for source in chunk {
          if joinedAt == nil { joinedAt = Clocks.monotonicNanoseconds() }
          try socket.join(config.group, source: source, interface: interface)
        }
      }
    } catch {
      for socket in opened { socket.close() }
      let name = error.code.name
      let isNew = group.join.withLock { state -> Bool in
        state.interfaceIndex = interface
        return state.recordFailure(name)
      }
      if isNew {
        logger.error(
          "cannot join the group; retrying every second",
          metadata: [
            "group": "\(config.name)", "address": "\(config.group)", "interface": "\(config.interface)",
            "error": "\(error)", "hint": "\(JoinAdvice.text(errno: error.code))",
          ])
      }
      return false
    }
    sockets[ObjectIdentifier(group)] = opened
    for socket in opened {
      owners[socket.fileDescriptor] = (group, socket)
      loop.watch(socket.fileDescriptor)
      if socket.receiveBufferBytes < config.receiveBuffer {
        logger.warning(
          "receive buffer capped by net.core.rmem_max; raise it, or grant CAP_NET_ADMIN, for bursty streams",
          metadata: [
            "group": "\(config.name)", "bytes": "\(socket.receiveBufferBytes)",
            "wanted": "\(config.receiveBuffer)",
          ])
      }
    }
    group.join.withLock { state in
      state.joined = true
      state.interfaceIndex = interface
      state.lastError = nil
      state.unlistedChecks = 0
    }
    let joined = joinedAt ?? Clocks.monotonicNanoseconds()
    let afterLeave = leftByTest.remove(ObjectIdentifier(group)) != nil
    let joinedSecond = ReceptionHistory.second(of: Clocks.realtimeNanoseconds())
    for stream in group.streams.values {
      stream.stats.withLock { stats in
        stats.joined(at: joined, afterLeave: afterLeave)
        stats.history.start(atSecond: joinedSecond)
      }
    }
    logger.info(
      "joined",
      metadata: [
        "group": "\(config.name)", "address": "\(config.group)", "interface": "\(config.interface)",
        "sources": "\(config.sources.map(\.description).joined(separator: ","))",
      ])
    return true
  }

  /// Drains a readable socket, at most a bounded batch so other sockets get their turn.
  private mutating func receiveAll(_ socket: MulticastSocket, for group: MulticastGroup) {
    for _ in 0..<1024 {
      guard let datagram = try? socket.receive(into: &buffer, control: &control) else { return }
      handle(datagram, socket: socket, group: group)
    }
  }

  private mutating func handle(_ datagram: MulticastSocket.Datagram, socket: MulticastSocket, group: MulticastGroup) {
    // Drops counted when the socket queued this datagram: they came just before it.
    let fd = socket.fileDescriptor
    if let total = datagram.droppedTotal {
      let previous = lastDrops[fd] ?? 0
      if total != previous {
        lastDrops[fd] = total
        let dropped = UInt64(total &- previous)
        pendingDrops[fd, default: 0] += dropped
        group.counters.withLock { $0.socketDrops += dropped }
      }
    }
    // Whose datagrams the socket dropped it cannot say: only a group with one stream can
    // set them against that stream's gap (with several, their gaps count lost as well).
    let hostDropped = group.streams.count == 1 ? pendingDrops[fd] ?? 0 : 0
    // IP_MULTICAST_ALL=0 keeps other groups away; check the group anyway, and the sender.
    guard datagram.group == nil || datagram.group == group.config.group else {
      group.counters.withLock { $0.wrongGroup += 1 }
      return
    }
    guard let stream = group.stream(for: datagram.source.ip) else {
      group.counters.withLock { $0.wrongSource += 1 }
      return
    }
    let arrival = datagram.kernelTimestamp ?? Clocks.realtimeNanoseconds()
    let now = Clocks.monotonicNanoseconds()
    let verdict = stream.stats.withLock { stats -> PayloadVerdict in
      // Decoded first: a datagram not in the group's format is no traffic of the stream,
      // so it moves no counter, rate, `receiving` or join latency, only unexpected{malformed}.
      let verdict = stats.analyzer.analyze(datagram.payload, arrival: arrival, hostDropped: hostDropped)
      // The analyzer gives a delay only for beacon groups whose clocks are synchronised.
      guard case .accepted(let delay) = verdict else { return verdict }
      pendingDrops[fd] = nil
      if let delay { stats.oneWayDelay.record(delay) }
      stats.packets += 1
      stats.bytes += UInt64(datagram.payload.count)
      stats.lastPacketTime = Double(arrival) / 1e9
      stats.lastPacketMonotonic = now
      stats.rate.record(atSecond: arrival / 1_000_000_000)
      stats.history.record(arrival: arrival, event: stats.analyzer.lastSequenceEvent)
      if let joinedAt = stats.awaitingSince {
        let latency = Double(now - joinedAt) / 1e9
        stats.joinLatency = latency
        stats.awaitingSince = nil
        if stats.joinTestPending {
          stats.joinTestPending = false
          stats.joinTestLatency.record(latency)
        }
      }
      return verdict
    }
    if verdict == .malformed { group.counters.withLock { $0.malformed += 1 } }
  }
}

/// What to tell an operator about a failed join.
enum JoinAdvice {
  static func text(errno: Errno) -> String {
    switch errno {
    case .noBufferSpace:
      "more sources on one socket than net.ipv4.igmp_max_msf / net.ipv6.mld_max_msf allow (read at start: restart after lowering them), or socket option memory (net.core.optmem_max)"
    case .noSuchDevice: "the interface does not exist or has no multicast (ip link set DEV multicast on)"
    case .addressInUse:
      "another program holds the UDP port without SO_REUSEADDR (with SO_REUSEPORT alone, or neither); it must set SO_REUSEADDR to share it"
    case .invalidArgument: "a source of the wrong family, or any-source and source-specific joins mixed on one socket"
    case .addressNotAvailable: "the interface has no address of the group's family"
    default: "check the interface and the group address"
    }
  }
}
