/// A 1-based line and column in a configuration file.
///
/// Columns count Unicode scalars from the start of the line, so an error under a
/// non-ASCII label value still points at the character an editor shows.
public struct SourceLocation: Sendable, Hashable, Comparable, CustomStringConvertible {
  // 32 bits each: every node and scalar of a parsed file carries a location, and a file is
  // at most 16 MiB (`FileContents.operatorFileLimit`); half the size of two Ints.
  private var storedLine: Int32
  private var storedColumn: Int32

  public var line: Int {
    get { Int(storedLine) }
    set { storedLine = Int32(clamping: newValue) }
  }

  public var column: Int {
    get { Int(storedColumn) }
    set { storedColumn = Int32(clamping: newValue) }
  }

  public init(line: Int, column: Int) {
    storedLine = Int32(clamping: line)
    storedColumn = Int32(clamping: column)
  }

  /// `LINE:COL`, the form every diagnostic uses after the file name.
  public var description: String { "\(line):\(column)" }

  public static func < (a: SourceLocation, b: SourceLocation) -> Bool {
    (a.line, a.column) < (b.line, b.column)
  }
}

/// One problem found in a configuration file: where, and what was expected.
///
/// The reader goes on after a syntax error at the next line its enclosing collection can
/// continue at, and the schema check collects every problem it can, so an operator fixes
/// a file in one pass instead of one error per run.
public struct ConfigDiagnostic: Error, Sendable, Hashable, CustomStringConvertible {
  public var location: SourceLocation
  public var message: String

  /// Longest message kept whole. Values are cut where they are put into a message
  /// (`ConfigValues.shown`); this bounds any message that still came out long.
  static let maximumMessageLength = 400

  public init(_ location: SourceLocation, _ message: String) {
    self.location = location
    if message.utf8.count > Self.maximumMessageLength {
      let kept = String(String.UnicodeScalarView(message.unicodeScalars.prefix(Self.maximumMessageLength)))
      self.message = kept + "… (message of \(message.utf8.count) bytes cut)"
    } else {
      self.message = message
    }
  }

  /// `FILE:LINE:COL: message`, the form compilers use, so editors can jump to it.
  public func formatted(file: String) -> String {
    "\(file):\(location.line):\(location.column): \(message)"
  }

  public var description: String { "\(location): \(message)" }
}

/// A configuration item that knows where in the file it was written.
protocol LocatedInConfig {
  var location: SourceLocation { get set }
}

extension LocatedInConfig {
  /// The item without its place in the file: an engine compares these to carry an
  /// unchanged item (and its counters) over a reload that only moved it in the file.
  var withoutLocation: Self {
    var copy = self
    copy.location = SourceLocation(line: 0, column: 0)
    return copy
  }
}

extension MulticastGroupConfig: LocatedInConfig {}
extension BeaconConfig: LocatedInConfig {}
