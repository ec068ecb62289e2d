import Dispatch
@preconcurrency import Glibc
import FoundationEssentials
import Logging
import Synchronization

/// The path tracer: a thread that runs each traced target's rounds — TTL-limited echo
/// requests, several per TTL, paced — and reads the Time Exceeded, Unreachable and echo
/// replies they cause, on raw sockets as data and on datagram sockets from the error queue.
final class PathTracer: Sendable {
  enum Command: Sendable {
    case add(PathTarget)
    case remove(UInt32)
  }

  private let thread: LoopThread<Command>

  init(context: PingContext) throws(SystemError) {
    thread = try LoopThread(name: "path-tracer") { thread in
      var state = TracerState(context: context)
      state.run(thread)
    }
  }

  func post(_ command: Command) { thread.post(command) }

  func stop() { thread.stop() }
}

/// Time between two TTL steps of one round: fast enough for a 30-hop round to take a
/// fraction of a second, slow enough not to burst into a router's ICMP rate limit.
private let stepNanoseconds: Int64 = 5_000_000

private struct TracerSocketKey: Hashable {
  var family: IPAddress.Family
  var kind: ICMPSocketKind
  var options: ICMPSocketOptions
}

/// One round in progress.
private struct ActiveRound {
  let target: PathTarget
  let address: IPAddress
  var round: TraceRound
  var nextTTL = 1
  var nextStep: Int64
  var lastSend: Int64 = 0
  let startedAt: Int64
  var outstanding = 0
}

/// A probe sent and not yet answered, keyed by its ICMP sequence.
private struct TraceProbe {
  var slot: UInt32
  var ttl: Int
  var sequence: UInt32
  var sendTime: Int64
}

private struct TracerState {
  let context: PingContext
  var targets: [UInt32: PathTarget] = [:]
  var schedule = MinHeap<(due: Int64, slot: UInt32, target: PathTarget)>(by: { $0.due < $1.due })
  var active: [UInt32: ActiveRound] = [:]
  var probes: [UInt16: TraceProbe] = [:]
  var nextSequence: UInt32 = 0
  var sockets: [TracerSocketKey: ICMPSocket] = [:]
  var socketsByDescriptor: [Int32: ICMPSocket] = [:]
  var failedKeys: [TracerSocketKey: Int64] = [:]
  var packet: [UInt8] = []
  var buffer = [UInt8](repeating: 0, count: 65_536)
  var control = [UInt8](repeating: 0, count: 512)

  init(context: PingContext) { self.context = context }

  mutating func run(_ thread: LoopThread<PathTracer.Command>) {
    let wakeup = thread.wakeup
    var entries: [pollfd] = []
    while !thread.isStopping {
      for command in thread.takeCommands() { handle(command) }
      let now = Clocks.monotonicNanoseconds()
      startDueRounds(now: now)
      step(now: now)
      finishRounds(now: Clocks.monotonicNanoseconds())
      entries.removeAll(keepingCapacity: true)
      entries.append(pollfd(fd: wakeup.fileDescriptor, events: Int16(POLLIN), revents: 0))
      for fd in socketsByDescriptor.keys { entries.append(pollfd(fd: fd, events: Int16(POLLIN), revents: 0)) }
      var next = now + 1_000_000_000
      if let due = schedule.min?.due { next = min(next, due) }
      for round in active.values {
        next = min(next, round.nextTTL <= maxTTL(round) ? round.nextStep : round.lastSend + round.target.ping.config.options.timeout.nanoseconds)
      }
      let wait = max(0, next - Clocks.monotonicNanoseconds())
      _ = try? Poller.poll(&entries, timeoutMilliseconds: Int32(min(1000, (wait + 999_999) / 1_000_000)))
      if entries[0].revents != 0 { wakeup.drain() }
      for entry in entries.dropFirst() where entry.revents != 0 {
        guard let socket = socketsByDescriptor[entry.fd] else { continue }
        if entry.revents & Int16(POLLERR) != 0 { readErrors(from: socket) }
        if entry.revents & Int16(POLLIN) != 0 { readReplies(from: socket) }
      }
    }
  }

