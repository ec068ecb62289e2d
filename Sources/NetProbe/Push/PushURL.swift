/// Builds the Pushgateway URL of a group: `<base>/metrics/job/<job>{/<label>/<value>}`.
///
/// A value that contains `/` or is empty cannot be a path segment, so it is sent in the
/// gateway's `@base64` form (URL-safe base64, RFC 4648 §5; `=` for the empty string); any
/// other value is percent-encoded. Pure, so the encoding is tested without a gateway.
public enum PushURL {
  public static func group(base: String, job: String, labels: [Label]) -> String {
    var url = base
    while url.hasSuffix("/") { url.removeLast() }
    url += "/metrics/" + segment("job", job)
    for label in labels { url += "/" + segment(label.name, label.value) }
    return url
  }

  static func segment(_ name: String, _ value: String) -> String {
    if value.isEmpty || value.contains("/") {
      return "\(name)@base64/\(value.isEmpty ? "=" : base64URL(Array(value.utf8)))"
    }
    return "\(name)/\(percentEncoded(value))"
  }

  /// Everything but RFC 3986's unreserved characters is escaped.
  static func percentEncoded(_ value: String) -> String {
    var text = ""
    for byte in value.utf8 {
      switch byte {
      case UInt8(ascii: "a")...UInt8(ascii: "z"), UInt8(ascii: "A")...UInt8(ascii: "Z"),
        UInt8(ascii: "0")...UInt8(ascii: "9"), UInt8(ascii: "-"), UInt8(ascii: "."), UInt8(ascii: "_"), UInt8(ascii: "~"):
        text.unicodeScalars.append(Unicode.Scalar(byte))
      default:
        text += "%" + String(byte, radix: 16, uppercase: true).leftPadded(to: 2)
      }
    }
    return text
  }

  /// URL-safe base64 with padding, as the Pushgateway's README specifies.
  static func base64URL(_ bytes: [UInt8]) -> String {
    let alphabet = Array("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_")
    var text = ""
    var index = 0
    while index < bytes.count {
      let chunk = Array(bytes[index..<min(index + 3, bytes.count)])
      let value = chunk.enumerated().reduce(UInt32(0)) { $0 | UInt32($1.element) << (16 - 8 * UInt32($1.offset)) }
      for position in 0..<4 {
        if position <= chunk.count {
          text.append(alphabet[Int(value >> (18 - 6 * UInt32(position)) & 0x3F)])
        } else {
          text.append("=")
        }
      }
      index += 3
    }
    return text
  }
}

extension String {
  fileprivate func leftPadded(to width: Int) -> String {
    String(repeating: "0", count: max(0, width - count)) + self
  }
}
