#include "hg/serve/server.h"

#include "hg/data/boxes.h"
#include "hg/data/dataset.h"
#include "hg/data/image_header.h"
#include "hg/data/json.h"
#include "hg/data/readers.h"
#include "hg/infer/results.h"
#include "hg/io/checkpoint.h"
#include "hg/serve/batcher.h"
#include "hg/serve/metrics.h"
#include "hg/serve/page.h"

#include <httplib.h>
#include <torch/torch.h>
#include <opencv2/imgcodecs.hpp>
#include <opencv2/imgproc.hpp>

#include <chrono>
#include <filesystem>

namespace hg::serve {

namespace {

using nlohmann::json;
using Clock = std::chrono::steady_clock;

// An answer other than 200, raised anywhere in a handler.
struct HttpError : std::runtime_error {
  HttpError(int status, const std::string& what) : std::runtime_error(what), status(status) {}
  int status;
};

double ms_since(Clock::time_point t) {
  return std::chrono::duration<double, std::milli>(Clock::now() - t).count();
}

void send_json(httplib::Response& res, int status, const json& body) {
  res.status = status;
  res.set_content(body.dump(), "application/json");
}

void send_error(httplib::Response& res, int status, const std::string& why) {
  send_json(res, status, {{"error", why}, {"status", status}});
}

bool query_flag(const httplib::Request& req, const std::string& key, bool fallback) {
  if (!req.has_param(key)) return fallback;
  const auto v = req.get_param_value(key);
  if (v == "1" || v == "true" || v == "yes" || v.empty()) return true;
  if (v == "0" || v == "false" || v == "no") return false;
  throw HttpError(400, "query parameter " + key + "=" + v + " is not 0/1 or true/false");
}

// `stacks=K` (1..S): the answer's joints are stack K's and "stacks" lists stacks 1..K.
int64_t query_stacks(const httplib::Request& req, int64_t stacks) {
  if (!req.has_param("stacks")) return stacks;
  const auto v = req.get_param_value("stacks");
  size_t used = 0;
  int64_t k = 0;
  try {
    k = std::stoll(v, &used);
  } catch (const std::exception&) {
    used = 0;
  }
  if (used == 0 || used != v.size() || k < 1 || k > stacks)
    throw HttpError(400, "query parameter stacks=" + v + " is not a stack count from 1 to " +
                             std::to_string(stacks) + " (this model's stacks)");
  return k;
}

// The boxes of a request: a list [[x, y, w, h], ...], or the --boxes file's object with one
// entry (its one list is taken, whatever the image is called).
std::vector<infer::PersonCrop> parse_boxes(const std::string& text) {
  json j;
  try {
    j = data::parse_json(text, "boxes");
  } catch (const data::JsonError& e) {
    throw HttpError(400, e.what());
  }
  if (j.is_object() && j.size() == 1) j = j.begin().value();
  if (!j.is_array())
    throw HttpError(400, "boxes: expected a list of [x, y, w, h] (or {\"image\": [...]})");
  std::vector<infer::PersonCrop> people;
  try {
    for (const auto& box : data::boxes_from_json(j, "boxes"))
      people.push_back({infer::crop_of_box(box), infer::PersonSource::kBoxesFile, box, 0});
  } catch (const std::invalid_argument& e) {
    throw HttpError(400, e.what());
  }
  return people;
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
  httplib::Server http;
  bool bound = false;

  void pose(const httplib::Request& req, httplib::Response& res);
  cv::Mat decode(const std::string& bytes, json& timing);
  void routes();
};

cv::Mat Server::Impl::decode(const std::string& bytes, json& timing) {
  const auto start = Clock::now();
  if (bytes.empty()) throw HttpError(400, "the body is empty: send a JPEG, PNG or WebP image");
  cv::Mat rgb;
  try {
    rgb = data::decode_image_rgb(bytes, options.max_pixels);
  } catch (const data::UnsupportedImage& e) {
    throw HttpError(415, e.what());
  } catch (const data::MalformedImage& e) {
    throw HttpError(400, e.what());
  } catch (const data::ImageTooLarge& e) {
    throw HttpError(413, e.what());
  }
  timing["decode"] = ms_since(start);
  return rgb;
}

void Server::Impl::pose(const httplib::Request& req, httplib::Response& res) {
  const auto start = Clock::now();
  json timing = json::object();
  const std::string* image = &req.body;
  std::vector<infer::PersonCrop> people;
  bool has_boxes = false;
  if (req.is_multipart_form_data()) {
    if (!req.has_file("image")) throw HttpError(400, "the multipart body has no 'image' part");
    image = &req.files.find("image")->second.content;
    if (req.has_file("boxes")) {
      people = parse_boxes(req.files.find("boxes")->second.content);
      has_boxes = true;
    }
  } else {
    const auto type = req.get_header_value("Content-Type");
    if (!type.empty() && type.rfind("image/", 0) != 0 &&
        type.rfind("application/octet-stream", 0) != 0)
      throw HttpError(415, "Content-Type '" + type +
                               "' is not an image: send image/jpeg, image/png or image/webp, or "
                               "multipart/form-data with an 'image' part");
  }
  const auto& popts = cropper->options();
  const bool flip = query_flag(req, "flip", popts.flip);
  const bool whole = query_flag(req, "whole_image", false);
  const int64_t stacks = query_stacks(req, model_info["stacks"].get<int64_t>());
  if (req.has_param("size") && req.get_param_value("size") != std::to_string(popts.input_size))
    throw HttpError(400, "size=" + req.get_param_value("size") +
                             ": this server runs the network "
                             "at " +
                             std::to_string(popts.input_size) +
                             " (restart it with --size to change)");
  const cv::Mat rgb = decode(*image, timing);

  const auto found = Clock::now();
  if (!has_boxes) {
    if (!whole) people = infer::detect_people(rgb, options.max_people);
    if (people.empty())
      people = {{infer::crop_of_image(rgb.size()),
                 whole ? infer::PersonSource::kWholeImage : infer::PersonSource::kNoDetection,
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
    auto future = batcher->submit(cropper->crops(rgb, people), crops, flip);
    if (!future) {
      res.set_header("Retry-After", "1");
      throw HttpError(503, "the server is busy (its queue is full): retry in a second");
    }
    const auto joints = future->get();
    timing["network"] = ms_since(queued);
    for (size_t i = 0; i < people.size(); ++i)
      result["people"].push_back(infer::person_to_json(
          {people[i], joints[static_cast<int64_t>(i)].slice(0, 0, stacks), {}}, cropper->joints()));
  }
  auto options_used = popts;
  options_used.flip = flip;
  json doc = infer::results_header(cropper->joints(), model_name, options_used);
  doc["results"] = json::array({result});
  timing["total"] = ms_since(start);
  doc["time_ms"] = timing;
  metrics.observe_latency(timing["total"].get<double>() / 1000);
  send_json(res, 200, doc);
}

void Server::Impl::routes() {
  http.set_payload_max_length(options.max_body_bytes);
  http.set_read_timeout(options.timeout_s);
  http.set_write_timeout(options.timeout_s);
  http.set_keep_alive_timeout(options.timeout_s);
  const int threads = options.http_threads;
  http.new_task_queue = [threads] { return new httplib::ThreadPool(threads); };
  http.set_pre_routing_handler([this](const httplib::Request& req, httplib::Response& res) {
    const bool guarded = req.path.rfind("/v1/", 0) == 0 || req.path == "/metrics";
    if (options.token.empty() || !guarded ||
        req.get_header_value("Authorization") == "Bearer " + options.token)
      return httplib::Server::HandlerResponse::Unhandled;
    res.set_header("WWW-Authenticate", "Bearer");
    send_error(res, 401, "this server needs the header 'Authorization: Bearer <token>'");
    return httplib::Server::HandlerResponse::Handled;
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
  http.set_error_handler(
      httplib::Server::HandlerWithResponse([](const httplib::Request& req, httplib::Response& res) {
        if (!res.body.empty()) return httplib::Server::HandlerResponse::Unhandled;
        std::string why = "HTTP " + std::to_string(res.status);
        if (res.status == 404) why = "no such endpoint: " + req.method + " " + req.path;
        if (res.status == 413) why = "the body is larger than the server's limit (--max-body-mb)";
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

Server::Server(const std::string& weights, infer::PredictorOptions predictor, ServerOptions options)
    : impl_(std::make_unique<Impl>()) {
  TORCH_CHECK(options.max_body_bytes > 0, "--max-body-mb must be > 0");
  TORCH_CHECK(options.max_pixels > 0, "--max-pixels must be > 0, got ", options.max_pixels);
  TORCH_CHECK(options.http_threads >= 1, "--http-threads must be >= 1, got ", options.http_threads);
  TORCH_CHECK(options.port >= 0 && options.port <= 65535, "--port ", options.port,
              " is not a port (0 to 65535)");
  impl_->options = options;
  impl_->model_name = std::filesystem::path(weights).filename().string();
  auto loaded = io::load_model(weights);
  const auto architecture = loaded.model->options;
  predictor.batch = options.max_batch;
  const bool on_engine = infer::uses_engine(predictor.backend);
  auto p = infer::Predictor::from_model(std::move(loaded), predictor);
  const auto set = data::joint_set_to_json(p.joints());
  impl_->model_info = {
      {"model", impl_->model_name},
      {"architecture", io::options_to_json(architecture)},
      {"description", architecture.describe()},
      {"stacks", architecture.stacks()},
      {"joint_set", p.joints().name},
      {"joints", p.joints().names},
      {"flip_pairs", set["flip_pairs"]},
      {"skeleton", set["skeleton"]},
      {"input_size", p.options().input_size},
      {"flip_test", p.options().flip},
      {"backend", on_engine ? "engine" : "torch"},
      {"device", predictor.backend.device.str()},
      {"precision", on_engine ? engine::precision_name(predictor.backend.engine.precision) : "f32"},
      {"max_batch", options.max_batch},
      {"max_wait_ms", options.max_wait_ms},
      {"max_body_bytes", options.max_body_bytes},
      {"max_pixels", options.max_pixels},
      {"auth", !options.token.empty()}};
  impl_->cropper = p;
  impl_->batcher = std::make_unique<Batcher>(
      std::move(p), BatcherOptions{options.max_batch, options.max_wait_ms, options.max_queue},
      &impl_->metrics);
  impl_->routes();
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
                ": is the port in use (--port), or the address not this machine's (--host)?");
  }
  impl_->bound = true;
  return o.port;
}

void Server::run() {
  if (!impl_->bound) bind();
  impl_->http.listen_after_bind();
  // listen_after_bind returns once the HTTP threads are joined, so every request in flight has
  // had its answer: the worker can end.
  impl_->batcher->stop();
}

void Server::stop() {
  impl_->http.stop();
}

const nlohmann::json& Server::model_info() const {
  return impl_->model_info;
}

}  // namespace hg::serve
