// `hourglass serve`: the image header reader, and the server spoken to over real HTTP on an
// ephemeral port of 127.0.0.1 (good images, every kind of bad input, the queue, stopping).
#include "hg/data/dataset.h"
#include "hg/data/image_header.h"
#include "hg/infer/predictor.h"
#include "hg/io/checkpoint.h"
#include "hg/runtime/runtime.h"
#include "hg/serve/batcher.h"
#include "hg/serve/server.h"
#include "test_util.h"

#include <gtest/gtest.h>
#include <httplib.h>
#include <torch/torch.h>
#include <nlohmann/json.hpp>
#include <opencv2/imgcodecs.hpp>

#include <arpa/inet.h>
#include <netinet/in.h>
#include <poll.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <atomic>
#include <chrono>
#include <csignal>
#include <filesystem>
#include <fstream>
#include <future>
#include <mutex>
#include <optional>
#include <sstream>
#include <thread>
#include <tuple>

namespace {

using hg::test::kData;
using nlohmann::json;

const std::string kModel = kData + "/fixtures/posenet_s2_f64_checkpoint.pt";
const std::string kImage = kData + "/mpii/images/005808361.jpg";
constexpr int kSize = 128;  // the network input side: small, for speed
const std::string kToken = "test-token";

std::string read_bytes(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  std::stringstream s;
  s << in.rdbuf();
  return s.str();
}

std::string encode(const cv::Mat& bgr, const std::string& ext, std::vector<int> params = {}) {
  std::vector<uchar> buf;
  EXPECT_TRUE(cv::imencode(ext, bgr, buf, params));
  return std::string(buf.begin(), buf.end());
}

// A PNG whose IHDR declares w×h (and nothing else): a decompression bomb's header.
std::string png_declaring(uint32_t w, uint32_t h) {
  std::string b("\x89PNG\r\n\x1a\n\0\0\0\x0dIHDR", 16);
  for (uint32_t v : {w, h})
    for (int shift = 24; shift >= 0; shift -= 8) b += static_cast<char>((v >> shift) & 0xFF);
  b += std::string("\x08\x02\0\0\0", 5);
  return b + std::string(64, '\0');
}

// A JPEG whose frame header declares w×h.
std::string jpeg_declaring(uint16_t w, uint16_t h) {
  std::string b("\xFF\xD8\xFF\xC0\x00\x11\x08", 7);
  for (uint16_t v : {h, w}) {
    b += static_cast<char>(v >> 8);
    b += static_cast<char>(v & 0xFF);
  }
  return b + std::string("\x03\x01\x22\x00\x02\x11\x01\x03\x11\x01\xFF\xD9", 12);
}

// The process's threads (Linux: /proc/self/task).
int thread_count() {
  int n = 0;
  for ([[maybe_unused]] const auto& entry : std::filesystem::directory_iterator("/proc/self/task"))
    ++n;
  return n;
}

// Waits up to 2 s for the thread count to become `expected` (exiting threads leave /proc late).
int thread_count_becomes(int expected) {
  int n = thread_count();
  for (int i = 0; i < 200 && n != expected; ++i) {
    std::this_thread::sleep_for(std::chrono::milliseconds(10));
    n = thread_count();
  }
  return n;
}

// The server's request threads: LibTorch's parallel loops run inline, right, and start no
// OpenMP workers.
TEST(Runtime, SerialTensorOpsRunOnTheCallingThreadAlone) {
  ASSERT_GT(at::get_num_threads(), 1) << "the suite runs with OMP_NUM_THREADS=2";
  std::thread([] {
    hg::runtime::serial_tensor_ops_in_this_thread();
    EXPECT_EQ(at::get_num_threads(), 1);
    const int before = thread_count();
    const auto x = torch::arange(1 << 20, torch::kDouble);
    EXPECT_EQ(x.mul(2).sum().item<double>(), double(1 << 20) * ((1 << 20) - 1));
    EXPECT_EQ(thread_count(), before);
  }).join();
}

// The server's constructor: the OpenMP workers its thread started end, so that the network's
// thread has the only team.
TEST(Runtime, ReleaseThreadTeamEndsTheThreadsOpenMPWorkers) {
  std::thread([] {
    const int before = thread_count();
    const auto x = torch::arange(1 << 20, torch::kDouble);
    EXPECT_EQ(x.mul(2).sum().item<double>(), double(1 << 20) * ((1 << 20) - 1));
    EXPECT_EQ(thread_count(), before + at::get_num_threads() - 1);
    hg::runtime::release_thread_team();
    EXPECT_EQ(thread_count_becomes(before), before);
    // A later parallel region makes its team again.
    EXPECT_EQ(x.mul(3).sum().item<double>(), 1.5 * double(1 << 20) * ((1 << 20) - 1));
  }).join();
}

TEST(ImageHeader, ReadsTheSizeOfJpegPngAndWebp) {
  const cv::Mat bgr = cv::imread(kImage);
  ASSERT_FALSE(bgr.empty());
  const cv::Mat small = bgr(cv::Rect(0, 0, 301, 203)).clone();
  struct Case {
    std::string bytes;
    hg::data::ImageFormat format;
  };
  for (const auto& c :
       {Case{read_bytes(kImage), hg::data::ImageFormat::kJpeg},
        Case{encode(small, ".jpg"), hg::data::ImageFormat::kJpeg},
        Case{encode(small, ".png"), hg::data::ImageFormat::kPng},
        Case{encode(small, ".webp", {cv::IMWRITE_WEBP_QUALITY, 80}), hg::data::ImageFormat::kWebp},
        Case{encode(small, ".webp", {cv::IMWRITE_WEBP_QUALITY, 101}),
             hg::data::ImageFormat::kWebp}}) {
    const auto header = hg::data::read_image_header(c.bytes);
    const cv::Mat decoded =
        cv::imdecode(std::vector<uchar>(c.bytes.begin(), c.bytes.end()), cv::IMREAD_COLOR);
    EXPECT_EQ(header.format, c.format);
    EXPECT_EQ(header.width, decoded.cols);
    EXPECT_EQ(header.height, decoded.rows);
  }
  const auto bomb = hg::data::read_image_header(png_declaring(100000, 90000));
  EXPECT_EQ(bomb.width, 100000);
  EXPECT_EQ(bomb.height, 90000);
  EXPECT_EQ(hg::data::read_image_header(jpeg_declaring(65000, 64000)).width, 65000);
}

TEST(ImageHeader, RefusesOtherBytesAndCutHeaders) {
  EXPECT_ERROR_HAS(hg::data::read_image_header("GIF89a......"), "not a JPEG, PNG or WebP");
  EXPECT_ERROR_HAS(hg::data::read_image_header(png_declaring(1, 1).substr(0, 20)),
                   "PNG header is cut short");
  EXPECT_ERROR_HAS(hg::data::read_image_header(read_bytes(kImage).substr(0, 40)),
                   "JPEG has no frame header");
  const std::string jpeg = read_bytes(kImage);
  EXPECT_TRUE(hg::data::jpeg_is_complete(jpeg));
  EXPECT_FALSE(hg::data::jpeg_is_complete(jpeg.substr(0, jpeg.size() / 2)));
}

// One server for the suite, with a token; it runs on its own thread.
void wait_until_up(int port) {
  httplib::Client c("127.0.0.1", port);
  for (int i = 0; i < 500; ++i) {
    if (auto r = c.Get("/healthz"); r && r->status == 200) return;
    std::this_thread::sleep_for(std::chrono::milliseconds(10));
  }
  FAIL() << "the server did not come up on port " << port;
}

// Polls /metrics (bounded: about 5 s) until one request waits in the server's queue.
bool one_request_queued(httplib::Client& c) {
  for (int i = 0; i < 1000; ++i) {
    auto m = c.Get("/metrics");
    if (m && m->body.find("hg_queue_depth 1") != std::string::npos) return true;
    std::this_thread::sleep_for(std::chrono::milliseconds(5));
  }
  return false;
}

class Serve : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    hg::infer::PredictorOptions p;
    p.input_size = kSize;
    hg::serve::ServerOptions o;
    o.port = 0;
    o.token = kToken;
    o.max_body_bytes = 4 << 20;  // a lossless PNG of the test photo is ~1.5 MB
    o.max_pixels = 4'000'000;
    o.batching.max_batch = 4;
    server_ = new hg::serve::Server(kModel, p, o);
    port_ = server_->bind();
    thread_ = new std::thread([] { server_->run(); });
    wait_until_up(port_);
  }
  static void TearDownTestSuite() {
    server_->stop();
    thread_->join();
    delete thread_;
    delete server_;
  }

  static httplib::Client client() {
    httplib::Client c("127.0.0.1", port_);
    c.set_default_headers({{"Authorization", "Bearer " + kToken}});
    c.set_read_timeout(60);
    return c;
  }

  // POSTs `body` as `type` and returns the status and the JSON answer.
  static std::pair<int, json> post(const std::string& body, const std::string& type,
                                   const std::string& query = "") {
    auto c = client();
    auto r = c.Post(("/v1/pose" + query).c_str(), body, type.c_str());
    if (!r) return {-1, json()};
    return {r->status, json::parse(r->body)};
  }

  static hg::serve::Server* server_;
  static std::thread* thread_;
  static int port_;
};
hg::serve::Server* Serve::server_ = nullptr;
std::thread* Serve::thread_ = nullptr;
int Serve::port_ = 0;

