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

/// The most trace probes the tracer sends per second, all rounds together, and the most at
/// once: many overlapping rounds slow down instead of flooding the first routers.
let tracerProbesPerSecond = 2_000
let tracerProbeBurst = 100

private struct TracerSocketKey: Hashable {
  var family: IPAddress.Family
  var kind: ICMPSocketKind
  var options: ICMPSocketOptions
}

/// One round in progress.
private struct ActiveRound {
  let target: PathTarget
  let address: IPAddress
  let id: UInt64
  var round: TraceRound
  var nextTTL = 1
  var nextStep: Int64
  var lastSend: Int64 = 0
  let startedAt: Int64
  var outstanding = 0
  /// The size of this round's probes.
  var sizing: ProbeSizing
  /// Probes refused for their size, to send again at `payloadSize`: (TTL, index).
  var resends: [(ttl: Int, index: Int)] = []
  /// Lookups of the kernel's path MTU left this round (one at the start with DF, one when
  /// a send is refused locally or a router reports no MTU).
  var mtuLookups = 1

  var probesPerHop: Int { target.trace.probesPerHop }
  var timeout: Int64 { target.ping.config.options.timeout.nanoseconds }

  /// The highest TTL to probe: the path's end once known, else max_hops.
  var maxTTL: Int { round.endTTL.map { min($0, target.trace.maxHops) } ?? target.trace.maxHops }

  var allSent: Bool { nextTTL > maxTTL && resends.isEmpty }
}

private struct RoundEvent {
  var at: Int64
  var slot: UInt32
  var round: UInt64
}

private struct TracerState {
  let context: PingContext
  var targets: [UInt32: PathTarget] = [:]
  /// Due rounds; `following` is the round after this one.
  var schedule = MinHeap<(due: Int64, following: Int64, slot: UInt32, target: PathTarget)>(by: { $0.due < $1.due })
  var active: [UInt32: ActiveRound] = [:]
  /// When each round's next step is due, and when it times out once all is sent: heaps
  /// keyed by slot and round, so each event costs O(log rounds) however many overlap.
  /// Entries that no longer match their round are skipped when they come up.
  var steps = MinHeap<RoundEvent>(by: { $0.at < $1.at })
  var deadlines = MinHeap<RoundEvent>(by: { $0.at < $1.at })
  /// Rounds that may be complete: all sent and the last probe answered.
  var settled: [UInt32] = []
  var probes: TraceProbeTable
  var budget: ProbeBudget
  var nextSequence: UInt32 = 0
  var nextRoundID: UInt64 = 0
  var sockets: [TracerSocketKey: ICMPSocket] = [:]
  var socketsByDescriptor: [Int32: ICMPSocket] = [:]
  var failedKeys: [TracerSocketKey: Int64] = [:]
  var packet: [UInt8] = []
  var buffer = [UInt8](repeating: 0, count: 65_536)
  var control = [UInt8](repeating: 0, count: 512)

  init(context: PingContext) {
    self.context = context
    probes = TraceProbeTable(nonce: context.nonce)
    budget = ProbeBudget(rate: tracerProbesPerSecond, burst: tracerProbeBurst, now: Clocks.monotonicNanoseconds())
  }

