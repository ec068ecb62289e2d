@preconcurrency import Glibc
import FoundationEssentials

/// The exporter's HTTP surface: `/metrics` (or the configured path), the landing page,
/// the health and readiness probes and `POST /-/reload`.
///
/// A plain value with no sockets, so tests call `respond(to:)` in-process and the same
/// handler is then served over a live socket by `HTTPServer`.
public struct ExporterRoutes: HTTPHandler {
  public let telemetryPath: String
  public let registry: MetricsRegistry
  public let agent: Agent

  public init(telemetryPath: String, registry: MetricsRegistry, agent: Agent) {
    self.telemetryPath = telemetryPath
    self.registry = registry
    self.agent = agent
  }

  private enum Route: String {
    case metrics, landing, healthy, ready, reload, other
  }

  private func route(_ path: String) -> Route {
    switch path {
    case telemetryPath: .metrics
    case "/": .landing
    case "/-/healthy": .healthy
    case "/-/ready": .ready
    case "/-/reload": .reload
    default: .other
    }
  }

  public func handlerLabel(for request: HTTPRequest) -> String { route(request.path).rawValue }

  public func respond(to request: HTTPRequest) -> HTTPResponse {
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
        HTTPResponse(.ok, headers: [("Content-Type", Exposition.contentType)], bodyParts: registry.renderParts())
      }
    case .landing:
      return readOnly(request) {
        let page = LandingPage(telemetryPath: telemetryPath, config: agent.config, source: agent.source,
                               reloadErrors: agent.lastReloadErrors)
        return HTTPResponse(.ok, headers: [("Content-Type", "text/html; charset=utf-8")], body: Array(page.html.utf8))
      }
    case .healthy:
      return readOnly(request) { .text(.ok, "Healthy.\n") }
    case .ready:
      return readOnly(request) {
        agent.isReady ? .text(.ok, "Ready.\n") : .text(.serviceUnavailable, "Starting; not ready yet.\n")
      }
    }
  }

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