// The joints of the answer's people equal the library's predictor on the same crops.
TEST_F(Serve, BoxesGiveThePredictorsJoints) {
  const std::string bytes = read_bytes(kImage);
  auto c = client();
  const httplib::MultipartFormDataItems items = {
      {"image", bytes, "a.jpg", "image/jpeg"},
      {"boxes", "[[300, 100, 200, 400], [600, 150, 150, 300]]", "", ""}};
  auto r = c.Post("/v1/pose", items);
  ASSERT_TRUE(r);
  ASSERT_EQ(r->status, 200) << r->body;
  const auto doc = json::parse(r->body);
  EXPECT_EQ(doc["format"], "hourglass-predictions");
  EXPECT_EQ(doc["input_size"], kSize);
  EXPECT_EQ(doc["flip_test"], true);
  EXPECT_GT(doc["time_ms"]["total"].get<double>(), 0);
  const auto& result = doc["results"][0];
  const cv::Mat rgb = hg::data::read_image_rgb(kImage);
  EXPECT_EQ(result["width"], rgb.cols);
  EXPECT_EQ(result["height"], rgb.rows);
  ASSERT_EQ(result["people"].size(), 2u);

  hg::infer::PredictorOptions p;
  p.input_size = kSize;
  const auto predictor = hg::infer::Predictor::load(kModel, p);
  std::vector<hg::infer::PersonCrop> people;
  for (const cv::Rect2d b : {cv::Rect2d(300, 100, 200, 400), cv::Rect2d(600, 150, 150, 300)})
    people.push_back({hg::infer::crop_of_box(b), hg::infer::PersonSource::kBoxesFile, b, 0});
  const auto expected = predictor.predict(rgb, people);
  for (size_t k = 0; k < 2; ++k) {
    const auto& person = result["people"][k];
    EXPECT_EQ(person["found_by"], "boxes-file");
    ASSERT_EQ(person["stacks"].size(), 2u);
    const auto a = expected[k].joints.accessor<float, 3>();
    for (int s = 0; s < 2; ++s)
      for (int j = 0; j < 16; ++j)
        for (int v = 0; v < 3; ++v)
          EXPECT_NEAR(person["stacks"][s][j][v].get<double>(), a[s][j][v], 1e-3);
    EXPECT_NEAR(person["joints"]["head-top"]["x"].get<double>(), a[1][9][0], 1e-3);
  }

  // stacks=1: the first stack's joints alone.
  auto first = c.Post("/v1/pose?stacks=1", items);
  ASSERT_TRUE(first);
  ASSERT_EQ(first->status, 200) << first->body;
  const auto first_doc = json::parse(first->body);
  const auto& person = first_doc["results"][0]["people"][0];
  ASSERT_EQ(person["stacks"].size(), 1u);
  const auto a = expected[0].joints.accessor<float, 3>();
  EXPECT_NEAR(person["stacks"][0][9][0].get<double>(), a[0][9][0], 1e-3);
  EXPECT_NEAR(person["joints"]["head-top"]["x"].get<double>(), a[0][9][0], 1e-3);
}

