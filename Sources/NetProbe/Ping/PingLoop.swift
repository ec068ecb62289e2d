import Logging
@preconcurrency import Glibc
import FoundationEssentials
import Synchronization

/// What all loops of one engine share: the identity that marks our probes, the socket
/// policy, and the engine-wide counters.
final class PingContext: Sendable {
  /// Random per process: replies carrying another nonce are not ours.
  let nonce: UInt64
  /// The ICMP identifier in use and the one before it (rotation keeps the old one valid
  /// for the replies still in flight), packed as previous << 16 | current. Both have
  /// `ProbePayload.traceIdentifierBit` clear: the path tracer's have it set.
  let identifiers: Atomic<UInt32>
  let logger: Logger
  let stats: PingEngineStats

  init(logger: Logger, stats: PingEngineStats) {
    nonce = UInt64.random(in: 1...UInt64.max)
    let first = UInt32(UInt16.random(in: 1..<ProbePayload.traceIdentifierBit))
    identifiers = Atomic(first << 16 | first)
    self.logger = logger
    self.stats = stats
  }

  var currentIdentifiers: (UInt16, UInt16) {
    let packed = identifiers.load(ordering: .relaxed)
    return (UInt16(packed & 0xFFFF), UInt16(packed >> 16))
  }

  /// Picks a new random identifier, keeping the current one as the previous.
  func rotateIdentifier() {
    let current = identifiers.load(ordering: .relaxed) & 0xFFFF
    var next = UInt32(UInt16.random(in: 1..<ProbePayload.traceIdentifierBit))
    while next == current { next = UInt32(UInt16.random(in: 1..<ProbePayload.traceIdentifierBit)) }
    identifiers.store(current << 16 | next, ordering: .relaxed)
  }

  /// The path tracer's identifiers: the ping engine's with the trace bit set, so they
  /// rotate together and never meet.
  var traceIdentifiers: (UInt16, UInt16) {
    let (current, previous) = currentIdentifiers
    return (current | ProbePayload.traceIdentifierBit, previous | ProbePayload.traceIdentifierBit)
  }
}

/// The event loop of one address family: a thread that sends every due probe, paced
/// over each target's interval, receives the replies on a few shared sockets, and expires
/// probes at their deadline. Its state belongs to its thread; other threads talk to it
/// through `post`.
final class PingLoop: Sendable {
  enum Command: Sendable {
    case add(PingTarget)
    case remove(UInt32)
  }

  let family: IPAddress.Family
  private let thread: LoopThread<Command>

  init(family: IPAddress.Family, context: PingContext) throws(SystemError) {
    self.family = family
    thread = try LoopThread(name: "ping-\(family.rawValue)") { thread in
      var state = LoopState(family: family, context: context)
      state.run(thread)
    }
  }

  /// Queues a command and wakes the loop; starts the thread on first use.
  func post(_ command: Command) { thread.post(command) }

  /// Stops the thread; returns within a second.
  func stop() { thread.stop() }
}

/// A socket a loop opened, and the targets that send through it.
private struct SocketKey: Hashable {
  var kind: ICMPSocketKind
  var options: ICMPSocketOptions
}

/// The loop's thread-confined state.
private struct LoopState {
  let family: IPAddress.Family
  let context: PingContext
  var targets: [UInt32: PingTarget] = [:]
  /// The socket each target sends on: replies are accepted only from it, since every raw
  /// socket of the host receives a copy of every reply.
  var targetSocket: [UInt32: Int32] = [:]
  /// How many targets send on each socket: a socket no target needs any more is closed
  /// (a raw one would otherwise go on waking the loop for every ICMP packet of the host).
  var socketUsers: [Int32: Int] = [:]
  /// Bumped on every add of a slot: schedule entries of an earlier add are stale, even when
  /// the same target was removed and added back (a DNS name that changed family and back).
  var generations: [UInt32: UInt64] = [:]
  var nextGeneration: UInt64 = 0
  var schedule = MinHeap<(due: Int64, slot: UInt32, generation: UInt64, target: PingTarget)>(by: { $0.due < $1.due })
  var deadlines = MinHeap<(deadline: Int64, slot: UInt32, sequence: UInt32)>(by: { $0.deadline < $1.deadline })
  var sockets: [SocketKey: ICMPSocket] = [:]
  var socketsByDescriptor: [Int32: ICMPSocket] = [:]
  /// Kinds that failed to open, with the time to try again (ns, monotonic).
  var openFailures: [SocketKey: (error: SystemError, retryAt: Int64)] = [:]
  /// The datagram-vs-raw decision of `socket: auto`, made once per family.
  var autoKind: ICMPSocketKind?
  var loggedAutoFallback = false
  var packet: [UInt8] = []
  var receiveBuffer = [UInt8](repeating: 0, count: 65_536)
  var control = [UInt8](repeating: 0, count: 512)
  var matchers: [ICMPSocketKind: ReplyMatcher] = [:]
  /// The raw socket whose foreign packets are counted (each raw socket sees them all).
  var countingRawDescriptor: Int32?