  mutating func run(_ thread: LoopThread<PathTracer.Command>) {
    let wakeup = thread.wakeup
    var entries: [pollfd] = []
    while !thread.isStopping {
      for command in thread.takeCommands() { handle(command) }
      let now = Clocks.monotonicNanoseconds()
      startDueRounds(now: now)
      let throttledUntil = step(now: now)
      finishRounds(now: Clocks.monotonicNanoseconds())
      entries.removeAll(keepingCapacity: true)
      entries.append(pollfd(fd: wakeup.fileDescriptor, events: Int16(POLLIN), revents: 0))
      for fd in socketsByDescriptor.keys { entries.append(pollfd(fd: fd, events: Int16(POLLIN), revents: 0)) }
      var next = now + 1_000_000_000
      if let due = schedule.min?.due { next = min(next, due) }
      // A step held back by the budget waits for it, not for its own (past) time.
      if let step = throttledUntil ?? steps.min?.at { next = min(next, step) }
      if let deadline = deadlines.min?.at { next = min(next, deadline) }
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
      forget(slot: target.slot)
      targets[target.slot] = target
      let times = TraceSchedule.firstRounds(slot: target.slot, interval: target.trace.interval.nanoseconds,
                                            now: Clocks.monotonicNanoseconds())
      schedule.insert((times.first, times.second, target.slot, target))
    case .remove(let slot):
      forget(slot: slot)
    }
  }

  /// Drops a slot's target, its round and its probes in flight: a late reply or error for
  /// them must not reach a target that takes the slot next. (Its schedule entries are
  /// skipped when due: they name the old target.)
  mutating func forget(slot: UInt32) {
    targets[slot] = nil
    active[slot] = nil
    probes.removeAll(slot: slot)
  }

  mutating func startDueRounds(now: Int64) {
    while let next = schedule.min, next.due <= now {
      schedule.popMin()
      guard let target = targets[next.slot], target === next.target else { continue }
      let interval = target.trace.interval.nanoseconds
      // A round that could not start on time (the tracer was throttled) starts now, and the
      // schedule keeps its phase.
      var following = next.following
      while following <= now { following += interval }
      schedule.insert((following, following + interval, next.slot, target))
      guard active[target.slot] == nil, let address = target.ping.state.withLock({ $0.address }) else { continue }
      let options = target.ping.config.options
      nextRoundID &+= 1
      var round = ActiveRound(target: target, address: address, id: nextRoundID, round: TraceRound(maxHops: target.trace.maxHops),
                              nextStep: now, startedAt: now,
                              sizing: ProbeSizing(family: address.family, configuredPayloadSize: options.payloadSize))
      if options.dontFragment {
        // With DF, a probe larger than the path MTU the kernel knows is refused locally
        // (EMSGSIZE) and no router would speak again: probe no larger than that MTU.
        round.mtuLookups += 1
        lookUpPathMTU(&round)
      }
      active[target.slot] = round
      steps.insert(RoundEvent(at: now, slot: target.slot, round: round.id))
    }
  }

  /// Asks the kernel for its path MTU to the round's address (once of the lookups the round
  /// has left) and shrinks the probes when it is smaller than they are. True if it did.
  @discardableResult
  mutating func lookUpPathMTU(_ round: inout ActiveRound) -> Bool {
    guard round.mtuLookups > 0 else { return false }
    round.mtuLookups -= 1
    guard let mtu = PathMTU.cached(to: round.address), round.sizing.fit(mtu: mtu) else { return false }
    round.round.mtu = min(round.round.mtu ?? Int.max, mtu)
    return true
  }

  /// Sends the probes of every round whose step is due, oldest first, as far as the
  /// budget allows; returns when to try again if the budget held any back (after enough
  /// has come back for several steps, so a throttled tracer wakes once per few steps).
  mutating func step(now: Int64) -> Int64? {
    while let event = steps.min, event.at <= now {
      guard var round = active[event.slot], round.id == event.round, !round.allSent, round.nextStep == event.at else {
        steps.popMin()
        continue
      }
      let need = round.resends.isEmpty ? round.probesPerHop : min(round.resends.count, round.probesPerHop)
      guard budget.take(need, now: now) else { return budget.availableAt(need * 8, now: now) }
      steps.popMin()
      if !round.resends.isEmpty {
        // Probes refused for their size first, at most a TTL's worth per step.
        let resends = round.resends.prefix(need)
        round.resends.removeFirst(resends.count)
        for resend in resends where resend.ttl <= round.maxTTL {
          if send(&round, ttl: resend.ttl, index: resend.index) { round.round.hops[resend.ttl - 1].probesSent += 1 }
        }
      } else {
        let ttl = round.nextTTL
        for index in 0..<round.probesPerHop {
          if send(&round, ttl: ttl, index: index) { round.round.hops[ttl - 1].probesSent += 1 }
        }
        round.nextTTL += 1
      }
      round.nextStep = now + stepNanoseconds
      round.lastSend = now
      if round.allSent {
        deadlines.insert(RoundEvent(at: now + round.timeout, slot: event.slot, round: round.id))
      } else {
        steps.insert(RoundEvent(at: round.nextStep, slot: event.slot, round: round.id))
      }
      active[event.slot] = round
    }
    return nil
  }

