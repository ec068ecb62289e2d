/// Text that goes into the status page's HTML: every string from the configuration or the
/// network (names, hosts, labels, addresses, error messages) passes through `escape`, so a
/// target named `<script>` is shown as text and never run.
enum HTML {
  /// Escapes the five characters that matter in element content and quoted attributes.
  static func escape(_ text: String) -> String {
    guard text.utf8.contains(where: { $0 == 0x26 || $0 == 0x3C || $0 == 0x3E || $0 == 0x22 || $0 == 0x27 }) else { return text }
    var escaped = ""
    escaped.reserveCapacity(text.utf8.count + 16)
    for character in text {
      switch character {
      case "&": escaped += "&amp;"
      case "<": escaped += "&lt;"
      case ">": escaped += "&gt;"
      case "\"": escaped += "&quot;"
      case "'": escaped += "&#39;"
      default: escaped.append(character)
      }
    }
    return escaped
  }

  /// A name as one URL path segment: unreserved characters (RFC 3986) as they are, every
  /// other byte of its UTF-8 as %XX, so `/targets/NAME` links survive any name.
  static func pathSegment(_ text: String) -> String {
    var out = ""
    for byte in text.utf8 {
      switch byte {
      case UInt8(ascii: "a")...UInt8(ascii: "z"), UInt8(ascii: "A")...UInt8(ascii: "Z"), UInt8(ascii: "0")...UInt8(ascii: "9"),
        UInt8(ascii: "-"), UInt8(ascii: "."), UInt8(ascii: "_"), UInt8(ascii: "~"):
        out.unicodeScalars.append(Unicode.Scalar(byte))
      default:
        let digits = Array("0123456789ABCDEF".utf8)
        out += "%" + String(decoding: [digits[Int(byte >> 4)], digits[Int(byte & 15)]], as: UTF8.self)
      }
    }
    return out
  }

  /// Undoes `pathSegment` (any %XX); nil for a malformed escape or bytes that are not UTF-8.
  static func decodePathSegment(_ text: Substring) -> String? {
    var bytes: [UInt8] = []
    var iterator = text.utf8.makeIterator()
    while let byte = iterator.next() {
      guard byte == UInt8(ascii: "%") else {
        bytes.append(byte)
        continue
      }
      guard let high = iterator.next().flatMap(hexValue), let low = iterator.next().flatMap(hexValue) else { return nil }
      bytes.append(high << 4 | low)
    }
    return String(validating: bytes, as: UTF8.self)
  }

  private static func hexValue(_ byte: UInt8) -> UInt8? {
    switch byte {
    case UInt8(ascii: "0")...UInt8(ascii: "9"): byte - UInt8(ascii: "0")
    case UInt8(ascii: "a")...UInt8(ascii: "f"): byte - UInt8(ascii: "a") + 10
    case UInt8(ascii: "A")...UInt8(ascii: "F"): byte - UInt8(ascii: "A") + 10
    default: nil
    }
  }
}

/// How figures read on the page: short, with their unit, the same in every table.
enum StatusFormat {
  /// 0.125 → "12.5%"; 0 → "0%".
  static func percent(_ ratio: Double) -> String {
    let tenths = Int((ratio * 1000).rounded())
    return tenths % 10 == 0 ? "\(tenths / 10)%" : "\(tenths / 10).\(tenths % 10)%"
  }

  /// Seconds as milliseconds with three significant digits: "0.042 ms", "1.23 ms", "187 ms".
  static func milliseconds(_ seconds: Double) -> String {
    let ms = seconds * 1000
    if ms == 0 { return "0 ms" }
    let decimals = ms >= 100 ? 0 : ms >= 10 ? 1 : ms >= 1 ? 2 : 3
    return fixed(ms, decimals: decimals) + " ms"
  }

  /// A duration in whole units, largest two: "42s", "5m10s", "3h2m", "2d3h".
  static func age(_ seconds: Double) -> String {
    let total = max(0, Int(seconds.rounded()))
    if total < 60 { return "\(total)s" }
    if total < 3600 { return total % 60 == 0 ? "\(total / 60)m" : "\(total / 60)m\(total % 60)s" }
    if total < 86400 { return (total % 3600) / 60 == 0 ? "\(total / 3600)h" : "\(total / 3600)h\((total % 3600) / 60)m" }
    return (total % 86400) / 3600 == 0 ? "\(total / 86400)d" : "\(total / 86400)d\((total % 86400) / 3600)h"
  }

  /// A probe interval: "50 ms" below a second, else as `age` ("1s", "5m").
  static func interval(_ seconds: Double) -> String {
    seconds < 1 ? number((seconds * 1000).rounded()) + " ms" : age(seconds)
  }

  /// An axis tick in ms, without trailing zeros: "15 ms", "0.5 ms", "0.025 ms".
  static func tick(_ seconds: Double) -> String {
    var text = fixed(seconds * 1000, decimals: 3)
    while text.hasSuffix("0") { text.removeLast() }
    if text.hasSuffix(".") { text.removeLast() }
    return text + " ms"
  }

  /// A rate or count with at most one decimal: "10", "9.5".
  static func number(_ value: Double) -> String {
    value == value.rounded() && abs(value) < 1e15 ? String(Int(value)) : fixed(value, decimals: 1)
  }

  static func fixed(_ value: Double, decimals: Int) -> String {
    var scale = 1.0
    for _ in 0..<decimals { scale *= 10 }
    let scaled = Int((abs(value) * scale).rounded())
    let sign = value < 0 && scaled != 0 ? "-" : ""
    guard decimals > 0 else { return sign + String(scaled) }
    let whole = scaled / Int(scale)
    let fraction = String(scaled % Int(scale))
    return sign + "\(whole)." + String(repeating: "0", count: decimals - fraction.count) + fraction
  }
}