  init(family: IPAddress.Family, context: PingContext) {
    self.family = family
    self.context = context
    matchers[.dgram] = ReplyMatcher(family: family, kind: .dgram, nonce: context.nonce)
    matchers[.raw] = ReplyMatcher(family: family, kind: .raw, nonce: context.nonce)
  }

  mutating func run(_ thread: LoopThread<PingLoop.Command>) {
    let wakeup = thread.wakeup
    var entries: [pollfd] = []
    while !thread.isStopping {
      for command in thread.takeCommands() { handle(command) }
      let now = Clocks.monotonicNanoseconds()
      sendDue(now: now)
      entries.removeAll(keepingCapacity: true)
      entries.append(pollfd(fd: wakeup.fileDescriptor, events: Int16(POLLIN), revents: 0))
      for fd in socketsByDescriptor.keys { entries.append(pollfd(fd: fd, events: Int16(POLLIN), revents: 0)) }
      var next = now + 1_000_000_000
      if let due = schedule.min?.due { next = min(next, due) }
      if let deadline = deadlines.min?.deadline { next = min(next, deadline) }
      // Whole milliseconds, rounded up so the loop never wakes a moment early and spins:
      // sends are paced on a 1 ms grid (at 10,000 probes a second, ten each millisecond).
      // Waking for every send with ppoll's nanoseconds cost 70 % more CPU per probe at
      // 10,000 targets (0.020 against 0.012 CPU-seconds per 1,000 probes, make bench).
      let waitNanoseconds = max(0, next - Clocks.monotonicNanoseconds())
      let timeout = Int32(min(1000, (waitNanoseconds + 999_999) / 1_000_000))
      _ = try? Poller.poll(&entries, timeoutMilliseconds: timeout)
      if entries[0].revents != 0 { wakeup.drain() }
      for entry in entries.dropFirst() where entry.revents != 0 {
        if let socket = socketsByDescriptor[entry.fd] { receiveAll(from: socket) }
      }
      // After the replies that arrived are read: one that came in time but waited in the
      // socket while a burst of sends went out is matched before its deadline is checked.
      expire(now: Clocks.monotonicNanoseconds())
    }
  }

  mutating func handle(_ command: PingLoop.Command) {
    switch command {
    case .add(let target):
      targets[target.slot] = target
      nextGeneration += 1
      generations[target.slot] = nextGeneration
      // Golden-ratio phases spread any number of targets evenly over their interval,
      // without knowing how many there will be.
      let phase = (Double(target.slot) * 0.618_033_988_749_895).truncatingRemainder(dividingBy: 1)
      let interval = target.config.options.interval.nanoseconds
      schedule.insert((Clocks.monotonicNanoseconds() + Int64(phase * Double(interval)), target.slot, nextGeneration, target))
    case .remove(let slot):
      targets[slot] = nil
      generations[slot] = nil
      unbind(slot)
    }
  }

  // MARK: Sending

  mutating func sendDue(now: Int64) {
    while let next = schedule.min, next.due <= now {
      schedule.popMin()
      // A removed or replaced target's entries are dropped here, lazily.
      guard let target = targets[next.slot], target === next.target, generations[next.slot] == next.generation else { continue }
      let interval = target.config.options.interval.nanoseconds
      send(target, now: now)
      // Fixed rate from the planned time; after a stall, start again from now instead of
      // sending the missed probes in a burst.
      let following = next.due + interval
      schedule.insert((following > now ? following : now + interval, next.slot, next.generation, target))
    }
  }

  mutating func send(_ target: PingTarget, now: Int64) {
    let address = target.state.withLock { $0.address }
    guard let address, address.family == family else { return }
    let options = target.config.options
    guard let socket = socket(for: target) else {
      let error = openFailures[key(for: target)]?.error
      target.state.withLock { $0.sendErrors[Errno.name(error?.errno ?? EPERM), default: 0] += 1 }
      return
    }
    let sendTime = Clocks.realtimeNanoseconds()
    let deadline = now + options.timeout.nanoseconds
    let sequence = target.state.withLock { state in
      let (sequence, evicted) = state.ledger.send(sendTime: sendTime, deadline: deadline)
      if evicted { state.window.record(nil) }
      return sequence
    }
    buildPacket(slot: target.slot, sequence: sequence, sendTime: sendTime, payloadSize: options.payloadSize)
    var failure: String?
    do {
      if try !socket.send(packet, to: address) { failure = "EAGAIN" }
    } catch {
      failure = Errno.name(error.errno)
    }
    target.state.withLock { state in
      if let failure {
        state.sendErrors[failure, default: 0] += 1
      } else {
        state.sent += 1
      }
    }
    // A probe that could not be sent is lost all the same: it expires at its deadline.
    deadlines.insert((deadline, target.slot, sequence))
  }