TEST_F(Serve, RawImagesWithTheDetectorOrTheWholeImage) {
  const std::string bytes = read_bytes(kImage);
  const auto [status, doc] = post(bytes, "image/jpeg");
  ASSERT_EQ(status, 200) << doc.dump();
  ASSERT_GE(doc["results"][0]["people"].size(), 1u);
  const auto found = doc["results"][0]["people"][0]["found_by"];
  EXPECT_TRUE(found == "hog-detector" || found == "whole-image-no-detection") << found;

  const cv::Mat bgr = cv::imread(kImage);
  for (const auto& [ext, type] : std::vector<std::pair<std::string, std::string>>{
           {".png", "image/png"}, {".webp", "image/webp"}, {".jpg", "application/octet-stream"}}) {
    const auto [s, d] = post(encode(bgr, ext), type, "?whole_image=1&flip=0&size=128");
    ASSERT_EQ(s, 200) << ext << ": " << d.dump();
    EXPECT_EQ(d["flip_test"], false);
    ASSERT_EQ(d["results"][0]["people"].size(), 1u);
    EXPECT_EQ(d["results"][0]["people"][0]["found_by"], "whole-image");
    EXPECT_EQ(d["results"][0]["people"][0]["joints"].size(), 16u);
  }
}

// Every kind of bad request gets its 4xx with a JSON error, and the server goes on serving.
TEST_F(Serve, BadRequestsGet4xxAndTheServerKeepsServing) {
  const std::string jpeg = read_bytes(kImage);
  const std::string png = encode(cv::imread(kImage), ".png");
  std::string riff_bomb("RIFF\0\0\0\0WEBPVP8X\x0a\0\0\0\0\0\0\0", 20);
  riff_bomb += std::string(4, '\0') + std::string("\x7f\x3e\0\x7f\x3e\0", 6);  // 16000×16000
  riff_bomb += std::string(16, '\0');
  struct Case {
    std::string name, body, type, query;
    int status;
    std::string message;
  };
  const std::vector<Case> cases = {
      {"random bytes", std::string(5000, '\x17'), "image/jpeg", "", 415, "not a JPEG, PNG or WebP"},
      {"empty", "", "image/jpeg", "", 400, "the body is empty"},
      {"truncated JPEG", jpeg.substr(0, jpeg.size() / 2), "image/jpeg", "", 400, "cut short"},
      {"truncated PNG", png.substr(0, png.size() / 3), "image/png", "", 400, "cannot be decoded"},
      {"text", "hello", "text/plain", "", 415, "Content-Type 'text/plain' is not an image"},
      // curl --data-binary @photo.jpg: refused from the headers, whatever the body's size.
      {"curl's default type", jpeg + std::string(100000, '\0'), "application/x-www-form-urlencoded",
       "", 415, "is not an image: send image/jpeg, image/png or image/webp (curl --data-binary"},
      {"PNG bomb", png_declaring(100000, 100000), "image/png", "", 413, "declares 100000×100000"},
      {"JPEG bomb", jpeg_declaring(60000, 60000), "image/jpeg", "", 413, "max_pixels"},
      {"WebP bomb", riff_bomb, "image/webp", "", 413, "16000×16000"},
      // Found by fuzz_http: within the pixel budget, but too tall for OpenCV's warping (500).
      {"thin JPEG", jpeg_declaring(16, 43020), "image/jpeg", "", 413,
       "16×43020 pixels: sides over 32766 pixels are not supported"},
      {"oversized", std::string((4 << 20) + 1000, 'x'), "image/jpeg", "", 413, "max_body_bytes"},
      {"size", jpeg, "image/jpeg", "?size=256", 400, "runs the network at 128"},
      {"flip", jpeg, "image/jpeg", "?flip=maybe", 400, "flip=maybe"},
      {"stacks 0", jpeg, "image/jpeg", "?stacks=0", 400,
       "stacks=0 is not a stack count from 1 to 2"},
      {"stacks 3", jpeg, "image/jpeg", "?stacks=3", 400, "stacks=3 is not a stack count"},
      {"stacks text", jpeg, "image/jpeg", "?stacks=1x", 400, "stacks=1x is not"},
  };
  for (const auto& c : cases) {
    const auto [status, doc] = post(c.body, c.type, c.query);
    EXPECT_EQ(status, c.status) << c.name << ": " << doc.dump();
    EXPECT_NE(doc.value("error", "").find(c.message), std::string::npos)
        << c.name << ": " << doc.dump();
  }
  auto c = client();
  for (const auto& [boxes, message] : std::vector<std::pair<std::string, std::string>>{
           {"[[1, 2, 3]]", "is not a box"}, {"{not json", "not valid JSON"}}) {
    auto r =
        c.Post("/v1/pose", httplib::MultipartFormDataItems{{"image", jpeg, "a.jpg", "image/jpeg"},
                                                           {"boxes", boxes, "", ""}});
    ASSERT_TRUE(r);
    EXPECT_EQ(r->status, 400);
    EXPECT_NE(r->body.find(message), std::string::npos) << r->body;
  }
  auto r = c.Post("/v1/pose", httplib::MultipartFormDataItems{{"picture", jpeg, "a.jpg", ""}});
  ASSERT_TRUE(r);
  EXPECT_EQ(r->status, 400);
  EXPECT_NE(r->body.find("no 'image' part"), std::string::npos) << r->body;

  const auto [status, doc] = post(jpeg, "image/jpeg", "?whole_image=1");
  EXPECT_EQ(status, 200) << doc.dump();
}

