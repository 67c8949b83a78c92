#pragma once
/// `hourglass serve`: pose estimation over HTTP (cpp-httplib), with a web page at `/`.
///
///     hg::serve::Server server("model.hg", {}, {});   // loads the model
///     const int port = server.bind();                 // 127.0.0.1:8080 by default
///     server.run();                                   // until stop() (e.g. from SIGTERM)
///
/// Endpoints: `POST /v1/pose` (an image body, or multipart/form-data with `image` and optional
/// `boxes`; query `flip`, `size`, `whole_image`) answers the JSON of `hourglass predict` for one
/// image plus "time_ms"; `GET /v1/model`, `/healthz`, `/metrics` (Prometheus text) and `/` (the
/// page). Every request's crops go through one queue into the thread in run(), which owns the
/// predictor and batches crops across requests.

#include "hg/infer/predictor.h"
#include "hg/serve/batcher.h"

#include <nlohmann/json.hpp>

#include <cstddef>
#include <cstdint>
#include <memory>
#include <string>

namespace hg::serve {

/// How the server listens and what it accepts.
struct ServerOptions {
  std::string host = "127.0.0.1";  ///< interface to bind
  int port = 8080;                 ///< 0: any free port (see Server::bind)
  /// When set, /v1/* and /metrics need `Authorization: Bearer <token>` (401 otherwise).
  std::string token;
  /// Crops per network call gathered across requests, how long a batch waits to fill, and the
  /// queue's bound (more waiting requests are answered 503).
  BatcherOptions batching;
  /// Requests answered at once (decoding, detection and the answer; the network is the batcher's).
  /// A request waits in line for one only once its line and headers have all arrived.
  int http_threads = 32;
  /// Connections open at once, a thread each, reading their requests in parallel. One more
  /// displaces the connection that has waited longest without sending a complete request (idle
  /// keep-alive, or a head still arriving), or, when every one has a complete request, is
  /// answered 503.
  int max_connections = 256;
  /// Seconds for a request's line and headers to arrive (whole; 408 after a partial head), and
  /// for each later read or write; an idle keep-alive connection is closed after as long.
  int timeout_s = 10;
  size_t max_header_bytes = size_t{16} << 10;  ///< request line and headers; more: 431
  /// Larger bodies are answered 413 (a chunked body's framing counts), as soon as they pass it.
  size_t max_body_bytes = size_t{16} << 20;
  int64_t max_pixels = 40'000'000;  ///< images declaring more pixels are answered 413, undecoded
  int max_people = 10;              ///< detector: at most this many people per image
  int64_t max_boxes = 64;           ///< boxes a request may give; more are answered 413
};

/// The HTTP server and its inference worker.
class Server {
 public:
  /// Loads `weights` (any checkpoint Predictor::load reads; `predictor.batch` is replaced by
  /// `options.batching.max_batch`, and so is the engine's plan batch) and checks the options;
  /// throws naming the file or the option at fault.
  Server(const std::string& weights, infer::PredictorOptions predictor, ServerOptions options);
  ~Server();
  Server(const Server&) = delete;
  Server& operator=(const Server&) = delete;

  /// Binds host:port (port 0: a free one) and returns the port. Throws when it cannot.
  int bind();
  /// Serves on the bound socket until stop(); returns once the requests in flight are answered.
  /// The network runs on the calling thread (best the one that constructed the server); the HTTP
  /// threads are others.
  void run();
  /// Stops accepting; run() returns after finishing what is in flight. Safe from any thread.
  void stop();

  /// The JSON of GET /v1/model.
  const nlohmann::json& model_info() const;

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

}  // namespace hg::serve
