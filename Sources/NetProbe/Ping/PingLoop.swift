import Logging
@preconcurrency import Glibc
import FoundationEssentials
import Synchronization

/// What the loops of the ping engine share: the identity that marks our probes, the
/// engine-wide counters and the log.
final class PingShared: Sendable {
  let identity: ProbeIdentity
  let logger: Logger
  let stats: PingEngineStats

  init(identity: ProbeIdentity, logger: Logger, stats: PingEngineStats) {
    self.identity = identity
    self.logger = logger
    self.stats = stats
  }
}

/// The event loop of one address family: sends every due probe, paced over each target's
/// interval, receives the replies on a few shared sockets, and expires probes at their
/// deadline. Its state belongs to its loop's thread; other threads talk to it through `post`.
final class PingLoop: Sendable {
  enum Command: Sendable {
    case add(PingTarget)
    case remove(UInt32)
    /// The identifier rotation changed: the loop's rotation timer follows it.
    case rotationChanged
  }

  let family: IPAddress.Family
  private let loop: EventLoop<PingLoopEngine>

  init(family: IPAddress.Family, shared: PingShared) throws(SystemError) {
    self.family = family
    loop = try EventLoop(name: "ping-\(family.rawValue)") { PingLoopEngine(family: family, shared: shared) }
  }

  /// Queues a command and wakes the loop; starts the thread on first use.
  func post(_ command: Command) { loop.post(command) }

  /// The same, except that it starts no thread: for news that matter only to a running loop.
  func notify(_ command: Command) { loop.post(command, isEmpty: true) }

  /// Stops the thread; returns within a second.
  func stop() { loop.stop() }
}

/// The protocol logic of one family's ping loop.
private struct PingLoopEngine: LoopEngine {
  typealias Command = PingLoop.Command

  enum Timer {
    /// A target's next probe, planned for `due`; timers of a target removed or added again
    /// since are stale.
    case send(slot: UInt32, generation: UInt64, target: PingTarget, due: Int64)
    /// A probe's deadline.
    case deadline(slot: UInt32, sequence: UInt32)
    /// The identifier may be due for rotation; stale unless it is the loop's current one.
    case rotation(at: Int64)
  }

  let family: IPAddress.Family
  let shared: PingShared
  var targets: [UInt32: PingTarget] = [:]
  /// The socket each target sends on: replies are accepted only from it, since every raw
  /// socket of the host receives a copy of every reply.
  var targetSocket: [UInt32: Int32] = [:]
  /// How many targets send on each socket: a socket no target needs any more is closed
  /// (a raw one would otherwise go on waking the loop for every ICMP packet of the host).
  var socketUsers: [Int32: Int] = [:]
  /// Bumped on every add of a slot: timers of an earlier add are stale, even when the same
  /// target was removed and added back (a DNS name that changed family and back).
  var generations: [UInt32: UInt64] = [:]
  var nextGeneration: UInt64 = 0
  var pool: ICMPSocketPool
  var socketsByDescriptor: [Int32: ICMPSocket] = [:]
  var request = EchoRequestBuilder()
  var receiveBuffer = [UInt8](repeating: 0, count: 65_536)
  var control = [UInt8](repeating: 0, count: 512)
  var matchers: [ICMPSocketKind: ReplyMatcher] = [:]
  /// The raw socket whose foreign packets are counted (each raw socket sees them all).
  var countingRawDescriptor: Int32?
  /// When the current rotation timer is set for: one set before a reconfiguration is stale.
  var rotationTimer: Int64?

  init(family: IPAddress.Family, shared: PingShared) {
    self.family = family
    self.shared = shared
    pool = ICMPSocketPool(logger: shared.logger, errors: shared.stats.socketErrors)
    matchers[.dgram] = ReplyMatcher(family: family, kind: .dgram, nonce: shared.identity.nonce)
    matchers[.raw] = ReplyMatcher(family: family, kind: .raw, nonce: shared.identity.nonce)
  }

