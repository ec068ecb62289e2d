/// `/api/v1/status`: what the status page shows, as JSON for scripts, every target and
/// group (not paged), worst first. Field names are snake_case with their unit, as the
/// metrics are (`_seconds`, `_ratio`, `_timestamp_seconds`); a figure not known yet is
/// `null`, never 0. The README lists every field; `StatusJSONTests` holds them to it.
enum StatusJSON {
  static func render(_ snapshot: StatusSnapshot) -> String {
    let json = JSONWriter()
    json.object {
      json.field("generated_timestamp_seconds", snapshot.time)
      json.field("config_source", snapshot.configSource)
      json.field("last_reload_error", snapshot.reloadError)
      json.key("targets")
      json.array(snapshot.targets) { target in
        json.object {
          json.field("name", target.name)
          json.field("host", target.host)
          json.field("address", target.address)
          json.key("labels")
          json.object { for label in target.labels { json.field(label.name, label.value) } }
          json.field("health", target.health.jsonValue)
          json.key("problems")
          json.array(target.problems) { json.value($0) }
          json.field("url", StatusRoutes.targetPrefix + HTML.pathSegment(target.name))
          json.field("interval_seconds", target.interval)
          json.field("window_probes", Double(target.probes))
          json.field("loss_ratio", target.lossRatio)
          json.field("rtt_median_seconds", target.rttMedian)
          json.field("rtt_min_seconds", target.rttMin)
          json.field("rtt_max_seconds", target.rttMax)
          json.field("jitter_seconds", target.jitter)
          json.field("dns_error", target.dnsError)
          json.key("path")
          if let path = target.path {
            json.object {
              json.field("hops", Double(path.hops.count))
              json.field("reached", path.reached)
              json.field("changes", Double(path.changes))
              json.field("last_change_timestamp_seconds", path.lastChange)
              json.field("rounds", Double(path.rounds))
              json.key("hop_details")
              json.array(Array(path.hops.enumerated())) { index, hop in
                json.object {
                  json.field("hop", Double(index + 1))
                  json.key("responders")
                  json.array(hop.responders) { json.value($0) }
                  json.field("loss_ratio", hop.lossRatio)
                  json.field("rtt_mean_seconds", hop.rttMean)
                }
              }
            }
          } else {
            json.null()
          }
        }
      }
      json.key("multicast_groups")
      json.array(snapshot.groups) { group in
        json.object {
          json.field("name", group.name)
          json.field("group", group.group)
          json.key("sources")
          json.array(group.sources) { json.value($0) }
          json.field("port", Double(group.port))
          json.field("interface", group.interface)
          json.key("labels")
          json.object { for label in group.labels { json.field(label.name, label.value) } }
          json.field("health", group.health.jsonValue)
          json.key("problems")
          json.array(group.problems) { json.value($0) }
          json.field("joined", group.joined)
          json.field("receiving", group.receiving)
          json.field("rate_packets_per_second", group.rate)
          json.field("expected_rate_packets_per_second", group.expectedRate)
          json.field("packets", Double(group.packets))
          json.field("lost", group.sequenced ? Double(group.lost) : nil)
          json.field("loss_ratio", group.lossRatio)
          json.field("last_packet_age_seconds", group.lastPacketAge)
          json.field("querier_present", group.querierPresent)
          json.field("url", StatusRoutes.groupPrefix + HTML.pathSegment(group.name))
          json.key("history")
          if group.history.isEmpty {
            json.null()
          } else {
            history(group, json)
          }
        }
      }
      json.key("queriers")
      json.array(snapshot.queriers) { querier in
        json.object {
          json.field("interface", querier.interface)
          json.field("protocol", querier.querierProtocol.rawValue)
          json.field("present", querier.present)
          json.field("querier", querier.querier)
          json.field("version", querier.version.map(Double.init))
          json.field("last_query_age_seconds", querier.lastQueryAge)
        }
      }
      json.key("push")
      if let push = snapshot.push {
        json.object {
          json.field("health", push.health.jsonValue)
          json.field("interval_seconds", push.interval)
          json.field("successes", Double(push.successes))
          json.field("failures", Double(push.failures))
          json.field("last_success_timestamp_seconds", push.lastSuccess)
          json.field("last_succeeded", push.lastSucceeded)
          json.field("last_error", push.lastError)
        }
      } else {
        json.null()
      }
    }
    return json.output + "\n"
  }

  /// A group's last seconds as parallel arrays, oldest first, one entry a second, `null`
  /// for a second before the join: compact for 100 seconds a group.
  private static func history(_ group: GroupStatus, _ json: JSONWriter) {
    json.object {
      json.field("end_timestamp_seconds", Double(group.historyEnd))
      json.field("step_seconds", 1.0)
      json.key("packets")
      json.array(group.history) { json.number($0.map { Double($0.packets) }) }
      json.key("lost")
      json.array(group.history) { json.number($0.map { Double($0.lost) }) }
      json.key("gaps")
      json.array(group.history) { json.number($0.map { Double($0.gaps) }) }
      json.key("longest_silence_seconds")
      json.array(group.history) { json.number($0.map { (Double($0.longestSilence) * 1000).rounded() / 1000 }) }
    }
  }
}

/// A streaming JSON writer: commas and escaping handled, nothing buffered but the text. A
/// class, so the nested closures that write an object's members can share it.
/// Numbers that are not finite are written as `null` (JSON has no NaN or infinity).
final class JSONWriter {
  private(set) var output = ""
  /// Whether the container being written still needs a comma before its next item.
  private var needsComma: [Bool] = []
  /// Set after a key, so the value that follows takes no comma.
  private var afterKey = false

  private func separate() {
    if afterKey {
      afterKey = false
      return
    }
    if let last = needsComma.last {
      if last { output += "," }
      needsComma[needsComma.count - 1] = true
    }
  }

  func object(_ body: () -> Void) {
    separate()
    output += "{"
    needsComma.append(false)
    body()
    needsComma.removeLast()
    output += "}"
  }

  func array<Element>(_ items: [Element], _ body: (Element) -> Void) {
    separate()
    output += "["
    needsComma.append(false)
    for item in items { body(item) }
    needsComma.removeLast()
    output += "]"
  }

  func key(_ name: String) {
    separate()
    output.appendJSONString(name, escapingAngleBrackets: true)
    output += ":"
    afterKey = true
  }

  func null() {
    separate()
    output += "null"
  }

  func value(_ text: String) {
    separate()
    output.appendJSONString(text, escapingAngleBrackets: true)
  }

  func field(_ name: String, _ text: String?) {
    key(name)
    if let text { value(text) } else { null() }
  }

  func field(_ name: String, _ number: Double?) {
    key(name)
    self.number(number)
  }

  /// A number as an array item (or after `key`); `null` for nil or not finite.
  func number(_ number: Double?) {
    separate()
    guard let number, number.isFinite else {
      output += "null"
      return
    }
    if number == number.rounded(), abs(number) < 9_007_199_254_740_992 {
      output += String(Int64(number))
    } else {
      output += "\(number)"
    }
  }

  func field(_ name: String, _ flag: Bool?) {
    key(name)
    separate()
    output += flag.map { $0 ? "true" : "false" } ?? "null"
  }
}
