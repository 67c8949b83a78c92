#include "hg/serve/server.h"
#include "hg/runtime/text.h"

#include "connections.h"
#include "hg/data/readers.h"
#include "hg/infer/results.h"
#include "hg/io/checkpoint.h"
#include "hg/runtime/runtime.h"
#include "hg/serve/batcher.h"
#include "hg/serve/metrics.h"
#include "hg/serve/page.h"
#include "request.h"

#include <httplib.h>
#include <torch/torch.h>

#include <chrono>
#include <filesystem>
#include <thread>

namespace hg::serve {

namespace {

using nlohmann::json;
using Clock = std::chrono::steady_clock;

double ms_since(Clock::time_point t) {
  return std::chrono::duration<double, std::milli>(Clock::now() - t).count();
}

void send_json(httplib::Response& res, int status, const json& body) {
  res.status = status;
  res.set_content(runtime::json_text(body), "application/json");
}

void send_error(httplib::Response& res, int status, const std::string& why) {
  res.status = status;
  res.set_content(error_body(status, why), "application/json");
}

// POST /v1/pose with a body type it cannot take: 415 from the headers, before the body is read
// (httplib reads a form-encoded body itself and answers 413 past 8 KB: curl --data-binary's
// default). The body stays unread, so the connection closes after the answer.
bool refused_content_type(const httplib::Request& req, httplib::Response& res) {
  if (req.method != "POST" || req.path != "/v1/pose") return false;
  try {
    check_pose_content_type(req.get_header_value("Content-Type"));
    return false;
  } catch (const HttpError& e) {
    res.set_header("Connection", "close");
    send_error(res, e.status, e.what());
    return true;
  }
}

// The path label of /metrics: a known route, else "other" (scanners must not grow the map).
std::string route_of(const std::string& path) {
  for (const char* known : {"/", "/v1/pose", "/v1/model", "/healthz", "/metrics"})
    if (path == known) return path;
  return "other";
}

}  // namespace

struct Server::Impl {
  ServerOptions options;
  std::string model_name;
  // Used by the HTTP threads for crops() and joints() only, which never touch the backend; the
  // network runs in the batcher's worker alone.
  std::optional<infer::Predictor> cropper;
  json model_info;
  Metrics metrics;
  std::unique_ptr<Batcher> batcher;
  GuardedHttpServer http;
  bool bound = false;