TEST_F(Serve, ModelHealthMetricsAndTheToken) {
  auto c = client();
  auto model = c.Get("/v1/model");
  ASSERT_TRUE(model);
  ASSERT_EQ(model->status, 200);
  const auto m = json::parse(model->body);
  EXPECT_EQ(m["stacks"], 2);
  EXPECT_EQ(m["input_size"], kSize);
  EXPECT_EQ(m["joints"].size(), 16u);
  EXPECT_EQ(m["joints"][9], "head-top");
  EXPECT_EQ(m["backend"], "engine");
  EXPECT_EQ(m["precision"], "auto");
  EXPECT_FALSE(m["skeleton"].empty());
  EXPECT_FALSE(m["flip_pairs"].empty());

  EXPECT_EQ(post(read_bytes(kImage), "image/jpeg", "?whole_image=1").first, 200);
  auto metrics = c.Get("/metrics");
  ASSERT_TRUE(metrics);
  EXPECT_NE(metrics->body.find("hg_requests_total{path=\"/v1/pose\",status=\"200\"}"),
            std::string::npos)
      << metrics->body;
  for (const char* name : {"hg_pose_latency_seconds_bucket{le=\"+Inf\"}", "hg_batch_crops_count",
                           "hg_network_seconds_count", "hg_queue_depth 0"})
    EXPECT_NE(metrics->body.find(name), std::string::npos) << name;

  httplib::Client anonymous("127.0.0.1", port_);
  EXPECT_EQ(anonymous.Get("/healthz")->status, 200);
  const auto page = anonymous.Get("/");
  EXPECT_EQ(page->status, 200);
  EXPECT_NE(page->body.find("getUserMedia"), std::string::npos);
  EXPECT_EQ(anonymous.Get("/v1/model")->status, 401);
  EXPECT_EQ(anonymous.Post("/v1/pose", read_bytes(kImage), "image/jpeg")->status, 401);
  EXPECT_EQ(anonymous.Get("/nowhere")->status, 404);
}

