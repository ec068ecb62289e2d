/// Turns a YAML-lite tree into a `NetProbeConfig`, checking every key, type, range and
/// cross-reference, and naming the place of each problem.
public enum ConfigSchema {
  /// Labels the exporter itself puts on target series; custom labels may not reuse them.
  public static let reservedTargetLabels = Catalogue.targetOwnedLabels
  /// Labels the exporter itself puts on multicast series.
  public static let reservedGroupLabels = Catalogue.groupOwnedLabels

  static let topLevelKeys = ["defaults", "ping", "targets", "multicast", "beacons", "querier_watch", "push", "target_files"]
  static let probeKeys = [
    "interval", "timeout", "payload_size", "ttl", "tos", "dont_fragment", "source", "interface",
    "family", "socket", "window", "dns_refresh", "trace", "labels", "series",
  ]
  static let seriesKeys = ["classic_buckets", "window_gauges", "hop_series"]
  static let traceKeys = ["enabled", "interval", "max_hops", "probes_per_hop", "confirm_rounds", "vary_flow", "protocol"]
  static let groupKeys = [
    "name", "group", "port", "interface", "sources", "format", "sequence", "clock_rate",
    "expected_rate", "no_data_timeout", "restart_gap", "receive_buffer", "clock_synchronized", "join_latency_test",
    "labels",
  ]
  static let beaconKeys = ["name", "group", "port", "interface", "rate", "ttl", "size", "stream_id"]
  static let querierKeys = ["interfaces", "protocols", "query_interval", "query_response_interval", "robustness"]
  static let pushKeys = [
    "url", "job", "instance", "grouping", "interval", "timeout", "basic_auth", "tls",
    "proxy_url", "gzip", "delete_on_shutdown",
  ]

  /// Smallest ICMP payload that still carries the nonce, slot, sequence and send time the
  /// engine matches replies with.
  public static let minimumPayloadSize = 24
  /// Smallest beacon payload: the beacon header.
  public static let minimumBeaconSize = 32

  /// The config, or every problem found (sorted by position).
  /// `files` checks the files the configuration names (password, TLS), so a FIFO or a
  /// device there is an error at its line; without it (text not from a file) they are not
  /// looked at.
  public static func decode(_ root: YAMLNode, files: NamedFileCheck? = nil) -> Result<NetProbeConfig, ConfigErrors> {
    var reader = SchemaReader()
    reader.files = files
    var config = NetProbeConfig()
    if root.scalar?.isNull != true, let top = reader.mapping(root, "the configuration", allowed: topLevelKeys) {
      if let node = top["defaults"]?.value, let map = reader.mapping(node, "defaults", allowed: probeKeys) {
        config.defaults = probeOptions(map, "defaults", base: ProbeOptions(), isTarget: false, &reader)
      }
      if let node = top["ping"]?.value { config.ping = pingSettings(node, &reader) }
      if let node = top["targets"]?.value, let items = reader.list(node, "targets") {
        config.targets = targets(items, defaults: config.defaults, &reader)
      }
      if let node = top["multicast"]?.value, let items = reader.list(node, "multicast") {
        config.multicast = groups(items, &reader)
      }
      if let node = top["beacons"]?.value, let items = reader.list(node, "beacons") {
        config.beacons = beacons(items, &reader)
      }
      if let node = top["querier_watch"]?.value { config.querierWatch = querierWatch(node, &reader) }
      if let node = top["push"]?.value { config.push = push(node, &reader) }
      if let node = top["target_files"]?.value, let items = reader.list(node, "target_files") {
        config.targetFiles = targetFiles(items, defaults: config.defaults, &reader)
      }
    }
    if reader.diagnostics.isEmpty { return .success(config) }
    return .failure(ConfigErrors(reader.diagnostics.sorted { $0.location < $1.location }))
  }

  // MARK: - Ping

