public import Logging
@preconcurrency import Glibc
import Synchronization

/// The IGMP / MLD querier watch: one thread listens on a raw socket per configured
/// interface and protocol, decodes the queries, and the scrape turns what it heard into
/// the `netprobe_querier_*` series — above all `netprobe_querier_present`, the signal that
/// explains "the stream dies after a few minutes" (no querier, so memberships expire).
///
/// The thread starts with the first configuration that has a `querier_watch`; sockets that
/// cannot be opened (no CAP_NET_RAW, an interface that does not exist yet or went away) are
/// retried every few seconds, with one log line per new problem.
public final class QuerierWatch: ConfigSubscriber, MetricsCollector {
  /// One socket's worth of watching.
  struct Key: Hashable, Sendable {
    var interface: String
    var querierProtocol: QuerierProtocol
  }

  enum Command: Sendable {
    case watch([Key])
  }

  private let board = QuerierBoard()
  private let loop: EventLoop<QuerierEngine>

  public init(logger: Logger) throws(SystemError) {
    var logger = logger
    logger[metadataKey: "engine"] = "querier"
    let board = board
    let loopLogger = logger
    loop = try EventLoop(name: "querier") { QuerierEngine(board: board, logger: loopLogger) }
  }

  public func apply(_ config: NetProbeConfig) {
    let keys =
      config.querierWatch.map { watch in
        watch.interfaces.flatMap { interface in watch.protocols.map { Key(interface: interface, querierProtocol: $0) } }
      } ?? []
    board.configure(keys, settings: config.querierWatch.map(QuerierState.Settings.init) ?? .init())
    // No watch configured and none before: no thread at all.
    loop.post(.watch(keys), isEmpty: keys.isEmpty)
  }

  public func stop() { loop.stop() }

  public func collect(into exposition: inout Exposition) {
    QuerierSeries.collect(board.snapshot(), now: Clocks.monotonicNanoseconds(), into: &exposition)
  }
}

/// Renders the querier states as the `netprobe_querier_*` series.
enum QuerierSeries {
  /// Present and malformed always; query counts once a query of that version and kind
  /// arrived; the querier's info, timestamp, max response and robustness once a general
  /// query arrived; the query interval once a query announced one.
  static func collect(_ snapshot: [(QuerierWatch.Key, QuerierState)], now: Int64, into exposition: inout Exposition) {
    for (key, state) in snapshot {
      let base = [("interface", key.interface), ("protocol", key.querierProtocol.rawValue)]
      let labels = LabelSet(base)
      exposition.add(Catalogue.querierPresent, labels, state.isPresent(atMonotonicNanoseconds: now) ? 1 : 0)
      exposition.add(Catalogue.querierMalformed, labels, Double(state.malformed))
      for (count, value) in state.queries.sorted(by: { $0.key < $1.key }) {
        exposition.add(
          Catalogue.querierQueries, LabelSet(base + [("version", String(count.version)), ("kind", count.kind.rawValue)]), Double(value))
      }
      guard let last = state.lastGeneral else { continue }
      exposition.add(Catalogue.querierInfo, LabelSet(base + [("querier", last.querier.description), ("version", String(last.version))]), 1)
      exposition.add(Catalogue.querierLastGeneralQuery, labels, Double(last.unixNanoseconds) / 1e9)
      if let interval = state.announced.queryIntervalSeconds {
        exposition.add(Catalogue.querierQueryInterval, labels, Double(interval))
      }
      exposition.add(Catalogue.querierMaxResponse, labels, state.maxResponseSeconds)
      exposition.add(Catalogue.querierRobustness, labels, Double(state.robustness))
    }
  }
}

/// The querier states, shared between the watch's thread (which records) and scrapes
/// (which read), in configuration order.
final class QuerierBoard: Sendable {
  private struct Contents {
    var order: [QuerierWatch.Key] = []
    var states: [QuerierWatch.Key: QuerierState] = [:]
  }

  private let contents = Mutex(Contents())

  /// Keeps the states (and counters) of keys still configured, with the new settings;
  /// drops the others; adds fresh states for new keys.
  func configure(_ keys: [QuerierWatch.Key], settings: QuerierState.Settings) {
    contents.withLock { contents in
      var states: [QuerierWatch.Key: QuerierState] = [:]
      for key in keys {
        var state = contents.states[key] ?? QuerierState(settings: settings)
        state.settings = settings
        states[key] = state
      }
      contents = Contents(order: keys, states: states)
    }
  }

