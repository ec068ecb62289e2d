import Synchronization

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
  /// A number unique to this declaration, so that `Exposition` finds a family's samples
  /// by an integer instead of hashing its name for every one of a scrape's 370,000 samples.
  let id: Int

  private static let nextID = Atomic<Int>(0)

  public init(_ name: String, _ type: MetricType, _ help: String, labels: [String] = []) {
    self.name = name
    self.type = type
    self.help = help
    self.labels = labels
    id = Self.nextID.add(1, ordering: .relaxed).newValue
  }

  /// Two declarations are the same family when they say the same; the id is only a key.
  public static func == (a: MetricFamily, b: MetricFamily) -> Bool {
    a.name == b.name && a.type == b.type && a.help == b.help && a.labels == b.labels
  }

  public func hash(into hasher: inout Hasher) {
    hasher.combine(name)
  }
}