  /// The probe settings of a mapping already read (`defaults` or one target) over `base`.
  static func probeOptions(
    _ map: [String: YAMLMappingEntry], _ path: String, base: ProbeOptions, isTarget: Bool,
    _ reader: inout SchemaReader
  ) -> ProbeOptions {
    var options = base
    if let v = map["interval"]?.value {
      options.interval = reader.duration(v, min: .milliseconds(10), max: .seconds(3600)) ?? options.interval
    }
    if let v = map["timeout"]?.value { options.timeout = reader.duration(v, min: .milliseconds(1), max: .seconds(60)) ?? options.timeout }
    if let v = map["payload_size"]?.value { options.payloadSize = reader.integer(v, minimumPayloadSize...65_000) ?? options.payloadSize }
    if let v = map["ttl"]?.value { options.ttl = reader.integer(v, 1...255) ?? options.ttl }
    if let v = map["tos"]?.value { options.tos = reader.integer(v, 0...255) ?? options.tos }
    if let v = map["dont_fragment"]?.value { options.dontFragment = reader.boolean(v) ?? options.dontFragment }
    if let v = map["source"]?.value { options.source = reader.address(v) ?? options.source }
    if let v = map["interface"]?.value { options.interface = reader.interfaceName(v) ?? options.interface }
    if let v = map["family"]?.value { options.family = reader.choice(v) ?? options.family }
    if let v = map["socket"]?.value { options.socket = reader.choice(v) ?? options.socket }
    if let v = map["window"]?.value { options.window = reader.integer(v, 1...100_000) ?? options.window }
    if let v = map["dns_refresh"]?.value {
      options.dnsRefresh = reader.duration(v, min: .seconds(1), max: .seconds(86_400)) ?? options.dnsRefresh
    }
    if let v = map["trace"]?.value { options.trace = trace(v, "\(path).trace", base: options.trace, isTarget: isTarget, &reader) }
    if let v = map["series"]?.value { options.series = series(v, "\(path).series", base: options.series, &reader) }
    if let v = map["labels"]?.value {
      let own = reader.labels(v, "\(path).labels", reserved: reservedTargetLabels)
      options.labels = options.labels.filter { label in !own.contains { $0.name == label.name } } + own
    }
    if let source = options.source, source.isMulticast || source.isUnspecified, let v = map["source"]?.value {
      reader.error(v.location, "source address \(source) cannot be used to send: expected a unicast address of this host")
    }
    return options
  }

  /// `series`: a mapping of switches over `base` (a target's start from `defaults`).
  static func series(_ node: YAMLNode, _ path: String, base: SeriesChoice, _ reader: inout SchemaReader) -> SeriesChoice {
    var choice = base
    guard let map = reader.mapping(node, path, allowed: seriesKeys) else { return base }
    if let v = map["classic_buckets"]?.value { choice.classicBuckets = reader.boolean(v) ?? choice.classicBuckets }
    if let v = map["window_gauges"]?.value { choice.windowGauges = reader.boolean(v) ?? choice.windowGauges }
    if let v = map["hop_series"]?.value { choice.hopSeries = reader.boolean(v) ?? choice.hopSeries }
    return choice
  }

  /// `trace: true`, `trace: false`, or a mapping of trace settings. In a target a mapping
  /// turns tracing on unless it says `enabled: false`; in `defaults` it only sets values.
  static func trace(
    _ node: YAMLNode, _ path: String, base: TraceOptions, isTarget: Bool,
    _ reader: inout SchemaReader
  ) -> TraceOptions {
    var trace = base
    if case .bool(let on) = node.scalar?.resolved {
      trace.enabled = on
      return trace
    }
    guard node.mapping != nil else {
      reader.error(
        node.location,
        "\(path) must be true, false or a mapping of trace settings, got '\(ConfigValues.shown(node.scalar?.text ?? node.kindDescription))'"
      )
      return base
    }
    guard let map = reader.mapping(node, path, allowed: traceKeys) else { return base }
    if isTarget { trace.enabled = true }
    if let v = map["enabled"]?.value { trace.enabled = reader.boolean(v) ?? trace.enabled }
    if let v = map["interval"]?.value { trace.interval = reader.duration(v, min: .seconds(1), max: .seconds(86_400)) ?? trace.interval }
    if let v = map["max_hops"]?.value { trace.maxHops = reader.integer(v, 1...64) ?? trace.maxHops }
    if let v = map["probes_per_hop"]?.value { trace.probesPerHop = reader.integer(v, 1...10) ?? trace.probesPerHop }
    if let v = map["confirm_rounds"]?.value { trace.confirmRounds = reader.integer(v, 1...10) ?? trace.confirmRounds }
    if let v = map["vary_flow"]?.value { trace.varyFlow = reader.boolean(v) ?? trace.varyFlow }
    if let v = map["protocol"]?.value { trace.probeProtocol = reader.choice(v) ?? trace.probeProtocol }
    return trace
  }