  void pose(const httplib::Request& req, httplib::Response& res);
  void routes();
};

void Server::Impl::pose(const httplib::Request& req, httplib::Response& res) {
  const auto start = Clock::now();
  std::optional<Batcher::Arrival> arrival(batcher->arriving());
  json timing = json::object();
  const auto& popts = cropper->options();
  auto request = read_pose_request(
      req, {*popts.flip, model_info["stacks"].get<int64_t>(), popts.input_size, options.max_boxes});
  const auto decoding = Clock::now();
  const cv::Mat rgb = decode_request_image(*request.image, options.max_pixels);
  timing["decode"] = ms_since(decoding);
  auto& people = request.people;

  const auto found = Clock::now();
  if (!request.has_boxes) {
    if (!request.whole_image) people = infer::detect_people(rgb, options.max_people);
    if (people.empty())
      people = {{infer::crop_of_image(rgb.size()),
                 request.whole_image ? infer::PersonSource::kWholeImage
                                     : infer::PersonSource::kNoDetection,
                 {},
                 0}};
    timing["detect"] = ms_since(found);
  }
  json result = {
      {"input", "request"}, {"width", rgb.cols}, {"height", rgb.rows}, {"people", json::array()}};
  if (!people.empty()) {
    std::vector<data::CropParams> crops;
    for (const auto& p : people) crops.push_back(p.crop);
    const auto queued = Clock::now();
    auto future = batcher->submit(cropper->crops(rgb, people), crops, request.flip);
    arrival.reset();
    if (!future) {
      res.set_header("Retry-After", "1");
      throw HttpError(503, "the server is busy (its queue is full): retry in a second");
    }
    const auto joints = future->get();
    timing["network"] = ms_since(queued);
    for (size_t i = 0; i < people.size(); ++i)
      result["people"].push_back(infer::person_to_json(
          {people[i], joints[static_cast<int64_t>(i)].slice(0, 0, request.stacks), {}},
          cropper->joints()));
  }
  auto options_used = popts;
  options_used.flip = request.flip;
  json doc = infer::results_header(cropper->joints(), model_name, options_used);
  doc["results"] = json::array({result});
  timing["total"] = ms_since(start);
  doc["time_ms"] = timing;
  metrics.observe_latency(timing["total"].get<double>() / 1000);
  send_json(res, 200, doc);
}

void Server::Impl::routes() {
  http.limit({options.max_header_bytes, options.max_body_bytes, options.timeout_s},
             options.http_threads, options.max_connections);
  http.set_pre_routing_handler([this](const httplib::Request& req, httplib::Response& res) {
    // The request threads' tensor work is small; the network's thread keeps the cores' only
    // OpenMP team (see runtime::serial_tensor_ops_in_this_thread).
    thread_local const bool serial = (runtime::serial_tensor_ops_in_this_thread(), true);
    (void)serial;
    const bool guarded = req.path.rfind("/v1/", 0) == 0 || req.path == "/metrics";
    if (!options.token.empty() && guarded &&
        req.get_header_value("Authorization") != "Bearer " + options.token) {
      res.set_header("WWW-Authenticate", "Bearer");
      send_error(res, 401, "this server needs the header 'Authorization: Bearer <token>'");
      return httplib::Server::HandlerResponse::Handled;
    }
    return refused_content_type(req, res) ? httplib::Server::HandlerResponse::Handled
                                          : httplib::Server::HandlerResponse::Unhandled;
  });
  http.set_exception_handler(
      [](const httplib::Request&, httplib::Response& res, std::exception_ptr e) {
        try {
          std::rethrow_exception(e);
        } catch (const HttpError& err) {
          send_error(res, err.status, err.what());
        } catch (const c10::Error& err) {
          send_error(res, 500, err.what_without_backtrace());
        } catch (const std::exception& err) {
          send_error(res, 500, err.what());
        }
      });
  // httplib's own answers (404, 413 for a body over the limit, 400 for a malformed request)
  // get a JSON body too.
  http.set_error_handler(httplib::Server::HandlerWithResponse(
      [this](const httplib::Request& req, httplib::Response& res) {
        if (!res.body.empty()) return httplib::Server::HandlerResponse::Unhandled;
        std::string why = "HTTP " + std::to_string(res.status);
        if (res.status == 404) why = "no such endpoint: " + req.method + " " + req.path;
        Refusal refused = GuardedHttpServer::current_refusal();
        // httplib's own 413, from a Content-Length over the limit.
        if (res.status == 413 && refused == Refusal::kNone) refused = Refusal::kBodyTooLarge;
        if (refused != Refusal::kNone) {
          std::tie(res.status, why) = refusal_answer(refused, http.limits());
          res.set_header("Connection", "close");  // the rest of the request is unread
        }
        send_error(res, res.status, why);
        return httplib::Server::HandlerResponse::Handled;
      }));
  http.set_logger([this](const httplib::Request& req, const httplib::Response& res) {
    metrics.count_request(route_of(req.path), res.status);
  });
  http.Get("/", [](const httplib::Request&, httplib::Response& res) {
    res.set_content(index_page(), "text/html; charset=utf-8");
  });
  http.Get("/healthz", [](const httplib::Request&, httplib::Response& res) {
    send_json(res, 200, {{"status", "ok"}});
  });
  http.Get("/metrics", [this](const httplib::Request&, httplib::Response& res) {
    res.set_content(metrics.prometheus(), "text/plain; version=0.0.4");
  });
  http.Get("/v1/model", [this](const httplib::Request&, httplib::Response& res) {
    send_json(res, 200, model_info);
  });
  http.Post("/v1/pose",
            [this](const httplib::Request& req, httplib::Response& res) { pose(req, res); });
}

namespace {

// The predictor of `weights` (Newell's network, or MMPose's top-down hourglass), and what /v1/model
// says of its architecture: {"config", "description", "stacks"}.
std::pair<infer::Predictor, nlohmann::json> load_for_serving(
    const std::string& weights, const infer::PredictorOptions& predictor) {
  const auto facts = [](nlohmann::json config, const auto& options) {
    return nlohmann::json{{"config", std::move(config)},
                          {"description", options.describe()},
                          {"stacks", options.stacks()}};
  };
  if (io::holds_large_hourglass(weights)) {
    auto loaded = io::load_large_hourglass(weights);
    auto j = facts(io::large_options_to_json(loaded.model->options), loaded.model->options);
    return {infer::Predictor::from_large_hourglass(std::move(loaded), weights, predictor), j};
  }
  auto loaded = io::load_model(weights);
  auto j = facts(io::options_to_json(loaded.model->options), loaded.model->options);
  return {infer::Predictor::from_model(std::move(loaded), predictor), j};
}

}  // namespace

Server::Server(const std::string& weights, infer::PredictorOptions predictor, ServerOptions options)
    : impl_(std::make_unique<Impl>()) {
  TORCH_CHECK(options.max_body_bytes > 0, "max_body_bytes must be > 0");
  TORCH_CHECK(options.max_header_bytes >= 1024 && options.max_header_bytes <= (size_t{1} << 20),
              "max_header_bytes must be from 1024 to 1048576, got ", options.max_header_bytes);
  TORCH_CHECK(options.max_pixels > 0, "max_pixels must be > 0, got ", options.max_pixels);
  TORCH_CHECK(options.http_threads >= 1 && options.http_threads <= 4096,
              "http_threads must be from 1 to 4096, got ", options.http_threads);
  TORCH_CHECK(options.max_connections >= 1 && options.max_connections <= 65536,
              "max_connections must be from 1 to 65536, got ", options.max_connections);
  TORCH_CHECK(options.timeout_s >= 1 && options.timeout_s <= 3600,
              "timeout_s must be from 1 to 3600 seconds, got ", options.timeout_s);
  TORCH_CHECK(options.max_people >= 1, "max_people must be >= 1, got ", options.max_people);
  TORCH_CHECK(options.max_boxes >= 1, "max_boxes must be >= 1, got ", options.max_boxes);
  TORCH_CHECK(options.port >= 0 && options.port <= 65535, "port ", options.port,
              " is not a port (0 to 65535)");
  impl_->options = options;
  impl_->model_name = std::filesystem::path(weights).filename().string();
  const auto& batching = options.batching;
  predictor.batch = batching.max_batch;
  // The batcher's full batches run as one engine pass (see infer::engine_backend).
  predictor.backend.engine.batch = batching.max_batch;
  const bool on_engine = infer::uses_engine(predictor.backend);
  auto [p, architecture] = load_for_serving(weights, predictor);
  const auto set = data::joint_set_to_json(p.joints());
  impl_->model_info = {
      {"model", impl_->model_name},
      {"architecture", architecture.at("config")},
      {"description", architecture.at("description")},
      {"stacks", architecture.at("stacks")},
      {"joint_set", p.joints().name},
      {"joints", p.joints().names},
      {"flip_pairs", set["flip_pairs"]},
      {"skeleton", set["skeleton"]},
      {"input_size", p.options().input_size},
      {"flip_test", *p.options().flip},
      {"decoder", infer::decoder_name(*p.options().decoder)},
      {"backend", on_engine ? "engine" : "torch"},
      {"device", predictor.backend.device.str()},
      {"precision", on_engine ? engine::precision_name(predictor.backend.engine.precision) : "f32"},
      {"max_batch", batching.max_batch},
      {"max_wait_ms", batching.max_wait_ms},
      {"max_arrival_wait_ms", batching.max_arrival_wait_ms},
      {"max_body_bytes", options.max_body_bytes},
      {"max_header_bytes", options.max_header_bytes},
      {"max_connections", options.max_connections},
      {"http_threads", options.http_threads},
      {"timeout_s", options.timeout_s},
      {"max_boxes", options.max_boxes},
      {"max_pixels", options.max_pixels},
      {"auth", !options.token.empty()}};
  impl_->cropper = p;
  impl_->batcher = std::make_unique<Batcher>(std::move(p), batching, &impl_->metrics);
  impl_->routes();
  // Loading and building ran parallel regions on this thread. If run() is called from another
  // thread, this thread's idle OpenMP workers would count against the network's (see
  // runtime::release_thread_team); if from this one, the team is made again at the first batch.
  runtime::release_thread_team();
}

Server::~Server() {
  stop();
  impl_->batcher->stop();
}

int Server::bind() {
  auto& o = impl_->options;
  if (o.port == 0) {
    o.port = impl_->http.bind_to_any_port(o.host);
    TORCH_CHECK(o.port > 0, "cannot bind ", o.host,
                " (any port): is the address one of this "
                "machine's?");
  } else {
    TORCH_CHECK(impl_->http.bind_to_port(o.host, o.port), "cannot bind ", o.host, ":", o.port,
                ": is the port in use, or the address not this machine's?");
  }
  impl_->http.widen_listen_queue();
  impl_->bound = true;
  return o.port;
}

void Server::run() {
  if (!impl_->bound) bind();
  // The network runs on this thread, which loaded and built it: the same network ran ~7 % slower
  // per image from a thread started later (an in-process A/B, 8-stack, batch 8).
  std::thread http([this] {
    impl_->http.listen_after_bind();
    // listen_after_bind returns once the HTTP threads are joined, so every request in flight has
    // had its answer: the network's loop can end.
    impl_->batcher->stop();
  });
  impl_->batcher->work();
  http.join();
}

void Server::stop() {
  impl_->http.stop_now();
}

const nlohmann::json& Server::model_info() const {
  return impl_->model_info;
}

}  // namespace hg::serve
