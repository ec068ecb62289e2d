@preconcurrency import Glibc
import ArgumentParser
import Dispatch
import FoundationEssentials
import Logging
import NetProbe

/// The command line, with the flag names Prometheus exporters use.
@main
struct NetProbeExporter: ParsableCommand {
  static let configuration = CommandConfiguration(
    commandName: "netprobe_exporter",
    abstract: "Prometheus exporter for ICMP loss, latency and paths, and multicast reception health.",
    discussion: """
      Without --config.file the embedded default configuration is used: it probes loopback only.
      SIGHUP or POST /-/reload re-reads the configuration; a bad file keeps the running one.
      """,
    version: "netprobe_exporter \(BuildInfo.version) (revision \(BuildInfo.revision))"
  )

  @Option(
    name: .customLong("config.file"),
    help: ArgumentHelp("Configuration file (YAML-lite). Default: the embedded loopback-only configuration.", valueName: "path"))
  var configFile: String?

  @Option(
    name: .customLong("web.listen-address"),
    help: ArgumentHelp("Address to serve /metrics on: host:port, [v6]:port or :port.", valueName: "address"))
  var listenAddress = ":9469"

  @Option(
    name: .customLong("web.config.file"),
    help: ArgumentHelp(
      "Web configuration file (the exporter-toolkit format): TLS, client certificates, bcrypt basic auth, extra headers. Re-read on reload.",
      valueName: "path"))
  var webConfigFile: String?

  @Option(name: .customLong("web.telemetry-path"), help: ArgumentHelp("Path of the metrics endpoint.", valueName: "path"))
  var telemetryPath = "/metrics"

  @Option(
    name: .customLong("web.max-connections"),
    help: ArgumentHelp(
      "HTTP connections held at once (lowered to what the open-file limit leaves); a newcomer above it replaces an idle or unfinished connection.",
      valueName: "n"))
  var maxConnections = 512

  @Option(
    name: .customLong("web.max-connections-per-ip"),
    help: ArgumentHelp("HTTP connections one client address may hold; 0 for no limit.", valueName: "n"))
  var maxConnectionsPerIP = 32

  @Option(name: .customLong("log.level"), help: "Only log messages of this level or above: debug, info, warn, error.")
  var logLevel: LevelOption = .info

  @Option(name: .customLong("log.format"), help: "Log line format: logfmt or json.")
  var logFormat: FormatOption = .logfmt

  @Flag(
    name: .customLong("check-config"),
    help: "Validate the configuration, print what would be probed and joined, and exit (0 valid, 2 invalid). Opens no socket.")
  var checkConfig = false

  enum LevelOption: String, ExpressibleByArgument, CaseIterable {
    case debug, info, warn, error

    var level: Logger.Level {
      switch self {
      case .debug: .debug
      case .info: .info
      case .warn: .warning
      case .error: .error
      }
    }
  }

  enum FormatOption: String, ExpressibleByArgument, CaseIterable {
    case logfmt, json
  }

  func validate() throws {
    guard SocketAddress.parseListen(listenAddress) != nil else {
      throw ValidationError(
        "--web.listen-address '\(listenAddress)': expected host:port, [ipv6]:port or :port, with a numeric address or localhost")
    }
    guard telemetryPath.hasPrefix("/"), !telemetryPath.contains(" "), !["/", "/-/healthy", "/-/ready", "/-/reload"].contains(telemetryPath)
    else {
      throw ValidationError("--web.telemetry-path '\(telemetryPath)': expected a path starting with '/' that is not '/' or a /-/ endpoint")
    }
    guard maxConnections >= 1 else { throw ValidationError("--web.max-connections must be at least 1") }
    guard maxConnectionsPerIP >= 0 else { throw ValidationError("--web.max-connections-per-ip must be 0 (no limit) or more") }
  }

  func run() throws {
    let source: ConfigSource = configFile.map { .file($0) } ?? .embedded
    if checkConfig { try runCheck(source) }
    try serve(source)
  }

  private func runCheck(_ source: ConfigSource) throws -> Never {
    var webSummary: String?
    var webErrors: ConfigErrors?
    if let webConfigFile {
      switch WebConfigFile.load(webConfigFile) {
      case .success(let loaded): webSummary = loaded.config.summary
      case .failure(let errors): webErrors = errors
      }
    }
    switch ConfigLoader.load(source) {
    case .success(let config):
      if let webErrors {
        StandardError.write(Array((webErrors.description + "\n").utf8))
        throw ExitCode(2)
      }
      print(ConfigSummary(config: config, source: source).text, terminator: "")
      if let webConfigFile, let webSummary { print("web config \(webConfigFile): \(webSummary)") }
      for file in ConfigLoader.unreadableFiles(in: config) {
        StandardError.write(Array("warning: \(file) is not readable here; pushes will fail until it is\n".utf8))
      }
      // Target files as they are now: how many targets each gives, or why it cannot be used.
      let check = TargetFileCheck(config: config, configName: "\(source)")
      print(check.text, terminator: "")
      if !check.problems.isEmpty {
        StandardError.write(Array((check.problems.joined(separator: "\n") + "\n").utf8))
        throw ExitCode(2)
      }
      throw ExitCode.success
    case .failure(var errors):
      if let webErrors { errors.related.append(webErrors) }
      StandardError.write(Array((errors.description + "\n").utf8))
      throw ExitCode(2)
    }
  }