  static func pingSettings(_ node: YAMLNode, _ reader: inout SchemaReader) -> PingSettings {
    var settings = PingSettings()
    guard let map = reader.mapping(node, "ping", allowed: ["rtt_buckets", "native_histograms", "identifier_rotation"]) else {
      return settings
    }
    if let v = map["rtt_buckets"]?.value, let items = reader.list(v, "ping.rtt_buckets") {
      var bounds: [Double] = []
      for item in items {
        guard let bound = reader.number(item, above: 0, upTo: 3600) else { continue }
        if let last = bounds.last, bound <= last {
          reader.error(
            item.location,
            "rtt_buckets must increase: \(ConfigValues.shown(item.scalar?.text ?? "")) is not above \(Exposition.formatValue(last))")
        }
        bounds.append(bound)
      }
      if items.isEmpty { reader.error(v.location, "ping.rtt_buckets needs at least one bucket") }
      settings.rttBuckets = bounds
    }
    if let v = map["identifier_rotation"]?.value {
      settings.identifierRotation = reader.duration(v, min: .seconds(10), max: .seconds(86_400 * 7))
    }
    if let v = map["native_histograms"]?.value { settings.nativeHistograms = nativeHistograms(v, &reader) }
    return settings
  }

  static let nativeHistogramKeys = ["enabled", "bucket_factor", "zero_threshold", "max_buckets"]

  /// `native_histograms`: `true`/`false`, or a mapping of settings, which turns them on
  /// unless it says `enabled: false` (as `trace` does in a target). Nil when off.
  static func nativeHistograms(_ node: YAMLNode, _ reader: inout SchemaReader) -> NativeHistogramSettings? {
    var settings = NativeHistogramSettings()
    if node.scalar != nil { return reader.boolean(node) == true ? settings : nil }
    guard let map = reader.mapping(node, "ping.native_histograms", allowed: nativeHistogramKeys) else { return nil }
    var enabled = true
    if let v = map["enabled"]?.value { enabled = reader.boolean(v) ?? enabled }
    // Above 1 (a factor of 1 would need infinitely many buckets); 65536 is schema −4's growth,
    // the coarsest there is.
    if let v = map["bucket_factor"]?.value { settings.bucketFactor = reader.number(v, above: 1, upTo: 65_536) ?? settings.bucketFactor }
    if let v = map["zero_threshold"]?.value {
      // Zero is allowed (the zero bucket then takes exact zeros only): accept it before the
      // range check, which excludes its lower end.
      switch v.scalar?.resolved {
      case .int(0), .float(0): settings.zeroThreshold = 0
      default: settings.zeroThreshold = reader.number(v, above: 0, upTo: 1) ?? settings.zeroThreshold
      }
    }
    if let v = map["max_buckets"]?.value { settings.maxBuckets = reader.integer(v, 0...10_000) ?? settings.maxBuckets }
    return enabled ? settings : nil
  }