  mutating func buildPacket(slot: UInt32, sequence: UInt32, sendTime: Int64, payloadSize: Int) {
    let length = 8 + payloadSize
    if packet.count != length {
      packet = [UInt8](repeating: 0, count: 8) + ProbePayload.padding(count: payloadSize)
    }
    let identifier = context.currentIdentifiers.0
    packet[0] = family == .ip4 ? ICMPType.echoRequestV4 : ICMPType.echoRequestV6
    packet[1] = 0
    packet[2] = 0
    packet[3] = 0
    packet[4] = UInt8(identifier >> 8)
    packet[5] = UInt8(identifier & 0xFF)
    packet[6] = UInt8(truncatingIfNeeded: sequence >> 8)
    packet[7] = UInt8(truncatingIfNeeded: sequence)
    ProbePayload(nonce: context.nonce, slot: slot, sequence: sequence, sendTimeNanoseconds: sendTime).write(into: &packet, at: 8)
    if family == .ip4 {
      let checksum = InternetChecksum.compute(packet)
      packet[2] = UInt8(checksum >> 8)
      packet[3] = UInt8(checksum & 0xFF)
    }
  }

  func key(for target: PingTarget) -> SocketKey {
    let kind: ICMPSocketKind = switch target.config.options.socket {
    case .dgram: .dgram
    case .raw: .raw
    case .auto: autoKind ?? .dgram
    }
    return SocketKey(kind: kind, options: target.socketOptions)
  }

  /// The socket for `target`, opened on first use. `socket: auto` tries a datagram socket
  /// and falls back to raw when the group range refuses it (EACCES).
  mutating func socket(for target: PingTarget) -> ICMPSocket? {
    var key = key(for: target)
    if let socket = sockets[key] {
      bind(target, to: socket)
      return socket
    }
    let now = Clocks.monotonicNanoseconds()
    if let failure = openFailures[key], failure.retryAt > now { return nil }
    do {
      let socket = try ICMPSocket(family: family, kind: key.kind, options: key.options)
      register(socket, key: key)
      bind(target, to: socket)
      if target.config.options.socket == .auto && autoKind == nil { autoKind = key.kind }
      return socket
    } catch {
      if target.config.options.socket == .auto && key.kind == .dgram && error.errno == EACCES {
        if !loggedAutoFallback {
          context.logger.info("datagram ICMP sockets are not allowed for this group (net.ipv4.ping_group_range); using raw sockets", metadata: ["family": "\(family.rawValue)"])
          loggedAutoFallback = true
        }
        autoKind = .raw
        key.kind = .raw
        if let socket = sockets[key] {
          bind(target, to: socket)
          return socket
        }
        do {
          let socket = try ICMPSocket(family: family, kind: .raw, options: key.options)
          register(socket, key: key)
          bind(target, to: socket)
          return socket
        } catch {
          failed(key, error, auto: true)
          // Neither kind opens: when the retry comes round, try datagram first again, so
          // that granting ping_group_range (as the log advises) works without a restart.
          autoKind = nil
          key.kind = .dgram
          openFailures[key] = openFailures[SocketKey(kind: .raw, options: key.options)]
          return nil
        }
      }
      failed(key, error, auto: false)
      return nil
    }
  }

  mutating func register(_ socket: ICMPSocket, key: SocketKey) {
    sockets[key] = socket
    socketsByDescriptor[socket.fileDescriptor] = socket
    if key.kind == .raw && countingRawDescriptor == nil { countingRawDescriptor = socket.fileDescriptor }
    openFailures[key] = nil
  }

  mutating func bind(_ target: PingTarget, to socket: ICMPSocket) {
    if targetSocket[target.slot] != socket.fileDescriptor {
      unbind(target.slot)
      targetSocket[target.slot] = socket.fileDescriptor
      socketUsers[socket.fileDescriptor, default: 0] += 1
      target.state.withLock { $0.socketKind = socket.kind }
    }
  }

