public import Logging
@preconcurrency import Glibc
import FoundationEssentials
import Synchronization

/// Owns the running configuration: loads it, reloads it on SIGHUP or `POST /-/reload`,
/// keeps the old one when a new file is bad, and reports all of that as metrics.
///
/// Probe engines (ping, path, multicast, push) plug in through `ConfigSubscriber`: each
/// receives the new configuration after it has been validated in full, so a bad file
/// never reaches any of them.
public final class Agent: Sendable {
  public let source: ConfigSource
  private let logger: Logger
  private let state: Mutex<State>
  private let subscribers = Mutex<[any ConfigSubscriber]>([])
  private let companions = Mutex<[any ReloadCompanion]>([])
  /// Serialises reloads, which may come from the signal thread and HTTP workers at once.
  private let reloading = Mutex<Void>(())
  private let now: @Sendable () -> Double
  /// The targets of `target_files`, merged after the configuration's own (issue 15).
  public let targetFiles: TargetFileSet

  struct State {
    /// The configuration as loaded from its file.
    var config: NetProbeConfig
    /// `config` with the targets of its target files: what the engines run.
    var effective: NetProbeConfig
    var lastReloadSuccessful = true
    var lastSuccessTime: Double
    var reloadSuccesses: UInt64 = 0
    var reloadFailures: UInt64 = 0
    var lastErrors: ConfigErrors?
    var ready = false
  }

  /// - Parameters:
  ///   - config: the configuration already loaded from `source` at start-up.
  ///   - now: Unix time in seconds; tests pass a fixed clock.
  public init(
    source: ConfigSource, config: NetProbeConfig, logger: Logger,
    now: @escaping @Sendable () -> Double = Agent.unixTime
  ) {
    self.source = source
    self.logger = logger
    self.now = now
    targetFiles = TargetFileSet(configName: "\(source)", logger: logger, now: now)
    state = Mutex(State(config: config, effective: targetFiles.merged(into: config), lastSuccessTime: now()))
  }

  /// The wall clock in Unix seconds.
  public static let unixTime: @Sendable () -> Double = { Date().timeIntervalSince1970 }

  /// The running configuration, with the targets of its target files.
  public var config: NetProbeConfig { state.withLock { $0.effective } }

  /// True once every engine has started; `/-/ready` answers 200 from then on.
  public var isReady: Bool { state.withLock { $0.ready } }

  /// The errors of the last failed reload, while it is the latest attempt.
  public var lastReloadErrors: ConfigErrors? { state.withLock { $0.lastReloadSuccessful ? nil : $0.lastErrors } }

  /// Adds an engine and hands it the running configuration.
  public func subscribe(_ subscriber: any ConfigSubscriber) {
    subscribers.withLock { $0.append(subscriber) }
    subscriber.apply(config)
  }

  /// Adds a file reloaded with the configuration (the web configuration).
  public func addCompanion(_ companion: any ReloadCompanion) {
    companions.withLock { $0.append(companion) }
  }

  /// Marks the agent ready to serve meaningful metrics.
  public func markReady() {
    state.withLock { $0.ready = true }
  }

  /// Stops every engine, for shutdown.
  public func stop() {
    for subscriber in subscribers.withLock({ $0 }) { subscriber.stop() }
  }

