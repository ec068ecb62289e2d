/// Renders a group's series at scrape time: per stream (source) the traffic and what its
/// payload format says about it; per group the drops in the host, ignored packets and
/// join errors (with `source=""`).
///
/// Staleness: a stream heard before but silent for the group's `no_data_timeout` (its
/// `receiving` is 0) is declared silent here. Its windowed gauges stop describing it: the
/// rate reads 0 (the deviation −1) and the jitter series disappears, rather than keep the
/// last value for as long as the window or the sender table remembers. Its sequence holes
/// still undecided are settled (counted lost) at that moment (`PayloadAnalyzer.settle`).
enum MulticastSeries {
  static func collect(
    _ group: MulticastGroup, membership: KernelMembership, now: Int64, second: Int64,
    into exposition: inout Exposition
  ) {
    let config = group.current
    let join = group.join.withLock { $0 }
    let counters = group.counters.withLock { $0 }
    let labels = group.seriesLabels()
    for (source, stream) in group.streams.sorted(by: { $0.key < $1.key }) {
      let timeout = config.noDataTimeout.nanoseconds
      let stats = stream.stats.withLock { stats -> StreamStats in
        if let last = stats.lastPacketMonotonic, now - last > timeout { stats.analyzer.settle() }
        return stats
      }
      guard let streamLabels = labels.streams[source] else { continue }
      let member = join.joined && membership.isMember(config.group, interface: config.interface)
      exposition.add(Catalogue.multicastMembership, streamLabels, member ? 1 : 0)
      exposition.add(Catalogue.multicastPackets, streamLabels, Double(stats.packets))
      exposition.add(Catalogue.multicastBytes, streamLabels, Double(stats.bytes))
      if let time = stats.lastPacketTime { exposition.add(Catalogue.multicastLastPacket, streamLabels, time) }
      let receiving = stats.lastPacketMonotonic.map { now - $0 <= timeout } ?? false
      exposition.add(Catalogue.multicastReceiving, streamLabels, receiving ? 1 : 0)
      if let latency = stats.joinLatency { exposition.add(Catalogue.multicastJoinLatency, streamLabels, latency) }
      // Nothing heard within the timeout (or ever): 0, whatever the window still holds.
      let rate = receiving ? stats.rate.rate(atSecond: second) : 0
      if let rate {
        exposition.add(Catalogue.multicastRate, streamLabels, rate)
        if let expected = config.expectedRate {
          exposition.add(Catalogue.multicastRateDeviation, streamLabels, rate / expected - 1)
        }
      }
      addPayload(
        stats.analyzer.snapshot, streamLabels, receiving: receiving,
        mpegtsErrors: labels.mpegtsErrors[source] ?? [], mpegtsDiscontinuities: labels.mpegtsDiscontinuities[source] ?? [],
        into: &exposition)
      if config.clockSynchronized && config.format == .beacon {
        exposition.addHistogram(Catalogue.multicastOneWayDelay, streamLabels, stats.oneWayDelay.snapshot)
      }
      if config.joinLatencyTest != nil {
        exposition.addHistogram(Catalogue.multicastJoinTestLatency, streamLabels, stats.joinTestLatency.snapshot)
        exposition.add(Catalogue.multicastJoinTestFailures, streamLabels, Double(stats.joinTestFailures))
      }
    }
    exposition.add(Catalogue.multicastSocketDrops, labels.group, Double(counters.socketDrops))
    for (reason, count) in [
      ("malformed", counters.malformed), ("wrong_group", counters.wrongGroup), ("wrong_source", counters.wrongSource),
    ] {
      if let set = labels.unexpected[reason] { exposition.add(Catalogue.multicastUnexpected, set, Double(count)) }
    }
    for (errno, count) in join.errors.sorted(by: { $0.key < $1.key }) {
      exposition.add(Catalogue.multicastJoinErrors, labels.joinError(errno), Double(count))
    }
  }

  /// The format's own accounting: sequence counters for formats that number their
  /// packets, jitter where it is defined (while the stream is received), MPEG-TS errors and
  /// discontinuities for transport streams.
  private static func addPayload(
    _ snapshot: PayloadSnapshot, _ streamLabels: LabelSet, receiving: Bool,
    mpegtsErrors: [LabelSet], mpegtsDiscontinuities: [LabelSet], into exposition: inout Exposition
  ) {
    if snapshot.sequenced {
      exposition.add(Catalogue.multicastLost, streamLabels, Double(snapshot.lost))
      exposition.add(Catalogue.multicastDuplicates, streamLabels, Double(snapshot.duplicate))
      exposition.add(Catalogue.multicastLate, streamLabels, Double(snapshot.late))
      exposition.add(Catalogue.multicastResets, streamLabels, Double(snapshot.resets))
    }
    if receiving, let jitter = snapshot.jitterSeconds { exposition.add(Catalogue.multicastJitter, streamLabels, jitter) }
    if let errors = snapshot.mpegtsErrors {
      for (type, labels) in zip(MPEGTSErrorType.allCases, mpegtsErrors) {
        exposition.add(Catalogue.multicastMPEGTSErrors, labels, Double(errors[type]))
      }
    }
    if let discontinuities = snapshot.mpegtsDiscontinuities {
      for (reason, labels) in zip(MPEGTSDiscontinuityReason.allCases, mpegtsDiscontinuities) {
        exposition.add(Catalogue.multicastMPEGTSDiscontinuities, labels, Double(discontinuities[reason]))
      }
    }
  }
}
