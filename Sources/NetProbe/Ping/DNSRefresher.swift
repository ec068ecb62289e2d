import Dispatch
@preconcurrency import Glibc
import FoundationEssentials
import Logging
import Synchronization

/// Resolves the targets given by DNS name, at start and then every `dns_refresh`, on a
/// thread of its own (getaddrinfo blocks). A failed lookup keeps the last good address,
/// is counted, and is logged once per change of state, never once per attempt.
final class DNSRefresher: Sendable {
  private struct Entry {
    var target: PingTarget
    var due: ContinuousClock.Instant
  }

  private let logger: Logger
  /// By target identity, so a reload or a refresh of 10,000 names stays linear.
  private let entries = Mutex<[ObjectIdentifier: Entry]>([:])
  private let handler = Mutex<(@Sendable (PingTarget) -> Void)?>(nil)
  private let wake = DispatchSemaphore(value: 0)
  private let stopping = Atomic<Bool>(false)
  private let started = Atomic<Bool>(false)
  private let finished = DispatchSemaphore(value: 0)

  init(logger: Logger) { self.logger = logger }

  /// Called with a target whose address changed (the first resolution included).
  func setHandler(_ handler: @escaping @Sendable (PingTarget) -> Void) {
    self.handler.withLock { $0 = handler }
  }

  /// The named targets to keep resolved; new ones are resolved at once.
  func update(names targets: [PingTarget]) {
    entries.withLock { entries in
      var next = [ObjectIdentifier: Entry](minimumCapacity: targets.count)
      for target in targets {
        let id = ObjectIdentifier(target)
        next[id] = entries[id] ?? Entry(target: target, due: .now)
      }
      entries = next
    }
    guard !targets.isEmpty else { return }
    if !started.exchange(true, ordering: .acquiringAndReleasing) {
      SystemThread.start(name: "dns") { [self] in
        run()
        finished.signal()
      }
    }
    wake.signal()
  }

  func stop() {
    stopping.store(true, ordering: .releasing)
    wake.signal()
    // A lookup in progress cannot be interrupted; do not wait for it past shutdown's budget.
    if started.load(ordering: .acquiring) { _ = finished.wait(timeout: .now() + .milliseconds(300)) }
  }

  private func run() {
    while !stopping.load(ordering: .acquiring) {
      let now = ContinuousClock.now
      let due = entries.withLock { entries in entries.values.filter { $0.due <= now }.map(\.target) }
      for target in due where !stopping.load(ordering: .acquiring) {
        resolve(target)
        let interval = target.config.options.dnsRefresh
        entries.withLock { entries in entries[ObjectIdentifier(target)]?.due = .now + interval }
      }
      let next = entries.withLock { $0.values.map(\.due).min() }
      let wait = next.map { ContinuousClock.now.duration(to: $0) } ?? .seconds(3600)
      if wait > .zero {
        let milliseconds = Int(wait.components.seconds) * 1000 + Int(wait.components.attoseconds / 1_000_000_000_000_000) + 1
        _ = wake.wait(timeout: .now() + .milliseconds(milliseconds))
      }
    }
  }

  private func resolve(_ target: PingTarget) {
    let family: IPAddress.Family? = switch target.config.options.family {
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
          message = (.info, "DNS name now resolves to another address", metadata.merging(["address": "\(chosen)", "previous": "\(old)"]) { $1 })
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
    if changedAddress, let handler = handler.withLock({ $0 }) { handler(target) }
  }
}