  mutating func send(_ round: inout ActiveRound, ttl: Int, index: Int) -> Bool {
    let target = round.target
    let options = target.ping.config.options
    guard let socket = socket(family: round.address.family, preferred: options.socket == .raw ? .raw : .dgram,
                              auto: options.socket == .auto,
                              options: target.ping.socketOptions) else { return false }
    do { try socket.setTTL(ttl) } catch { return false }
    for attempt in 0..<2 {
      let sequence = nextSequence
      nextSequence &+= 1
      let sendTime = Clocks.realtimeNanoseconds()
      buildPacket(round, ttl: ttl, index: index, sequence: sequence, sendTime: sendTime)
      do {
        guard try socket.send(packet, to: round.address) else { return false }
      } catch {
        // The kernel learned a smaller path MTU during the round (a router said so, perhaps
        // to the ping engine's probes) and refuses this size: take its MTU and try once more.
        if error.errno == EMSGSIZE, attempt == 0, lookUpPathMTU(&round) { continue }
        return false
      }
      probes.insert(TraceProbe(slot: target.slot, round: round.id, ttl: ttl, index: index, sequence: sequence,
                               sendTime: sendTime, address: round.address, payloadSize: round.sizing.payloadSize))
      round.outstanding += 1
      return true
    }
    return false
  }

