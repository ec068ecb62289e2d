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
    let route = route(request.path)
    let readOnly = ["GET", "HEAD"]
    switch route {
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
    case .metrics, .landing, .healthy, .ready:
      guard readOnly.contains(request.method) else { return methodNotAllowed(readOnly) }
    }
    switch route {
    case .metrics:
      return HTTPResponse(.ok, headers: [("Content-Type", Exposition.contentType)], bodyParts: registry.renderParts())
    case .landing:
      let page = LandingPage(telemetryPath: telemetryPath, config: agent.config, source: agent.source,
                             reloadErrors: agent.lastReloadErrors)
      return HTTPResponse(.ok, headers: [("Content-Type", "text/html; charset=utf-8")], body: Array(page.html.utf8))
    case .healthy:
      return .text(.ok, "Healthy.\n")
    case .ready:
      return agent.isReady ? .text(.ok, "Ready.\n") : .text(.serviceUnavailable, "Starting; not ready yet.\n")
    case .reload, .other:
      fatalError("handled above")
    }
  }

  private func methodNotAllowed(_ methods: [String]) -> HTTPResponse {
    var response = HTTPResponse.text(.methodNotAllowed, "method not allowed; use \(methods.joined(separator: " or "))\n")
    response.headers.append(("Allow", methods.joined(separator: ", ")))
    return response
  }
}