  mutating func handle(_ command: PathTracer.Command) {
    switch command {
    case .add(let target):
      targets[target.slot] = target
      // Spread rounds over the trace interval, as the ping engine spreads its probes.
      let phase = (Double(target.slot & ~ProbePayload.traceSlotFlag) * 0.618_033_988_749_895).truncatingRemainder(dividingBy: 1)
      let first = Clocks.monotonicNanoseconds() + Int64(phase * Double(min(target.trace.interval.nanoseconds, 5_000_000_000)))
      schedule.insert((first, target.slot, target))
    case .remove(let slot):
      targets[slot] = nil
      active[slot] = nil
    }
  }

  func maxTTL(_ round: ActiveRound) -> Int {
    round.round.destinationTTL.map { min($0, round.target.trace.maxHops) } ?? round.target.trace.maxHops
  }

  mutating func startDueRounds(now: Int64) {
    while let next = schedule.min, next.due <= now {
      schedule.popMin()
      guard let target = targets[next.slot], target === next.target else { continue }
      schedule.insert((next.due + target.trace.interval.nanoseconds, next.slot, target))
      guard active[target.slot] == nil, let address = target.ping.state.withLock({ $0.address }) else { continue }
      active[target.slot] = ActiveRound(target: target, address: address, round: TraceRound(maxHops: target.trace.maxHops),
                                        nextStep: now, startedAt: now)
    }
  }

  /// Sends the next TTL of every round whose step is due.
  mutating func step(now: Int64) {
    for slot in Array(active.keys) {
      guard var round = active[slot], round.nextTTL <= maxTTL(round), round.nextStep <= now else { continue }
      let ttl = round.nextTTL
      for index in 0..<round.target.trace.probesPerHop {
        if send(&round, ttl: ttl, index: index) { round.round.hops[ttl - 1].probesSent += 1 }
      }
      round.nextTTL += 1
      round.nextStep = now + stepNanoseconds
      round.lastSend = now
      active[slot] = round
    }
  }

  mutating func send(_ round: inout ActiveRound, ttl: Int, index: Int) -> Bool {
    let target = round.target
    let options = target.ping.config.options
    guard let socket = socket(family: round.address.family, preferred: options.socket == .raw ? .raw : .dgram,
                              auto: options.socket == .auto,
                              options: target.ping.socketOptions) else { return false }
    do { try socket.setTTL(ttl) } catch { return false }
    let sequence = nextSequence
    nextSequence &+= 1
    let sendTime = Clocks.realtimeNanoseconds()
    let payloadSize = max(options.payloadSize, ProbePayload.headerSize + 2)
    packet = [UInt8](repeating: 0, count: 8) + ProbePayload.padding(count: payloadSize)
    let identifier = context.currentIdentifiers.0
    packet[0] = round.address.family == .ip4 ? ICMPType.echoRequestV4 : ICMPType.echoRequestV6
    packet[4] = UInt8(identifier >> 8)
    packet[5] = UInt8(identifier & 0xFF)
    packet[6] = UInt8(truncatingIfNeeded: sequence >> 8)
    packet[7] = UInt8(truncatingIfNeeded: sequence)
    ProbePayload(nonce: context.nonce, slot: target.slot, sequence: sequence, sendTimeNanoseconds: sendTime).write(into: &packet, at: 8)
    // One flow per round (constant checksum), or one per probe to spread over ECMP branches.
    let flow = target.trace.varyFlow ? target.flow &+ UInt16(truncatingIfNeeded: ttl * 7 + index) : target.flow
    FlowChecksum.compensate(&packet, at: 8 + ProbePayload.headerSize, flow: flow)
    if round.address.family == .ip4 {
      let checksum = InternetChecksum.compute(packet)
      packet[2] = UInt8(checksum >> 8)
      packet[3] = UInt8(checksum & 0xFF)
    }
    do {
      guard try socket.send(packet, to: round.address) else { return false }
    } catch {
      // The kernel already knows a smaller path MTU (a router said so earlier, perhaps to
      // the ping engine's probes) and refuses to send: take the MTU from its cache.
      if error.errno == EMSGSIZE, let mtu = PathMTU.cached(to: round.address) {
        round.round.mtu = min(round.round.mtu ?? Int.max, mtu)
      }
      return false
    }
    probes[UInt16(truncatingIfNeeded: sequence)] = TraceProbe(slot: target.slot, ttl: ttl, sequence: sequence, sendTime: sendTime)
    round.outstanding += 1
    return true
  }