  mutating func buildPacket(_ round: ActiveRound, ttl: Int, index: Int, sequence: UInt32, sendTime: Int64) {
    let target = round.target
    packet = [UInt8](repeating: 0, count: 8) + ProbePayload.padding(count: round.sizing.payloadSize)
    // The tracer's own identifier (raw sockets; datagram sockets put the kernel's there):
    // an error quoting only 8 bytes of a request is never taken for the ping engine's.
    let identifier = context.traceIdentifiers.0
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
      if case .candidate(let payload, let sequence, _) = matcher.match(datagram.message, identifiers: context.traceIdentifiers) {
        guard let probe = probes.takeReply(icmpSequence: sequence, payload: payload, from: datagram.source) else { continue }
        answered(probe, from: datagram.source, at: time)
      } else if socket.kind == .raw, let error = ICMPError.decode(datagram.message, family: socket.family) {
        guard let probe = probes.takeError(quoting: error.quotedEcho, destination: error.quotedDestination,
                                           identifiers: context.traceIdentifiers) else { continue }
        erred(probe, error.kind, from: datagram.source, at: time)
      }
    }
  }

  mutating func readErrors(from socket: ICMPSocket) {
    for read in 0..<1024 {
      let queued: ICMPSocket.QueuedError?
      do {
        queued = try socket.receiveError(into: &buffer, control: &control)
      } catch {
        _ = socket.takePendingError()
        return
      }
      guard let queued else {
        // POLLERR with nothing queued: the socket's pending error (set with an ICMP error
        // the kernel could not queue) keeps poll waking at once until it is read.
        if read == 0 { _ = socket.takePendingError() }
        return
      }
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
      guard let probe = probes.takeError(quoting: echo, destination: queued.destination, identifiers: nil) else { continue }
      erred(probe, kind, from: offender, at: queued.kernelTimestamp ?? Clocks.realtimeNanoseconds())
    }
  }

  /// The round a matched probe belongs to, if it is still the one in progress.
  func round(of probe: TraceProbe) -> ActiveRound? {
    guard let round = active[probe.slot], round.id == probe.round else { return nil }
    return round
  }

  /// The destination answered a probe.
  mutating func answered(_ probe: TraceProbe, from source: IPAddress, at time: Int64) {
    guard var round = round(of: probe) else { return }
    let (wasAllSent, wasDue) = (round.allSent, round.nextStep)
    round.outstanding -= 1
    round.round.recordReply(ttl: probe.ttl, from: source, rtt: Double(max(0, time - probe.sendTime)) / 1e9)
    update(round, wasAllSent: wasAllSent, wasDue: wasDue)
  }

  /// Stores a round an answer changed, and queues what it now waits for: its end (all is
  /// sent: the path's end came in below the TTLs still to send), or a step (probes to send
  /// again, after all was sent or sooner than the step queued).
  mutating func update(_ round: ActiveRound, wasAllSent: Bool, wasDue: Int64) {
    let slot = round.target.slot
    active[slot] = round
    if round.allSent {
      if round.outstanding <= 0 { settled.append(slot) }
      if !wasAllSent { deadlines.insert(RoundEvent(at: round.lastSend + round.timeout, slot: slot, round: round.id)) }
    } else if wasAllSent || round.nextStep < wasDue {
      steps.insert(RoundEvent(at: round.nextStep, slot: slot, round: round.id))
    }
  }

  /// A router (or the destination's network) reported an error about a probe.
  mutating func erred(_ probe: TraceProbe, _ kind: ICMPError.Kind, from source: IPAddress, at time: Int64) {
    guard var round = round(of: probe) else { return }
    let (wasAllSent, wasDue) = (round.allSent, round.nextStep)
    round.outstanding -= 1
    round.round.recordError(kind, ttl: probe.ttl, from: source, rtt: Double(max(0, time - probe.sendTime)) / 1e9)
    if case .mtuExceeded(let mtu) = kind {
      // Refused for its size: send this probe again, as large as the path now allows.
      if let mtu {
        _ = round.sizing.fit(mtu: mtu)
      } else {
        lookUpPathMTU(&round)  // the router did not say (RFC 1191's 0): the kernel's estimate
      }
      if round.sizing.resends(refused: probe.payloadSize) {
        round.resends.append((probe.ttl, probe.index))
        round.nextStep = min(round.nextStep, Clocks.monotonicNanoseconds())
      }
    }
    update(round, wasAllSent: wasAllSent, wasDue: wasDue)
  }

  // MARK: Finishing

  /// Closes rounds whose probes are all out and either answered or past the timeout.
  mutating func finishRounds(now: Int64) {
    for slot in settled {
      guard let round = active[slot], round.allSent, round.outstanding <= 0 else { continue }
      finish(round, now: now)
    }
    settled.removeAll(keepingCapacity: true)
    while let event = deadlines.min, event.at <= now {
      deadlines.popMin()
      guard let round = active[event.slot], round.id == event.round, round.allSent, now >= round.lastSend + round.timeout else { continue }
      finish(round, now: now)
    }
  }

  mutating func finish(_ round: ActiveRound, now: Int64) {
    active[round.target.slot] = nil
    probes.removeAll(slot: round.target.slot)
    publish(round, duration: Double(now - round.startedAt) / 1e9)
  }

  func publish(_ active: ActiveRound, duration: Double) {
    let target = active.target
    let (changed, path) = target.state.withLock { state in
      let changed = state.record(active.round, address: active.address, duration: duration,
                                 wallClock: Date().timeIntervalSince1970, dontFragment: target.ping.config.options.dontFragment)
      return (changed, state.detector.confirmed?.text ?? "")
    }
    if changed {
      context.logger.info("path changed", metadata: ["target": "\(target.ping.config.name)", "path": "\(path)"])
    }
  }
}
