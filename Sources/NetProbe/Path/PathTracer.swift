import Dispatch
@preconcurrency import Glibc
import FoundationEssentials
import Logging
import Synchronization

/// The path tracer's loop: runs each traced target's rounds — TTL-limited probes, several
/// per TTL, paced — and reads what they cause. ICMP echo requests draw Time Exceeded,
/// Unreachable and echo replies, on raw sockets as data and on datagram sockets from the
/// error queue; UDP probes draw Time Exceeded and, from the destination, Port Unreachable,
/// from the error queue of unprivileged UDP sockets.
final class PathTracer: Sendable {
  enum Command: Sendable {
    case add(PathTarget)
    case remove(UInt32)
  }

  private let loop: EventLoop<TracerEngine>

  /// - Parameters:
  ///   - identity: the nonce and identifiers, shared with the ping engine.
  ///   - addresses: where each target's probes go now (the ping engine resolves names).
  ///   - unexpected: where answers to UDP probes that name no probe are counted.
  init(
    identity: ProbeIdentity, addresses: any TargetAddresses, socketErrors: ProbeSocketErrors,
    unexpected: TraceUnexpectedAnswers, logger: Logger
  ) throws(SystemError) {
    loop = try EventLoop(name: "path-tracer") {
      TracerEngine(identity: identity, addresses: addresses, socketErrors: socketErrors, unexpected: unexpected, logger: logger)
    }
  }

  func post(_ command: Command) { loop.post(command) }

  func stop() { loop.stop() }
}

/// Time between two TTL steps of one round: fast enough for a 30-hop round to take a
/// fraction of a second, slow enough not to burst into a router's ICMP rate limit.
private let stepNanoseconds: Int64 = 5_000_000

/// The most trace probes the tracer sends per second, all rounds together, and the most at
/// once: many overlapping rounds slow down instead of flooding the first routers.
let tracerProbesPerSecond = 2_000
let tracerProbeBurst = 100

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
  /// Probes the kernel refused at sendto this round, by errno name: they count as sent
  /// (and lost) at their hop, and are published with the round.
  var sendErrors: [String: UInt64] = [:]

  var probesPerHop: Int { target.trace.probesPerHop }
  var timeout: Int64 { target.config.options.timeout.nanoseconds }

  /// The highest TTL to probe: the path's end once known, else max_hops.
  var maxTTL: Int { round.endTTL.map { min($0, target.trace.maxHops) } ?? target.trace.maxHops }

  var allSent: Bool { nextTTL > maxTTL && resends.isEmpty }
}

private struct TracerEngine: LoopEngine {
  typealias Command = PathTracer.Command

  enum Timer {
    /// A target's round is due; `following` is the round after it. Stale once the slot
    /// holds another target.
    case round(following: Int64, slot: UInt32, target: PathTarget)
    /// A round's next TTL step, planned for `due`; stale unless the round still plans it.
    case step(slot: UInt32, round: UInt64, due: Int64)
    /// A round, all sent, may have timed out.
    case deadline(slot: UInt32, round: UInt64)
  }

  let identity: ProbeIdentity
  let addresses: any TargetAddresses
  let logger: Logger
  var targets: [UInt32: PathTarget] = [:]
  var active: [UInt32: ActiveRound] = [:]
  /// Rounds that may be complete: all sent and the last probe answered.
  var settled: [UInt32] = []
  var probes: TraceProbeTable
  var budget: ProbeBudget
  /// While the budget holds steps back: until when. Steps due meanwhile wait for it in the
  /// order they came due, so the oldest round goes first.
  var throttledUntil: Int64?
  var nextSequence: UInt32 = 0
  var nextRoundID: UInt64 = 0
  var pool: ICMPSocketPool
  var socketsByDescriptor: [Int32: ICMPSocket] = [:]
  /// The UDP probes' sockets, their probes in flight, and the count of answers that named
  /// none of them.
  var udpPool: UDPProbeSocketPool
  var udpSocketsByDescriptor: [Int32: UDPProbeSocket] = [:]
  var udpProbes: UDPTraceProbeTable
  let unexpected: TraceUnexpectedAnswers
  /// What an error queue said about a probe.
  enum QueuedAnswer {
    /// A router's (or the destination network's) error.
    case error(ICMPError.Kind)
    /// The destination's Port Unreachable: a UDP probe reached it.
    case destination
  }
  /// Answers read from an error queue while a round was being sent (see `send`): applied
  /// once that round is stored again, so they do not race the sender's copy of it.
  var deferredErrors: [(probe: TraceProbe, answer: QueuedAnswer, source: IPAddress, time: Int64)] = []
  var request = EchoRequestBuilder()
  var buffer = [UInt8](repeating: 0, count: 65_536)
  var control = [UInt8](repeating: 0, count: 512)