  private func serve(_ source: ConfigSource) throws {
    // Before any thread starts, so every thread inherits the blocked mask.
    SignalWatcher.blockSignals()
    Memory.useMmapForLargeBlocks()
    Memory.useOneArena()
    let level = logLevel.level
    let format = LogFormat(rawValue: logFormat.rawValue)!
    LoggingSystem.bootstrap { label in LineLogHandler(label: label, level: level, format: format) }
    let logger = Logger(label: "netprobe")

    let config: NetProbeConfig
    switch ConfigLoader.load(source) {
    case .success(let loaded):
      config = loaded
    case .failure(let errors):
      for line in errors.lines { logger.error("invalid configuration", metadata: ["error": "\(line)"]) }
      throw ExitCode(2)
    }
    var security: WebSecurity?
    var webConfig: WebConfig?
    if let webConfigFile {
      switch WebConfigFile.load(webConfigFile) {
      case .success(let loaded):
        security = WebSecurity(loaded.snapshot)
        webConfig = loaded.config
      case .failure(let errors):
        for line in errors.lines { logger.error("invalid web configuration", metadata: ["error": "\(line)"]) }
        throw ExitCode(2)
      }
    }
    // libcurl and curl_global_init while this is still the only thread (when pushing).
    Pusher.prepare(for: config, logger: logger)

    let registry = MetricsRegistry()
    let agent = Agent(source: source, config: config, logger: logger)
    if let webConfigFile, let security { agent.addCompanion(WebConfigFile(path: webConfigFile, security: security)) }
    registry.register("agent", agent)
    registry.register("target_files", agent.targetFiles)
    registry.register("process", ProcessMetricsCollector())

    var options = HTTPServerOptions()
    options.maxConnections = connectionLimit(for: config, logger: logger)
    options.maxConnectionsPerClient = maxConnectionsPerIP
    let server: HTTPServer
    do {
      server = try HTTPServer(
        address: SocketAddress.parseListen(listenAddress)!,
        handler: ExporterRoutes(telemetryPath: telemetryPath, registry: registry, agent: agent),
        options: options, security: security, logger: logger)
    } catch {
      logger.error("cannot listen", metadata: ["address": "\(listenAddress)", "error": "\(error)"])
      throw ExitCode(1)
    }
    registry.register("http", server.metrics)
    /// An engine follows the configuration and adds its series to every scrape.
    func attach<Engine: ConfigSubscriber & MetricsCollector>(_ name: String, _ make: () throws -> Engine) throws {
      do {
        let engine = try make()
        registry.register(name, engine)
        agent.subscribe(engine)
      } catch {
        logger.error("cannot start the \(name) engine", metadata: ["error": "\(error)"])
        throw ExitCode(1)
      }
    }
    // Ping and path are peers: the same probe identity and socket error counts, and the
    // path engine follows the addresses the ping engine resolves.
    let identity = ProbeIdentity()
    let socketErrors = ProbeSocketErrors()
    var ping: PingEngine?
    try attach("ping") {
      let engine = try PingEngine(logger: logger, identity: identity, socketErrors: socketErrors)
      ping = engine
      return engine
    }
    try attach("path") { try PathEngine(logger: logger, identity: identity, addresses: ping!, socketErrors: socketErrors) }
    try attach("multicast") { try MulticastEngine(logger: logger) }
    try attach("beacon") { try BeaconSender(logger: logger) }
    try attach("querier") { try QuerierWatch(logger: logger) }
    do {
      agent.subscribe(try TargetFileWatcher(logger: logger) { [weak agent] in agent?.refreshTargetFiles() })
    } catch {
      logger.error("cannot start the target file watcher", metadata: ["error": "\(error)"])
      throw ExitCode(1)
    }
    let pusher = Pusher(registry: registry, logger: logger)
    registry.register("push", pusher.metrics)
    agent.subscribe(pusher)

    let stop = DispatchSemaphore(value: 0)
    SignalWatcher.start { signal in
      switch signal {
      case .hangup:
        logger.info("SIGHUP received; reloading the configuration")
        agent.reload()
      case .terminate, .interrupt:
        logger.info("shutting down", metadata: ["signal": "\(signal)"])
        stop.signal()
      }
    }
    server.start()
    agent.markReady()
    logger.info(
      "listening",
      metadata: [
        "address": "\(server.localAddress)", "telemetry_path": "\(telemetryPath)", "config": "\(source)",
        "web": "\(webConfig?.summary ?? "plain HTTP; no basic auth")",
        "version": "\(BuildInfo.version)", "targets": "\(agent.config.targets.count)", "multicast_groups": "\(config.multicast.count)",
      ])
    stop.wait()
    server.stop()
    agent.stop()
    logger.info("stopped")
  }

  /// Raises the soft open-file limit to the hard one, as Go's runtime does, and sizes
  /// `--web.max-connections` to the descriptors left after the engines' sockets, saying so
  /// when it had to lower it.
  private func connectionLimit(for config: NetProbeConfig, logger: Logger) -> Int {
    let before = try? OpenFileLimit.current()
    let limit: OpenFileLimit
    do {
      limit = try OpenFileLimit.raiseSoftToHard()
    } catch {
      logger.warning("cannot raise the open-file limit", metadata: ["error": "\(error)"])
      guard let before else { return maxConnections }
      limit = before
    }
    if let before, before.soft < limit.soft {
      logger.debug("raised the open-file limit", metadata: ["from": "\(before.soft)", "to": "\(limit.soft)"])
    }
    let budget = DescriptorBudget(
      requested: maxConnections, softLimit: limit.soft, openNow: OpenFileLimit.openDescriptors() ?? 16,
      engineSockets: DescriptorBudget.engineSockets(for: config))
    if budget.lowered {
      logger.warning(
        "--web.max-connections lowered to fit the open-file limit",
        metadata: [
          "requested": "\(maxConnections)", "max_connections": "\(budget.connections)",
          "open_files_limit": "\(limit.soft)", "reserved_descriptors": "\(budget.reserved)",
        ])
    }
    return budget.connections
  }
}