// Requests from many clients at once are all answered, their crops batched together.
TEST_F(Serve, ConcurrentClientsAreAllAnswered) {
  const std::string bytes = read_bytes(kImage);
  std::atomic<int> ok{0};
  std::vector<std::thread> clients;
  for (int t = 0; t < 8; ++t)
    clients.emplace_back([&] {
      for (int i = 0; i < 2; ++i)
        if (post(bytes, "image/jpeg", "?whole_image=1").first == 200) ++ok;
    });
  for (auto& t : clients) t.join();
  EXPECT_EQ(ok, 16);
}

// MMPose's top-down hourglass (the CornerNet/CenterNet family) serves like Newell's network, with
// its COCO joints and its architecture in /v1/model.
TEST(ServeMMPose, AnswersWithTheModelsCocoJoints) {
  auto net = hg::test::small_pose_model();
  const auto path = (hg::test::scratch_dir() / "mmpose.hg").string();
  hg::io::save_large_hourglass(path, *net);
  hg::infer::PredictorOptions p;
  p.input_size = 64;
  hg::serve::ServerOptions o;
  o.port = 0;
  hg::serve::Server server(path, p, o);
  const int port = server.bind();
  std::thread thread([&] { server.run(); });
  wait_until_up(port);
  httplib::Client c("127.0.0.1", port);
  c.set_read_timeout(60);
  const auto model = c.Get("/v1/model");
  ASSERT_TRUE(model);
  const auto info = json::parse(model->body);
  EXPECT_EQ(info["architecture"]["family"], "large_hourglass");
  EXPECT_EQ(info["joint_set"], "coco");
  EXPECT_EQ(info["stacks"], 1);
  const auto r = c.Post("/v1/pose?whole_image=1", read_bytes(kImage), "image/jpeg");
  ASSERT_TRUE(r);
  ASSERT_EQ(r->status, 200) << r->body;
  const auto doc = json::parse(r->body);
  ASSERT_EQ(doc["results"][0]["people"].size(), 1u);
  EXPECT_EQ(doc["results"][0]["people"][0]["joints"].size(), 17u);
  server.stop();
  thread.join();
}

// The batcher: a batch that is not full waits for a request announced by arriving() (one network
// call of two crops), and a lone request with none announced runs alone.
TEST(ServeBatcher, ABatchWaitsForAnnouncedRequestsOnly) {
  std::mutex mutex;
  std::vector<int64_t> calls;  // crops per network call
  const auto network = [&](const at::Tensor& input) {
    std::lock_guard<std::mutex> lock(mutex);
    calls.push_back(input.size(0));
    return torch::zeros({input.size(0), 1, 16, 16, 16});
  };
  hg::infer::PredictorOptions p;
  p.input_size = 64;
  p.flip = false;
  hg::serve::BatcherOptions o;
  o.max_batch = 2;
  o.max_wait_ms = 0;
  o.max_arrival_wait_ms = 600'000;  // only the announced request's submit ends the wait
  hg::serve::Batcher batcher(hg::infer::Predictor(network, hg::data::mpii_joints(), p), o, nullptr);
  std::thread worker([&] { batcher.work(); });
  const auto crop = std::vector<hg::data::CropParams>{hg::infer::crop_of_image(cv::Size(64, 64))};
  const auto input = torch::zeros({1, 3, 64, 64});
  std::optional<hg::serve::Batcher::Arrival> second(batcher.arriving());
  auto first = batcher.submit(input, crop, false);
  ASSERT_TRUE(first);
  EXPECT_EQ(first->wait_for(std::chrono::milliseconds(200)), std::future_status::timeout);
  auto other = batcher.submit(input, crop, false);
  second.reset();
  EXPECT_EQ(first->get().size(0), 1);
  EXPECT_EQ(other->get().size(0), 1);
  auto alone = batcher.submit(input, crop, false);
  EXPECT_EQ(alone->wait_for(std::chrono::seconds(60)), std::future_status::ready);
  batcher.stop();
  worker.join();
  EXPECT_EQ(calls, (std::vector<int64_t>{2, 1}));
  EXPECT_FALSE(batcher.submit(input, crop, false)) << "stopped: submits are refused";
}

// A full queue answers 503 with Retry-After; stop() lets the request in flight finish.
TEST(ServeQueue, FullQueueGets503AndStopFinishesWhatIsInFlight) {
  hg::infer::PredictorOptions p;
  p.input_size = kSize;
  hg::serve::ServerOptions o;
  o.port = 0;
  o.batching.max_queue = 1;
  o.batching.max_batch = 64;
  o.batching.max_wait_ms = 3000;  // the first request waits in the queue for a batch to fill
  hg::serve::Server server(kModel, p, o);
  const int port = server.bind();
  std::thread running([&] { server.run(); });
  httplib::Client c("127.0.0.1", port);
  c.set_read_timeout(60);
  const std::string bytes = read_bytes(kImage);
  int first = 0;
  std::thread waiting([&] {
    httplib::Client own("127.0.0.1", port);
    own.set_read_timeout(60);
    auto r = own.Post("/v1/pose?whole_image=1", bytes, "image/jpeg");
    first = r ? r->status : -1;
  });
  ASSERT_TRUE(one_request_queued(c));
  auto busy = c.Post("/v1/pose?whole_image=1", bytes, "image/jpeg");
  ASSERT_TRUE(busy);
  EXPECT_EQ(busy->status, 503);
  EXPECT_EQ(busy->get_header_value("Retry-After"), "1");
  server.stop();
  waiting.join();
  running.join();
  EXPECT_EQ(first, 200);
}

