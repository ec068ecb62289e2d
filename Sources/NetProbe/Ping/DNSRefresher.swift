import Dispatch
@preconcurrency import Glibc
import FoundationEssentials
import Logging
import Synchronization

/// Resolves the targets given by DNS name, at start and then every `dns_refresh`, on a
/// loop of its own (getaddrinfo blocks). A failed lookup keeps the last good address, is
/// counted, and is logged once per change of state, never once per attempt.
final class DNSRefresher: Sendable {
  private let loop: EventLoop<DNSRefresherEngine>
  private let handler: AddressChangeHandler

  init(logger: Logger) throws(SystemError) {
    let handler = AddressChangeHandler()
    self.handler = handler
    loop = try EventLoop(name: "dns") { DNSRefresherEngine(logger: logger, handler: handler) }
  }

  /// Called with a target whose address changed (the first resolution included).
  func setHandler(_ handler: @escaping @Sendable (PingTarget) -> Void) {
    self.handler.set(handler)
  }

  /// The named targets to keep resolved; new ones are resolved at once. None never starts
  /// the thread.
  func update(names targets: [PingTarget]) {
    loop.post(targets, isEmpty: targets.isEmpty)
  }

  /// A lookup in progress cannot be interrupted: shutdown does not wait for it long.
  func stop() { loop.stop(timeout: .milliseconds(300)) }
}

/// The callback for changed addresses, set once the engine that reacts exists.
private final class AddressChangeHandler: Sendable {
  private let handler = Mutex<(@Sendable (PingTarget) -> Void)?>(nil)

  func set(_ handler: @escaping @Sendable (PingTarget) -> Void) { self.handler.withLock { $0 = handler } }

  func callAsFunction(_ target: PingTarget) {
    handler.withLock { $0 }?(target)
  }
}

/// The refresher's loop logic: one timer per named target.
private struct DNSRefresherEngine: LoopEngine {
  /// The whole list of named targets.
  typealias Command = [PingTarget]

  /// A target's next lookup; one whose target was dropped or added again since is stale.
  struct Timer {
    var target: ObjectIdentifier
    var generation: UInt64
  }

  let logger: Logger
  let handler: AddressChangeHandler
  /// By target identity, so a reload or a refresh of 10,000 names stays linear.
  var entries: [ObjectIdentifier: (target: PingTarget, generation: UInt64)] = [:]
  var nextGeneration: UInt64 = 0

  mutating func handle(_ commands: [Command], loop: inout LoopRegistrations<Timer>) {
    guard let targets = commands.last else { return }
    var next = [ObjectIdentifier: (target: PingTarget, generation: UInt64)](minimumCapacity: targets.count)
    let now = Clocks.monotonicNanoseconds()
    for target in targets {
      let id = ObjectIdentifier(target)
      if let existing = entries[id] {
        next[id] = existing
      } else {
        nextGeneration += 1
        next[id] = (target, nextGeneration)
        loop.schedule(Timer(target: id, generation: nextGeneration), at: now)
      }
    }
    entries = next
  }

  mutating func fire(_ timer: Timer, now: Int64, loop: inout LoopRegistrations<Timer>) {
    guard let entry = entries[timer.target], entry.generation == timer.generation else { return }
    resolve(entry.target)
    let interval = entry.target.config.options.dnsRefresh.nanoseconds
    loop.schedule(timer, at: Clocks.monotonicNanoseconds() + interval)
  }

  func ready(_ descriptor: Int32, events: PollEvents, loop: inout LoopRegistrations<Timer>) {}

  private func resolve(_ target: PingTarget) {
    let family: IPAddress.Family? =
      switch target.config.options.family {
      case .auto: nil
      case .ip4: .ip4
      case .ip6: .ip6
      }
    let result = AddressResolver.resolve(target.config.host, family: family)
    var changedAddress = false
    var message: (Logger.Level, String, Logger.Metadata)?
    let metadata: Logger.Metadata = ["target": "\(target.config.name)", "host": "\(target.config.host)"]
    target.state.withLock { state in
      switch result {
      case .success(let addresses):
        // Stay on the current address while the name still has it: round-robin answers
        // must not make the series hop between addresses.
        let chosen = state.address.flatMap { addresses.contains($0) ? $0 : nil } ?? addresses[0]
        if state.dnsError != nil {
          message = (.info, "DNS lookup works again", metadata.merging(["address": "\(chosen)"]) { $1 })
        } else if let old = state.address, old != chosen {
          message = (
            .info, "DNS name now resolves to another address", metadata.merging(["address": "\(chosen)", "previous": "\(old)"]) { $1 }
          )
        }
        state.dnsError = nil
        changedAddress = state.address != chosen
        state.address = chosen
      case .failure(let failure):
        state.dnsFailures += 1
        if state.dnsError != failure.message {
          let kept = state.address.map { "keeping \($0)" } ?? "not probed until it resolves"
          message = (.warning, "DNS lookup failed; \(kept)", metadata.merging(["error": "\(failure.message)"]) { $1 })
        }
        state.dnsError = failure.message
      }
    }
    if let (level, text, extra) = message { logger.log(level: level, "\(text)", metadata: extra) }
    if changedAddress { handler(target) }
  }
}