  mutating func handle(_ commands: [Command], loop: inout LoopRegistrations<Timer>) {
    for command in commands {
      switch command {
      case .add(let target):
        targets[target.slot] = target
        nextGeneration += 1
        generations[target.slot] = nextGeneration
        // Golden-ratio phases spread any number of targets evenly over their interval,
        // without knowing how many there will be.
        let phase = (Double(target.slot) * 0.618_033_988_749_895).truncatingRemainder(dividingBy: 1)
        let interval = target.config.options.interval.nanoseconds
        let due = Clocks.monotonicNanoseconds() + Int64(phase * Double(interval))
        loop.schedule(.send(slot: target.slot, generation: nextGeneration, target: target, due: due), at: due)
      case .remove(let slot):
        targets[slot] = nil
        generations[slot] = nil
        unbind(slot, loop: &loop)
      case .rotationChanged:
        rotationTimer = nil
      }
    }
    scheduleRotation(loop: &loop)
  }

  mutating func fire(_ timer: Timer, now: Int64, loop: inout LoopRegistrations<Timer>) {
    switch timer {
    case .send(let slot, let generation, let target, let due):
      // A removed or replaced target's timers are dropped here.
      guard targets[slot] === target, generations[slot] == generation else { return }
      send(target, now: now, loop: &loop)
      // Fixed rate from the planned time; after a stall, start again from now instead of
      // sending the missed probes in a burst.
      let interval = target.config.options.interval.nanoseconds
      let following = due + interval
      let next = following > now ? following : now + interval
      loop.schedule(.send(slot: slot, generation: generation, target: target, due: next), at: next)
    case .deadline(let slot, let sequence):
      guard let target = targets[slot] else { return }
      target.state.withLock { $0.expire(sequence: sequence, now: now) }
    case .rotation(let at):
      guard at == rotationTimer else { return }
      rotationTimer = nil
      scheduleRotation(loop: &loop, now: now)
    }
  }

  mutating func ready(_ descriptor: Int32, events: PollEvents, loop: inout LoopRegistrations<Timer>) {
    if let socket = socketsByDescriptor[descriptor] { receiveAll(from: socket) }
  }

  /// Rotates the identifier if due, and keeps one timer for the next rotation.
  mutating func scheduleRotation(loop: inout LoopRegistrations<Timer>, now: Int64 = Clocks.monotonicNanoseconds()) {
    guard let next = shared.identity.rotateIfDue(now: now), rotationTimer.map({ next < $0 }) ?? true else { return }
    rotationTimer = next
    loop.schedule(.rotation(at: next), at: next)
  }

  // MARK: Sending

  mutating func send(_ target: PingTarget, now: Int64, loop: inout LoopRegistrations<Timer>) {
    let address = target.state.withLock { $0.address }
    guard let address, address.family == family else { return }
    let options = target.config.options
    let socket: ICMPSocket
    switch pool.socket(family: family, mode: options.socket, options: target.socketOptions, now: now) {
    case .ready(let ready, let opened):
      if opened { register(ready, loop: &loop) }
      bind(target, to: ready, loop: &loop)
      socket = ready
    case .unavailable(let error):
      target.state.withLock { $0.sendErrors[error.code.name, default: 0] += 1 }
      return
    }
    let sendTime = Clocks.realtimeNanoseconds()
    let deadline = now + options.timeout.nanoseconds
    let sequence = target.state.withLock { $0.beginProbe(sendTime: sendTime, deadline: deadline) }
    request.build(
      family: family, identifier: shared.identity.pingIdentifiers.0,
      payload: ProbePayload(nonce: shared.identity.nonce, slot: target.slot, sequence: sequence, sendTimeNanoseconds: sendTime),
      payloadSize: options.payloadSize)
    var failure: String?
    do {
      if try !socket.send(request.packet, to: address) { failure = Errno.wouldBlock.name }
    } catch {
      failure = error.code.name
    }
    // A probe that could not be sent is lost all the same: counted as sent, it expires at
    // its deadline (see `probeHandedOver`).
    target.state.withLock { $0.probeHandedOver(refused: failure) }
    loop.schedule(.deadline(slot: target.slot, sequence: sequence), at: deadline)
  }