  mutating func socket(family: IPAddress.Family, preferred: ICMPSocketKind, auto: Bool, options: ICMPSocketOptions) -> ICMPSocket? {
    var options = options
    options.ttl = 1
    for kind in auto ? [ICMPSocketKind.dgram, .raw] : [preferred] {
      let key = TracerSocketKey(family: family, kind: kind, options: options)
      if let socket = sockets[key] { return socket }
      if let retry = failedKeys[key], retry > Clocks.monotonicNanoseconds() { continue }
      do {
        let socket = try ICMPSocket(family: family, kind: kind, options: options)
        if kind == .dgram { try socket.enableErrorQueue() }
        sockets[key] = socket
        socketsByDescriptor[socket.fileDescriptor] = socket
        return socket
      } catch {
        failedKeys[key] = Clocks.monotonicNanoseconds() + 60_000_000_000
        context.stats.socketError(family: family, kind: kind, errno: error.errno)
      }
    }
    return nil
  }

  // MARK: Receiving

  mutating func readReplies(from socket: ICMPSocket) {
    let matcher = ReplyMatcher(family: socket.family, kind: socket.kind, nonce: context.nonce, forTracer: true)
    for _ in 0..<1024 {
      guard let datagram = try? socket.receive(into: &buffer, control: &control) else { return }
      let time = datagram.kernelTimestamp ?? Clocks.realtimeNanoseconds()
      if case .candidate(let payload, let sequence, _) = matcher.match(datagram.message, identifiers: context.currentIdentifiers) {
        answered(sequence: sequence, payload: payload, from: datagram.source, at: time, reachedDestination: true)
      } else if socket.kind == .raw, let error = ICMPError.decode(datagram.message, family: socket.family) {
        let ids = context.currentIdentifiers
        guard error.quotedEcho.identifier == ids.0 || error.quotedEcho.identifier == ids.1 else { continue }
        erred(error.kind, sequence: error.quotedEcho.sequence, quoted: error.quotedEcho.payload,
              destination: error.quotedDestination, from: datagram.source, at: time)
      }
    }
  }

  mutating func readErrors(from socket: ICMPSocket) {
    for _ in 0..<1024 {
      guard let queued = try? socket.receiveError(into: &buffer, control: &control) else { return }
      guard let echo = ICMPEcho.decode(queued.original), let offender = queued.error.offender else { continue }
      let error = queued.error
      let kind: ICMPError.Kind
      switch (socket.family, error.origin, error.type) {
      case (.ip4, 2, ICMPType.timeExceededV4), (.ip6, 3, ICMPType.timeExceededV6):
        kind = .timeExceeded
      case (.ip4, 2, ICMPType.destinationUnreachableV4):
        kind = error.code == 4 ? .mtuExceeded(mtu: ICMPError.knownMTU(Int(error.info))) : .unreachable(code: error.code)
      case (.ip6, 3, ICMPType.destinationUnreachableV6):
        kind = .unreachable(code: error.code)
      case (.ip6, 3, ICMPType.packetTooBigV6):
        kind = .mtuExceeded(mtu: ICMPError.knownMTU(Int(error.info)))
      default:
        continue
      }
      erred(kind, sequence: echo.sequence, quoted: echo.payload, destination: queued.destination, from: offender,
            at: queued.kernelTimestamp ?? Clocks.realtimeNanoseconds())
    }
  }

