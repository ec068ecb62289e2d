/// The formats `/metrics` and pushes are written in.
///
/// OpenMetrics 1.0 text is deliberately not offered: Prometheus asks for protobuf first when
/// it wants native histograms and reads text 0.0.4 otherwise, and OpenMetrics would add
/// nothing the exporter has to say (it has no exemplars and no created timestamps to give)
/// while being one more format to keep exact. A scraper that asks for it gets text 0.0.4,
/// as client_golang's default handler answers.
public enum ExpositionFormat: Sendable, Equatable {
  /// Prometheus text format 0.0.4: the default, and all that has no native histograms.
  case text
  /// Length-delimited `io.prometheus.client.MetricFamily` messages: what carries native
  /// histograms.
  case protobuf

  /// The `Content-Type` of a body in this format.
  public var contentType: String {
    switch self {
    case .text: Exposition.contentType
    case .protobuf: ProtobufExposition.contentType
    }
  }

  /// A fresh encoder of this format for one scrape or push.
  public func encoder() -> any ExpositionEncoder {
    switch self {
    case .text: TextEncoder()
    case .protobuf: ProtobufEncoder()
    }
  }

  /// The format an `Accept` header asks for, chosen as client_golang's promhttp does
  /// (prometheus/common expfmt's `Negotiate`): the media ranges in order of quality (a more
  /// specific one first among equals), and the first that is the delimited protobuf
  /// MetricFamily, or `text/plain` with version 0.0.4 or none, wins; anything else
  /// (OpenMetrics, `*/*`, nothing at all) means text.
  public static func negotiate(accept: String?) -> ExpositionFormat {
    guard let accept else { return .text }
    for range in MediaRange.parseAccept(accept) {
      if range.type == "application/vnd.google.protobuf", range.parameters["proto"] == "io.prometheus.client.MetricFamily",
        range.parameters["encoding"] == "delimited"
      {
        return .protobuf
      }
      if range.type == "text/plain", (range.parameters["version"] ?? "0.0.4") == "0.0.4" { return .text }
    }
    return .text
  }
}

/// One media range of an `Accept` header: `type/subtype`, its parameters and its quality.
struct MediaRange: Equatable {
  /// Lower case, `type/subtype`.
  var type: String
  /// Names in lower case, values as written.
  var parameters: [String: String]
  var quality: Double

  /// The ranges in the order a server should consider them: highest quality first, and
  /// among equal qualities those without wildcards before `type/*` before `*/*`, otherwise
  /// in the order written.
  static func parseAccept(_ header: String) -> [MediaRange] {
    var ranges: [(range: MediaRange, position: Int)] = []
    for (position, item) in header.split(separator: ",").enumerated() {
      let fields = item.split(separator: ";").map { $0.trimmingWhitespace() }
      guard let type = fields.first?.lowercased(), type.contains("/") else { continue }
      var parameters: [String: String] = [:]
      var quality = 1.0
      for field in fields.dropFirst() {
        let pair = field.split(separator: "=", maxSplits: 1).map { $0.trimmingWhitespace() }
        guard pair.count == 2 else { continue }
        let name = pair[0].lowercased()
        if name == "q" {
          quality = Double(pair[1]) ?? 0
        } else {
          parameters[name] = pair[1]
        }
      }
      guard quality > 0 else { continue }
      ranges.append((MediaRange(type: type, parameters: parameters, quality: quality), position))
    }
    return ranges.sorted { a, b in
      if a.range.quality != b.range.quality { return a.range.quality > b.range.quality }
      if a.range.wildcards != b.range.wildcards { return a.range.wildcards < b.range.wildcards }
      return a.position < b.position
    }.map(\.range)
  }

  /// 0 for `type/subtype`, 1 for `type/*`, 2 for `*/*`.
  private var wildcards: Int {
    type == "*/*" ? 2 : type.hasSuffix("/*") ? 1 : 0
  }
}
