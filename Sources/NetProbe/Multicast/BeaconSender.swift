@preconcurrency import Glibc
public import Logging
import Synchronization

/// Sends the configured beacons: sequenced, timestamped datagrams in the `beacon` format,
/// paced on one thread, so agents on other hosts measure their reception of this host's
/// multicast (loss, duplicates, reordering, one-way delay).
///
/// The sender id is drawn once per process, so receivers tell agents apart and see a
/// restarted agent as a new sender instead of a sequence going backwards.
public final class BeaconSender: ConfigSubscriber, MetricsCollector {
  private let shared: BeaconShared
  private let loop: EventLoop<BeaconEngine>

  public init(logger: Logger) throws(SystemError) {
    var logger = logger
    logger[metadataKey: "engine"] = "beacon"
    let shared = BeaconShared(logger: logger, senderID: UInt32.random(in: 1...UInt32.max))
    self.shared = shared
    // Nanosecond waits: packets are due every 10 µs at the highest rate.
    loop = try EventLoop(name: "beacon", precision: .nanoseconds) { BeaconEngine(shared: shared) }
  }

  public func apply(_ config: NetProbeConfig) {
    let next: [RunningBeacon] = shared.beacons.withLock { current in
      let kept = config.beacons.map { wanted in
        current.first { $0.config.withoutLocation == wanted.withoutLocation } ?? RunningBeacon(config: wanted)
      }
      current = kept
      return kept
    }
    loop.post(next, isEmpty: next.isEmpty)
  }

  public func stop() { loop.stop() }

  public func collect(into exposition: inout Exposition) {
    let senderID = String(shared.senderID)
    for beacon in shared.beacons.withLock({ $0 }) {
      let config = beacon.config
      let stats = beacon.stats.withLock { $0 }
      let labels = LabelSet([
        ("name", config.name), ("group", config.group.description), ("port", String(config.port)),
        ("interface", config.interface),
      ])
      exposition.add(Catalogue.beaconInfo, labels.appending([("stream_id", String(config.streamID)), ("sender_id", senderID)]), 1)
      exposition.add(Catalogue.beaconPacketsSent, labels, Double(stats.packets))
      exposition.add(Catalogue.beaconBytesSent, labels, Double(stats.bytes))
      exposition.add(Catalogue.beaconPacketsSkipped, labels, Double(stats.skipped))
      for (errno, count) in stats.errors.sorted(by: { $0.key < $1.key }) {
        exposition.add(Catalogue.beaconSendErrors, labels.appending([("errno", errno)]), Double(count))
      }
    }
  }
}

/// What the engine and its thread share.
final class BeaconShared: Sendable {
  let logger: Logger
  let senderID: UInt32
  let beacons = Mutex<[RunningBeacon]>([])

  init(logger: Logger, senderID: UInt32) {
    self.logger = logger
    self.senderID = senderID
  }
}

/// One configured beacon and its counters; kept over a reload that leaves it unchanged,
/// so its sequence runs on and receivers see no restart.
final class RunningBeacon: Sendable {
  let config: BeaconConfig
  let stats = Mutex(BeaconStats())

  init(config: BeaconConfig) { self.config = config }
}

struct BeaconStats: Sendable {
  var packets: UInt64 = 0
  var bytes: UInt64 = 0
  /// The next sequence number to send.
  var sequence: UInt64 = 0
  /// Packets given up because the sender fell more than one interval behind its grid.
  var skipped: UInt64 = 0
  /// Failed sends by errno name (EAGAIN: the socket buffer was full), and sockets that
  /// could not be opened, once per episode.
  var errors: [String: UInt64] = [:]
}

/// The sender's loop logic: sockets and schedules belong to the loop's thread.
private struct BeaconEngine: LoopEngine {
  /// The whole new list of beacons.
  typealias Command = [RunningBeacon]

  enum Timer {
    /// The once-a-second socket check; one of an earlier chain is stale.
    case socketCheck(chain: UInt64)
  }

  /// One beacon's sending state; a reference, so the pass updates it in place.
  private final class Slot {
    let beacon: RunningBeacon
    var socket: MulticastSendSocket?
    var interfaceIndex: UInt32?
    /// The beacon's place in the configuration, for its phase on the grid.
    var index: Int
    var schedule: PacingSchedule
    var lastError: String?

    init(beacon: RunningBeacon, index: Int, schedule: PacingSchedule) {
      self.beacon = beacon
      self.index = index
      self.schedule = schedule
    }
  }

  private let shared: BeaconShared
  private var slots: [Slot] = []
  private var packet: [UInt8] = []
  private var checkChain: UInt64 = 0

  /// Made on the loop's thread, whose timer slack it sets.
  init(shared: BeaconShared) {
    self.shared = shared
    // Packets are due every 10 µs at the highest rate: wake-ups that the kernel may put off
    // by its default 50 µs slack would have them skipped.
    do {
      try SystemThread.setTimerSlack(nanoseconds: 1_000)
    } catch {
      shared.logger.info("the beacon thread keeps the default timer slack", metadata: ["error": "\(error)"])
    }
  }

