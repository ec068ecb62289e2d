@preconcurrency import Glibc
import FoundationEssentials

/// The exporter's HTTP surface: `/metrics` (or the configured path), the status pages
/// (`StatusRoutes`: `/`, `/targets/NAME`, `/api/v1/status`), the health and readiness
/// probes and `POST /-/reload`.
///
/// A plain value with no sockets, so tests call `respond(to:)` in-process and the same
/// handler is then served over a live socket by `HTTPServer`.
public struct ExporterRoutes: HTTPHandler {
  public let telemetryPath: String
  public let registry: MetricsRegistry
  public let agent: Agent
  private let status: StatusRoutes

  /// - Parameter now: Unix time in seconds for the status pages; tests pass a fixed clock.
  public init(
    telemetryPath: String, registry: MetricsRegistry, agent: Agent,
    now: @escaping @Sendable () -> Double = Agent.unixTime
  ) {
    self.telemetryPath = telemetryPath
    self.registry = registry
    self.agent = agent
    status = StatusRoutes(telemetryPath: telemetryPath, registry: registry, agent: agent, now: now)
  }

  private enum Route: String {
    case metrics, healthy, ready, reload, other
  }

  private func route(_ path: String) -> Route {
    switch path {
    case telemetryPath: .metrics
    case "/-/healthy": .healthy
    case "/-/ready": .ready
    case "/-/reload": .reload
    default: .other
    }
  }

  public func handlerLabel(for request: HTTPRequest) -> String {
    request.path == telemetryPath ? Route.metrics.rawValue : StatusRoutes.label(for: request.path) ?? route(request.path).rawValue
  }

  public func respond(to request: HTTPRequest) -> HTTPResponse {
    if let response = status.respond(to: request) { return response }
    switch route(request.path) {
    case .other:
      return .text(.notFound, "404 page not found: \(request.path)\n")
    case .reload:
      guard request.method == "POST" || request.method == "PUT" else { return methodNotAllowed(["POST", "PUT"]) }
      switch agent.reload() {
      case .success:
        return .text(.ok, "configuration reloaded from \(agent.source)\n")
      case .failure(let errors):
        return .text(.internalServerError, "failed to reload the configuration; the previous one keeps running:\n\(errors)\n")
      }
    case .metrics:
      return readOnly(request) {
        let format = ExpositionFormat.negotiate(accept: request.header("accept"))
        let body = registry.stream(as: format.encoder(), encoders: Self.encoderThreads)
        // The body depends on Accept (text or protobuf): a cache must not serve one for the other.
        return HTTPResponse(.ok, headers: [("Content-Type", body.contentType), ("Vary", "Accept")], stream: body)
      }
    case .healthy:
      return readOnly(request) { .text(.ok, "Healthy.\n") }
    case .ready:
      return readOnly(request) {
        agent.isReady ? .text(.ok, "Ready.\n") : .text(.serviceUnavailable, "Starting; not ready yet.\n")
      }
    }
  }

  /// Encoder threads per scrape: the encoding is most of a large scrape's work. Two, but
  /// one on a single core.
  static let encoderThreads = ProcessInfo.processInfo.activeProcessorCount >= 2 ? 2 : 1

  /// The response of a page that only GET and HEAD may ask for.
  private func readOnly(_ request: HTTPRequest, _ respond: () -> HTTPResponse) -> HTTPResponse {
    let methods = ["GET", "HEAD"]
    guard methods.contains(request.method) else { return methodNotAllowed(methods) }
    return respond()
  }

  private func methodNotAllowed(_ methods: [String]) -> HTTPResponse {
    var response = HTTPResponse.text(.methodNotAllowed, "method not allowed; use \(methods.joined(separator: " or "))\n")
    response.headers.append(("Allow", methods.joined(separator: ", ")))
    return response
  }
}