  mutating func register(_ socket: ICMPSocket, loop: inout LoopRegistrations<Timer>) {
    socketsByDescriptor[socket.fileDescriptor] = socket
    loop.watch(socket.fileDescriptor)
    if socket.kind == .raw && countingRawDescriptor == nil { countingRawDescriptor = socket.fileDescriptor }
  }

  mutating func bind(_ target: PingTarget, to socket: ICMPSocket, loop: inout LoopRegistrations<Timer>) {
    if targetSocket[target.slot] != socket.fileDescriptor {
      unbind(target.slot, loop: &loop)
      targetSocket[target.slot] = socket.fileDescriptor
      socketUsers[socket.fileDescriptor, default: 0] += 1
      target.state.withLock { $0.socketKind = socket.kind }
    }
  }

  /// Forgets the socket `slot` sent on, and closes it when no other target uses it.
  mutating func unbind(_ slot: UInt32, loop: inout LoopRegistrations<Timer>) {
    guard let fd = targetSocket.removeValue(forKey: slot), let closed = release(fd) else { return }
    loop.unwatch(closed)
  }

  /// One target fewer on `fd`; returns the descriptor to stop watching when that was the
  /// last (the socket closes as its last reference goes).
  mutating func release(_ fd: Int32) -> Int32? {
    let users = (socketUsers[fd] ?? 1) - 1
    guard users <= 0 else {
      socketUsers[fd] = users
      return nil
    }
    socketUsers[fd] = nil
    guard let socket = socketsByDescriptor.removeValue(forKey: fd) else { return nil }
    pool.remove(socket)
    if countingRawDescriptor == fd {
      countingRawDescriptor = socketsByDescriptor.values.first(where: { $0.kind == .raw })?.fileDescriptor
    }
    return fd
  }

  // MARK: Receiving

  mutating func receiveAll(from socket: ICMPSocket) {
    // A bounded batch per wake-up, so one flooded socket cannot starve the sending.
    for _ in 0..<1024 {
      let datagram: ReceivedICMP?
      do {
        datagram = try socket.receive(into: &receiveBuffer, control: &control)
      } catch {
        return
      }
      guard let datagram else { return }
      handle(datagram, on: socket)
    }
  }

  mutating func handle(_ datagram: ReceivedICMP, on socket: ICMPSocket) {
    let counts = socket.kind == .dgram || socket.fileDescriptor == countingRawDescriptor
    guard let matcher = matchers[socket.kind] else { return }
    switch matcher.match(datagram.message, identifiers: shared.identity.pingIdentifiers) {
    case .ignored:
      return
    case .unexpected(let reason):
      if counts { shared.stats.unexpected(family: family, reason: reason) }
    case .candidate(let payload, _, let payloadLength):
      guard let target = targets[payload.slot] else {
        if counts { shared.stats.unexpected(family: family, reason: .unknownProbe) }
        return
      }
      // Every raw socket gets a copy: count the reply once, on the socket that sent it.
      guard targetSocket[payload.slot] == socket.fileDescriptor else { return }
      let realtimeNow = Clocks.realtimeNanoseconds()
      let receiveTime = datagram.kernelTimestamp ?? realtimeNow
      // In time or late is judged by when the kernel received the reply, not by when this
      // loop got to it: a reply queued behind a busy moment was still in time.
      let now = Clocks.monotonicNanoseconds() - max(0, realtimeNow - receiveTime)
      let reason = target.state.withLock { state in
        state.reply(
          sequence: payload.sequence, sendTime: payload.sendTimeNanoseconds, receiveTime: receiveTime, now: now,
          source: datagram.source, payloadMatches: payloadLength == target.config.options.payloadSize, ttl: datagram.ttl)
      }
      if let reason { shared.stats.unexpected(family: family, reason: reason) }
    }
  }
}