  /// Records a query; returns the state after it, or nil when the key is no longer watched.
  func record(_ key: QuerierWatch.Key, _ query: MembershipQuery, monotonicNanoseconds: Int64, unixNanoseconds: Int64) -> QuerierState? {
    contents.withLock { contents in
      guard contents.states[key] != nil else { return nil }
      contents.states[key]!.record(query, monotonicNanoseconds: monotonicNanoseconds, unixNanoseconds: unixNanoseconds)
      return contents.states[key]!
    }
  }

  /// The watch's socket for `key` opened at `since`, or closed (`since` nil).
  func listening(_ key: QuerierWatch.Key, since now: Int64?) {
    contents.withLock { contents in
      if let now {
        contents.states[key]?.startedListening(atMonotonicNanoseconds: now)
      } else {
        contents.states[key]?.stoppedListening()
      }
    }
  }

  func recordMalformed(_ key: QuerierWatch.Key) {
    contents.withLock { contents in contents.states[key]?.recordMalformed() }
  }

  func snapshot() -> [(QuerierWatch.Key, QuerierState)] {
    contents.withLock { contents in contents.order.compactMap { key in contents.states[key].map { (key, $0) } } }
  }
}

/// The watch's loop logic and state: the sockets, their retry times, and what was logged.
private struct QuerierEngine: LoopEngine {
  typealias Key = QuerierWatch.Key
  typealias Command = QuerierWatch.Command

  enum Timer {
    /// A closed socket may be due to open; `retryAt` says whether it is.
    case open(Key)
    /// The open sockets' interfaces are checked.
    case interfaceCheck
  }

  /// How soon a failed open is tried again: a missing interface may appear at any moment;
  /// a missing privilege needs an operator.
  static let missingInterfaceRetry: Int64 = 2_000_000_000
  static let privilegeRetry: Int64 = 10_000_000_000
  static let otherRetry: Int64 = 5_000_000_000
  /// How often open sockets' interfaces are checked for having gone or been replaced.
  static let interfaceCheckInterval: Int64 = 2_000_000_000

  let board: QuerierBoard
  let logger: Logger
  var wanted: [Key] = []
  var sockets: [Key: QuerierSocket] = [:]
  var keysByDescriptor: [Int32: Key] = [:]
  /// Keys whose socket is closed, with the time to try again (monotonic ns).
  var retryAt: [Key: Int64] = [:]
  /// The problem last logged per key, so a retry that fails the same way stays quiet.
  var reported: [Key: String] = [:]
  /// Keys whose querier was reported absent in the log, until it comes back.
  var reportedAbsent: Set<Key> = []
  /// The queriers (address and version) logged per key since it was last absent: two
  /// queriers that take turns are logged once each, not at every query.
  var heard: [Key: Set<String>] = [:]
  var interfaceChecks = false
  var buffer = [UInt8](repeating: 0, count: 65_536)
  var control = [UInt8](repeating: 0, count: 1_024)

  init(board: QuerierBoard, logger: Logger) {
    self.board = board
    self.logger = logger
  }

  mutating func handle(_ commands: [Command], loop: inout LoopRegistrations<Timer>) {
    for command in commands {
      switch command {
      case .watch(let keys): reconfigure(keys, loop: &loop)
      }
    }
    if !interfaceChecks {
      interfaceChecks = true
      loop.schedule(.interfaceCheck, at: Clocks.monotonicNanoseconds())
    }
  }

  mutating func fire(_ timer: Timer, now: Int64, loop: inout LoopRegistrations<Timer>) {
    switch timer {
    case .open(let key):
      open(key, now: now, loop: &loop)
    case .interfaceCheck:
      checkInterfaces(now: now, loop: &loop)
      loop.schedule(.interfaceCheck, at: now + Self.interfaceCheckInterval)
    }
  }

  mutating func ready(_ descriptor: Int32, events: PollEvents, loop: inout LoopRegistrations<Timer>) {
    if let key = keysByDescriptor[descriptor] { receiveAll(key) }
  }

  mutating func endOfPass(now: Int64, loop: inout LoopRegistrations<Timer>) {
    loop.wake(by: reportAbsence(now: now))
  }

  mutating func stopped() {
    for key in Array(sockets.keys) { close(key) }
  }

