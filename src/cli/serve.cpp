#include "cli/cli.h"
#include "hg/serve/server.h"

#include <pthread.h>
#include <signal.h>

#include <atomic>
#include <chrono>
#include <iostream>
#include <memory>
#include <thread>

namespace hg::cli {

namespace {

struct Args {
  PredictorArgs model;
  serve::ServerOptions server;
  double max_body_mb = 16;
  int max_header_kb = 16;
};

// SIGTERM and SIGINT, blocked in the calling thread and so in every thread it starts later.
sigset_t block_stop_signals() {
  sigset_t signals;
  sigemptyset(&signals);
  sigaddset(&signals, SIGTERM);
  sigaddset(&signals, SIGINT);
  pthread_sigmask(SIG_BLOCK, &signals, nullptr);
  return signals;
}

// Serves until SIGTERM or SIGINT. The signals (blocked everywhere since before the server's
// threads started) are taken by one thread with sigwait, so stopping runs as ordinary code, not
// inside a signal handler.
void serve_until_signalled(serve::Server& server, const sigset_t& signals) {
  std::atomic<bool> done{false};
  std::thread waiter([&] {
    int signal = 0;
    sigwait(&signals, &signal);
    if (done) return;
    std::cerr << "serve: " << (signal == SIGTERM ? "SIGTERM" : "SIGINT")
              << ": finishing the requests in flight\n";
    // httplib ignores a stop that comes before its loop has started: repeat until run returns.
    while (!done) {
      server.stop();
      std::this_thread::sleep_for(std::chrono::milliseconds(50));
    }
  });
  server.run();
  done = true;
  // Wake the waiter if no signal came (run ended by itself).
  pthread_kill(waiter.native_handle(), SIGTERM);
  waiter.join();
}

}  // namespace

void add_serve_command(CLI::App& app, const GlobalOptions& global) {
  auto args = std::make_shared<Args>();
  auto* cmd = app.add_subcommand(
      "serve", "pose estimation over HTTP (POST /v1/pose) with a web page at / (upload, webcam)");
  add_predictor_options(*cmd, args->model, false, false);
  auto& s = args->server;
  cmd->add_option("--host", s.host, "interface to listen on (another than 127.0.0.1 only if asked)")
      ->capture_default_str();
  cmd->add_option("--port", s.port, "TCP port (0: any free one, printed)")
      ->capture_default_str()
      ->check(CLI::Range(0, 65535));
  cmd->add_option("--token", s.token, "require the header 'Authorization: Bearer TOKEN' on /v1/*");
  cmd->add_option("--max-batch", s.batching.max_batch, "crops per network call, across requests")
      ->capture_default_str()
      ->check(CLI::PositiveNumber);
  cmd->add_option("--max-wait-ms", s.batching.max_wait_ms,
                  "how long a request waits for a batch to fill")
      ->capture_default_str()
      ->check(CLI::NonNegativeNumber);
  cmd->add_option("--max-arrival-wait-ms", s.batching.max_arrival_wait_ms,
                  "...and at most how long while received requests are still being decoded")
      ->capture_default_str()
      ->check(CLI::NonNegativeNumber);
  cmd->add_option("--max-queue", s.batching.max_queue,
                  "requests waiting for the network; more get 503")
      ->capture_default_str()
      ->check(CLI::PositiveNumber);
  cmd->add_option("--max-body-mb", args->max_body_mb, "larger request bodies get 413")
      ->capture_default_str()
      ->check(CLI::Range(0.001, 65536.0));
  cmd->add_option("--max-header-kb", args->max_header_kb,
                  "larger request lines and headers get 431")
      ->capture_default_str()
      ->check(CLI::Range(1, 1024));
  cmd->add_option("--max-pixels", s.max_pixels,
                  "images declaring more pixels get 413 without being decoded")
      ->capture_default_str()
      ->check(CLI::PositiveNumber);
  cmd->add_option("--http-threads", s.http_threads,
                  "requests answered at once (complete requests wait in line for one)")
      ->capture_default_str()
      ->check(CLI::Range(1, 4096));
  cmd->add_option("--max-connections", s.max_connections,
                  "connections open at once; one more displaces the one that has waited longest "
                  "without sending a whole request")
      ->capture_default_str()
      ->check(CLI::Range(1, 65536));
  cmd->add_option("--timeout", s.timeout_s,
                  "seconds for a request's headers to arrive, and for each later read or write")
      ->capture_default_str()
      ->check(CLI::Range(1, 3600));
  cmd->add_option("--max-people", s.max_people, "detector: at most this many people per image")
      ->capture_default_str()
      ->check(CLI::PositiveNumber);
  cmd->add_option("--max-boxes", s.max_boxes, "boxes a request may give (more get 413)")
      ->capture_default_str()
      ->check(CLI::Range(1, 100000));
  cmd->callback([args, &global] {
    const sigset_t signals = block_stop_signals();
    apply_threads(global);
    auto options = args->model.options;
    options.backend.engine.threads = global.threads;
    args->server.max_body_bytes = static_cast<size_t>(args->max_body_mb * 1024 * 1024);
    args->server.max_header_bytes = static_cast<size_t>(args->max_header_kb) * 1024;
    serve::Server server(args->model.weights, options, args->server);
    const int port = server.bind();
    std::cerr << "serve: " << server.model_info()["description"].get<std::string>() << " on http://"
              << args->server.host << ":" << port << "/ (Ctrl-C or SIGTERM to stop)" << std::endl;
    serve_until_signalled(server, signals);
    std::cerr << "serve: stopped\n";
  });
}

}  // namespace hg::cli
