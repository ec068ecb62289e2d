import NetProbe

/// Requests well-formed enough to reach every branch of the parser once mutated.
private let httpSeeds: [String] = [
  "GET /metrics HTTP/1.1\r\nHost: a\r\nAccept-Encoding: gzip\r\n\r\n",
  "HEAD / HTTP/1.0\r\n\r\n",
  "POST /-/reload HTTP/1.1\r\nHost: a\r\nContent-Length: 5\r\n\r\nhello",
  "GET http://h:9469/metrics?x=1 HTTP/1.1\r\nHost: h\r\nConnection: close\r\n\r\n",
  "\r\nGET /-/ready HTTP/1.1\nHost: x\n\n",
  "PUT /-/reload HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n",
  "GET / HTTP/2.0\r\n\r\n",
  "GET /metrics HTTP/1.1\r\nHost: a\r\nAccept: application/vnd.google.protobuf;proto=io.prometheus.client.MetricFamily;"
    + "encoding=delimited,text/plain;version=0.0.4;q=0.5,*/*;q=0.1\r\n\r\n",
]

private let httpTokens = [
  "\r\n", "\r\n\r\n", ": ", "Content-Length: ", "Host: ", "HTTP/1.1", "HTTP/1.0", "GET ", "/", "?", " ",
  "Connection: keep-alive", "Accept-Encoding: gzip;q=0", "99999999999999999999", "-1", "\t", "\0",
  "Accept: ", ";q=", ";proto=", "=", ",", "*/*", "encoding=delimited", "nan", "1e999",
]

/// Feeds random and mutated requests to `HTTPRequestParser` and, for parsed requests, to
/// the header helpers the server calls. Returns the inputs run; a crash is the failure.
func fuzzHTTP(iterations: Int, seed: UInt64) -> Int {
  var mutator = Mutator(seed: seed, dictionary: httpTokens)
  let seeds = httpSeeds.map { Array($0.utf8) }
  // Heads around the 16 KiB limit, so that mutations fall on either side of the 431 check.
  let limit = HTTPRequestParser.maxHeaderBytes
  let longSeeds = [limit - 40, limit - 2, limit + 3].map { size in
    Array(("GET /metrics HTTP/1.1\r\nX-Pad: " + String(repeating: "a", count: size - 33) + "\r\n\r\n").utf8)
  }
  var parsed = 0
  for index in 0..<iterations {
    let input =
      index % 32 == 31
      ? mutator.mutate(longSeeds[index % longSeeds.count])
      : index % 3 == 0
        ? mutator.randomInput(maxLength: 512)
        : mutator.mutate(seeds[index % seeds.count])
    if case .request(let request, let length) = HTTPRequestParser.parse(input) {
      precondition(length <= input.count, "head length beyond the input")
      precondition(length <= limit + 4, "a head above the limit was accepted")
      _ = request.keepAlive
      _ = request.header("accept-encoding")
      _ = ExpositionFormat.negotiate(accept: request.header("accept"))
      let response = HTTPResponse.text(.ok, String(repeating: "x", count: 2048))
      _ = response.compressedIfAccepted(by: request).serialized(head: request.method == "HEAD", keepAlive: request.keepAlive)
      parsed += 1
    }
  }
  print("http: \(iterations) inputs, \(parsed) parsed as requests, no crash (seed \(seed))")
  return iterations
}