  init(
    identity: ProbeIdentity, addresses: any TargetAddresses, socketErrors: ProbeSocketErrors,
    unexpected: TraceUnexpectedAnswers, logger: Logger
  ) {
    self.identity = identity
    self.addresses = addresses
    self.logger = logger
    self.unexpected = unexpected
    probes = TraceProbeTable(nonce: identity.nonce)
    udpProbes = UDPTraceProbeTable(nonce: identity.nonce)
    udpPool = UDPProbeSocketPool(logger: logger)
    budget = ProbeBudget(rate: tracerProbesPerSecond, burst: tracerProbeBurst, now: Clocks.monotonicNanoseconds())
    // Datagram sockets deliver the routers' errors on the error queue, and only if asked.
    pool = ICMPSocketPool(logger: logger, errors: socketErrors) { (socket) throws(SystemError) in
      if socket.kind == .dgram { try socket.enableErrorQueue() }
    }
  }

  mutating func handle(_ commands: [Command], loop: inout LoopRegistrations<Timer>) {
    for command in commands {
      switch command {
      case .add(let target):
        forget(slot: target.slot)
        targets[target.slot] = target
        let times = TraceSchedule.firstRounds(
          slot: target.slot, interval: target.trace.interval.nanoseconds,
          now: Clocks.monotonicNanoseconds())
        loop.schedule(.round(following: times.second, slot: target.slot, target: target), at: times.first)
      case .remove(let slot):
        forget(slot: slot)
      }
    }
  }

  mutating func fire(_ timer: Timer, now: Int64, loop: inout LoopRegistrations<Timer>) {
    switch timer {
    case .round(let following, let slot, let target):
      startRound(following: following, slot: slot, target: target, now: now, loop: &loop)
    case .step(let slot, let round, let due):
      step(slot: slot, round: round, due: due, now: now, loop: &loop)
    case .deadline(let slot, let id):
      guard let round = active[slot], round.id == id, round.allSent, now >= round.lastSend + round.timeout else { return }
      finish(round, now: now)
    }
  }

  mutating func ready(_ descriptor: Int32, events: PollEvents, loop: inout LoopRegistrations<Timer>) {
    if let socket = udpSocketsByDescriptor[descriptor] {
      if events.contains(.error) {
        drainErrors(from: socket)
        applyDeferredErrors(loop: &loop)
      }
      if events.contains(.readable) { discardData(from: socket) }
      return
    }
    guard let socket = socketsByDescriptor[descriptor] else { return }
    if events.contains(.error) { readErrors(from: socket, loop: &loop) }
    if events.contains(.readable) { readReplies(from: socket, loop: &loop) }
  }

  /// Closes the rounds an answer completed.
  mutating func endOfPass(now: Int64, loop: inout LoopRegistrations<Timer>) {
    for slot in settled {
      guard let round = active[slot], round.allSent, round.outstanding <= 0 else { continue }
      finish(round, now: now)
    }
    settled.removeAll(keepingCapacity: true)
  }

  /// Drops a slot's target, its round and its probes in flight: a late reply or error for
  /// them must not reach a target that takes the slot next. (Its round timers are
  /// skipped when due: they name the old target.)
  mutating func forget(slot: UInt32) {
    targets[slot] = nil
    active[slot] = nil
    probes.removeAll(slot: slot)
    udpProbes.removeAll(slot: slot)
  }