  static func targets(_ items: [YAMLNode], defaults: ProbeOptions, _ reader: inout SchemaReader) -> [TargetConfig] {
    var result: [TargetConfig] = []
    result.reserveCapacity(items.count)
    var firstByName: [String: SourceLocation] = [:]
    firstByName.reserveCapacity(items.count)
    for (index, item) in items.enumerated() {
      let path = "targets[\(index)]"
      guard let map = reader.mapping(item, path, allowed: ["name", "host"] + probeKeys) else { continue }
      guard let hostNode = map["host"]?.value else {
        reader.error(item.location, "\(path) needs a 'host': a DNS name or an IP address")
        continue
      }
      guard let host = reader.string(hostNode) else { continue }
      let literal = IPAddress(host)
      if literal == nil && !ConfigValues.isHostName(host) {
        reader.error(hostNode.location, "'\(ConfigValues.shown(host))' is neither an IP address nor a valid DNS name")
        continue
      }
      if let literal, literal.isMulticast || literal.isUnspecified {
        reader.error(hostNode.location, "cannot ping \(literal): expected a unicast address")
        continue
      }
      let nameNode = map["name"]?.value
      let name = nameNode.flatMap { reader.string($0) } ?? host
      let options = probeOptions(map, path, base: defaults, isTarget: true, &reader)
      if let first = firstByName[name] {
        reader.error(nameNode?.location ?? hostNode.location, "duplicate target name '\(ConfigValues.shown(name))' (first at \(first))")
        continue
      }
      firstByName[name] = nameNode?.location ?? hostNode.location
      if let literal {
        let familyNode = map["family"]?.value ?? hostNode
        if options.family != .auto && options.family.rawValue != literal.family.rawValue {
          reader.error(
            familyNode.location,
            "family \(options.family.rawValue) contradicts host \(ConfigValues.shown(host)), an \(literal.family.rawValue) address")
        }
        if let source = options.source, source.family != literal.family {
          reader.error(
            map["source"]?.value.location ?? item.location,
            "source \(source) is \(source.family.rawValue) but host \(ConfigValues.shown(host)) is \(literal.family.rawValue)")
        }
      }
      result.append(TargetConfig(name: name, host: host, options: options, location: item.location))
    }
    return result
  }

  // MARK: - Multicast

  /// Reads group, port and interface, shared by receivers and beacons.
  private static func endpoint(
    _ map: [String: YAMLMappingEntry], _ node: YAMLNode, _ path: String,
    _ reader: inout SchemaReader
  ) -> (group: IPAddress, port: Int, interface: String)? {
    var missing: [String] = []
    for key in ["group", "port", "interface"] where map[key] == nil { missing.append("'\(key)'") }
    if !missing.isEmpty {
      reader.error(node.location, "\(path) needs \(missing.joined(separator: ", "))")
      return nil
    }
    let group = reader.address(map["group"]!.value)
    if let group, !group.isMulticast {
      reader.error(map["group"]!.value.location, "\(group) is not a multicast address (224.0.0.0/4 or ff00::/8)")
      return nil
    }
    if let group, group.zone != nil {
      reader.error(map["group"]!.value.location, "\(group): no %zone here, the group is used on 'interface'")
      return nil
    }
    let port = reader.integer(map["port"]!.value, 1...65_535)
    let interface = reader.interfaceName(map["interface"]!.value)
    guard let group, let port, let interface else { return nil }
    return (group, port, interface)
  }