// The CLI: SIGTERM stops accepting, lets the request in flight finish, then exits 0.
TEST(ServeCli, SigtermFinishesTheRequestInFlightThenExits) {
  const auto dir = hg::test::scratch_dir();
  const auto log = (dir / "serve.log").string();
  const pid_t child = fork();
  ASSERT_GE(child, 0);
  if (child == 0) {
    freopen(log.c_str(), "w", stderr);
    execl(HG_BINARY, HG_BINARY, "--threads", "2", "serve", "--weights", kModel.c_str(), "--size",
          "128", "--port", "0", "--max-batch", "64", "--max-wait-ms", "2000", nullptr);
    _exit(127);
  }
  int port = 0;
  for (int i = 0; i < 3000 && port == 0; ++i) {
    std::ifstream in(log);
    const std::string text((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
    if (const auto at = text.find("127.0.0.1:");
        at != std::string::npos && text.find("/ (", at) != std::string::npos)
      port = std::atoi(text.c_str() + at + 10);
    if (port == 0) std::this_thread::sleep_for(std::chrono::milliseconds(20));
  }
  ASSERT_GT(port, 0) << "no port in the server's output";
  wait_until_up(port);
  int status = 0;
  std::thread in_flight([&] {
    httplib::Client c("127.0.0.1", port);
    c.set_read_timeout(60);
    auto r = c.Post("/v1/pose?whole_image=1", read_bytes(kImage), "image/jpeg");
    status = r ? r->status : -1;
  });
  // The request waits up to 2 s in the queue for a batch to fill: terminate meanwhile.
  httplib::Client probe("127.0.0.1", port);
  ASSERT_TRUE(one_request_queued(probe));
  kill(child, SIGTERM);
  in_flight.join();
  int wstatus = 0;
  ASSERT_EQ(waitpid(child, &wstatus, 0), child);
  EXPECT_EQ(status, 200);
  ASSERT_TRUE(WIFEXITED(wstatus));
  EXPECT_EQ(WEXITSTATUS(wstatus), 0);
  std::ifstream in(log);
  const std::string text((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  EXPECT_NE(text.find("SIGTERM"), std::string::npos) << text;
  EXPECT_NE(text.find("serve: stopped"), std::string::npos) << text;
}

// ---- hostile clients (issue 35): raw sockets on 127.0.0.1, every wait bounded -----------------

// A TCP connection to 127.0.0.1:port that sends bytes and reads what comes back.
class RawClient {
 public:
  explicit RawClient(int port) : fd_(::socket(AF_INET, SOCK_STREAM, 0)) {
    sockaddr_in a{};
    a.sin_family = AF_INET;
    a.sin_port = htons(static_cast<uint16_t>(port));
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    connected_ = ::connect(fd_, reinterpret_cast<sockaddr*>(&a), sizeof a) == 0;
  }
  ~RawClient() { ::close(fd_); }
  RawClient(const RawClient&) = delete;
  bool connected() const { return connected_; }
  // Sends everything it can (false once the server has closed).
  bool send(const std::string& bytes) {
    size_t sent = 0;
    while (sent < bytes.size()) {
      const ssize_t n = ::send(fd_, bytes.data() + sent, bytes.size() - sent, MSG_NOSIGNAL);
      if (n <= 0) return false;
      sent += static_cast<size_t>(n);
    }
    return true;
  }
  // What arrives until the server closes or `seconds` pass.
  std::string receive(double seconds) {
    std::string got;
    const auto end = std::chrono::steady_clock::now() + std::chrono::duration<double>(seconds);
    char buf[4096];
    while (std::chrono::steady_clock::now() < end) {
      pollfd p{fd_, POLLIN, 0};
      if (::poll(&p, 1, 50) <= 0) continue;
      const ssize_t n = ::recv(fd_, buf, sizeof buf, 0);
      if (n <= 0) break;
      got.append(buf, static_cast<size_t>(n));
    }
    return got;
  }

 private:
  int fd_;
  bool connected_ = false;
};

// The status of an HTTP answer's first line ("HTTP/1.1 431 ..." -> 431; -1 if none).
int status_of(const std::string& answer) {
  return answer.rfind("HTTP/1.1 ", 0) == 0 ? std::atoi(answer.c_str() + 9) : -1;
}

// The JSON body of a raw answer.
json body_of(const std::string& answer) {
  const auto at = answer.find("\r\n\r\n");
  return at == std::string::npos ? json() : json::parse(answer.substr(at + 4), nullptr, false);
}

// Seconds /healthz takes to answer 200 on a new connection (-1: no answer within 5 s).
double healthz_seconds(int port) {
  const auto start = std::chrono::steady_clock::now();
  httplib::Client c("127.0.0.1", port);
  c.set_connection_timeout(5);
  c.set_read_timeout(5);
  auto r = c.Get("/healthz");
  if (!r || r->status != 200) return -1;
  return std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
}

// Class 1: bytes that are not UTF-8 in the path, the query and the content type are answered
// with JSON (they used to abort the process).
TEST_F(Serve, BytesThatAreNotUtf8AreAnsweredAndTheServerLives) {
  const std::string auth = "Authorization: Bearer " + kToken + "\r\n";
  for (const auto& [request, status, message] :
       std::vector<std::tuple<std::string, int, std::string>>{
           {"GET /%FF HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n", 404,
            "no such endpoint: GET /\xEF\xBF\xBD"},
           {"GET /\xFF\xFE HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n", 404,
            "no such endpoint"},
           {"POST /v1/pose?flip=%FF HTTP/1.1\r\nHost: x\r\nConnection: close\r\n" + auth +
                "Content-Type: image/jpeg\r\nContent-Length: 4\r\n\r\nabcd",
            400, "flip=\xEF\xBF\xBD is not"},
           {"POST /v1/pose HTTP/1.1\r\nHost: x\r\nConnection: close\r\n" + auth +
                "Content-Type: text/\xFF\r\nContent-Length: 4\r\n\r\nabcd",
            415, "Content-Type 'text/\xEF\xBF\xBD' is not an image"}}) {
    RawClient c(port_);
    ASSERT_TRUE(c.connected());
    ASSERT_TRUE(c.send(request));
    const std::string answer = c.receive(5);
    EXPECT_EQ(status_of(answer), status) << answer;
    const auto doc = body_of(answer);
    ASSERT_TRUE(doc.is_object()) << answer;
    EXPECT_NE(doc["error"].get<std::string>().find(message), std::string::npos) << answer;
  }
  EXPECT_GE(healthz_seconds(port_), 0);
}

// Class 2: a head past the limit is answered 431 at the limit (300 MB of headers were read
// whole), a request line past it too, and a chunked body past max_body_bytes 413.
TEST_F(Serve, HeadersAndChunkedBodiesPastTheLimitsAreRefusedAtTheLimit) {
  {
    RawClient c(port_);
    ASSERT_TRUE(c.send("GET /healthz HTTP/1.1\r\nHost: x\r\n"));
    std::string headers;
    for (int i = 0; i < 2000; ++i) headers += "X-Filler-" + std::to_string(i) + ": abcdefgh\r\n";
    c.send(headers);  // the server answers and closes part-way
    const std::string answer = c.receive(5);
    EXPECT_EQ(status_of(answer), 431) << answer.substr(0, 200);
    EXPECT_NE(body_of(answer).value("error", "").find("larger than the server's limit of 16384"),
              std::string::npos)
        << answer;
  }
  {
    RawClient c(port_);
    c.send("GET /" + std::string(40000, 'a') + " HTTP/1.1\r\n\r\n");
    EXPECT_EQ(status_of(c.receive(5)), 431);
  }
  {
    RawClient c(port_);
    ASSERT_TRUE(c.send("POST /v1/pose HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer " + kToken +
                       "\r\nContent-Type: image/jpeg\r\nTransfer-Encoding: chunked\r\n\r\n"));
    const std::string chunk = "10000\r\n" + std::string(0x10000, 'x') + "\r\n";
    for (int i = 0; i < 100; ++i)  // 6.4 MB against the fixture's 4 MB
      if (!c.send(chunk)) break;
    const std::string answer = c.receive(5);
    EXPECT_EQ(status_of(answer), 413) << answer.substr(0, 300);
    EXPECT_NE(body_of(answer).value("error", "").find("max_body_bytes"), std::string::npos);
  }
  EXPECT_GE(healthz_seconds(port_), 0);
}

// Class 2: pipelined requests on one connection each get their answer, in order.
TEST_F(Serve, PipelinedRequestsEachGetTheirAnswer) {
  RawClient c(port_);
  ASSERT_TRUE(
      c.send("GET /healthz HTTP/1.1\r\nHost: x\r\n\r\nGET /nowhere HTTP/1.1\r\nHost: "
             "x\r\n\r\nGET /healthz HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n"));
  const std::string answer = c.receive(5);
  std::vector<int> statuses;
  for (size_t at = answer.find("HTTP/1.1 "); at != std::string::npos;
       at = answer.find("HTTP/1.1 ", at + 1))
    statuses.push_back(std::atoi(answer.c_str() + at + 9));
  EXPECT_EQ(statuses, (std::vector<int>{200, 404, 200})) << answer;
}

// Class 2: more boxes than max_boxes are refused before any network pass.
TEST_F(Serve, ARequestWithTooManyBoxesIsRefused) {
  std::string boxes = "[";
  for (int i = 0; i < 65; ++i) boxes += std::string(i ? "," : "") + "[10, 10, 50, 100]";
  auto c = client();
  auto r = c.Post("/v1/pose", httplib::MultipartFormDataItems{
                                  {"image", read_bytes(kImage), "a.jpg", "image/jpeg"},
                                  {"boxes", boxes + "]", "", ""}});
  ASSERT_TRUE(r);
  EXPECT_EQ(r->status, 413);
  EXPECT_NE(r->body.find("65 boxes, but this server takes at most 64 people per request"),
            std::string::npos)
      << r->body;
}

// Class 2: idle and trickling connections, more than max_connections, starve nobody, and a
// trickling client does not hold the shutdown.
TEST(ServeHostile, IdleAndSlowConnectionsStarveNobodyAndStopIsPrompt) {
  hg::infer::PredictorOptions p;
  p.input_size = kSize;
  hg::serve::ServerOptions o;
  o.port = 0;
  o.max_connections = 8;  // the crowd below is five times that
  o.timeout_s = 30;
  hg::serve::Server server(kModel, p, o);
  const int port = server.bind();
  std::thread running([&] { server.run(); });
  wait_until_up(port);
  std::vector<std::unique_ptr<RawClient>> crowd;
  for (int i = 0; i < 40; ++i) {
    crowd.push_back(std::make_unique<RawClient>(port));
    if (i % 2) crowd.back()->send("GET /healthz HTTP/1.1\r\nHost: x\r\nX-Slow: ");  // trickles
  }
  std::this_thread::sleep_for(std::chrono::milliseconds(200));
  for (int k = 0; k < 3; ++k) {
    const double s = healthz_seconds(port);
    EXPECT_GE(s, 0) << "no answer while 40 connections wait";
    EXPECT_LT(s, 2) << "a good request waited";
  }
  // A partial head times out with 408 (here after o.timeout_s; this one is dropped sooner).
  RawClient slow(port);
  slow.send("GET /healthz HTTP/1.1\r\nHost: x\r\n");
  const auto stopping = std::chrono::steady_clock::now();
  server.stop();
  running.join();
  EXPECT_LT(std::chrono::duration<double>(std::chrono::steady_clock::now() - stopping).count(), 5)
      << "stop waited for a trickling client";
}

TEST(ServeHostile, APartialHeadIsAnswered408AfterTheTimeout) {
  hg::infer::PredictorOptions p;
  p.input_size = kSize;
  hg::serve::ServerOptions o;
  o.port = 0;
  o.timeout_s = 1;
  hg::serve::Server server(kModel, p, o);
  const int port = server.bind();
  std::thread running([&] { server.run(); });
  wait_until_up(port);
  RawClient c(port);
  c.send("GET /healthz HTTP/1.1\r\nHost: x\r\n");
  const std::string answer = c.receive(4);
  EXPECT_EQ(status_of(answer), 408) << answer;
  EXPECT_NE(body_of(answer).value("error", "").find("did not arrive within 1 s"), std::string::npos)
      << answer;
  server.stop();
  running.join();
}

// Class 1: a weights file whose name is not UTF-8 (every /v1/* answered 500 before).
TEST(ServeHostile, AModelFileNameThatIsNotUtf8) {
  const auto dir = hg::test::scratch_dir();
  const auto weights = dir / std::string("model\xFF.pt");
  std::filesystem::copy_file(kModel, weights);
  hg::infer::PredictorOptions p;
  p.input_size = kSize;
  hg::serve::ServerOptions o;
  o.port = 0;
  hg::serve::Server server(weights.string(), p, o);
  const int port = server.bind();
  std::thread running([&] { server.run(); });
  wait_until_up(port);
  httplib::Client c("127.0.0.1", port);
  auto r = c.Get("/v1/model");
  ASSERT_TRUE(r);
  EXPECT_EQ(r->status, 200);
  EXPECT_EQ(json::parse(r->body)["model"], "model\xEF\xBF\xBD.pt");
  server.stop();
  running.join();
}

// Class 2: every numeric option is checked, NaN included (it turned the body limit off).
TEST(ServeCli, NumericOptionsRefuseNanAndOutOfRange) {
  for (const auto& [args, message] : std::vector<std::pair<std::string, std::string>>{
           {"--max-body-mb nan", "--max-body-mb: nan is not a finite number"},
           {"--max-body-mb inf", "--max-body-mb: Value inf not in range"},
           {"--max-body-mb 1e30", "--max-body-mb: Value 1e30 not in range"},
           {"--timeout 0", "--timeout: Value 0 not in range"},
           {"--max-boxes 0", "--max-boxes: Value 0 not in range"}}) {
    const auto r = hg::test::run_tool("serve --weights " + kModel + " --port 0 " + args);
    EXPECT_EQ(r.code, 2) << args << ": " << r.out;
    EXPECT_NE(r.out.find(message), std::string::npos) << args << ": " << r.out;
  }
  const auto r =
      hg::test::run_tool("predict " + kImage + " --weights " + kModel + " --min-score nan");
  EXPECT_EQ(r.code, 2) << r.out;
  EXPECT_NE(r.out.find("nan is not a finite number"), std::string::npos) << r.out;
}

}  // namespace