  /// Starts a due round, unless the last is still running or the address is unknown, and
  /// schedules the next.
  mutating func startRound(following: Int64, slot: UInt32, target: PathTarget, now: Int64, loop: inout LoopRegistrations<Timer>) {
    guard targets[slot] === target else { return }
    let interval = target.trace.interval.nanoseconds
    // A round that could not start on time (the tracer was throttled) starts now, and the
    // schedule keeps its phase.
    var next = following
    while next <= now { next += interval }
    loop.schedule(.round(following: next + interval, slot: slot, target: target), at: next)
    guard active[slot] == nil, let address = addresses.address(ofTarget: target.config.name) else { return }
    let options = target.config.options
    nextRoundID &+= 1
    var round = ActiveRound(
      target: target, address: address, id: nextRoundID, round: TraceRound(maxHops: target.trace.maxHops),
      nextStep: now, startedAt: now,
      sizing: ProbeSizing(family: address.family, configuredPayloadSize: options.payloadSize))
    if options.dontFragment {
      // With DF, a probe larger than the path MTU the kernel knows is refused locally
      // (EMSGSIZE) and no router would speak again: probe no larger than that MTU.
      round.mtuLookups += 1
      lookUpPathMTU(&round)
    }
    active[slot] = round
    loop.schedule(.step(slot: slot, round: round.id, due: now), at: now)
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

  /// Sends the probes of a round's due step, as far as the budget allows; a step the
  /// budget holds back waits until enough has come back for several steps, so a throttled
  /// tracer wakes once per few steps.
  mutating func step(slot: UInt32, round id: UInt64, due: Int64, now: Int64, loop: inout LoopRegistrations<Timer>) {
    guard var round = active[slot], round.id == id, !round.allSent, round.nextStep == due else { return }
    if let until = throttledUntil, until > now {
      loop.schedule(.step(slot: slot, round: id, due: due), at: until)
      return
    }
    throttledUntil = nil
    let need = round.resends.isEmpty ? round.probesPerHop : min(round.resends.count, round.probesPerHop)
    guard budget.take(need, now: now) else {
      let until = budget.availableAt(need * 8, now: now)
      throttledUntil = until
      loop.schedule(.step(slot: slot, round: id, due: due), at: until)
      return
    }
    if !round.resends.isEmpty {
      // Probes refused for their size first, at most a TTL's worth per step.
      let resends = round.resends.prefix(need)
      round.resends.removeFirst(resends.count)
      for resend in resends where resend.ttl <= round.maxTTL {
        account(send(&round, ttl: resend.ttl, index: resend.index, loop: &loop), ttl: resend.ttl, in: &round)
      }
    } else {
      let ttl = round.nextTTL
      for index in 0..<round.probesPerHop {
        account(send(&round, ttl: ttl, index: index, loop: &loop), ttl: ttl, in: &round)
      }
      round.nextTTL += 1
    }
    round.nextStep = now + stepNanoseconds
    round.lastSend = now
    if round.allSent {
      loop.schedule(.deadline(slot: slot, round: round.id), at: now + round.timeout)
    } else {
      loop.schedule(.step(slot: slot, round: round.id, due: round.nextStep), at: round.nextStep)
    }
    active[slot] = round
    applyDeferredErrors(loop: &loop)
  }

  /// What became of one probe.
  enum SendOutcome: Equatable {
    /// It left.
    case sent
    /// The kernel refused it (errno name): it was a probe all the same, lost at its hop.
    case refused(String)
    /// No socket to send it on (counted with the pool's socket errors): no probe.
    case noSocket
  }

  /// Counts a probe at its hop: sent or refused, it is one of the hop's probes (a refused
  /// one is lost, as a ping that cannot be sent is), and a refusal is counted by errno.
  func account(_ outcome: SendOutcome, ttl: Int, in round: inout ActiveRound) {
    switch outcome {
    case .sent:
      round.round.hops[ttl - 1].probesSent += 1
    case .refused(let reason):
      round.round.hops[ttl - 1].probesSent += 1
      round.sendErrors[reason, default: 0] += 1
    case .noSocket:
      break
    }
  }

  /// Sends one probe. On a datagram socket (IP_RECVERR), every ICMP error about an earlier
  /// probe also sets the socket's pending error, and the next sendto returns it
  /// (EHOSTUNREACH for a Time Exceeded) instead of sending: the error is that earlier
  /// probe's answer, not this probe's failure. So after a refused send the error queue is
  /// read (its answers applied once the round is stored) and, if it held anything, the
  /// same probe is sent again — all `probes_per_hop` leave, as they do on raw sockets.
  mutating func send(_ round: inout ActiveRound, ttl: Int, index: Int, loop: inout LoopRegistrations<Timer>) -> SendOutcome {
    let target = round.target
    if target.trace.probeProtocol == .udp { return sendUDP(&round, ttl: ttl, index: index, loop: &loop) }
    var options = target.config.options.socketOptions
    options.ttl = 1  // set per probe; one socket serves every TTL
    let socket: ICMPSocket
    switch pool.socket(
      family: round.address.family, mode: target.config.options.socket, options: options,
      now: Clocks.monotonicNanoseconds())
    {
    case .ready(let ready, let opened):
      if opened {
        socketsByDescriptor[ready.fileDescriptor] = ready
        loop.watch(ready.fileDescriptor)
      }
      socket = ready
    case .unavailable:
      return .noSocket
    }
    do { try socket.setTTL(ttl) } catch { return .refused(error.code.name) }
    // One sequence per probe, kept across its retries: the wire shows no gap.
    let sequence = nextSequence
    nextSequence &+= 1
    var retries = SendRetries()
    while true {
      let sendTime = Clocks.realtimeNanoseconds()
      // One flow per round (constant checksum), or one per probe to spread over ECMP branches.
      let flow = target.trace.varyFlow ? target.flow &+ UInt16(truncatingIfNeeded: ttl * 7 + index) : target.flow
      // The tracer's own identifier (raw sockets; datagram sockets put the kernel's there):
      // an error quoting only 8 bytes of a request is never taken for the ping engine's.
      request.build(
        family: round.address.family, identifier: identity.traceIdentifiers.0,
        payload: ProbePayload(nonce: identity.nonce, slot: target.slot, sequence: sequence, sendTimeNanoseconds: sendTime),
        payloadSize: round.sizing.payloadSize, flow: flow)
      do {
        guard try socket.send(request.packet, to: round.address) else { return .refused(Errno.wouldBlock.name) }
      } catch {
        // Raw sockets get the answers as data: nothing is ever pending on them.
        if retries.again(
          after: error, drainPending: { socket.kind == .dgram ? drainErrors(from: socket) : 0 }, resize: { lookUpPathMTU(&round) })
        {
          continue
        }
        return .refused(error.code.name)
      }
      probes.insert(
        TraceProbe(
          slot: target.slot, round: round.id, ttl: ttl, index: index, sequence: sequence,
          sendTime: sendTime, address: round.address, payloadSize: round.sizing.payloadSize))
      round.outstanding += 1
      return .sent
    }
  }

  // MARK: Receiving

  mutating func readReplies(from socket: ICMPSocket, loop: inout LoopRegistrations<Timer>) {
    let matcher = ReplyMatcher(family: socket.family, kind: socket.kind, nonce: identity.nonce, forTracer: true)
    for _ in 0..<1024 {
      guard let datagram = try? socket.receive(into: &buffer, control: &control) else { return }
      let time = datagram.kernelTimestamp ?? Clocks.realtimeNanoseconds()
      if case .candidate(let payload, let sequence, _) = matcher.match(datagram.message, identifiers: identity.traceIdentifiers) {
        guard let probe = probes.takeReply(icmpSequence: sequence, payload: payload, from: datagram.source) else { continue }
        answered(probe, from: datagram.source, at: time, loop: &loop)
      } else if socket.kind == .raw, let error = ICMPError.decode(datagram.message, family: socket.family) {
        guard
          let probe = probes.takeError(
            quoting: error.quotedEcho, destination: error.quotedDestination,
            identifiers: identity.traceIdentifiers)
        else { continue }
        erred(probe, error.kind, from: datagram.source, at: time, loop: &loop)
      }
    }
  }

  mutating func readErrors(from socket: ICMPSocket, loop: inout LoopRegistrations<Timer>) {
    drainErrors(from: socket)
    applyDeferredErrors(loop: &loop)
  }

  /// Reads a socket's error queue into `deferredErrors`; returns how many entries it read
  /// (ours or not: each one explains a pending error).
  @discardableResult
  mutating func drainErrors(from socket: ICMPSocket) -> Int {
    for read in 0..<1024 {
      let queued: ICMPSocket.QueuedError?
      do {
        queued = try socket.receiveError(into: &buffer, control: &control)
      } catch {
        _ = socket.takePendingError()
        return read
      }
      guard let queued else {
        // POLLERR with nothing queued: the socket's pending error (set with an ICMP error
        // the kernel could not queue) keeps poll waking at once until it is read.
        if read == 0 { _ = socket.takePendingError() }
        return read
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
      deferredErrors.append((probe, .error(kind), offender, queued.kernelTimestamp ?? Clocks.realtimeNanoseconds()))
    }
    return 1024
  }

  /// Applies the answers `drainErrors` read.
  mutating func applyDeferredErrors(loop: inout LoopRegistrations<Timer>) {
    guard !deferredErrors.isEmpty else { return }
    let errors = deferredErrors
    deferredErrors.removeAll(keepingCapacity: true)
    for error in errors {
      switch error.answer {
      case .error(let kind): erred(error.probe, kind, from: error.source, at: error.time, loop: &loop)
      case .destination: answered(error.probe, from: error.source, at: error.time, loop: &loop)
      }
    }
  }

  // MARK: UDP probes

  /// Sends one UDP probe: its flow is its ports (`UDPTraceFlow`), its identity the payload
  /// a router quotes back. As on datagram ICMP sockets, a refused send after an answer to
  /// an earlier probe is that answer's pending error: the error queue is read and the same
  /// probe is sent again.
  mutating func sendUDP(_ round: inout ActiveRound, ttl: Int, index: Int, loop: inout LoopRegistrations<Timer>) -> SendOutcome {
    let target = round.target
    var options = target.config.options.socketOptions
    options.ttl = 1  // set per probe; one socket serves every TTL
    let socket: UDPProbeSocket
    switch udpPool.socket(family: round.address.family, options: options, now: Clocks.monotonicNanoseconds()) {
    case .ready(let ready, let opened):
      if opened {
        udpSocketsByDescriptor[ready.fileDescriptor] = ready
        loop.watch(ready.fileDescriptor)
      }
      socket = ready
    case .unavailable:
      return .noSocket
    }
    do { try socket.setTTL(ttl) } catch { return .refused(error.code.name) }
    let sequence = nextSequence
    nextSequence &+= 1
    let port = UDPTraceFlow.destinationPort(
      flow: target.flow, varyFlow: target.trace.varyFlow, round: round.id, ttl: ttl, index: index,
      probesPerHop: round.probesPerHop)
    var retries = SendRetries()
    while true {
      let sendTime = Clocks.realtimeNanoseconds()
      let datagram = UDPTraceFlow.payload(
        ProbePayload(nonce: identity.nonce, slot: target.slot, sequence: sequence, sendTimeNanoseconds: sendTime),
        size: round.sizing.payloadSize)
      do {
        guard try socket.send(datagram, to: SocketAddress(round.address, port: port)) else { return .refused(Errno.wouldBlock.name) }
      } catch {
        if retries.again(after: error, drainPending: { drainErrors(from: socket) }, resize: { lookUpPathMTU(&round) }) { continue }
        return .refused(error.code.name)
      }
      udpProbes.insert(
        TraceProbe(
          slot: target.slot, round: round.id, ttl: ttl, index: index, sequence: sequence,
          sendTime: sendTime, address: round.address, payloadSize: round.sizing.payloadSize,
          sourcePort: socket.sourcePort, destinationPort: port))
      round.outstanding += 1
      return .sent
    }
  }

  /// Reads a UDP socket's error queue into `deferredErrors`, counting the answers that
  /// name no probe; returns how many entries it read (each explains a pending error).
  @discardableResult
  mutating func drainErrors(from socket: UDPProbeSocket) -> Int {
    for read in 0..<1024 {
      let queued: UDPProbeSocket.QueuedError?
      do {
        queued = try socket.receiveError(into: &buffer, control: &control)
      } catch {
        _ = socket.takePendingError()
        return read
      }
      guard let queued else {
        if read == 0 { _ = socket.takePendingError() }
        return read
      }
      // Local errors (origin not ICMP) are our own sends' failures, counted where sent.
      guard queued.error.origin == 2 || queued.error.origin == 3 else { continue }
      guard let answer = UDPTraceAnswer.classify(queued.error, family: socket.family), let offender = queued.error.offender else {
        unexpected.record(socket.family, .malformed)
        continue
      }
      let probe: TraceProbe
      switch udpProbes.takeAnswer(quoting: queued.quotedPayload, destination: queued.destination, sourcePort: socket.sourcePort) {
      case .success(let taken): probe = taken
      case .failure(let failure):
        unexpected.record(socket.family, failure.problem)
        continue
      }
      let time = queued.kernelTimestamp ?? Clocks.realtimeNanoseconds()
      switch answer {
      case .error(let kind):
        deferredErrors.append((probe, .error(kind), offender, time))
      case .portUnreachable where offender == probe.address:
        deferredErrors.append((probe, .destination, offender, time))
      case .portUnreachable:
        let code = UDPTraceAnswer.portUnreachableCode(socket.family)
        deferredErrors.append((probe, .error(.unreachable(code: code)), offender, time))
      }
    }
    return 1024
  }

  /// Reads and drops the datagrams a UDP socket received: an open port at a destination
  /// answering a probe with data. They quote no probe, so they name no hop.
  mutating func discardData(from socket: UDPProbeSocket) {
    for _ in 0..<1024 {
      guard (try? socket.receiveData(into: &buffer, control: &control)) != nil else { return }
    }
  }

  /// The round a matched probe belongs to, if it is still the one in progress.
  func round(of probe: TraceProbe) -> ActiveRound? {
    guard let round = active[probe.slot], round.id == probe.round else { return nil }
    return round
  }

  /// The destination answered a probe.
  mutating func answered(_ probe: TraceProbe, from source: IPAddress, at time: Int64, loop: inout LoopRegistrations<Timer>) {
    guard var round = round(of: probe) else { return }
    let (wasAllSent, wasDue) = (round.allSent, round.nextStep)
    round.outstanding -= 1
    round.round.recordReply(ttl: probe.ttl, from: source, rtt: Double(max(0, time - probe.sendTime)) / 1e9)
    update(round, wasAllSent: wasAllSent, wasDue: wasDue, loop: &loop)
  }

  /// Stores a round an answer changed, and queues what it now waits for: its end (all is
  /// sent: the path's end came in below the TTLs still to send), or a step (probes to send
  /// again, after all was sent or sooner than the step queued).
  mutating func update(_ round: ActiveRound, wasAllSent: Bool, wasDue: Int64, loop: inout LoopRegistrations<Timer>) {
    let slot = round.target.slot
    active[slot] = round
    if round.allSent {
      if round.outstanding <= 0 { settled.append(slot) }
      if !wasAllSent { loop.schedule(.deadline(slot: slot, round: round.id), at: round.lastSend + round.timeout) }
    } else if wasAllSent || round.nextStep < wasDue {
      loop.schedule(.step(slot: slot, round: round.id, due: round.nextStep), at: round.nextStep)
    }
  }

  /// A router (or the destination's network) reported an error about a probe.
  mutating func erred(
    _ probe: TraceProbe, _ kind: ICMPError.Kind, from source: IPAddress, at time: Int64, loop: inout LoopRegistrations<Timer>
  ) {
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
    update(round, wasAllSent: wasAllSent, wasDue: wasDue, loop: &loop)
  }

  // MARK: Finishing

  mutating func finish(_ round: ActiveRound, now: Int64) {
    active[round.target.slot] = nil
    probes.removeAll(slot: round.target.slot)
    udpProbes.removeAll(slot: round.target.slot)
    publish(round, duration: Double(now - round.startedAt) / 1e9)
  }

  func publish(_ active: ActiveRound, duration: Double) {
    let target = active.target
    let (changed, path) = target.state.withLock { state in
      let changed = state.record(
        active.round, address: active.address, duration: duration,
        wallClock: Date().timeIntervalSince1970, dontFragment: target.config.options.dontFragment)
      for (reason, count) in active.sendErrors { state.sendErrors[reason, default: 0] += count }
      return (changed, state.detector.confirmed?.text ?? "")
    }
    if changed {
      logger.info("path changed", metadata: ["target": "\(target.config.name)", "path": "\(path)"])
    }
  }
}

/// The tracer's one rule for a probe the kernel refused to send, for ICMP and UDP probes
/// alike. On a datagram socket the refusal may be an earlier probe's answer left pending
/// (a Time Exceeded is EHOSTUNREACH): it is read off the socket and the probe sent again,
/// twice at most, as it is no failure of this probe. If the kernel learned a smaller path
/// MTU during the round (a router said so, perhaps to the ping engine's probes) and refuses
/// this size, its MTU is taken and the probe tried once more.
struct SendRetries {
  private var pendingLeft = 2
  private var resized = false

  /// Whether to send again after `error`. `drainPending` reads the socket's pending
  /// answers and says how many there were; `resize` takes the kernel's path MTU for the
  /// round and says whether it changed.
  mutating func again(after error: SystemError, drainPending: () -> Int, resize: () -> Bool) -> Bool {
    if pendingLeft > 0, drainPending() > 0 {
      pendingLeft -= 1
      return true
    }
    if error.code == .messageTooLong, !resized, resize() {
      resized = true
      return true
    }
    return false
  }
}