  static func groups(_ items: [YAMLNode], _ reader: inout SchemaReader) -> [MulticastGroupConfig] {
    var result: [MulticastGroupConfig] = []
    var firstByName: [String: SourceLocation] = [:]
    for (index, item) in items.enumerated() {
      let path = "multicast[\(index)]"
      guard let map = reader.mapping(item, path, allowed: groupKeys),
        let (group, port, interface) = endpoint(map, item, path, &reader)
      else { continue }
      var config = MulticastGroupConfig(name: "\(group):\(port)", group: group, port: port, interface: interface, location: item.location)
      if let v = map["name"]?.value { config.name = reader.string(v) ?? config.name }
      if let v = map["sources"]?.value, let list = reader.list(v, "\(path).sources") {
        for sourceNode in list {
          guard let source = reader.address(sourceNode) else { continue }
          if source.family != group.family {
            reader.error(
              sourceNode.location, "source \(source) is \(source.family.rawValue) but group \(group) is \(group.family.rawValue)")
          } else if source.isMulticast || source.isUnspecified {
            reader.error(sourceNode.location, "source \(source) must be a unicast sender address")
          } else if source.zone != nil {
            reader.error(sourceNode.location, "source \(source): no %zone here, the group is joined on 'interface'")
          } else if config.sources.contains(source) {
            reader.error(sourceNode.location, "source \(source) is listed twice")
          } else {
            config.sources.append(source)
          }
        }
      }
      if let v = map["format"]?.value { config.format = reader.choice(v) ?? config.format }
      if let v = map["sequence"]?.value {
        if config.format != .sequence {
          reader.error(map["sequence"]!.key.location, "'sequence' applies only to format: sequence")
        } else {
          config.sequenceField = sequenceField(v, "\(path).sequence", &reader)
        }
      } else if config.format == .sequence {
        reader.error(map["format"]!.value.location, "format sequence needs a 'sequence' mapping with offset, width and endianness")
      }
      if let v = map["clock_rate"]?.value {
        if config.format != .rtp && config.format != .mpegts {
          reader.error(map["clock_rate"]!.key.location, "'clock_rate' applies only to format rtp or mpegts")
        } else {
          config.clockRate = reader.integer(v, 1...10_000_000)
        }
      }
      if let v = map["expected_rate"]?.value { config.expectedRate = reader.number(v, above: 0, upTo: 10_000_000) }
      if let v = map["no_data_timeout"]?.value {
        config.noDataTimeout = reader.duration(v, min: .milliseconds(10), max: .seconds(3600)) ?? config.noDataTimeout
      }
      if let v = map["restart_gap"]?.value {
        if config.format != .mpegts {
          reader.error(map["restart_gap"]!.key.location, "'restart_gap' applies only to format mpegts")
        } else {
          config.restartGap = reader.duration(v, min: .milliseconds(10), max: .seconds(3600)) ?? config.restartGap
        }
      }
      if let v = map["receive_buffer"]?.value {
        config.receiveBuffer = reader.integer(v, MulticastGroupConfig.receiveBufferRange) ?? config.receiveBuffer
      }
      if let v = map["clock_synchronized"]?.value { config.clockSynchronized = reader.boolean(v) ?? false }
      if let v = map["join_latency_test"]?.value { config.joinLatencyTest = joinLatencyTest(v, "\(path).join_latency_test", &reader) }
      if let v = map["labels"]?.value { config.labels = reader.labels(v, "\(path).labels", reserved: reservedGroupLabels) }
      let nameLocation = map["name"]?.value.location ?? item.location
      if let first = firstByName[config.name] {
        reader.error(nameLocation, "duplicate multicast group name '\(ConfigValues.shown(config.name))' (first at \(first))")
        continue
      }
      firstByName[config.name] = nameLocation
      result.append(config)
    }
    return result
  }

  static func sequenceField(_ node: YAMLNode, _ path: String, _ reader: inout SchemaReader) -> SequenceField? {
    guard let map = reader.mapping(node, path, allowed: ["offset", "width", "endianness"]) else { return nil }
    guard let offsetNode = map["offset"]?.value, let widthNode = map["width"]?.value else {
      reader.error(node.location, "\(path) needs 'offset' and 'width'")
      return nil
    }
    let offset = reader.integer(offsetNode, 0...65_000)
    var width = reader.integer(widthNode, 2...8)
    if let value = width, ![2, 4, 8].contains(value) {
      reader.error(widthNode.location, "sequence width must be 2, 4 or 8 bytes, got \(value)")
      width = nil
    }
    var endianness = SequenceField.Endianness.big
    if let v = map["endianness"]?.value { endianness = reader.choice(v) ?? endianness }
    guard let offset, let width else { return nil }
    return SequenceField(offset: offset, width: width, endianness: endianness)
  }

