public import Logging
@preconcurrency import Glibc
import FoundationEssentials

/// The two log formats Prometheus exporters offer: logfmt (the default) and JSON.
public enum LogFormat: String, Sendable, CaseIterable {
  case logfmt
  case json
}

/// A swift-log handler that writes one line per record to standard error, as logfmt
/// (`ts=… level=info msg="…" key=value`) or JSON (`{"ts":…,"level":"info","msg":…}`),
/// the shapes Prometheus exporters use so log pipelines parse ours unchanged.
public struct LineLogHandler: LogHandler {
  public var logLevel: Logger.Level
  public var metadata: Logger.Metadata = [:]
  public let format: LogFormat
  private let label: String
  private let sink: @Sendable ([UInt8]) -> Void

  /// `sink` receives each finished line; tests capture it, the exporter writes to stderr.
  public init(
    label: String, level: Logger.Level, format: LogFormat,
    sink: @escaping @Sendable ([UInt8]) -> Void = StandardError.write
  ) {
    self.label = label
    self.logLevel = level
    self.format = format
    self.sink = sink
  }

  public subscript(metadataKey key: String) -> Logger.Metadata.Value? {
    get { metadata[key] }
    set { metadata[key] = newValue }
  }

  public func log(event: LogEvent) {
    var merged = metadata
    if let extra = event.metadata { merged.merge(extra) { $1 } }
    let line = LineLogHandler.render(
      time: Date(), level: event.level, message: "\(event.message)", metadata: merged, format: format)
    sink(Array(line.utf8))
  }

  /// One log line, newline-terminated. Metadata keys are sorted so lines are stable.
  static func render(
    time: Date, level: Logger.Level, message: String, metadata: Logger.Metadata,
    format: LogFormat
  ) -> String {
    let timestamp = time.formatted(.iso8601.year().month().day().time(includingFractionalSeconds: true).timeZone(separator: .omitted))
      .replacing("+0000", with: "Z")
    let levelName = name(of: level)
    let pairs = metadata.sorted { $0.key < $1.key }.map { ($0.key, "\($0.value)") }
    switch format {
    case .logfmt:
      var text = "ts=\(timestamp) level=\(levelName) msg=\(logfmtValue(message))"
      for (key, value) in pairs { text += " \(logfmtKey(key))=\(logfmtValue(value))" }
      return text + "\n"
    case .json:
      var text = "{\"ts\":\(jsonString(timestamp)),\"level\":\(jsonString(levelName)),\"msg\":\(jsonString(message))"
      for (key, value) in pairs where !["ts", "level", "msg"].contains(key) {
        text += ",\(jsonString(key)):\(jsonString(value))"
      }
      return text + "}\n"
    }
  }

  /// Prometheus' names for levels: debug, info, warn, error.
  static func name(of level: Logger.Level) -> String {
    switch level {
    case .trace, .debug: "debug"
    case .info, .notice: "info"
    case .warning: "warn"
    case .error, .critical: "error"
    }
  }

  static func logfmtKey(_ key: String) -> String {
    let cleaned = key.unicodeScalars.map { $0.value > 0x20 && $0 != "=" && $0 != "\"" ? Character($0) : "_" }
    return cleaned.isEmpty ? "_" : String(cleaned)
  }

  /// Bare when it is a simple word, else quoted with `\"`, `\\`, `\n` escapes.
  static func logfmtValue(_ value: String) -> String {
    let needsQuotes =
      value.isEmpty || value.unicodeScalars.contains { $0.value <= 0x20 || $0 == "=" || $0 == "\"" || $0 == "\\" || $0.value == 0x7F }
    guard needsQuotes else { return value }
    var text = "\""
    for scalar in value.unicodeScalars {
      switch scalar {
      case "\\": text += "\\\\"
      case "\"": text += "\\\""
      case "\n": text += "\\n"
      case "\r": text += "\\r"
      case "\t": text += "\\t"
      default: text.unicodeScalars.append(scalar)
      }
    }
    return text + "\""
  }

  static func jsonString(_ value: String) -> String {
    var text = ""
    text.appendJSONString(value)
    return text
  }
}