  /// Opens `key`'s socket when its retry time has come (at the next pass's timers).
  mutating func retry(_ key: Key, at time: Int64, loop: inout LoopRegistrations<Timer>) {
    retryAt[key] = time
    loop.schedule(.open(key), at: time)
  }

  mutating func reconfigure(_ keys: [Key], loop: inout LoopRegistrations<Timer>) {
    wanted = keys
    for key in Array(sockets.keys) where !keys.contains(key) { close(key, loop: &loop) }
    retryAt = retryAt.filter { keys.contains($0.key) }
    reported = reported.filter { keys.contains($0.key) }
    reportedAbsent = reportedAbsent.filter { keys.contains($0) }
    heard = heard.filter { keys.contains($0.key) }
    for key in keys where sockets[key] == nil && retryAt[key] == nil { retry(key, at: 0, loop: &loop) }
  }

  mutating func close(_ key: Key, loop: inout LoopRegistrations<Timer>) {
    guard let socket = sockets[key] else { return }
    loop.unwatch(socket.fileDescriptor)
    close(key)
  }

  /// Closes `key`'s socket; the caller unwatches it.
  mutating func close(_ key: Key) {
    guard let socket = sockets.removeValue(forKey: key) else { return }
    keysByDescriptor[socket.fileDescriptor] = nil
    socket.close()
    board.listening(key, since: nil)
  }

  mutating func open(_ key: Key, now: Int64, loop: inout LoopRegistrations<Timer>) {
    guard wanted.contains(key), sockets[key] == nil, let due = retryAt[key], due <= now else { return }
    do {
      let socket = try QuerierSocket(key.querierProtocol, interface: key.interface)
      sockets[key] = socket
      keysByDescriptor[socket.fileDescriptor] = key
      loop.watch(socket.fileDescriptor)
      retryAt[key] = nil
      reported[key] = nil
      board.listening(key, since: now)
      logger.info(
        "listening for queries",
        metadata: metadata(
          key,
          [
            "ifindex": "\(socket.interfaceIndex)"
          ]))
    } catch {
      let (delay, problem, advice, level) = Self.describe(error, interface: key.interface)
      retry(key, at: now + delay, loop: &loop)
      if reported[key] != problem {
        reported[key] = problem
        logger.log(
          level: level, "cannot listen for queries; retrying",
          metadata: metadata(
            key,
            [
              "error": "\(error)", "retry_seconds": "\(delay / 1_000_000_000)", "hint": "\(advice)",
            ]))
      }
    }
  }

  /// The retry delay, a short name of the problem, what to do about it, and how loud.
  static func describe(_ error: SystemError, interface: String) -> (Int64, String, String, Logger.Level) {
    switch error.code {
    case .noSuchDevice, .noSuchDeviceOrAddress:
      return (missingInterfaceRetry, "missing", "no interface named \(interface) (yet); it is looked for every few seconds", .warning)
    case .notPermitted, .accessDenied:
      return (
        privilegeRetry, "privilege",
        "raw IGMP / ICMPv6 sockets need CAP_NET_RAW: run as root, or grant it (setcap cap_net_raw+ep on the binary, or AmbientCapabilities=CAP_NET_RAW in the systemd unit)",
        .error
      )
    default:
      return (otherRetry, error.code.name, "", .warning)
    }
  }

  /// Reopens the sockets of interfaces that went away or were replaced (a socket stays
  /// bound to the index it was bound to, so it would hear nothing from the new one).
  mutating func checkInterfaces(now: Int64, loop: inout LoopRegistrations<Timer>) {
    for (key, socket) in sockets {
      let index = NetworkInterface.index(of: key.interface)
      guard index != socket.interfaceIndex else { continue }
      logger.warning(
        index == nil ? "interface went away; waiting for it" : "interface was replaced; reopening",
        metadata: metadata(key, ["ifindex": "\(socket.interfaceIndex)"]))
      close(key, loop: &loop)
      reported[key] = index == nil ? "missing" : "replaced"
      retry(key, at: now, loop: &loop)
    }
  }