  mutating func handle(_ commands: [Command], loop: inout LoopRegistrations<Timer>) {
    guard let latest = commands.last else { return }
    reconcile(latest)
    checkChain &+= 1
    loop.schedule(.socketCheck(chain: checkChain), at: Clocks.monotonicNanoseconds())
  }

  mutating func fire(_ timer: Timer, now: Int64, loop: inout LoopRegistrations<Timer>) {
    guard case .socketCheck(let chain) = timer, chain == checkChain else { return }
    openSockets()
    loop.schedule(.socketCheck(chain: chain), at: now + 1_000_000_000)
  }

  func ready(_ descriptor: Int32, events: PollEvents, loop: inout LoopRegistrations<Timer>) {}

  /// Sends what is due, and wakes for the next packet.
  mutating func endOfPass(now: Int64, loop: inout LoopRegistrations<Timer>) {
    for index in slots.indices where slots[index].socket != nil {
      // One packet per beacon per pass: a beacon that is due again is sent after the
      // others had their turn, never in a run.
      guard let due = slots[index].schedule.take(now: Clocks.monotonicNanoseconds()) else { continue }
      if due.skipped > 0 { slots[index].beacon.stats.withLock { $0.skipped += UInt64(due.skipped) } }
      send(slots[index])
    }
    for slot in slots where slot.socket != nil { loop.wake(by: slot.schedule.nextDue) }
  }

  func stopped() {
    for slot in slots { slot.socket?.close() }
  }

  private mutating func reconcile(_ next: [RunningBeacon]) {
    var kept: [Slot] = []
    for (index, beacon) in next.enumerated() {
      if let existing = slots.first(where: { $0.beacon === beacon }) {
        existing.index = index
        kept.append(existing)
      } else {
        let schedule = PacingSchedule(rate: beacon.config.rate, start: Clocks.monotonicNanoseconds(), index: index)
        kept.append(Slot(beacon: beacon, index: index, schedule: schedule))
      }
    }
    for slot in slots where !next.contains(where: { $0 === slot.beacon }) { slot.socket?.close() }
    slots = kept
  }

  /// Opens a socket for each beacon whose interface exists, and replaces it when the
  /// interface is gone or came back with another index.
  private mutating func openSockets() {
    for index in slots.indices {
      let config = slots[index].beacon.config
      let interface = NetworkInterface.index(of: config.interface)
      if interface == slots[index].interfaceIndex && slots[index].socket != nil { continue }
      slots[index].socket?.close()
      slots[index].socket = nil
      slots[index].interfaceIndex = interface
      guard let interface else {
        // Counted once per disappearance, not at every check.
        if slots[index].lastError != "ENODEV" {
          report(slots[index], errno: .noSuchDevice, "interface missing; sending starts when it appears")
        }
        continue
      }
      do {
        slots[index].socket = try MulticastSendSocket(
          group: config.group, port: UInt16(config.port), interface: interface,
          ttl: config.ttl)
        slots[index].schedule = PacingSchedule(rate: config.rate, start: Clocks.monotonicNanoseconds(), index: slots[index].index)
        slots[index].lastError = nil
        shared.logger.info(
          "sending",
          metadata: [
            "beacon": "\(config.name)", "group": "\(config.group)",
            "interface": "\(config.interface)", "rate": "\(config.rate)",
          ])
      } catch {
        // Retried every second; counted once per distinct error, since no datagram is lost
        // at each retry (the socket's absence is the one failure).
        if slots[index].lastError != error.code.name {
          report(slots[index], errno: error.code, "cannot open the beacon's socket; retrying every second: \(error)")
        }
      }
    }
  }

  private mutating func send(_ slot: Slot) {
    let config = slot.beacon.config
    let sequence = slot.beacon.stats.withLock { $0.sequence }
    let payload = BeaconPayload(
      streamID: config.streamID, senderID: shared.senderID, sequence: sequence,
      sendTimeNanoseconds: Clocks.realtimeNanoseconds())
    payload.encode(into: &packet, size: config.size)
    // The sequence moves on only for a datagram that left: one this host could not send
    // (its buffer full, no route) is counted here, not as network loss at every receiver.
    do {
      let sent = try slot.socket!.send(packet)
      slot.beacon.stats.withLock { stats in
        if sent {
          stats.sequence &+= 1
          stats.packets += 1
          stats.bytes += UInt64(config.size)
        } else {
          stats.errors["EAGAIN", default: 0] += 1
        }
      }
      slot.lastError = nil
    } catch {
      report(slot, errno: error.code, "cannot send the beacon: \(error)")
    }
  }

  /// Counts an error and logs it once per distinct errno.
  private func report(_ slot: Slot, errno code: Errno, _ message: String) {
    let name = code.name
    slot.beacon.stats.withLock { $0.errors[name, default: 0] += 1 }
    guard slot.lastError != name else { return }
    slot.lastError = name
    shared.logger.warning("\(message)", metadata: ["beacon": "\(slot.beacon.config.name)", "interface": "\(slot.beacon.config.interface)"])
  }
}