  /// Reads the configuration source again. On success the new configuration replaces the
  /// old and every engine gets it; on failure the old one keeps running, the errors are
  /// logged with their FILE:LINE:COL, and `netprobe_config_last_reload_successful` drops to 0.
  @discardableResult
  public func reload() -> Result<NetProbeConfig, ConfigErrors> {
    reloading.withLock { _ in
      // Every file is read and checked before any is put in force: a bad web configuration
      // keeps the old configuration too, and the other way round.
      let companions = self.companions.withLock { $0 }
      let companionErrors = companions.compactMap { $0.prepareReload() }
      var result = ConfigLoader.load(source)
      if !companionErrors.isEmpty {
        switch result {
        case .success:
          var errors = companionErrors[0]
          errors.related = Array(companionErrors.dropFirst())
          result = .failure(errors)
        case .failure(var errors):
          errors.related += companionErrors
          result = .failure(errors)
        }
      }
      switch result {
      case .success(let loaded):
        for companion in companions { companion.commitReload() }
        let config = targetFiles.merged(into: loaded)
        let time = now()
        let changed = state.withLock { state in
          defer {
            state.config = loaded
            state.effective = config
            state.lastReloadSuccessful = true
            state.lastSuccessTime = time
            state.reloadSuccesses += 1
            state.lastErrors = nil
          }
          return state.effective != config
        }
        for subscriber in subscribers.withLock({ $0 }) { subscriber.apply(config) }
        logger.info(
          "configuration reloaded",
          metadata: [
            "source": "\(source)", "changed": "\(changed)", "targets": "\(config.targets.count)",
            "multicast_groups": "\(config.multicast.count)",
          ])
      case .failure(let errors):
        state.withLock { state in
          state.lastReloadSuccessful = false
          state.reloadFailures += 1
          state.lastErrors = errors
        }
        for line in errors.lines {
          logger.error("configuration reload failed; keeping the running configuration", metadata: ["error": "\(line)"])
        }
      }
      return result
    }
  }

  /// Reads the target files again and, when the targets they give changed, hands every
  /// engine the running configuration with the new targets: the watcher calls this when a
  /// file changes and at every `refresh_interval`. Nothing else is reloaded, and the engines
  /// carry every unchanged target over as on any reload.
  public func refreshTargetFiles() {
    reloading.withLock { _ in
      let loaded = state.withLock { $0.config }
      let config = targetFiles.merged(into: loaded)
      let changed = state.withLock { state in
        defer { state.effective = config }
        return state.effective.targets != config.targets
      }
      guard changed else { return }
      for subscriber in subscribers.withLock({ $0 }) { subscriber.apply(config) }
      logger.info("targets from files applied", metadata: ["targets": "\(config.targets.count)"])
    }
  }
}

/// Another file reloaded with the configuration (the web configuration): read and checked
/// first, put in force only when every file of the reload is good.
public protocol ReloadCompanion: Sendable {
  /// Reads the file again and checks it, keeping the result for `commitReload`; nil when
  /// good, else its errors (and the running version stays).
  func prepareReload() -> ConfigErrors?
  /// Puts what the last successful `prepareReload` read in force.
  func commitReload()
}

/// An engine that runs from the configuration: it is given every validated configuration,
/// the first at subscription, and must carry unchanged targets over with their counters.
public protocol ConfigSubscriber: Sendable {
  func apply(_ config: NetProbeConfig)
  func stop()
}

extension Agent: MetricsCollector {
  public func collect(into exposition: inout Exposition) {
    let snapshot = state.withLock { state in
      (state.effective, state.lastReloadSuccessful, state.lastSuccessTime, state.reloadSuccesses, state.reloadFailures)
    }
    let (config, successful, successTime, successes, failures) = snapshot
    exposition.add(Catalogue.buildInfo, LabelSet([("version", BuildInfo.version), ("revision", BuildInfo.revision)]), 1)
    exposition.add(Catalogue.configLastReloadSuccessful, .empty, successful ? 1 : 0)
    exposition.add(Catalogue.configLastReloadSuccessTimestamp, .empty, successTime)
    exposition.add(Catalogue.configReloads, LabelSet([("result", "failure")]), Double(failures))
    exposition.add(Catalogue.configReloads, LabelSet([("result", "success")]), Double(successes))
    let items: [(String, Int)] = [
      ("beacons", config.beacons.count), ("multicast_groups", config.multicast.count),
      ("querier_interfaces", config.querierWatch?.interfaces.count ?? 0), ("targets", config.targets.count),
    ]
    for (kind, count) in items {
      exposition.add(Catalogue.configItems, LabelSet([("kind", kind)]), Double(count))
    }
  }
}
