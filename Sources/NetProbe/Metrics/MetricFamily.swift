/// The kind of a metric family, as the `# TYPE` line names it.
public enum MetricType: String, Sendable, Hashable {
  case counter
  case gauge
  case histogram
}

/// A metric family: the name, type, help text and the label names every series of it
/// carries first (a target's or group's custom labels follow them).
///
/// Families are declared only in `Catalogue`; the README's metric table is checked against
/// that list by a test, so a name cannot ship undocumented.
public struct MetricFamily: Sendable, Hashable {
  public let name: String
  public let type: MetricType
  public let help: String
  public let labels: [String]

  public init(_ name: String, _ type: MetricType, _ help: String, labels: [String] = []) {
    self.name = name
    self.type = type
    self.help = help
    self.labels = labels
  }
}
