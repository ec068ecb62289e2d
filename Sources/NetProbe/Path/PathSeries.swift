/// Renders a traced target's path series from its state at scrape time. Hop series come
/// from the current path only, so a hop that disappears stops being exported and
/// Prometheus marks it stale instead of freezing its last value.
enum PathSeries {
  static func collect(_ target: PathTarget, into exposition: inout Exposition) {
    let state = target.state.withLock { $0 }
    guard let address = state.tracedAddress, state.rounds > 0 else { return }
    let config = target.config
    let custom = config.options.labels.map { ($0.name, $0.value) }
    let base: [(String, String)] = [
      ("target", config.name), ("host", config.host), ("address", address.description),
      ("family", address.family.rawValue),
    ]
    let labels = LabelSet(base).appending(custom)
    let path = state.detector.confirmed
    exposition.add(Catalogue.pathRounds, labels, Double(state.rounds))
    if let duration = state.lastRoundDuration { exposition.add(Catalogue.pathRoundDuration, labels, duration) }
    exposition.add(Catalogue.pathReached, labels, state.lastRound?.destinationTTL != nil ? 1 : 0)
    exposition.add(Catalogue.pathChanges, labels, Double(state.detector.changes))
    if let time = state.lastChangeTime { exposition.add(Catalogue.pathLastChange, labels, time) }
    for (code, count) in state.unreachable.sorted(by: { $0.key < $1.key }) {
      exposition.add(Catalogue.pathUnreachable, LabelSet(base + [("code", String(code))]).appending(custom), Double(count))
    }
    if let mtu = state.mtu { exposition.add(Catalogue.pathMTU, labels, Double(mtu)) }
    for (reason, count) in state.sendErrors.sorted(by: { $0.key < $1.key }) {
      exposition.add(Catalogue.pathSendErrors, LabelSet(base + [("reason", reason)]).appending(custom), Double(count))
    }
    guard let path else { return }
    exposition.add(Catalogue.pathHops, labels, Double(path.hops.count))
    exposition.add(Catalogue.pathHash, labels, Double(path.hash))
    guard config.options.series.hopSeries else { return }
    for (index, responders) in path.hops.enumerated() {
      let hop = String(index + 1)
      let names = responders.isEmpty ? ["*"] : responders.map(\.description).sorted()
      for responder in names {
        exposition.add(Catalogue.pathHopInfo, LabelSet(base + [("hop", hop), ("responder", responder)]).appending(custom), 1)
      }
      let hopLabels = LabelSet(base + [("hop", hop)]).appending(custom)
      if index < state.hops.count {
        if let rtt = state.hops[index].meanRTT { exposition.add(Catalogue.pathHopRTT, hopLabels, rtt) }
        if let loss = state.hops[index].lossRatio { exposition.add(Catalogue.pathHopLoss, hopLabels, loss) }
      }
    }
  }

  /// The UDP tracer's ignored answers, every family and reason (0 until one comes).
  static func collect(_ unexpected: TraceUnexpectedAnswers, into exposition: inout Exposition) {
    let counts = Dictionary(uniqueKeysWithValues: unexpected.snapshot().map { ($0.key, $0.count) })
    for family in IPAddress.Family.allCases {
      for problem in TraceAnswerProblem.allCases {
        let value = counts[TraceUnexpectedAnswers.Key(family: family, problem: problem)] ?? 0
        exposition.add(Catalogue.pathUnexpected, LabelSet([("family", family.rawValue), ("reason", problem.rawValue)]), Double(value))
      }
    }
  }
}