  /// Logs, once, a querier whose general queries stopped, or that was never heard in the
  /// first timeout of listening (what the gauge says at scrapes). Returns when the next
  /// present querier would lapse, so the loop wakes for it.
  mutating func reportAbsence(now: Int64) -> Int64 {
    var next = Int64.max
    for (key, state) in board.snapshot() where !reportedAbsent.contains(key) {
      if let until = state.presentUntil(atMonotonicNanoseconds: now) {
        next = min(next, until)
        continue
      }
      // Never listening and nothing heard: the failure to open is what was logged.
      guard state.lastGeneral != nil || state.listeningSince != nil else { continue }
      reportedAbsent.insert(key)
      heard[key] = nil
      logger.warning(
        "no general query within robustness × interval + max response / 2; querier absent",
        metadata: metadata(
          key,
          [
            "last_querier": "\(state.lastGeneral.map { "\($0.querier)" } ?? "none")",
            "timeout_seconds": "\(Exposition.formatValue(Double(state.timeoutNanoseconds) / 1e9))",
          ]))
    }
    return next
  }

  mutating func receiveAll(_ key: Key) {
    guard let socket = sockets[key] else { return }
    // Bounded, so one flooded interface cannot starve the others or a stop.
    for _ in 0..<256 {
      let packet: QuerierSocket.Packet?
      do {
        packet = try socket.receive(into: &buffer, control: &control)
      } catch {
        logger.debug("recvmsg failed", metadata: metadata(key, ["error": "\(error)"]))
        return
      }
      guard let packet else { return }
      if let index = packet.interfaceIndex, UInt32(bitPattern: index) != socket.interfaceIndex { continue }
      let decoded =
        switch key.querierProtocol {
        case .igmp: MembershipQuery.decodeIGMP(packet.bytes)
        case .mld:
          MembershipQuery.decodeMLD(
            packet.bytes, source: packet.source, hopLimit: packet.hopLimit,
            routerAlert: packet.routerAlert == 0)
        }
      switch decoded {
      case .query(let query):
        handle(query, key: key, unixNanoseconds: packet.kernelTimestamp ?? Clocks.realtimeNanoseconds())
      case .notQuery:
        continue
      case .malformed(let reason):
        board.recordMalformed(key)
        logger.debug(
          "malformed packet ignored",
          metadata: metadata(
            key,
            [
              "reason": "\(reason.rawValue)", "source": "\(packet.source)", "bytes": "\(packet.bytes.count)",
            ]))
      }
    }
  }

  mutating func handle(_ query: MembershipQuery, key: Key, unixNanoseconds: Int64) {
    guard let state = board.record(key, query, monotonicNanoseconds: Clocks.monotonicNanoseconds(), unixNanoseconds: unixNanoseconds)
    else { return }
    var details: Logger.Metadata = [
      "querier": "\(query.querier)", "version": "\(query.version)", "kind": "\(query.kind.rawValue)",
      "max_response_seconds": "\(query.maxResponseMilliseconds.map { Exposition.formatValue(Double($0) / 1000) } ?? "none")",
    ]
    if query.kind != .general {
      details["group"] = "\(query.group)"
      logger.debug("query", metadata: metadata(key, details))
      return
    }
    details["query_interval_seconds"] = "\(Exposition.formatValue(state.queryIntervalSeconds))"
    details["robustness"] = "\(state.robustness)"
    let returned = reportedAbsent.remove(key) != nil
    if heard[key, default: []].insert("\(query.querier) v\(query.version)").inserted {
      logger.info(returned ? "querier back" : "querier heard", metadata: metadata(key, details))
    } else {
      logger.debug("query", metadata: metadata(key, details))
    }
  }

  func metadata(_ key: Key, _ extra: Logger.Metadata) -> Logger.Metadata {
    extra.merging(["interface": "\(key.interface)", "protocol": "\(key.querierProtocol.rawValue)"]) { new, _ in new }
  }
}

// MARK: Status page

extension QuerierWatch: StatusProvider {
  /// Whether each watched interface has a querier, from the board a scrape reads.
  func contribute(to snapshot: inout StatusSnapshot) {
    let now = Clocks.monotonicNanoseconds()
    for (key, state) in board.snapshot() {
      snapshot.queriers.append(
        QuerierStatus(
          interface: key.interface, querierProtocol: key.querierProtocol, present: state.isPresent(atMonotonicNanoseconds: now),
          querier: state.lastGeneral?.querier.description, version: state.lastGeneral?.version,
          lastQueryAge: state.lastGeneral.map { Double(now - $0.monotonicNanoseconds) / 1e9 }))
    }
  }
}