  static func joinLatencyTest(_ node: YAMLNode, _ path: String, _ reader: inout SchemaReader) -> JoinLatencyTest? {
    guard let map = reader.mapping(node, path, allowed: ["interval", "leave_wait", "deadline"]) else { return nil }
    guard let intervalNode = map["interval"]?.value else {
      reader.error(node.location, "\(path) needs an 'interval'")
      return nil
    }
    guard let interval = reader.duration(intervalNode, min: .seconds(10), max: .seconds(86_400)) else { return nil }
    var test = JoinLatencyTest(interval: interval)
    if let v = map["leave_wait"]?.value { test.leaveWait = reader.duration(v, min: .zero, max: .seconds(600)) ?? test.leaveWait }
    if let v = map["deadline"]?.value { test.deadline = reader.duration(v, min: .milliseconds(100), max: .seconds(600)) ?? test.deadline }
    if test.leaveWait + test.deadline >= test.interval {
      reader.error(
        intervalNode.location,
        "join_latency_test interval must exceed leave_wait + deadline (\(ConfigValues.formatDuration(test.leaveWait + test.deadline)))")
    }
    return test
  }

  static func beacons(_ items: [YAMLNode], _ reader: inout SchemaReader) -> [BeaconConfig] {
    var result: [BeaconConfig] = []
    var firstByName: [String: SourceLocation] = [:]
    for (index, item) in items.enumerated() {
      let path = "beacons[\(index)]"
      guard let map = reader.mapping(item, path, allowed: beaconKeys),
        let (group, port, interface) = endpoint(map, item, path, &reader)
      else { continue }
      var beacon = BeaconConfig(name: "\(group):\(port)", group: group, port: port, interface: interface, location: item.location)
      if let v = map["name"]?.value { beacon.name = reader.string(v) ?? beacon.name }
      if let v = map["rate"]?.value { beacon.rate = reader.number(v, above: 0, upTo: 100_000) ?? beacon.rate }
      if let v = map["ttl"]?.value { beacon.ttl = reader.integer(v, 1...255) ?? beacon.ttl }
      if let v = map["size"]?.value { beacon.size = reader.integer(v, minimumBeaconSize...65_000) ?? beacon.size }
      if let v = map["stream_id"]?.value { beacon.streamID = reader.integer(v, 0...Int(UInt32.max)).map(UInt32.init) ?? beacon.streamID }
      let nameLocation = map["name"]?.value.location ?? item.location
      if let first = firstByName[beacon.name] {
        reader.error(nameLocation, "duplicate beacon name '\(ConfigValues.shown(beacon.name))' (first at \(first))")
        continue
      }
      firstByName[beacon.name] = nameLocation
      result.append(beacon)
    }
    return result
  }

  static func querierWatch(_ node: YAMLNode, _ reader: inout SchemaReader) -> QuerierWatchConfig? {
    guard let map = reader.mapping(node, "querier_watch", allowed: querierKeys) else { return nil }
    guard let listNode = map["interfaces"]?.value else {
      reader.error(node.location, "querier_watch needs 'interfaces', a list of interface names")
      return nil
    }
    var names: [String] = []
    for item in reader.list(listNode, "querier_watch.interfaces") ?? [] {
      guard let name = reader.interfaceName(item) else { continue }
      if names.contains(name) {
        reader.error(item.location, "interface '\(ConfigValues.shown(name))' is listed twice")
      } else {
        names.append(name)
      }
    }
    var watch = QuerierWatchConfig(interfaces: names)
    if let v = map["protocols"]?.value, let items = reader.list(v, "querier_watch.protocols") {
      var protocols: [QuerierProtocol] = []
      for item in items {
        guard let value: QuerierProtocol = reader.choice(item) else { continue }
        if protocols.contains(value) {
          reader.error(item.location, "protocol '\(value.rawValue)' is listed twice")
        } else {
          protocols.append(value)
        }
      }
      if items.isEmpty {
        reader.error(v.location, "querier_watch.protocols must list igmp, mld or both")
      } else if !protocols.isEmpty {
        watch.protocols = protocols
      }
    }
    if let v = map["query_interval"]?.value { watch.queryInterval = reader.duration(v, min: .seconds(1), max: .seconds(31_744)) }
    if let v = map["query_response_interval"]?.value {
      watch.queryResponseInterval =
        reader.duration(v, min: .milliseconds(100), max: .milliseconds(3_174_400)) ?? watch.queryResponseInterval
    }
    if let v = map["robustness"]?.value { watch.robustness = reader.integer(v, 1...7) ?? watch.robustness }
    return watch
  }