  /// Forgets the socket `slot` sent on, and closes it when no other target uses it.
  mutating func unbind(_ slot: UInt32) {
    guard let fd = targetSocket.removeValue(forKey: slot) else { return }
    let users = (socketUsers[fd] ?? 1) - 1
    guard users <= 0 else {
      socketUsers[fd] = users
      return
    }
    socketUsers[fd] = nil
    guard let socket = socketsByDescriptor.removeValue(forKey: fd) else { return }
    if let key = sockets.first(where: { $0.value === socket })?.key { sockets[key] = nil }
    if countingRawDescriptor == fd {
      countingRawDescriptor = socketsByDescriptor.values.first(where: { $0.kind == .raw })?.fileDescriptor
    }
    // The last reference goes with this scope: the descriptor closes on deinit.
  }

  /// Logs a socket that cannot be opened, once per minute, with the privilege to grant.
  mutating func failed(_ key: SocketKey, _ error: SystemError, auto: Bool) {
    let now = Clocks.monotonicNanoseconds()
    let firstTime = openFailures[key] == nil
    openFailures[key] = (error, now + 60_000_000_000)
    context.stats.socketError(family: family, kind: key.kind, errno: error.errno)
    guard firstTime else { return }
    context.logger.error("cannot open an ICMP socket; targets that need it are not probed", metadata: [
      "family": "\(family.rawValue)", "socket": "\(key.kind.rawValue)", "error": "\(error)",
      "fix": "\(PrivilegeAdvice.text(kind: key.kind, errno: error.errno, auto: auto))",
    ])
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
    switch matcher.match(datagram.message, identifiers: context.currentIdentifiers) {
    case .ignored:
      return
    case .unexpected(let reason):
      if counts { context.stats.unexpected(family: family, reason: reason) }
    case .candidate(let payload, _, let payloadLength):
      guard let target = targets[payload.slot] else {
        if counts { context.stats.unexpected(family: family, reason: .unknownProbe) }
        return
      }
      // Every raw socket gets a copy: count the reply once, on the socket that sent it.
      guard targetSocket[payload.slot] == socket.fileDescriptor else { return }
      let realtimeNow = Clocks.realtimeNanoseconds()
      let receiveTime = datagram.kernelTimestamp ?? realtimeNow
      // In time or late is judged by when the kernel received the reply, not by when this
      // loop got to it: a reply queued behind a busy moment was still in time.
      let now = Clocks.monotonicNanoseconds() - max(0, realtimeNow - receiveTime)
      let reason: UnexpectedReason? = target.state.withLock { state in
        guard datagram.source == state.address else { return .wrongSource }
        guard payloadLength == target.config.options.payloadSize else { return .corrupt }
        switch state.ledger.reply(sequence: payload.sequence, sendTime: payload.sendTimeNanoseconds,
                                  receiveTime: receiveTime, now: now) {
        case .inTime(let nanoseconds):
          let rtt = Double(nanoseconds) / 1e9
          state.received += 1
          state.window.record(rtt)
          state.histogram.record(rtt)
          state.jitter.record(rtt)
          state.lastReplyTTL = datagram.ttl
        case .late(let newlyLost):
          state.late += 1
          if newlyLost { state.window.record(nil) }
          state.lastReplyTTL = datagram.ttl
        case .duplicate:
          state.duplicates += 1
        case .notOurs:
          return .unknownProbe
        }
        return nil
      }
      if let reason { context.stats.unexpected(family: family, reason: reason) }
    }
  }

  // MARK: Deadlines

  mutating func expire(now: Int64) {
    while let next = deadlines.min, next.deadline <= now {
      deadlines.popMin()
      guard let target = targets[next.slot] else { continue }
      target.state.withLock { state in
        if state.ledger.expire(sequence: next.sequence, now: now) { state.window.record(nil) }
      }
    }
  }
}

/// What to tell an operator when an ICMP socket cannot be opened.
enum PrivilegeAdvice {
  static func text(kind: ICMPSocketKind, errno: Int32, auto: Bool) -> String {
    switch (kind, errno) {
    case (.dgram, EACCES):
      return "datagram ICMP sockets need our group in net.ipv4.ping_group_range: sysctl -w net.ipv4.ping_group_range='0 2147483647' (or set socket: raw and grant CAP_NET_RAW)"
    case (.raw, EPERM), (.raw, EACCES):
      let prefix = auto ? "datagram ICMP is not allowed for our group and " : ""
      return prefix + "raw ICMP sockets need CAP_NET_RAW: setcap cap_net_raw+ep /path/to/netprobe_exporter, or AmbientCapabilities=CAP_NET_RAW in the systemd unit (or allow datagram ICMP with sysctl -w net.ipv4.ping_group_range='0 2147483647')"
    case (_, EAFNOSUPPORT), (_, EPROTONOSUPPORT):
      return "this kernel has no \(kind.rawValue) ICMP sockets for this family (is IPv6 disabled?)"
    default:
      return "see the error; the interface or source address may not exist"
    }
  }
}