  /// The destination answered a probe.
  mutating func answered(sequence: UInt16, payload: ProbePayload, from source: IPAddress, at time: Int64, reachedDestination: Bool) {
    guard let probe = probes[sequence], probe.sequence == payload.sequence, probe.slot == payload.slot,
      probe.sendTime == payload.sendTimeNanoseconds, var round = active[probe.slot], source == round.address
    else { return }
    probes[sequence] = nil
    round.outstanding -= 1
    round.round.hops[probe.ttl - 1].record(source, rtt: Double(max(0, time - probe.sendTime)) / 1e9)
    round.round.destinationTTL = min(round.round.destinationTTL ?? Int.max, probe.ttl)
    active[probe.slot] = round
  }

  /// A router (or the destination's network) reported an error about a probe.
  mutating func erred(_ kind: ICMPError.Kind, sequence: UInt16, quoted: [UInt8], destination: IPAddress?,
                      from source: IPAddress, at time: Int64) {
    guard let probe = probes[sequence], var round = active[probe.slot] else { return }
    // Whatever of our payload the router quoted must be what we sent.
    if let payload = ProbePayload.decode(quoted),
      payload.nonce != context.nonce || payload.slot != probe.slot || payload.sequence != probe.sequence {
      return
    }
    if let destination, destination != round.address { return }
    probes[sequence] = nil
    round.outstanding -= 1
    round.round.hops[probe.ttl - 1].record(source, rtt: Double(max(0, time - probe.sendTime)) / 1e9)
    switch kind {
    case .timeExceeded:
      break
    case .unreachable(let code):
      round.round.unreachable.append((code, probe.ttl))
    case .mtuExceeded(let mtu):
      if let mtu { round.round.mtu = min(round.round.mtu ?? Int.max, mtu) }
    }
    active[probe.slot] = round
  }

  // MARK: Finishing

  /// Closes rounds whose probes are all out and either answered or past the timeout.
  mutating func finishRounds(now: Int64) {
    for (slot, round) in active {
      let allSent = round.nextTTL > maxTTL(round)
      let timeout = round.target.ping.config.options.timeout.nanoseconds
      guard allSent, round.outstanding <= 0 || now >= round.lastSend + timeout else { continue }
      active[slot] = nil
      probes = probes.filter { $0.value.slot != slot }
      publish(round, duration: Double(now - round.startedAt) / 1e9)
    }
  }

  func publish(_ active: ActiveRound, duration: Double) {
    var round = active.round
    // Probes above the destination's TTL may have been sent before it answered: drop them.
    if let destination = round.destinationTTL {
      for index in destination..<round.hops.count { round.hops[index] = TraceRound.Hop() }
      round.unreachable.removeAll { $0.ttl > destination }
    }
    let target = active.target
    let changed = target.state.withLock { state -> Bool in
      if state.tracedAddress != active.address {
        // A new address (DNS) is a new path to learn, not a change of this one.
        state.detector = PathChangeDetector(confirmRounds: target.trace.confirmRounds)
        state.hops = [HopHistory](repeating: HopHistory(), count: target.trace.maxHops)
        state.tracedAddress = active.address
      }
      state.rounds += 1
      state.lastRoundDuration = duration
      state.lastRound = round
      let relevant = round.relevantHops.count
      for (index, hop) in round.hops.enumerated() where index < relevant {
        state.hops[index].record(sent: hop.probesSent, rtts: hop.responders.flatMap(\.rtts))
      }
      for (code, _) in round.unreachable { state.unreachable[code, default: 0] += 1 }
      if let mtu = round.mtu, target.ping.config.options.dontFragment { state.mtu = mtu }
      let changed = state.detector.observe(round.identity)
      if changed { state.lastChangeTime = Date().timeIntervalSince1970 }
      return changed
    }
    if changed {
      context.logger.info("path changed", metadata: [
        "target": "\(target.ping.config.name)",
        "path": "\(target.state.withLock { $0.detector.confirmed?.text ?? "" })",
      ])
    }
  }
}