  // MARK: - Push

  static func push(_ node: YAMLNode, _ reader: inout SchemaReader) -> PushConfig? {
    guard let map = reader.mapping(node, "push", allowed: pushKeys) else { return nil }
    guard let urlNode = map["url"]?.value else {
      reader.error(node.location, "push needs a 'url', e.g. http://pushgateway.example:9091")
      return nil
    }
    // A bad URL is reported, and the rest is still checked so every problem shows at once.
    var urlIsValid = false
    if let url = reader.string(urlNode) {
      urlIsValid = isHTTPURL(url)
      if !urlIsValid { reader.error(urlNode.location, "expected an http:// or https:// URL, got '\(ConfigValues.shown(url))'") }
    }
    var push = PushConfig(url: urlNode.scalar?.text ?? "")
    if let v = map["job"]?.value { push.job = reader.string(v) ?? push.job }
    if let v = map["instance"]?.value { push.instance = reader.string(v, allowEmpty: true) }
    if let v = map["grouping"]?.value { push.grouping = reader.labels(v, "push.grouping", reserved: []) }
    if let v = map["interval"]?.value { push.interval = reader.duration(v, min: .seconds(1), max: .seconds(86_400)) ?? push.interval }
    if let v = map["timeout"]?.value { push.timeout = reader.duration(v, min: .milliseconds(100), max: .seconds(600)) ?? push.timeout }
    if push.timeout >= push.interval {
      reader.error(
        (map["timeout"] ?? map["interval"])?.value.location ?? node.location,
        "push timeout (\(ConfigValues.formatDuration(push.timeout))) must be shorter than its interval (\(ConfigValues.formatDuration(push.interval))), so pushes never overlap"
      )
    }
    if let v = map["basic_auth"]?.value, let auth = reader.mapping(v, "push.basic_auth", allowed: ["username", "password_file"]) {
      if let userNode = auth["username"]?.value, let fileNode = auth["password_file"]?.value {
        if let username = reader.string(userNode), let file = reader.filePath(fileNode) {
          push.basicAuth = PushConfig.BasicAuth(username: username, passwordFile: file)
        }
      } else {
        reader.error(v.location, "push.basic_auth needs 'username' and 'password_file'")
      }
    }
    if let v = map["tls"]?.value,
      let tls = reader.mapping(v, "push.tls", allowed: ["ca_file", "cert_file", "key_file", "insecure_skip_verify"])
    {
      if let n = tls["ca_file"]?.value { push.tls.caFile = reader.filePath(n) }
      if let n = tls["cert_file"]?.value { push.tls.certFile = reader.filePath(n) }
      if let n = tls["key_file"]?.value { push.tls.keyFile = reader.filePath(n) }
      if let n = tls["insecure_skip_verify"]?.value { push.tls.insecureSkipVerify = reader.boolean(n) ?? false }
      if (push.tls.certFile == nil) != (push.tls.keyFile == nil) {
        reader.error(v.location, "push.tls needs both 'cert_file' and 'key_file' for a client certificate")
      }
    }
    if let v = map["proxy_url"]?.value, let proxy = reader.string(v) {
      if isHTTPURL(proxy) || proxy.hasPrefix("socks5://") {
        push.proxyURL = proxy
      } else {
        reader.error(v.location, "expected an http://, https:// or socks5:// proxy URL, got '\(ConfigValues.shown(proxy))'")
      }
    }
    if let v = map["gzip"]?.value { push.gzip = reader.boolean(v) ?? false }
    if let v = map["delete_on_shutdown"]?.value { push.deleteOnShutdown = reader.boolean(v) ?? false }
    return urlIsValid ? push : nil
  }

  static func isHTTPURL(_ text: String) -> Bool {
    for scheme in ["http://", "https://"] where text.lowercased().hasPrefix(scheme) {
      let rest = text.dropFirst(scheme.count)
      let authority = rest.prefix { $0 != "/" && $0 != "?" && $0 != "#" }
      return !authority.isEmpty && !text.contains(where: \.isWhitespace)
    }
    return false
  }
}
