extension Int64 {
  /// `self − other` as a Double: exact (to Double's precision of the difference) when
  /// the difference fits in Int64, and never trapping when it does not. Send times come
  /// from the network and may be anything; converting each operand first would instead
  /// lose 256 ns of precision on every present-day timestamp.
  func difference(from other: Int64) -> Double {
    let (value, overflow) = subtractingReportingOverflow(other)
    return overflow ? Double(self) - Double(other) : Double(value)
  }
}
